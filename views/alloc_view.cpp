#include "views/alloc_view.h"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QLineSeries>
#include <QMenu>
#include <QProgressBar>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedBarSeries>
#include <QTableView>
#include <QVBoxLayout>
#include <QValueAxis>
#include <QtConcurrent>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/formats/format.h"
#include "runtime/calib/calibration.h"
#include "runtime/tokenizer/tokenizer.h"
#include "views/format_util.h"
#include "views/option_widgets.h"
#include "views/runtime_panel_charts.h"

namespace ef::views {

namespace {
constexpr int kSliderSteps = 1000;
constexpr double kBytesPerSpinUnit = 1e6;  // the byte budget is entered in MB (6 decimals: exact bytes)

// The budget's cost of an option in the mode's integer terms (bytes, or code bits for AverageCodeBits).
double option_cost(const AllocUnit& u, const AllocOption& o, BudgetKind k) {
    return k == BudgetKind::AverageCodeBits ? double(o.bits) * double(u.weights) : double(o.bytes);
}
}  // namespace

Result<std::vector<std::vector<int32_t>>> alloc_calibration_windows(const Model& m, const std::string& text_path, int windows,
                                                                    int window_tokens) {
    const std::string path = text_path.empty() ? std::string(kDefaultCalibrationText) : text_path;
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open the calibration text");
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    // The default text's calibration part only; its other 90% is for evaluation.
    const bool is_default = QFileInfo(QString::fromStdString(path)).canonicalFilePath() ==
                            QFileInfo(QString(kDefaultCalibrationText)).canonicalFilePath();
    const std::string_view used = is_default ? split_calibration_text(text).calib : std::string_view(text);
    auto tok = Tokenizer::create(m.vocab);
    if (!tok) return make_error("no usable tokenizer for the calibration text: " + tok.message());
    const int n_ctx = window_tokens > 0 ? window_tokens : int(std::min<int64_t>(128, m.config.context_length));
    auto w = calibration_windows(*tok, used, n_ctx, windows);
    if (!w) return make_error(w.message() + " (" + path + "); use a longer text or shorter windows");
    return w;
}

AllocView::AllocView(QWidget* parent) : QWidget(parent) {
    qRegisterMetaType<ef::views::AllocMeasurementPtr>();
    qRegisterMetaType<std::shared_ptr<const ef::Model>>();
    pool_.setMaxThreadCount(1);
    units_ = new AllocUnitModel(this);
    options_ = new AllocOptionModel(this);

    // Measurement options.
    widths_ = new QLineEdit("2,3,4,5,6,8", this);
    widths_->setToolTip(tr("Candidate code widths k (comma-separated; 2, 3, 4, 5, 6 or 8)"));
    widths_->setMaximumWidth(110);
    block_ = new QSpinBox(this);
    block_->setRange(32, 256);
    block_->setValue(128);
    block_->setToolTip(tr("B: block size (the largest of 256/128/64/32 that divides a row where B does not)"));
    p_ = make_outlier_percent_box(this, tr("p: share of the weights kept as sparse 6-bit outliers (0–5 %)"));
    measure_ = new QComboBox(this);
    measure_->addItem(tr("KL divergence"), false);
    measure_->addItem(tr("Proxy (output error)"), true);
    measure_->setToolTip(tr("KL: run the model with only that unit quantized (EXL2's measurement);\n"
                            "proxy: activation-weighted relative weight error (one model pass, much faster; ranks only)"));
    per_tensor_ = new QCheckBox(tr("per tensor"), this);
    per_tensor_->setToolTip(tr("One width per tensor instead of per layer"));
    windows_ = new QSpinBox(this);
    windows_->setRange(1, 10000);
    windows_->setValue(4);
    windows_->setToolTip(tr("Calibration windows"));
    window_tokens_ = new QSpinBox(this);
    window_tokens_->setRange(0, 1 << 20);
    window_tokens_->setValue(0);
    window_tokens_->setSpecialValueText(tr("auto"));
    window_tokens_->setToolTip(tr("Tokens per window (auto: min(128, the model's context))"));
    calib_path_ = new QLineEdit(QString(kDefaultCalibrationText), this);
    calib_path_->setToolTip(tr("Calibration text; the default wikitext file contributes only its last 10% of lines"));
    auto* browse = new QPushButton(tr("…"), this);
    browse->setMaximumWidth(28);
    run_ = new QPushButton(tr("Measure"), this);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    bar_ = new QProgressBar(this);
    bar_->setRange(0, 1000);
    bar_->setMaximumWidth(160);
    bar_->hide();
    status_ = new QLabel(tr("Load a model, then Measure."), this);
    status_->setWordWrap(true);

    auto* tools = new QHBoxLayout;
    tools->addWidget(new QLabel(tr("Widths"), this));
    tools->addWidget(widths_);
    tools->addWidget(new QLabel(tr("B"), this));
    tools->addWidget(block_);
    tools->addWidget(new QLabel(tr("p"), this));
    tools->addWidget(p_);
    tools->addWidget(measure_);
    tools->addWidget(per_tensor_);
    tools->addWidget(new QLabel(tr("Windows"), this));
    tools->addWidget(windows_);
    tools->addWidget(new QLabel(tr("×"), this));
    tools->addWidget(window_tokens_);
    tools->addWidget(new QLabel(tr("Text"), this));
    tools->addWidget(calib_path_, 1);
    tools->addWidget(browse);
    tools->addWidget(run_);
    tools->addWidget(cancel_);
    tools->addWidget(bar_);

    // Budget.
    budget_kind_ = new QComboBox(this);
    budget_kind_->addItem(tr("Average effective bits"), int(BudgetKind::AverageBits));
    budget_kind_->addItem(tr("Average code bits"), int(BudgetKind::AverageCodeBits));
    budget_kind_->addItem(tr("Memory budget (MB)"), int(BudgetKind::TotalBytes));
    budget_kind_->setToolTip(tr("Effective bits count scales, offsets and outliers; code bits only k;\n"
                                "the memory budget covers the whole deployment: weights, kept tensors, KV cache and SSM state"));
    slider_ = new QSlider(Qt::Horizontal, this);
    slider_->setRange(0, kSliderSteps);
    slider_->setMinimumWidth(220);
    slider_->setToolTip(tr("From every unit at its smallest width to every unit at its widest"));
    budget_spin_ = new QDoubleSpinBox(this);
    budget_spin_->setKeyboardTracking(false);
    ctx_label_ = new QLabel(tr("Context"), this);
    ctx_ = new QSpinBox(this);
    ctx_->setRange(1, 1 << 24);
    ctx_->setValue(2048);
    ctx_->setToolTip(tr("Positions of KV cache counted in the memory budget"));
    clear_pins_ = new QPushButton(tr("Clear pins"), this);
    quantize_ = new QPushButton(tr("Quantize with this allocation"), this);
    quantize_->setToolTip(tr("Build the EdgeFusion model with these widths (hand it to export, or Save)"));
    save_ = new QPushButton(tr("Save…"), this);
    save_->setToolTip(tr("Save the quantized model (any format by extension; written atomically)"));
    export_ = new QPushButton(tr("Export…"), this);
    export_->setToolTip(tr("Open Quantize & Export with the quantized model as its source (llama.cpp GGUF, EdgeFusion GGUF, HDF5)"));
    auto* budget_row = new QHBoxLayout;
    budget_row->addWidget(new QLabel(tr("Budget"), this));
    budget_row->addWidget(budget_kind_);
    budget_row->addWidget(slider_, 1);
    budget_row->addWidget(budget_spin_);
    budget_row->addWidget(ctx_label_);
    budget_row->addWidget(ctx_);
    budget_row->addWidget(clear_pins_);
    budget_row->addWidget(quantize_);
    budget_row->addWidget(save_);
    budget_row->addWidget(export_);

    // Summary.
    loss_label_ = new QLabel(this);
    size_label_ = new QLabel(this);
    bits_label_ = new QLabel(this);
    for (QLabel* l : {loss_label_, size_label_, bits_label_}) l->setTextInteractionFlags(Qt::TextSelectableByMouse);
    error_label_ = new QLabel(this);
    error_label_->setStyleSheet("color: #b00020; font-weight: bold;");
    error_label_->setWordWrap(true);
    error_label_->hide();
    auto* summary = new QHBoxLayout;
    summary->addWidget(loss_label_);
    summary->addSpacing(18);
    summary->addWidget(size_label_);
    summary->addSpacing(18);
    summary->addWidget(bits_label_);
    summary->addStretch(1);

    // Table + options of the selected unit | chart.
    unit_table_ = new QTableView(this);
    unit_table_->setModel(units_);
    unit_table_->setItemDelegateForColumn(AllocUnitModel::PinColumn, new PinDelegate(unit_table_));
    unit_table_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::SelectedClicked);
    unit_table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    unit_table_->setSelectionMode(QAbstractItemView::SingleSelection);
    unit_table_->setContextMenuPolicy(Qt::CustomContextMenu);
    unit_table_->verticalHeader()->hide();
    unit_table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    unit_table_->setAlternatingRowColors(true);
    unit_table_->verticalHeader()->setDefaultSectionSize(unit_table_->fontMetrics().height() + 6);
    option_table_ = new QTableView(this);
    option_table_->setModel(options_);
    option_table_->verticalHeader()->hide();
    option_table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    option_table_->setSelectionMode(QAbstractItemView::NoSelection);
    option_table_->verticalHeader()->setDefaultSectionSize(option_table_->fontMetrics().height() + 6);
    option_table_->setMaximumHeight(170);

