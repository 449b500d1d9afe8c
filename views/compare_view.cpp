#include "views/compare_view.h"

#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScatterSeries>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/storage.h"
#include "runtime/calib/calibration.h"
#include "views/format_util.h"
#include "views/runtime_panel_charts.h"

namespace ef::views {
namespace {

// One colour per variant, the same in both charts.
QColor variant_color(size_t i) {
    static const QColor colors[] = {QColor(55, 65, 81),  QColor(38, 110, 200), QColor(217, 95, 2),
                                    QColor(27, 158, 119), QColor(117, 112, 179), QColor(231, 41, 138)};
    return colors[i % (sizeof(colors) / sizeof(colors[0]))];
}

// Axis range with a margin, never empty.
std::pair<double, double> padded(double lo, double hi, bool from_zero) {
    if (from_zero) lo = std::min(0.0, lo);
    double span = hi - lo;
    if (!(span > 0)) span = std::max(1e-6, std::abs(hi) * 0.1 + 1e-6);
    return {from_zero && lo >= 0 ? lo : lo - 0.08 * span, hi + 0.12 * span};
}

}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
    qRegisterMetaType<ef::views::CompareResultPtr>();
    pool_.setMaxThreadCount(1);
    table_model_ = new CompareTableModel(this);
    proxy_ = new QSortFilterProxyModel(this);
    proxy_->setSourceModel(table_model_);
    proxy_->setSortRole(CompareTableModel::SortRole);

    auto* variants_row = new QHBoxLayout;
    variants_row->addWidget(new QLabel(tr("Variants"), this));
    for (const std::string& v : compare_variant_names()) {
        auto* c = new QCheckBox(to_qstring(v), this);
        c->setChecked(true);
        variants_.push_back(c);
        variants_row->addWidget(c);
    }
    variants_row->addStretch(1);

    bits_ = new QDoubleSpinBox(this);
    bits_->setRange(0.1, 32);
    bits_->setDecimals(2);
    bits_->setSingleStep(0.1);
    bits_->setValue(3.1);
    bits_->setToolTip(tr("ef: target average effective bits per quantized weight (raised to the minimum if below it)"));
    auto spin = [this](int lo, int hi, int v, const QString& tip) {
        auto* s = new QSpinBox(this);
        s->setRange(lo, hi);
        s->setValue(v);
        s->setToolTip(tip);
        return s;
    };
    ctx_ = spin(8, 1 << 20, 128, tr("window in tokens for perplexity / KL / calibration"));
    chunks_ = spin(0, 1 << 30, 8, tr("held-out windows for perplexity and KL (0: all)"));
    calib_windows_ = spin(1, 100000, 4, tr("calibration windows"));
    limit_ = spin(0, 1 << 30, 20, tr("items per task (0: all)"));
    bench_tokens_ = spin(1, 100000, 32, tr("decode tokens for tokens/s"));
    threads_ = spin(1, 1024, 1, tr("threads"));
    tasks_ = new QLineEdit("arc_easy,piqa", this);
    tasks_->setToolTip(tr("zero-shot tasks, comma-separated; empty or 'none' for no tasks"));
    text_ = new QLineEdit(kDefaultCalibrationText, this);
    text_->setToolTip(tr("evaluation text; its last 10% of lines calibrate"));
    eval_dir_ = new QLineEdit("../shared/eval", this);
    auto* text_browse = new QPushButton(tr("…"), this);
    text_browse->setMaximumWidth(32);

    auto* grid = new QGridLayout;
    int col = 0;
    auto add = [&](const QString& label, QWidget* w, int span = 1) {
        grid->addWidget(new QLabel(label, this), 0, col++);
        grid->addWidget(w, 0, col, 1, span);
        col += span;
    };
    add(tr("bits"), bits_);
    add(tr("n_ctx"), ctx_);
    add(tr("chunks"), chunks_);
    add(tr("calib"), calib_windows_);
    add(tr("tasks"), tasks_);
    add(tr("limit"), limit_);
    add(tr("bench"), bench_tokens_);
    add(tr("threads"), threads_);
    auto* text_row = new QHBoxLayout;
    text_row->addWidget(new QLabel(tr("Text"), this));
    text_row->addWidget(text_, 3);
    text_row->addWidget(text_browse);
    text_row->addWidget(new QLabel(tr("Tasks folder"), this));
    text_row->addWidget(eval_dir_, 1);

