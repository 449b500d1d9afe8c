#include "views/quantize_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QRegularExpression>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <thread>

#include "quant/ef_format.h"
#include "views/format_util.h"
#include "views/quant_summary_model.h"

namespace ef::views {
namespace {
const char* const kGgmlTargets[] = {"q8_0", "q4_0", "q4_K", "q5_K", "q6_K", "q3_K", "q2_K"};
}

QuantizeDialog::QuantizeDialog(QWidget* parent) : QDialog(parent) {
    qRegisterMetaType<ef::views::QuantizeJobResultPtr>();
    setWindowTitle(tr("Quantize & Export"));
    pool_.setMaxThreadCount(1);
    summary_ = new QuantSummaryModel(this);
    proxy_ = new QSortFilterProxyModel(this);
    proxy_->setSourceModel(summary_);
    proxy_->setSortRole(QuantSummaryModel::SortRole);

    source_ = new QLabel(tr("No model loaded."), this);
    source_->setWordWrap(true);
    use_prebuilt_ = new QCheckBox(tr("Export the pre-built model as it is (no re-quantization)"), this);
    use_prebuilt_->hide();

    method_ = new QComboBox(this);
    method_->addItem(tr("round-to-nearest (rtn)"), "rtn");
    method_->addItem(tr("importance-weighted (imatrix)"), "imatrix");
    method_->addItem(tr("GPTQ (gptq)"), "gptq");
    target_ = new QComboBox(this);
    for (const char* t : kGgmlTargets) target_->addItem(t, t);
    target_->addItem(tr("EdgeFusion (EF) blocks + outliers"), "ef");
    target_->setCurrentIndex(target_->findData("q4_K"));

    ef_box_ = new QGroupBox(tr("EdgeFusion format"), this);
    bits_ = new QComboBox(this);
    for (int k : {2, 3, 4, 5, 6, 8}) bits_->addItem(QString::number(k), k);
    bits_->setCurrentIndex(bits_->findData(3));
    block_ = new QComboBox(this);
    for (int b : {32, 64, 128, 256}) block_->addItem(QString::number(b), b);
    block_->setCurrentIndex(block_->findData(128));
    affine_ = new QCheckBox(tr("offset (affine blocks)"), this);
    outliers_ = new QDoubleSpinBox(this);
    outliers_->setRange(0, 100);  // the library checks [0, 5 %] and says so
    outliers_->setDecimals(3);
    outliers_->setSingleStep(0.1);
    outliers_->setValue(0.5);
    outliers_->setSuffix(" %");
    outliers_->setToolTip(tr("p: share of each matrix's weights kept as sparse 6-bit outliers (0–5 %)"));
    selection_ = new QComboBox(this);
    selection_->addItem(tr("magnitude |w|"), "magnitude");
    selection_->addItem(tr("saliency w²·E[x²] (calibrates)"), "saliency");
    strict_ = new QCheckBox(tr("B must divide every row (no fallback block)"), this);
    auto* ef_form = new QFormLayout(ef_box_);
    ef_form->addRow(tr("Code bits k"), bits_);
    ef_form->addRow(tr("Block B"), block_);
    ef_form->addRow(QString(), affine_);
    ef_form->addRow(tr("Outliers p"), outliers_);
    ef_form->addRow(tr("Selection"), selection_);
    ef_form->addRow(QString(), strict_);

    calib_box_ = new QGroupBox(tr("Calibration (imatrix, GPTQ, saliency)"), this);
    calib_path_ = new QLineEdit(this);
    const QString calib_default = tr("Empty: the last 10 % of ../shared/text/wikitext-2-raw-test.txt");
    calib_path_->setToolTip(calib_default);
    calib_path_->setClearButtonEnabled(true);
    auto* calib_browse = new QPushButton(tr("Browse…"), this);
    calib_tokens_ = new QSpinBox(this);
    calib_tokens_->setRange(1, 1 << 24);
    calib_tokens_->setValue(4096);
    auto* calib_row = new QHBoxLayout;
    calib_row->addWidget(calib_path_, 1);
    calib_row->addWidget(calib_browse);
    auto* calib_form = new QFormLayout(calib_box_);
    calib_form->addRow(tr("Text"), calib_row);
    calib_form->addRow(QString(), new QLabel(calib_default, calib_box_));
    calib_form->addRow(tr("Tokens"), calib_tokens_);

    threads_ = new QSpinBox(this);
    threads_->setRange(0, 1024);
    threads_->setSpecialValueText(tr("all cores"));
    output_ = new QComboBox(this);
    for (auto o : {QuantOutput::LlamacppGguf, QuantOutput::NativeGguf, QuantOutput::Hdf5Checkpoint})
        output_->addItem(quant_output_name(o), int(o));
    output_->setItemData(0, tr("Standard ggml types (EF -> nearest ggml type) for llama.cpp"), Qt::ToolTipRole);
    output_->setItemData(1, tr("EF blocks and outlier companions for the EdgeFusion runtime"), Qt::ToolTipRole);
    output_->setItemData(2, tr("Full-precision master weights plus this variant"), Qt::ToolTipRole);
    output_->setCurrentIndex(1);
    path_ = new QLineEdit(this);
    auto* browse = new QPushButton(tr("Browse…"), this);
    auto* path_row = new QHBoxLayout;
    path_row->addWidget(path_, 1);
    path_row->addWidget(browse);

    auto* form = new QFormLayout;
    form->addRow(tr("Source"), source_);
    form->addRow(QString(), use_prebuilt_);
    form->addRow(tr("Method"), method_);
    form->addRow(tr("Target"), target_);
    form->addRow(tr("Threads"), threads_);
    form->addRow(tr("Output"), output_);
    form->addRow(tr("File"), path_row);

    run_ = new QPushButton(tr("Quantize && Export"), this);
    run_->setDefault(true);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    auto* close = new QPushButton(tr("Close"), this);
    bar_ = new QProgressBar(this);
    bar_->setRange(0, 1000);
    bar_->setValue(0);
    stage_ = new QLabel(this);
    error_ = new QLabel(this);
    error_->setWordWrap(true);
    error_->setStyleSheet("color: #b00020;");
    error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    error_->hide();
    totals_ = new QLabel(this);
    totals_->setWordWrap(true);
    totals_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(bar_, 1);
    buttons->addWidget(run_);
    buttons->addWidget(cancel_);
    buttons->addWidget(close);

    table_ = new QTableView(this);
    table_->setModel(proxy_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(-1, Qt::AscendingOrder);  // model order until the user sorts
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->verticalHeader()->hide();
    table_->setWordWrap(false);
    table_->setAlternatingRowColors(true);
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 6);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

    auto* left = new QVBoxLayout;
    left->addLayout(form);
    left->addWidget(ef_box_);
    left->addWidget(calib_box_);
    left->addStretch(1);
    auto* right = new QVBoxLayout;
    right->addWidget(new QLabel(tr("<b>Summary</b>"), this));
    right->addWidget(totals_);
    right->addWidget(table_, 1);
    auto* left_panel = new QWidget(this);
    left->setContentsMargins(0, 0, 0, 0);
    left_panel->setLayout(left);
    left_panel->setMaximumWidth(460);
    auto* top = new QHBoxLayout;
    top->addWidget(left_panel, 0);
    top->addLayout(right, 1);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top, 1);
    layout->addWidget(error_);
    layout->addWidget(stage_);
    layout->addLayout(buttons);