    chart_ = new QChart;
    style_chart(chart_, tr("Chosen bits per unit"));
    auto_set_ = new QBarSet(tr("bits (solver)"));
    auto_set_->setColor(QColor(38, 110, 200));
    pinned_set_ = new QBarSet(tr("bits (pinned)"));
    pinned_set_->setColor(QColor(230, 150, 30));
    bars_ = new QStackedBarSeries;
    bars_->append(auto_set_);
    bars_->append(pinned_set_);
    line_ = new QLineSeries;
    line_->setPointsVisible(true);
    line_->setColor(QColor(200, 40, 60));
    chart_->addSeries(bars_);
    chart_->addSeries(line_);
    x_axis_ = new QBarCategoryAxis;
    bits_axis_ = new QValueAxis;
    bits_axis_->setTitleText(tr("code bits"));
    bits_axis_->setRange(0, 8);
    bits_axis_->setLabelFormat("%d");
    second_axis_ = new QValueAxis;
    chart_->addAxis(x_axis_, Qt::AlignBottom);
    chart_->addAxis(bits_axis_, Qt::AlignLeft);
    chart_->addAxis(second_axis_, Qt::AlignRight);
    bars_->attachAxis(x_axis_);
    bars_->attachAxis(bits_axis_);
    line_->attachAxis(x_axis_);
    line_->attachAxis(second_axis_);
    chart_->legend()->setVisible(true);
    chart_->legend()->setAlignment(Qt::AlignBottom);
    chart_view_ = new QChartView(chart_, this);
    chart_view_->setRenderHint(QPainter::Antialiasing);
    chart_view_->setMinimumSize(360, 220);
    secondary_ = new QComboBox(this);
    secondary_->addItem(tr("Line: sensitivity at the chosen width"), int(Secondary::Sensitivity));
    secondary_->addItem(tr("Line: bytes"), int(Secondary::Bytes));

