#include "views/outlier_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMouseEvent>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <algorithm>
#include <cmath>

#include "views/format_util.h"
#include "views/option_widgets.h"
#include "views/heatmap_canvas.h"

namespace ef::views {

OutlierView::OutlierView(QWidget* parent) : QWidget(parent) {
    qRegisterMetaType<ef::OutlierAnalysisPtr>();
    qRegisterMetaType<std::vector<std::pair<int64_t, int64_t>>>();
    pool_.setMaxThreadCount(1);
    marks_pool_.setMaxThreadCount(1);
    overview_ = new OutlierOverviewModel(this);
    layers_ = new OutlierLayerModel(this);
    layer_proxy_ = new QSortFilterProxyModel(this);
    layer_proxy_->setSourceModel(layers_);
    layer_proxy_->setSortRole(OutlierLayerModel::SortRole);

    block_ = new QSpinBox(this);
    block_->setRange(1, 1 << 16);
    block_->setValue(32);
    block_->setToolTip(tr("B: consecutive input weights per block"));
    k_ = new QDoubleSpinBox(this);
    k_->setRange(0.1, 100);
    k_->setDecimals(1);
    k_->setValue(3.0);
    k_->setToolTip(tr("Count weights with |w − μ| > k·σ (μ, σ of the whole tensor)"));
    p_ = make_outlier_percent_box(this, tr("p: the model's outlier budget, largest |w| first (0–5 %)"));
    stat_ = new QComboBox(this);
    for (auto s : {OutlierStatistic::MaxOverRms, OutlierStatistic::Kurtosis, OutlierStatistic::BeyondKSigma, OutlierStatistic::Budget})
        stat_->addItem(outlier_statistic_name(s), int(s));
    run_ = new QPushButton(tr("Analyze"), this);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    bar_ = new QProgressBar(this);
    bar_->setRange(0, 1000);
    bar_->setMaximumWidth(160);
    bar_->hide();
    status_ = new QLabel(tr("Load a model, then Analyze."), this);
    readout_ = new QLabel(tr("Hover over the overview to read a cell; click a row to inspect the tensor."), this);
    readout_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* tools = new QHBoxLayout;
    tools->addWidget(new QLabel(tr("B"), this));
    tools->addWidget(block_);
    tools->addWidget(new QLabel(tr("k"), this));
    tools->addWidget(k_);
    tools->addWidget(new QLabel(tr("p"), this));
    tools->addWidget(p_);
    tools->addWidget(run_);
    tools->addWidget(cancel_);
    tools->addWidget(bar_);
    tools->addStretch(1);
    tools->addWidget(new QLabel(tr("Colour by"), this));
    tools->addWidget(stat_);

    canvas_ = new HeatmapCanvas;
    canvas_->installEventFilter(this);
    canvas_->setCursor(Qt::PointingHandCursor);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(canvas_);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::StyledPanel);
    colorbar_ = new ColorBar(this);
    auto* map_panel = new QWidget(this);
    auto* map_layout = new QHBoxLayout(map_panel);
    map_layout->setContentsMargins(0, 0, 0, 0);
    map_layout->addWidget(scroll, 1);
    map_layout->addWidget(colorbar_);

    layer_table_ = new QTableView(this);
    layer_table_->setModel(layer_proxy_);
    layer_table_->setSortingEnabled(true);
    layer_table_->sortByColumn(OutlierLayerModel::LayerColumn, Qt::AscendingOrder);
    layer_table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    layer_table_->verticalHeader()->hide();
    layer_table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(map_panel);
    split->addWidget(layer_table_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 6);
    layout->addLayout(tools);
    layout->addWidget(status_);
    layout->addWidget(split, 1);
    layout->addWidget(readout_);

    connect(run_, &QPushButton::clicked, this, [this] { startAnalysis(); });
    connect(cancel_, &QPushButton::clicked, this, &OutlierView::cancel);
    connect(stat_, &QComboBox::currentIndexChanged, this, [this] {
        overview_->setStatistic(OutlierStatistic(stat_->currentData().toInt()));
        refreshCanvas();
    });
    connect(canvas_, &HeatmapCanvas::cellHovered, this, [this](int r, int c) {
        readout_->setText(r < 0 ? QString() : describeCell(r, c));
    });
    connect(this, &OutlierView::computed, this, &OutlierView::onComputed, Qt::QueuedConnection);
    connect(this, &OutlierView::marksFound, this, [this](quint64 click, int tensor, std::vector<std::pair<int64_t, int64_t>> marks) {
        if (click == click_) emit tensorActivated(tensor, std::move(marks));
    }, Qt::QueuedConnection);
    connect(this, &OutlierView::progressed, this, [this](quint64 job, double f) {
        if (job == job_) bar_->setValue(int(f * 1000));
    }, Qt::QueuedConnection);
}