    connect(run_, &QPushButton::clicked, this, [this] { start(); });
    connect(cancel_, &QPushButton::clicked, this, &QuantizeDialog::cancel);
    connect(close, &QPushButton::clicked, this, &QDialog::reject);
    connect(browse, &QPushButton::clicked, this, &QuantizeDialog::browseOutput);
    connect(calib_browse, &QPushButton::clicked, this, &QuantizeDialog::browseCalibration);
    connect(path_, &QLineEdit::textEdited, this, [this] { path_edited_ = true; });
    for (QComboBox* c : {method_, target_, selection_, output_, bits_, block_})
        connect(c, &QComboBox::currentIndexChanged, this, [this] {
            updateEnabled();
            suggestPath();
        });
    connect(affine_, &QCheckBox::toggled, this, [this] { suggestPath(); });
    connect(outliers_, &QDoubleSpinBox::valueChanged, this, [this] { updateEnabled(); });
    connect(use_prebuilt_, &QCheckBox::toggled, this, [this] {
        updateEnabled();
        suggestPath();
    });
    connect(this, &QuantizeDialog::computed, this, &QuantizeDialog::onComputed, Qt::QueuedConnection);
    connect(this, &QuantizeDialog::progressed, this, [this](quint64 job, double f, const QString& stage) {
        if (job != job_ || !busy_) return;
        bar_->setValue(std::max(bar_->value(), int(f * 1000)));
        if (!stage.isEmpty()) stage_->setText(stage);
    }, Qt::QueuedConnection);
    updateEnabled();
    resize(1100, 620);
}