    auto* left = new QWidget(this);
    auto* ll = new QVBoxLayout(left);
    ll->setContentsMargins(0, 0, 0, 0);
    ll->addWidget(unit_table_, 1);
    ll->addWidget(new QLabel(tr("Options of the selected unit"), this));
    ll->addWidget(option_table_);
    auto* right = new QWidget(this);
    auto* rl = new QVBoxLayout(right);
    rl->setContentsMargins(0, 0, 0, 0);
    rl->addWidget(secondary_);
    rl->addWidget(chart_view_, 1);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(left);
    split->addWidget(right);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 6);
    layout->addLayout(tools);
    layout->addWidget(status_);
    layout->addLayout(budget_row);
    layout->addLayout(summary);
    layout->addWidget(error_label_);
    layout->addWidget(split, 1);

    connect(browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Calibration text"), calib_path_->text(), tr("Text (*.txt *.raw);;All files (*)"));
        if (!f.isEmpty()) calib_path_->setText(f);
    });
    connect(run_, &QPushButton::clicked, this, [this] { startMeasure(); });
    connect(cancel_, &QPushButton::clicked, this, &AllocView::cancel);
    connect(budget_kind_, &QComboBox::currentIndexChanged, this, &AllocView::onBudgetKindChanged);
    connect(slider_, &QSlider::valueChanged, this, [this](int pos) {
        if (syncing_) return;
        const double lo = minimumBudget(), hi = maximumBudget();
        if (!std::isfinite(lo) || !std::isfinite(hi)) return;
        double v = lo + (hi - lo) * double(pos) / kSliderSteps;
        if (budgetKind() == BudgetKind::TotalBytes) v = std::round(v);
        syncing_ = true;
        setBudgetValue(v);
        syncing_ = false;
        if (budgetKind() != BudgetKind::TotalBytes) last_bits_ = budget_spin_->value();
        resolve();
    });
    connect(budget_spin_, &QDoubleSpinBox::valueChanged, this, [this] {
        if (syncing_) return;
        if (budgetKind() != BudgetKind::TotalBytes) last_bits_ = budget_spin_->value();
        syncSliderFromSpin();
        resolve();
    });
    connect(ctx_, &QSpinBox::valueChanged, this, [this] {
        updateState();
        resolve();
    });
    connect(units_, &AllocUnitModel::pinsChanged, this, [this] {
        syncSliderFromSpin();  // the slider spans the budgets possible with the pins
        resolve();
    });
    connect(clear_pins_, &QPushButton::clicked, units_, &AllocUnitModel::clearPins);
    connect(quantize_, &QPushButton::clicked, this, [this] { startQuantize(); });
    connect(save_, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save quantized model"), {}, tr("Checkpoints (*.gguf *.safetensors *.h5 *.hdf5)"));
        if (!f.isEmpty()) startSave(f);
    });
    connect(export_, &QPushButton::clicked, this, &AllocView::exportRequested);
    connect(secondary_, &QComboBox::currentIndexChanged, this, [this] { updateChart(); });
    connect(unit_table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this] { updateOptions(); });
    connect(unit_table_, &QWidget::customContextMenuRequested, this, [this](const QPoint& at) {
        const QModelIndex idx = unit_table_->indexAt(at);
        if (!idx.isValid()) return;
        QMenu menu(this);
        const int row = idx.row();
        menu.addAction(tr("Unpin (solver chooses)"), this, [this, row] { units_->setPin(row, 0); });
        for (int b : units_->widths(row)) menu.addAction(tr("Pin at %1 bits").arg(b), this, [this, row, b] { units_->setPin(row, b); });
        menu.exec(unit_table_->viewport()->mapToGlobal(at));
    });
    connect(this, &AllocView::measuredInternal, this, &AllocView::onMeasured, Qt::QueuedConnection);
    connect(this, &AllocView::quantizedInternal, this, &AllocView::onQuantized, Qt::QueuedConnection);
    connect(this, &AllocView::savedInternal, this, &AllocView::onSaved, Qt::QueuedConnection);
    connect(this, &AllocView::progressed, this, [this](quint64 job, double f, const QString& stage) {
        if (job != job_) return;
        bar_->setValue(int(f * 1000));
        if (!stage.isEmpty()) bar_->setToolTip(stage);
    }, Qt::QueuedConnection);

    onBudgetKindChanged();
    setBusy(Job::None);
}