OutlierView::~OutlierView() {
    if (progress_) progress_->cancel();
    ++click_;
    pool_.waitForDone();  // the workers emit on `this`
    marks_pool_.waitForDone();
}

void OutlierView::setModel(std::shared_ptr<const Model> model) {
    if (progress_) progress_->cancel();
    ++job_;  // a result still on its way belongs to the old model
    setBusy(false);
    model_ = std::move(model);
    analysis_.reset();
    overview_->setAnalysis(nullptr);
    layers_->setAnalysis(nullptr);
    refreshCanvas();
    status_->setText(model_ ? tr("Press Analyze to find the outliers of this model.") : tr("Load a model, then Analyze."));
}

OutlierAnalysisOptions OutlierView::options() const {
    OutlierAnalysisOptions o;
    o.block = block_->value();
    o.k = k_->value();
    o.fraction = p_->value() / 100.0;
    return o;
}

void OutlierView::setOptions(int64_t block, double k, double fraction) {
    block_->setValue(int(block));
    k_->setValue(k);
    p_->setValue(fraction * 100.0);
}

void OutlierView::setStatistic(OutlierStatistic s) { stat_->setCurrentIndex(stat_->findData(int(s))); }

bool OutlierView::startAnalysis() {
    if (!model_) {
        emit analysisFailed(tr("No model loaded."));
        return false;
    }
    const OutlierAnalysisOptions o = options();
    if (Status st = check_outlier_options(o); !st) {
        status_->setText(to_qstring(st.message()));
        emit analysisFailed(to_qstring(st.message()));
        return false;
    }
    if (progress_) progress_->cancel();
    const quint64 job = ++job_;
    auto progress = std::make_shared<Progress>([this, job](double f, const std::string&) { emit progressed(job, f); });
    progress_ = progress;
    setBusy(true);
    status_->setText(tr("Analyzing…"));
    // The job owns the model and its Progress: a model replaced meanwhile stays alive until it returns.
    (void)QtConcurrent::run(&pool_, [this, job, model = model_, o, progress] {
        auto r = analyze_outliers(*model, o, *progress);
        if (r) emit computed(job, std::move(r).value(), {});
        else emit computed(job, nullptr, to_qstring(r.message()));
    });
    return true;
}

void OutlierView::cancel() {
    if (progress_ && busy_) progress_->cancel();
}

void OutlierView::setBusy(bool busy) {
    busy_ = busy;
    run_->setEnabled(!busy);
    cancel_->setEnabled(busy);
    bar_->setVisible(busy);
    bar_->setValue(0);
}

void OutlierView::onComputed(quint64 job, const OutlierAnalysisPtr& r, const QString& error) {
    if (job != job_) return;
    const bool was_cancelled = progress_ && progress_->cancelled();
    setBusy(false);
    progress_.reset();
    if (!r || was_cancelled) {
        // Cancel (even one that came too late to stop the job) or failure: the previous analysis stays.
        if (was_cancelled) {
            status_->setText(tr("Cancelled; showing the previous analysis."));
            emit analysisCancelled();
        } else {
            status_->setText(tr("Analysis failed: %1").arg(error));
            emit analysisFailed(error);
        }
        return;
    }
    analysis_ = r;
    overview_->setAnalysis(r);
    layers_->setAnalysis(r);
    refreshCanvas();
    status_->setText(tr("%1 tensors · %2 weights · budget %3 outliers (p = %4 %, threshold |w| ≥ %5) · B = %6, k = %7")
                         .arg(r->tensors.size())
                         .arg(human_count(r->total_weights))
                         .arg(grouped(r->budget))
                         .arg(100.0 * r->fraction)
                         .arg(stat_text(r->threshold))
                         .arg(r->block)
                         .arg(r->k));
    emit analysisReady();
}