QuantizeDialog::~QuantizeDialog() {
    if (progress_) progress_->cancel();
    pool_.waitForDone();  // the worker emits on `this`
}

void QuantizeDialog::setModel(std::shared_ptr<const Model> master, const QString& label) {
    if (progress_) progress_->cancel();
    ++job_;  // a result on its way belongs to the old model
    setBusy(false);
    master_ = std::move(master);
    master_label_ = label;
    prebuilt_.reset();
    prebuilt_report_.reset();
    result_.reset();
    summary_->clear();
    totals_->clear();
    error_->hide();
    path_edited_ = false;
    path_->clear();
    if (!master_) source_->setText(tr("No model loaded."));
    else
        source_->setText(tr("%1 · %2 · %3 params · %4")
                             .arg(label.isEmpty() ? to_qstring(master_->source_path) : label, to_qstring(master_->architecture),
                                  human_count(master_->parameter_count()), human_bytes(master_->weight_bytes())));
    use_prebuilt_->hide();
    use_prebuilt_->setChecked(false);
    updateEnabled();
    suggestPath();
}

void QuantizeDialog::setSourceModel(std::shared_ptr<const Model> quantized, const QString& label,
                                    std::optional<ModelQuantReport> report) {
    prebuilt_ = std::move(quantized);
    prebuilt_label_ = label;
    prebuilt_report_ = std::move(report);
    use_prebuilt_->setVisible(bool(prebuilt_));
    use_prebuilt_->setChecked(bool(prebuilt_));
    if (prebuilt_)
        use_prebuilt_->setText(tr("Export the pre-built model “%1” as it is (%2, %3 bpw; no re-quantization)")
                                   .arg(label, human_bytes(prebuilt_->weight_bytes()))
                                   .arg(prebuilt_->bits_per_weight(), 0, 'f', 3));
    updateEnabled();
    suggestPath();
}

QuantizeJobOptions QuantizeDialog::options() const {
    QuantizeJobOptions o;
    ModelQuantOptions& q = o.quant;
    const QString m = method_->currentData().toString();
    q.method = m == "gptq" ? QuantMethod::Gptq : m == "imatrix" ? QuantMethod::Imatrix : QuantMethod::Rtn;
    const QString t = target_->currentData().toString();
    q.ef_format = t == "ef";
    if (!q.ef_format) q.ggml_type = dtype_from_name(t.toStdString()).value_or(DType::Q8_0);
    q.ef.bits = bits_->currentData().toInt();
    q.ef.block = block_->currentData().toInt();
    q.ef.affine = affine_->isChecked();
    q.ef.outlier_fraction = outliers_->value() / 100.0;
    q.ef.selection = selection_->currentData().toString() == "saliency" ? OutlierSelection::Saliency : OutlierSelection::Magnitude;
    q.allow_fallback = !(q.ef_format && strict_->isChecked());
    q.threads = threads_->value();
    o.output = QuantOutput(output_->currentData().toInt());
    o.path = QDir::cleanPath(path_->text().trimmed()).toStdString();
    if (path_->text().trimmed().isEmpty()) o.path.clear();
    o.calib_path = calib_path_->text().trimmed().toStdString();
    o.calib_tokens = calib_tokens_->value();
    return o;
}