AllocView::~AllocView() {
    if (progress_) progress_->cancel();
    pool_.waitForDone();  // the worker emits on `this`
}

void AllocView::setModel(std::shared_ptr<const Model> model) {
    if (progress_) progress_->cancel();
    ++job_;  // a result still on its way belongs to the old model
    setBusy(Job::None);
    model_ = std::move(model);
    measurement_.reset();
    quantized_.reset();
    units_->setMeasurement(nullptr);
    if (model_) {
        syncing_ = true;
        ctx_->setValue(int(std::clamp<int64_t>(model_->config.context_length, 1, ctx_->maximum())));
        syncing_ = false;
    }
    updateState();
    resolve();
    status_->setText(model_ ? tr("Press Measure to measure each unit's sensitivity at each width.") : tr("Load a model, then Measure."));
}

SensitivityOptions AllocView::sensitivityOptions() const {
    SensitivityOptions o;
    o.bits.clear();
    for (const QString& t : widths_->text().split(',', Qt::SkipEmptyParts)) {
        bool ok = false;
        const int b = t.trimmed().toInt(&ok);
        if (!ok) {
            o.bits.clear();  // invalid list: startMeasure reports it
            break;
        }
        o.bits.push_back(b);
    }
    o.block = block_->value();
    o.outlier_fraction = p_->value() / 100.0;
    o.proxy = measure_->currentData().toBool();
    o.per_tensor = per_tensor_->isChecked();
    return o;
}

void AllocView::setMeasureOptions(const std::vector<int>& widths, int block, double outlier_fraction, bool proxy, bool per_tensor) {
    QStringList w;
    for (int b : widths) w << QString::number(b);
    widths_->setText(w.join(','));
    block_->setValue(block);
    p_->setValue(outlier_fraction * 100.0);
    measure_->setCurrentIndex(proxy ? 1 : 0);
    per_tensor_->setChecked(per_tensor);
}

void AllocView::setCalibration(int windows, int window_tokens, const QString& text_path) {
    windows_->setValue(windows);
    window_tokens_->setValue(window_tokens);
    calib_path_->setText(text_path.isEmpty() ? QString(kDefaultCalibrationText) : text_path);
}

QString AllocView::calibrationPath() const { return calib_path_->text(); }

std::shared_ptr<Progress> AllocView::newJob(quint64& job) {
    if (progress_) progress_->cancel();
    job = ++job_;
    auto progress = std::make_shared<Progress>([this, job](double f, const std::string& stage) {
        emit progressed(job, f, QString::fromStdString(stage));
    });
    progress_ = progress;
    return progress;
}