    run_ = new QPushButton(tr("Compare"), this);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    export_ = new QPushButton(tr("Export Table…"), this);
    export_->setEnabled(false);
    bar_ = new QProgressBar(this);
    bar_->setRange(0, 1000);
    bar_->setMaximumWidth(200);
    bar_->hide();
    status_ = new QLabel(tr("Load a model, then Compare."), this);
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* run_row = new QHBoxLayout;
    run_row->addLayout(variants_row, 1);
    run_row->addWidget(run_);
    run_row->addWidget(cancel_);
    run_row->addWidget(bar_);
    run_row->addWidget(export_);

    table_ = new QTableView(this);
    table_->setModel(proxy_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(-1, Qt::AscendingOrder);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->verticalHeader()->hide();
    table_->setAlternatingRowColors(true);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

    kl_chart_ = new QChart;
    style_chart(kl_chart_, tr("Memory vs KL"));
    kl_view_ = new QChartView(kl_chart_, this);
    kl_view_->setRenderHint(QPainter::Antialiasing);
    kl_view_->setMinimumSize(260, 220);
    speed_chart_ = new QChart;
    style_chart(speed_chart_, tr("Memory vs tokens/s"));
    speed_view_ = new QChartView(speed_chart_, this);
    speed_view_->setRenderHint(QPainter::Antialiasing);
    speed_view_->setMinimumSize(260, 220);
    auto* charts = new QSplitter(Qt::Horizontal, this);
    charts->addWidget(kl_view_);
    charts->addWidget(speed_view_);
    // A handful of variants: the table is short and wide, the charts go below it side by side.
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(table_);
    split->addWidget(charts);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 2);
    split->setSizes({200, 400});
    charts->setMinimumHeight(260);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 6);
    layout->addLayout(run_row);
    layout->addLayout(grid);
    layout->addLayout(text_row);
    layout->addWidget(status_);
    layout->addWidget(split, 1);

    connect(run_, &QPushButton::clicked, this, [this] { start(); });
    connect(cancel_, &QPushButton::clicked, this, &CompareView::cancel);
    connect(export_, &QPushButton::clicked, this, &CompareView::exportDialog);
    connect(text_browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Evaluation text"), text_->text(), tr("Text (*.txt);;All files (*)"));
        if (!f.isEmpty()) text_->setText(f);
    });
    connect(this, &CompareView::computed, this, &CompareView::onComputed, Qt::QueuedConnection);
    connect(this, &CompareView::progressed, this, [this](quint64 job, double f, const QString& stage) {
        if (job != job_ || !busy_) return;
        bar_->setValue(int(f * 1000));
        if (!stage.isEmpty()) status_->setText(tr("Comparing… %1").arg(stage));
    }, Qt::QueuedConnection);
    rebuildCharts();
}

CompareView::~CompareView() {
    if (progress_) progress_->cancel();
    pool_.waitForDone();  // the worker emits on `this`
}

void CompareView::setModel(std::shared_ptr<const Model> model, const QString& label) {
    if (progress_) progress_->cancel();
    ++job_;
    setBusy(false);
    model_ = std::move(model);
    label_ = label.isEmpty() && model_ ? to_qstring(model_->source_path) : label;
    result_.reset();
    table_model_->setResult(nullptr);
    rebuildCharts();
    export_->setEnabled(false);
    status_->setText(model_ ? tr("Press Compare to build and measure the variants of this model.") : tr("Load a model, then Compare."));
}

CompareOptions CompareView::options() const {
    CompareOptions o;
    for (size_t i = 0; i < variants_.size(); ++i)
        if (variants_[i]->isChecked()) o.variants.push_back(compare_variant_names()[i]);
    o.bits = bits_->value();
    o.n_ctx = ctx_->value();
    o.chunks = chunks_->value();
    o.calib_windows = calib_windows_->value();
    o.tasks.clear();
    const QString t = tasks_->text().trimmed();
    if (t != "none")
        for (const QString& s : t.split(',', Qt::SkipEmptyParts)) o.tasks.push_back(s.trimmed().toStdString());
    o.limit = limit_->value();
    o.bench_tokens = bench_tokens_->value();
    o.threads = threads_->value();
    o.eval_dir = eval_dir_->text().trimmed().toStdString();
    o.text_origin = text_->text().trimmed().toStdString();
    return o;
}