void QuantizeDialog::setOptions(const QuantizeJobOptions& o) {
    const ModelQuantOptions& q = o.quant;
    method_->setCurrentIndex(method_->findData(QString::fromUtf8(quant_method_name(q.method).data(), int(quant_method_name(q.method).size()))));
    target_->setCurrentIndex(target_->findData(q.ef_format ? QString("ef") : to_qstring(dtype_name(q.ggml_type))));
    bits_->setCurrentIndex(bits_->findData(q.ef.bits));
    block_->setCurrentIndex(block_->findData(q.ef.block));
    affine_->setChecked(q.ef.affine);
    outliers_->setValue(q.ef.outlier_fraction * 100.0);
    selection_->setCurrentIndex(q.ef.selection == OutlierSelection::Saliency ? 1 : 0);
    strict_->setChecked(q.ef_format && !q.allow_fallback);
    threads_->setValue(q.threads);
    output_->setCurrentIndex(output_->findData(int(o.output)));
    calib_path_->setText(to_qstring(o.calib_path));
    calib_tokens_->setValue(int(std::min<int64_t>(o.calib_tokens, calib_tokens_->maximum())));
    if (!o.path.empty()) {
        path_->setText(to_qstring(o.path));
        path_edited_ = true;
    }
}

void QuantizeDialog::setStrict(bool strict) { strict_->setChecked(strict); }

void QuantizeDialog::updateEnabled() {
    const bool prebuilt = prebuilt_ && use_prebuilt_->isChecked();
    const bool ef = target_->currentData().toString() == "ef";
    const bool saliency = ef && outliers_->value() > 0 && selection_->currentData().toString() == "saliency";
    method_->setEnabled(!busy_ && !prebuilt);
    target_->setEnabled(!busy_ && !prebuilt);
    ef_box_->setEnabled(!busy_ && !prebuilt && ef);
    calib_box_->setEnabled(!busy_ && !prebuilt && (method_->currentData().toString() != "rtn" || saliency));
    output_->setEnabled(!busy_);
    path_->setEnabled(!busy_);
    threads_->setEnabled(!busy_);
    use_prebuilt_->setEnabled(!busy_);
    run_->setEnabled(!busy_ && master_);
    cancel_->setEnabled(busy_);
}

// A name beside the source file, e.g. stories260K-q4_K.gguf, until the user types their own.
void QuantizeDialog::suggestPath() {
    if (path_edited_ || !master_) return;
    QFileInfo src(to_qstring(master_->source_path));
    const QString dir = src.absolutePath().isEmpty() ? QDir::currentPath() : src.absolutePath();
    const QString stem = src.completeBaseName().isEmpty() ? QString("model") : src.completeBaseName();
    QString tag;
    if (prebuilt_ && use_prebuilt_->isChecked()) {
        tag = prebuilt_label_.isEmpty() ? QString("prebuilt") : prebuilt_label_;
        tag.replace(QRegularExpression("[^A-Za-z0-9_.-]+"), "_");
    } else if (target_->currentData().toString() == "ef") {
        const auto t = ef_dtype(bits_->currentData().toInt(), block_->currentData().toInt(), affine_->isChecked());
        tag = t ? to_qstring(dtype_name(*t)) : QString("ef");
    } else {
        tag = target_->currentData().toString();
    }
    const auto out = QuantOutput(output_->currentData().toInt());
    const QString ext = out == QuantOutput::Hdf5Checkpoint ? ".h5" : out == QuantOutput::LlamacppGguf ? ".llamacpp.gguf" : ".gguf";
    path_->setText(QDir(dir).filePath(stem + "-" + tag + ext));
}

void QuantizeDialog::browseOutput() {
    const auto out = QuantOutput(output_->currentData().toInt());
    const QString filter = out == QuantOutput::Hdf5Checkpoint ? tr("HDF5 checkpoints (*.h5 *.hdf5)") : tr("GGUF (*.gguf)");
    const QString f = QFileDialog::getSaveFileName(this, tr("Export to"), path_->text(), filter);
    if (f.isEmpty()) return;
    path_->setText(f);
    path_edited_ = true;
}

void QuantizeDialog::browseCalibration() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Calibration text"), calib_path_->text(), tr("Text (*.txt);;All files (*)"));
    if (!f.isEmpty()) calib_path_->setText(f);
}

QString QuantizeDialog::errorText() const { return error_->text(); }
QString QuantizeDialog::totalsText() const { return totals_->text(); }

void QuantizeDialog::showError(const QString& message) {
    error_->setText(message);
    error_->setVisible(true);
}