bool AllocView::startMeasure() {
    auto fail = [this](const QString& m) {
        status_->setText(m);
        emit measurementFailed(m);
        return false;
    };
    if (!model_) return fail(tr("No model loaded."));
    if (busy_) return fail(tr("A job is running; cancel it first."));
    const SensitivityOptions so = sensitivityOptions();
    if (so.bits.empty()) return fail(tr("Widths: give a comma-separated list such as 2,3,4,5,6,8."));
    for (int b : so.bits)
        if (b != 2 && b != 3 && b != 4 && b != 5 && b != 6 && b != 8)
            return fail(tr("Widths: %1 is not an EdgeFusion code width (2, 3, 4, 5, 6 or 8).").arg(b));
    quint64 job = 0;
    auto progress = newJob(job);
    setBusy(Job::Measure);
    status_->setText(so.proxy ? tr("Measuring (proxy)…") : tr("Measuring (KL divergence)…"));
    const int nwin = windows_->value(), ntok = window_tokens_->value();
    const std::string path = calib_path_->text().toStdString();
    // The job owns the model and its Progress: a model replaced meanwhile stays alive until it returns.
    (void)QtConcurrent::run(&pool_, [this, job, model = model_, so, nwin, ntok, path, progress] {
        auto wins = alloc_calibration_windows(*model, path, nwin, ntok);
        if (!wins) {
            emit measuredInternal(job, nullptr, QString::fromStdString(wins.message()));
            return;
        }
        if (progress->cancelled()) {  // cancelled while the text was tokenized
            emit measuredInternal(job, nullptr, QStringLiteral("cancelled"));
            return;
        }
        auto r = measure_sensitivity(*model, *wins, so, *progress);
        if (!r) {
            emit measuredInternal(job, nullptr, QString::fromStdString(r.message()));
            return;
        }
        auto m = std::make_shared<AllocMeasurement>();
        m->result = std::move(r).value();
        m->options = so;
        m->windows = int(wins->size());
        m->window_tokens = wins->empty() ? 0 : int(wins->front().size());
        emit measuredInternal(job, std::move(m), {});
    });
    return true;
}

void AllocView::cancel() {
    if (progress_ && busy_) progress_->cancel();
}

void AllocView::setBusy(Job job) {
    running_ = job;
    busy_ = job != Job::None;
    run_->setEnabled(!busy_);
    cancel_->setEnabled(busy_);
    bar_->setVisible(busy_);
    bar_->setValue(0);
    quantize_->setEnabled(!busy_ && allocation().has_value());
    save_->setEnabled(!busy_ && quantized_ != nullptr);
    export_->setEnabled(!busy_ && quantized_ != nullptr);
}

void AllocView::onMeasured(quint64 job, const AllocMeasurementPtr& r, const QString& error) {
    if (job != job_) return;
    const bool was_cancelled = progress_ && progress_->cancelled();
    setBusy(Job::None);
    progress_.reset();
    if (!r || was_cancelled) {
        // Cancel (even one that came too late to stop the job) or failure: the previous result stays.
        if (was_cancelled) {
            status_->setText(measurement_ ? tr("Cancelled; showing the previous measurement.") : tr("Cancelled."));
            emit measurementCancelled();
        } else {
            status_->setText(tr("Measurement failed: %1").arg(error));
            emit measurementFailed(error);
            emit message(tr("Bit allocation: %1").arg(error), true);
        }
        return;
    }
    measurement_ = r;
    quantized_.reset();
    units_->setMeasurement(r);
    const auto& res = r->result;
    status_->setText(tr("%1 units × %2 widths measured in %3 s (%4) · %5 tensors kept at stored precision (%6)")
                         .arg(res.plan.units.size())
                         .arg(r->options.bits.size())
                         .arg(res.seconds, 0, 'f', 2)
                         .arg(res.proxy ? tr("proxy, %1 windows × %2 tokens").arg(r->windows).arg(r->window_tokens)
                                        : tr("KL over %1 positions of %2 windows").arg(res.positions).arg(r->windows))
                         .arg(res.plan.kept.size())
                         .arg(human_bytes(res.plan.kept_bytes)));
    updateSpinRange();
    syncSliderFromSpin();
    resolve();
    if (unit_table_->model()->rowCount() > 0) unit_table_->selectRow(0);
    emit measurementReady();
}

// ---- budget ----

BudgetKind AllocView::budgetKind() const { return BudgetKind(budget_kind_->currentData().toInt()); }