void OutlierView::refreshCanvas() {
    const int rows = overview_->rowCount(), cols = overview_->columnCount();
    if (!rows || !cols) {
        heatmap_.reset();
        canvas_->clear();
        colorbar_->setColorMap({}, false);
        return;
    }
    // The overview as a Heatmap so the magnitude heatmap's log colour map, canvas and colour bar
    // apply. Kurtosis is coloured as m4/m2^2 = excess + 3 (>= 1, so a log scale fits); NaN cells are 0.
    auto h = std::make_shared<Heatmap>();
    h->rows = rows;
    h->cols = cols;
    h->src_rows = rows;
    h->src_cols = cols;
    h->max_abs.assign(size_t(rows) * size_t(cols), 0.f);
    const double shift = overview_->statistic() == OutlierStatistic::Kurtosis ? 3.0 : 0.0;
    float mx = 0, mn = 0;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const double v = overview_->value(r, c);
            const float f = std::isnan(v) ? 0.f : float(std::max(0.0, v + shift));
            h->max_abs[size_t(r) * size_t(cols) + size_t(c)] = f;
            if (std::isfinite(f)) mx = std::max(mx, f);
            if (f > 0 && (mn == 0 || f < mn)) mn = f;
        }
    h->mean_abs = h->max_abs;
    h->max_value = mx;
    h->min_positive = mn;
    heatmap_ = h;
    const LogColorMap cmap = LogColorMap::for_heatmap(*h, 4.0);
    QImage image = render_heatmap(*h, cmap);
    // Empty cells (a narrower tensor, or no finite block) in neutral grey, apart from the lowest colour.
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            if (std::isnan(overview_->value(r, c))) image.setPixel(c, r, qRgb(200, 200, 200));
    canvas_->setHeatmap(h, image);
    QString title = outlier_statistic_name(overview_->statistic());
    if (shift != 0) title = tr("kurtosis");
    colorbar_->setTitle(title);
    colorbar_->setColorMap(cmap, mx > 0);
}

QString OutlierView::describeCell(int row, int col) const {
    const TensorOutliers* t = overview_->tensorAt(row);
    const OutlierAnalysis* a = overview_->analysis();
    if (!t || !a || col < 0 || col >= overview_->columnCount()) return {};
    const double v = overview_->value(row, col);
    QString where = QString("%1 · cols %2–%3").arg(to_qstring(t->name)).arg(col * a->block).arg((col + 1) * a->block - 1);
    if (col >= t->blocks_per_row) return where + tr(" · (no such block in this tensor)");
    return where + tr(" · mean over %1 rows of %2: %3").arg(t->rows).arg(outlier_statistic_name(overview_->statistic()), stat_text(v));
}

bool OutlierView::eventFilter(QObject* o, QEvent* e) {
    if (o == canvas_ && e->type() == QEvent::MouseButtonRelease) {
        auto* me = static_cast<QMouseEvent*>(e);
        int r = -1, c = -1;
        if (me->button() == Qt::LeftButton && canvas_->cellAt(me->position().toPoint(), r, c)) activateRow(r);
    }
    return QWidget::eventFilter(o, e);
}

void OutlierView::activateRow(int row) {
    const TensorOutliers* t = overview_->tensorAt(row);
    if (!t || !model_ || !analysis_) return;
    for (size_t i = 0; i < model_->tensors.size(); ++i)
        if (model_->tensors[i].name == t->name) {
            // A scan of the whole tensor: on a worker, so a large tensor does not stall the UI.
            const quint64 click = ++click_;
            (void)QtConcurrent::run(&marks_pool_, [this, click, i, model = model_, analysis = analysis_] {
                if (click != click_) return;  // superseded before it started
                emit marksFound(click, int(i), outlierPositions(model->tensors[i], *analysis));
            });
            return;
        }
}

std::vector<std::pair<int64_t, int64_t>> OutlierView::outlierPositions(const Tensor& t, const OutlierAnalysis& a, size_t cap) {
    std::vector<std::pair<int64_t, int64_t>> out;
    if (a.budget == 0 || !std::isfinite(a.threshold) || t.shape.empty()) return out;
    const int64_t rows = t.rows(), cols = t.shape.back();
    std::vector<std::pair<float, std::pair<int64_t, int64_t>>> hits;
    constexpr int64_t kChunk = 256;
    for (int64_t r0 = 0; r0 < rows; r0 += kChunk) {
        const int64_t n = std::min(kChunk, rows - r0);
        auto v = t.rows_to_f32(r0, n);
        if (!v) return out;
        for (int64_t i = 0; i < n * cols; ++i) {
            const float m = std::fabs((*v)[size_t(i)]);
            if (std::isfinite(m) && double(m) >= a.threshold) hits.push_back({m, {r0 + i / cols, i % cols}});
        }
    }
    std::stable_sort(hits.begin(), hits.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    if (hits.size() > cap) hits.resize(cap);
    for (const auto& h : hits) out.push_back(h.second);
    return out;
}

}  // namespace ef::views