bool QuantizeDialog::start() {
    if (busy_) return false;
    error_->clear();
    error_->hide();
    if (!master_) {
        showError(tr("No model loaded."));
        emit failed(errorText());
        return false;
    }
    const QuantizeJobOptions o = options();
    if (o.path.empty()) {
        showError(tr("Choose an output file."));
        emit failed(errorText());
        return false;
    }
    if (progress_) progress_->cancel();
    const quint64 job = ++job_;
    auto progress = std::make_shared<Progress>([this, job](double f, const std::string& s) { emit progressed(job, f, to_qstring(s)); });
    progress_ = progress;
    setBusy(true);
    stage_->setText(tr("Starting…"));
    const bool use_prebuilt = prebuilt_ && use_prebuilt_->isChecked();
    std::shared_ptr<const Model> prebuilt = use_prebuilt ? prebuilt_ : nullptr;
    std::optional<ModelQuantReport> report = use_prebuilt ? prebuilt_report_ : std::nullopt;
    const std::string label = prebuilt_label_.toStdString();
    // The job owns the models and its Progress: a model replaced meanwhile stays alive until it returns.
    (void)QtConcurrent::run(&pool_, [this, job, master = master_, prebuilt, report, label, o, progress] {
        auto r = run_quantize_job(*master, prebuilt.get(), report ? &*report : nullptr, label, o, *progress);
        if (r) emit computed(job, std::make_shared<const QuantizeJobResult>(std::move(r).value()), {});
        else emit computed(job, nullptr, to_qstring(r.message()));
    });
    return true;
}

void QuantizeDialog::cancel() {
    if (progress_ && busy_) {
        progress_->cancel();
        stage_->setText(tr("Cancelling…"));
    }
}

void QuantizeDialog::setBusy(bool busy) {
    busy_ = busy;
    if (busy) bar_->setValue(0);
    updateEnabled();
}

void QuantizeDialog::onComputed(quint64 job, const QuantizeJobResultPtr& r, const QString& error) {
    if (job != job_) return;
    const bool was_cancelled = progress_ && progress_->cancelled();
    setBusy(false);
    progress_.reset();
    if (!r) {
        bar_->setValue(0);
        if (was_cancelled) {
            stage_->setText(tr("Cancelled; nothing was written."));
            emit cancelled();
        } else {
            stage_->setText(tr("Failed."));
            showError(error);
            emit failed(error);
        }
        return;
    }
    // A cancel that came after the file was committed: the export is done and is shown.
    bar_->setValue(1000);
    result_ = r;
    summary_->setReport(r->report);
    const ModelQuantReport& rep = r->report;
    QString types;
    for (const auto& [name, n] : r->output_dtypes) types += (types.isEmpty() ? "" : ", ") + QString("%1 %2").arg(n).arg(to_qstring(name));
    QString text = tr("<b>Size</b> %1 → %2 (%3 → %4 bits per weight) · file %5<br>"
                      "<b>Quantized weights</b> %6 · code %7 bits, effective %8 bits per weight · "
                      "<b>%9 fallback tensor(s)</b><br>")
                       .arg(human_bytes(r->source_bytes), human_bytes(r->output_bytes))
                       .arg(master_ && master_->parameter_count() ? 8.0 * double(r->source_bytes) / double(master_->parameter_count()) : 0.0, 0, 'f', 3)
                       .arg(r->output_bits_per_weight, 0, 'f', 3)
                       .arg(human_bytes(r->file_bytes), human_count(rep.quantized_params))
                       .arg(rep.quantized_code_bits, 0, 'f', 3)
                       .arg(rep.quantized_effective_bits, 0, 'f', 3)
                       .arg(rep.fallbacks);
    if (r->calib_tokens > 0)
        text += tr("<b>Calibration</b> %1 tokens from %2%3<br>")
                    .arg(grouped(r->calib_tokens), to_qstring(r->calib_origin).toHtmlEscaped(),
                         r->calib_warning.empty() ? QString() : " (" + to_qstring(r->calib_warning).toHtmlEscaped() + ")");
    text += tr("<b>%1</b> (%2; %3) written to %4 in %5 s")
                .arg(quant_output_name(r->output), to_qstring(r->output_architecture), types,
                     to_qstring(r->path).toHtmlEscaped())
                .arg(r->seconds, 0, 'f', 2);
    if (r->prebuilt) text = tr("Pre-built model “%1”.<br>").arg(to_qstring(r->source_label).toHtmlEscaped()) + text;
    totals_->setText(text);
    stage_->setText(tr("Done."));
    emit finished(to_qstring(r->path));
}

}  // namespace ef::views