void AllocView::setBudgetKind(BudgetKind k) { budget_kind_->setCurrentIndex(budget_kind_->findData(int(k))); }

double AllocView::budgetValue() const {
    return budgetKind() == BudgetKind::TotalBytes ? std::round(budget_spin_->value() * kBytesPerSpinUnit) : budget_spin_->value();
}

void AllocView::setBudgetValue(double v) {
    budget_spin_->setValue(budgetKind() == BudgetKind::TotalBytes ? v / kBytesPerSpinUnit : v);
}

void AllocView::setContext(int64_t n_ctx) { ctx_->setValue(int(n_ctx)); }
int64_t AllocView::context() const { return ctx_->value(); }

AllocBudget AllocView::budget() const {
    AllocBudget b;
    b.kind = budgetKind();
    if (b.kind == BudgetKind::TotalBytes) {
        b.total_bytes = uint64_t(std::max(0.0, budgetValue()));
        b.fixed_bytes = (measurement_ ? measurement_->result.plan.kept_bytes : 0) + state_bytes_;
    } else {
        b.average_bits = budgetValue();
    }
    return b;
}

// The extreme budgets in the mode's terms: every free unit at its cheapest (or dearest) option, pinned
// units at their pins.
static double extreme_budget(const std::vector<AllocUnit>& units, BudgetKind k, uint64_t fixed, bool widest) {
    if (units.empty()) return NAN;
    double cost = 0, weights = 0;
    for (const AllocUnit& u : units) {
        double c = widest ? 0 : INFINITY;
        if (u.pin) c = option_cost(u, u.options[size_t(*u.pin)], k);
        else
            for (const AllocOption& o : u.options) c = widest ? std::max(c, option_cost(u, o, k)) : std::min(c, option_cost(u, o, k));
        cost += c;
        weights += double(u.weights);
    }
    switch (k) {
        case BudgetKind::AverageBits: return 8.0 * cost / weights;
        case BudgetKind::AverageCodeBits: return cost / weights;
        case BudgetKind::TotalBytes: return cost + double(fixed);
    }
    return NAN;
}

double AllocView::minimumBudget() const { return extreme_budget(units(), budgetKind(), budget().fixed_bytes, false); }
double AllocView::maximumBudget() const { return extreme_budget(units(), budgetKind(), budget().fixed_bytes, true); }

void AllocView::setSliderPosition(int pos) { slider_->setValue(pos); }

void AllocView::setSecondary(Secondary s) { secondary_->setCurrentIndex(secondary_->findData(int(s))); }

void AllocView::onBudgetKindChanged() {
    const BudgetKind k = budgetKind();
    const bool bytes = k == BudgetKind::TotalBytes;
    ctx_label_->setVisible(bytes);
    ctx_->setVisible(bytes);
    updateState();
    syncing_ = true;
    updateSpinRange();
    if (bytes) {
        // Start from what the current solve needs, so switching modes keeps the allocation.
        const auto& a = allocation();
        const double v = a ? double(a->unit_bytes + budget().fixed_bytes) : maximumBudget();
        setBudgetValue(std::isfinite(v) ? v : 0.0);
    } else {
        budget_spin_->setValue(last_bits_);
    }
    syncing_ = false;
    syncSliderFromSpin();
    resolve();
}

void AllocView::updateSpinRange() {
    const bool bytes = budgetKind() == BudgetKind::TotalBytes;
    const bool was = syncing_;
    syncing_ = true;
    if (bytes) {
        budget_spin_->setDecimals(6);
        budget_spin_->setRange(0, 1e9);
        budget_spin_->setSingleStep(1.0);
        budget_spin_->setSuffix(" MB");
    } else {
        budget_spin_->setDecimals(3);
        budget_spin_->setRange(0.5, 32);
        budget_spin_->setSingleStep(0.05);
        budget_spin_->setSuffix(tr(" bits"));
    }
    syncing_ = was;
}

void AllocView::syncSliderFromSpin() {
    const double lo = minimumBudget(), hi = maximumBudget();
    slider_->setEnabled(std::isfinite(lo) && std::isfinite(hi) && hi > lo);
    if (!slider_->isEnabled()) return;
    const double f = std::clamp((budgetValue() - lo) / (hi - lo), 0.0, 1.0);
    const bool was = syncing_;
    syncing_ = true;
    slider_->setValue(int(std::lround(f * kSliderSteps)));
    syncing_ = was;
}

void AllocView::updateState() {
    state_bytes_ = 0;
    // Only the memory budget counts the state; computing it builds a session, so not on every load.
    if (!model_ || budgetKind() != BudgetKind::TotalBytes) return;
    auto s = runtime_state_bytes(*model_, ctx_->value());
    if (s) state_bytes_ = *s;
    else emit message(tr("Bit allocation: KV cache / SSM state size: %1").arg(QString::fromStdString(s.message())), true);
}