void CompareView::setOptions(const CompareOptions& o) {
    const auto& all = compare_variant_names();
    for (size_t i = 0; i < variants_.size(); ++i)
        variants_[i]->setChecked(o.variants.empty() || std::find(o.variants.begin(), o.variants.end(), all[i]) != o.variants.end());
    bits_->setValue(o.bits);
    ctx_->setValue(o.n_ctx);
    chunks_->setValue(o.chunks);
    calib_windows_->setValue(o.calib_windows);
    QStringList tasks;
    for (const auto& s : o.tasks) tasks << to_qstring(s);
    tasks_->setText(tasks.isEmpty() ? QString("none") : tasks.join(','));
    limit_->setValue(o.limit);
    bench_tokens_->setValue(o.bench_tokens);
    threads_->setValue(o.threads);
    eval_dir_->setText(to_qstring(o.eval_dir));
    if (!o.text_origin.empty()) text_->setText(to_qstring(o.text_origin));
}

QString CompareView::textPath() const { return text_->text().trimmed(); }
void CompareView::setTextPath(const QString& path) { text_->setText(path); }
QString CompareView::statusText() const { return status_->text(); }

bool CompareView::start() {
    if (busy_) return false;
    auto fail = [this](const QString& m) {
        status_->setText(m);
        emit compareFailed(m);
        return false;
    };
    if (!model_) return fail(tr("No model loaded."));
    CompareOptions o = options();
    if (o.variants.empty()) return fail(tr("Choose at least one variant."));
    if (o.text_origin.empty()) return fail(tr("Choose an evaluation text."));
    if (progress_) progress_->cancel();
    const quint64 job = ++job_;
    auto progress = std::make_shared<Progress>([this, job](double f, const std::string& s) { emit progressed(job, f, to_qstring(s)); });
    progress_ = progress;
    setBusy(true);
    status_->setText(tr("Comparing…"));
    const std::string label = label_.toStdString();
    (void)QtConcurrent::run(&pool_, [this, job, model = model_, o = std::move(o), label, progress]() mutable {
        std::ifstream in(o.text_origin, std::ios::binary);
        if (!in) {
            emit computed(job, nullptr, to_qstring(o.text_origin + ": cannot open the evaluation text"));
            return;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        o.text = ss.str();
        auto r = compare_variants(*model, o, *progress);
        if (!r) {
            emit computed(job, nullptr, to_qstring(r.message()));
            return;
        }
        r->model = label;
        emit computed(job, std::make_shared<const CompareResult>(std::move(r).value()), {});
    });
    return true;
}

void CompareView::cancel() {
    if (progress_ && busy_) progress_->cancel();
}

void CompareView::setBusy(bool busy) {
    busy_ = busy;
    run_->setEnabled(!busy);
    cancel_->setEnabled(busy);
    bar_->setVisible(busy);
    bar_->setValue(0);
    export_->setEnabled(!busy && result_);
}

void CompareView::onComputed(quint64 job, const CompareResultPtr& r, const QString& error) {
    if (job != job_) return;
    const bool was_cancelled = progress_ && progress_->cancelled();
    setBusy(false);
    progress_.reset();
    if (!r || was_cancelled) {
        if (was_cancelled) {
            status_->setText(result_ ? tr("Cancelled; showing the previous comparison.") : tr("Cancelled."));
            emit compareCancelled();
        } else {
            status_->setText(tr("Compare failed: %1").arg(error));
            emit compareFailed(error);
        }
        return;
    }
    result_ = r;
    table_model_->setResult(r);
    rebuildCharts();
    export_->setEnabled(true);
    QString s = tr("%1 variant(s) · n_ctx %2 · %3 scored tokens · %4 calibration tokens · %5 s · process peak RSS %6")
                    .arg(r->variants.size())
                    .arg(r->n_ctx)
                    .arg(grouped(r->scored_tokens), grouped(r->calib_tokens))
                    .arg(r->seconds, 0, 'f', 1)
                    .arg(human_bytes(r->process_peak_rss));
    if (!r->note.empty()) s += " · " + to_qstring(r->note);
    status_->setText(s);
    emit compareReady();
}

void CompareView::rebuildCharts() {
    struct Spec {
        QChart* chart;
        QString y_title;
        double VariantResult::*y;
    };
    const Spec specs[] = {{kl_chart_, tr("KL vs reference"), &VariantResult::kl},
                          {speed_chart_, tr("tokens/s"), &VariantResult::tokens_per_s}};
    for (const Spec& sp : specs) {
        QChart* c = sp.chart;
        c->removeAllSeries();
        for (QAbstractAxis* a : c->axes()) {
            c->removeAxis(a);
            delete a;
        }
        auto* ax = new QValueAxis;
        ax->setTitleText(tr("memory (weights + state), MB"));
        ax->setLabelFormat("%.3g");
        auto* ay = new QValueAxis;
        ay->setTitleText(sp.y_title);
        ay->setLabelFormat("%.3g");
        c->addAxis(ax, Qt::AlignBottom);
        c->addAxis(ay, Qt::AlignLeft);
        double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
        if (result_)
            for (size_t i = 0; i < result_->variants.size(); ++i) {
                const VariantResult& v = result_->variants[i];
                const double x = CompareTableModel::megabytes(v.memory_bytes), y = v.*(sp.y);
                // One series per variant: its name is the point's label and its legend entry.
                auto* s = new QScatterSeries;
                s->setName(to_qstring(v.name));
                s->setColor(variant_color(i));
                s->setBorderColor(variant_color(i).darker(130));
                s->setMarkerSize(11);
                s->append(x, y);
                s->setPointLabelsFormat(to_qstring(v.name));
                s->setPointLabelsVisible(true);
                s->setPointLabelsClipping(false);
                c->addSeries(s);
                s->attachAxis(ax);
                s->attachAxis(ay);
                xlo = std::min(xlo, x);
                xhi = std::max(xhi, x);
                ylo = std::min(ylo, y);
                yhi = std::max(yhi, y);
            }
        if (xlo > xhi) {
            xlo = ylo = 0;
            xhi = yhi = 1;
        }
        const auto [x0, x1] = padded(xlo, xhi, true);
        const auto [y0, y1] = padded(ylo, yhi, true);
        ax->setRange(x0, x1);
        ay->setRange(y0, y1);
        c->legend()->setVisible(false);  // the points carry their names
    }
}

QString CompareView::saveTable(const QString& path) const {
    if (!result_) return tr("Nothing to export: run Compare first.");
    const QString ext = QFileInfo(path).suffix().toLower();
    std::string out;
    if (ext == "md" || ext == "markdown") out = compare_markdown(*result_);
    else if (ext == "csv") out = compare_csv(*result_);
    else if (ext == "json") out = compare_json(*result_) + "\n";
    else return tr("%1: choose .md, .csv or .json").arg(path);
    auto w = AtomicFileWriter::create(path.toStdString());
    if (!w) return to_qstring(w.message());
    if (Status s = (*w)->write(out.data(), out.size()); !s) return to_qstring(s.message());
    if (Status s = (*w)->commit(); !s) return to_qstring(s.message());
    return {};
}

void CompareView::exportDialog() {
    QString selected;
    const QString f = QFileDialog::getSaveFileName(this, tr("Export the compare table"), QStringLiteral("compare.md"),
                                                   tr("Markdown (*.md);;CSV (*.csv);;JSON (*.json)"), &selected);
    if (f.isEmpty()) return;
    QString path = f;
    if (QFileInfo(path).suffix().isEmpty())
        path += selected.contains("csv") ? ".csv" : selected.contains("json") ? ".json" : ".md";
    const QString err = saveTable(path);
    status_->setText(err.isEmpty() ? tr("Table written to %1").arg(path) : tr("Export failed: %1").arg(err));
}

}  // namespace ef::views