// ---- solve and display ----

void AllocView::resolve() {
    solve_error_.clear();
    std::optional<AllocResult> result;
    if (measurement_) {
        auto r = allocate_bits(units(), budget());
        if (r) result = std::move(r).value();
        else solve_error_ = QString::fromStdString(r.message());
    }
    units_->setAllocation(result);
    // A quantized model stands for the choice it was made with: a different solve drops it.
    if (quantized_ && (!result || result->choice != quantized_choice_)) {
        quantized_.reset();
        status_->setText(tr("The allocation changed: quantize again to export or save it."));
    }
    save_->setEnabled(!busy_ && quantized_ != nullptr);
    export_->setEnabled(!busy_ && quantized_ != nullptr);
    if (!solve_error_.isEmpty()) {
        const double mn = minimumBudget();
        const QString min_text = budgetKind() == BudgetKind::TotalBytes
                                     ? tr("%1 bytes (%2)").arg(grouped(qint64(mn))).arg(human_bytes(quint64(mn)))
                                     : tr("%1 bits per weight").arg(QString::number(mn, 'f', 3));
        error_label_->setText(tr("Budget not reachable — minimum with the current pins: %1.\n%2").arg(min_text, solve_error_));
        error_label_->show();
    } else {
        error_label_->hide();
        error_label_->clear();
    }
    quantize_->setEnabled(!busy_ && result.has_value());
    updateSummary();
    updateChart();
    updateOptions();
    emit allocationChanged();
}

void AllocView::updateSummary() {
    const auto& a = allocation();
    if (!measurement_ || !a) {
        const QString none = measurement_ ? tr("—") : tr("(measure first)");
        loss_label_->setText(tr("Predicted loss: %1").arg(none));
        size_label_->setText(tr("Model size: %1").arg(none));
        bits_label_->setText(tr("Bits per weight: %1").arg(none));
        return;
    }
    const auto& res = measurement_->result;
    loss_label_->setText(res.proxy ? tr("Predicted proxy error: %1").arg(QString::number(a->loss, 'g', 5))
                                   : tr("Predicted KL: %1 nats").arg(QString::number(a->loss, 'g', 5)));
    const uint64_t model_bytes = a->unit_bytes + res.plan.kept_bytes;
    QString size = tr("Model size: %1 (%2 bytes: quantized %3 + kept %4)")
                       .arg(human_bytes(model_bytes), grouped(qint64(model_bytes)), human_bytes(a->unit_bytes), human_bytes(res.plan.kept_bytes));
    if (budgetKind() == BudgetKind::TotalBytes)
        size += tr(" · deployment %1 with KV cache + SSM state %2 at context %3")
                    .arg(human_bytes(a->total_bytes), human_bytes(state_bytes_))
                    .arg(ctx_->value());
    size_label_->setText(size);
    bits_label_->setText(tr("Bits per weight: %1 effective · %2 code")
                             .arg(QString::number(a->average_bits, 'f', 3), QString::number(a->average_code_bits, 'f', 3)));
}

std::vector<double> AllocView::chartBits() const {
    std::vector<double> v;
    for (int i = 0; i < auto_set_->count(); ++i) v.push_back(auto_set_->at(i) + pinned_set_->at(i));
    return v;
}

std::vector<double> AllocView::chartSecondary() const {
    std::vector<double> v;
    for (const QPointF& p : line_->points()) v.push_back(p.y());
    return v;
}

void AllocView::updateChart() {
    const std::vector<AllocUnit> us = units();
    const auto& a = allocation();
    QStringList cats;
    for (const auto& u : us) cats << QString::fromStdString(u.name);
    if (x_axis_->categories() != cats) {
        x_axis_->clear();
        if (!cats.isEmpty()) x_axis_->append(cats);
    }
    const bool bytes = Secondary(secondary_->currentData().toInt()) == Secondary::Bytes;
    QList<qreal> autos, pinned;
    QList<QPointF> pts;
    double top = 0;
    for (size_t i = 0; i < us.size(); ++i) {
        const AllocOption* o = a ? &us[i].options[size_t(a->choice[i])] : nullptr;
        const double b = o ? o->bits : 0;
        autos << (us[i].pin ? 0 : b);
        pinned << (us[i].pin ? b : 0);
        const double y = !o ? 0 : bytes ? double(o->bytes) : o->loss;
        pts << QPointF(double(i), y);
        top = std::max(top, y);
    }
    auto_set_->remove(0, auto_set_->count());
    pinned_set_->remove(0, pinned_set_->count());
    auto_set_->append(autos);
    pinned_set_->append(pinned);
    line_->replace(pts);
    const bool proxy = measurement_ && measurement_->result.proxy;
    line_->setName(bytes ? tr("bytes") : proxy ? tr("proxy error") : tr("KL (nats)"));
    second_axis_->setTitleText(line_->name());
    second_axis_->setRange(0, top > 0 ? top * 1.1 : 1.0);
    second_axis_->setLabelFormat(bytes ? "%.0f" : "%.3g");
    x_axis_->setLabelsAngle(cats.size() > 8 ? -60 : 0);
}

void AllocView::updateOptions() {
    const int row = unit_table_->currentIndex().isValid() ? unit_table_->currentIndex().row() : -1;
    const std::vector<AllocUnit> us = units();
    if (row < 0 || row >= int(us.size())) {
        options_->setUnit(std::nullopt, -1, -1);
        return;
    }
    const auto& a = allocation();
    options_->setUnit(us[size_t(row)], a ? a->choice[size_t(row)] : -1, us[size_t(row)].pin.value_or(-1));
}

// ---- quantize and save ----

bool AllocView::startQuantize() {
    if (!model_ || !measurement_ || !allocation()) {
        emit quantizeFailed(tr("Measure and choose a feasible budget first."));
        return false;
    }
    if (busy_) {
        emit quantizeFailed(tr("A job is running; cancel it first."));
        return false;
    }
    quint64 job = 0;
    auto progress = newJob(job);
    setBusy(Job::Quantize);
    status_->setText(tr("Quantizing with the allocation…"));
    quantizing_choice_ = allocation()->choice;
    (void)QtConcurrent::run(&pool_, [this, job, model = model_, m = measurement_, choice = allocation()->choice, progress] {
        auto q = apply_allocation(*model, m->result, choice, m->options, *progress);
        if (q) emit quantizedInternal(job, std::make_shared<const Model>(std::move(q).value()), {});
        else emit quantizedInternal(job, nullptr, QString::fromStdString(q.message()));
    });
    return true;
}

void AllocView::onQuantized(quint64 job, const std::shared_ptr<const Model>& m, const QString& error) {
    if (job != job_) return;
    const bool was_cancelled = progress_ && progress_->cancelled();
    progress_.reset();
    const bool stale = !allocation() || allocation()->choice != quantizing_choice_;
    if (!m || was_cancelled || stale) {
        const QString why = was_cancelled ? tr("cancelled") : stale && m ? tr("the allocation changed meanwhile; quantize again") : error;
        setBusy(Job::None);
        status_->setText(tr("Quantization %1.").arg(was_cancelled ? why : tr("failed: %1").arg(why)));
        emit quantizeFailed(why);
        return;
    }
    quantized_ = m;
    quantized_choice_ = quantizing_choice_;
    setBusy(Job::None);
    const QString summary = tr("Quantized with the allocation: weights %1, %2 bits per weight over the whole model")
                                .arg(human_bytes(m->weight_bytes()), QString::number(m->bits_per_weight(), 'f', 3));
    status_->setText(summary + tr(" — Export… or Save… writes it."));
    emit message(summary, false);
    emit quantized(m, summary);
}

bool AllocView::startSave(const QString& path) {
    if (!quantized_ || busy_ || path.isEmpty()) {
        emit saveFailed(tr("Nothing to save (quantize first) or a job is running."));
        return false;
    }
    quint64 job = 0;
    auto progress = newJob(job);
    setBusy(Job::Save);
    status_->setText(tr("Saving %1…").arg(path));
    (void)QtConcurrent::run(&pool_, [this, job, m = quantized_, path, progress] {
        // save_model writes a temporary file and renames it: a failed or cancelled save leaves no partial file.
        const Status s = save_model(*m, path.toStdString(), {}, *progress);
        emit savedInternal(job, path, s ? QString() : QString::fromStdString(s.message()));
    });
    return true;
}

void AllocView::onSaved(quint64 job, const QString& path, const QString& error) {
    if (job != job_) return;
    progress_.reset();
    setBusy(Job::None);
    if (!error.isEmpty()) {
        status_->setText(tr("Save failed: %1").arg(error));
        emit saveFailed(error);
        emit message(tr("Bit allocation: save failed: %1").arg(error), true);
        return;
    }
    status_->setText(tr("Saved %1.").arg(path));
    emit message(tr("Saved the allocated model to %1").arg(path), false);
    emit saved(path);
}

}  // namespace ef::views
