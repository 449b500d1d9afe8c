#include "views/heatmap_widget.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QScrollArea>
#include <QScrollBar>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <algorithm>
#include <cmath>

#include "views/format_util.h"
#include "views/heatmap_canvas.h"

namespace ef::views {

namespace {
constexpr double kMinZoom = 1.0, kMaxZoom = 64.0, kZoomStep = 1.25;

// One stage of a job: maps its fractions into [a, b] of the job's progress and follows the job's
// cancel flag (checked at every report and at the start).
struct Stage {
    Progress p;
    Stage(Progress& job, double a, double b)
        : p([this, &job, a, b](double f, const std::string& s) {
              job.report(a + (b - a) * f, s);
              if (job.cancelled()) p.cancel();
          }) {
        if (job.cancelled()) p.cancel();
    }
};

QToolButton* tool_button(const QString& text, const QString& tip, QWidget* parent) {
    auto* b = new QToolButton(parent);
    b->setText(text);
    b->setToolTip(tip);
    b->setAutoRaise(true);
    b->setMinimumWidth(28);
    return b;
}
}  // namespace

HeatmapWidget::HeatmapWidget(QWidget* parent) : QWidget(parent) {
    qRegisterMetaType<std::shared_ptr<const ef::views::TensorInspection>>();
    pool_.setMaxThreadCount(1);

    title_ = new QLabel(tr("No tensor selected"), this);
    QFont tf = title_->font();
    tf.setBold(true);
    tf.setPointSizeF(tf.pointSizeF() * 1.15);
    title_->setFont(tf);
    title_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    stats_label_ = new QLabel(this);
    stats_label_->setTextFormat(Qt::RichText);
    stats_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    readout_ = new QLabel(tr("Hover over the heatmap to read a cell."), this);
    readout_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* zoom_out = tool_button("−", tr("Zoom out (wheel down)"), this);
    auto* zoom_in = tool_button("+", tr("Zoom in (wheel up)"), this);
    auto* fit = tool_button(tr("Fit"), tr("Fit the heatmap to the panel"), this);
    zoom_label_ = new QLabel("100%", this);
    zoom_label_->setMinimumWidth(48);
    progress_bar_ = new QProgressBar(this);
    progress_bar_->setRange(0, 1000);
    progress_bar_->setMaximumWidth(160);
    progress_bar_->setTextVisible(false);
    progress_bar_->hide();
    connect(zoom_in, &QToolButton::clicked, this, &HeatmapWidget::zoomIn);
    connect(zoom_out, &QToolButton::clicked, this, &HeatmapWidget::zoomOut);
    connect(fit, &QToolButton::clicked, this, &HeatmapWidget::zoomToFit);

    canvas_ = new HeatmapCanvas;
    scroll_ = new QScrollArea(this);
    scroll_->setWidget(canvas_);
    scroll_->setWidgetResizable(false);
    scroll_->setAlignment(Qt::AlignCenter);
    scroll_->setFrameShape(QFrame::StyledPanel);
    colorbar_ = new ColorBar(this);
    connect(canvas_, &HeatmapCanvas::cellHovered, this, &HeatmapWidget::onHover);
    connect(canvas_, &HeatmapCanvas::wheelZoom, this, [this](int steps, QPoint pos) {
        setZoom(zoom_ * std::pow(kZoomStep, steps), pos);
    });

    auto* tools = new QHBoxLayout;
    tools->addWidget(new QLabel(tr("|w| heatmap, log scale"), this));
    tools->addStretch(1);
    tools->addWidget(progress_bar_);
    tools->addWidget(zoom_out);
    tools->addWidget(zoom_label_);
    tools->addWidget(zoom_in);
    tools->addWidget(fit);
    auto* body = new QHBoxLayout;
    body->addWidget(scroll_, 1);
    body->addWidget(colorbar_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 6);
    layout->addWidget(title_);
    layout->addWidget(stats_label_);
    layout->addLayout(tools);
    layout->addLayout(body, 1);
    layout->addWidget(readout_);

    connect(this, &HeatmapWidget::inspectionComputed, this, &HeatmapWidget::onComputed, Qt::QueuedConnection);
    connect(this, &HeatmapWidget::inspectionProgress, this, [this](quint64 gen, double f) {
        if (gen == generation_) progress_bar_->setValue(int(f * 1000));
    }, Qt::QueuedConnection);
    setStatsText(nullptr);
}

HeatmapWidget::~HeatmapWidget() {
    if (progress_) progress_->cancel();
    pool_.waitForDone();  // the worker emits on `this`
}

void HeatmapWidget::clear() { showTensor(nullptr, -1); }

void HeatmapWidget::setMarkers(int tensor_index, std::vector<std::pair<int64_t, int64_t>> positions) {
    if (tensor_index != tensor_ || tensor_ < 0) return;
    canvas_->setMarkers(std::move(positions));
}

size_t HeatmapWidget::markerCount() const { return canvas_->markerCount(); }

void HeatmapWidget::showTensor(std::shared_ptr<const Model> model, int tensor_index) {
    if (progress_) progress_->cancel();
    ++generation_;
    model_ = std::move(model);
    tensor_ = tensor_index;
    current_ = TensorInspection{};
    canvas_->clear();
    canvas_->setMarkers({});
    colorbar_->setColorMap({}, false);
    readout_->clear();
    if (!model_ || tensor_index < 0 || size_t(tensor_index) >= model_->tensors.size()) {
        model_.reset();
        tensor_ = -1;
        busy_ = false;
        progress_bar_->hide();
        title_->setText(tr("No tensor selected"));
        setStatsText(nullptr);
        return;
    }
    const Tensor& t = model_->tensors[size_t(tensor_index)];
    title_->setText(QString("%1   <span style='font-weight:normal'>%2 %3 · %4 parameters · %5</span>")
                        .arg(QString::fromStdString(t.name).toHtmlEscaped(), to_qstring(dtype_name(t.dtype)),
                             shape_text(t.shape), grouped(t.numel()), human_bytes(t.nbytes())));
    setStatsText(nullptr);
    busy_ = true;
    progress_bar_->setValue(0);
    progress_bar_->show();

    const QSize vp = scroll_->viewport()->size();
    const int rows = max_rows_ > 0 ? max_rows_ : std::clamp(vp.height(), 256, 2048);
    const int cols = max_cols_ > 0 ? max_cols_ : std::clamp(vp.width(), 256, 2048);
    const quint64 gen = generation_;
    auto progress = std::make_shared<Progress>([this, gen, last = std::make_shared<int>(-1)](double f, const std::string&) {
        const int pct = int(f * 100);  // at most ~100 queued updates per job
        if (pct != *last) {
            *last = pct;
            emit inspectionProgress(gen, f);
        }
    });
    progress_ = progress;
    future_ = QtConcurrent::run(&pool_, [this, gen, m = model_, tensor_index, rows, cols, progress] {
        auto r = std::make_shared<TensorInspection>();
        r->tensor = tensor_index;
        const Tensor& t = m->tensors[size_t(tensor_index)];
        // Stats fill the first half of the bar, the heatmap the second.
        Stage first(*progress, 0.0, 0.5), second(*progress, 0.5, 1.0);
        auto s = tensor_stats(t, first.p);
        if (progress->cancelled()) return;
        if (!s) {
            r->error = QString::fromStdString(s.message());
        } else {
            r->stats = *s;
            auto h = magnitude_heatmap(t, rows, cols, second.p);
            if (progress->cancelled()) return;
            if (h) r->heatmap = std::make_shared<const Heatmap>(std::move(h).value());
            else r->error = QString::fromStdString(h.message());
        }
        emit inspectionComputed(gen, r);
    });
}

void HeatmapWidget::onComputed(quint64 generation, const std::shared_ptr<const TensorInspection>& r) {
    if (generation != generation_) return;  // a newer selection replaced this job
    busy_ = false;
    progress_bar_->hide();
    current_ = *r;
    if (!r->error.isEmpty() || !r->heatmap) {
        stats_label_->setText(QString("<span style='color:#c03030'>%1</span>").arg(r->error.toHtmlEscaped()));
        emit inspectionFailed(r->tensor, r->error);
        return;
    }
    setStatsText(&r->stats);
    const LogColorMap cmap = LogColorMap::for_heatmap(*r->heatmap);
    image_ = render_heatmap(*r->heatmap, cmap);
    canvas_->setHeatmap(r->heatmap, image_);
    colorbar_->setColorMap(cmap, true);
    readout_->setText(tr("%1 × %2 cells over a %3 × %4 matrix; each cell shows the largest |w| it covers.")
                          .arg(r->heatmap->rows).arg(r->heatmap->cols)
                          .arg(r->heatmap->src_rows).arg(r->heatmap->src_cols));
    applyZoom();
    emit inspectionReady(r->tensor);
}

void HeatmapWidget::setStatsText(const TensorStats* s) {
    if (!s) {
        stats_label_->setText(busy_ ? tr("computing statistics…") : QString());
        return;
    }
    auto cell = [](const QString& k, const QString& v) {
        return QString("<td style='padding-right:4px;color:palette(mid)'>%1</td><td style='padding-right:14px'><b>%2</b></td>").arg(k, v);
    };
    QString html = "<table><tr>" + cell("min", stat_text(s->min)) + cell("max", stat_text(s->max)) +
                   cell("mean", stat_text(s->mean)) + cell("std", stat_text(s->std)) + "</tr><tr>" +
                   cell("rms", stat_text(s->rms)) + cell("kurtosis", stat_text(s->kurtosis)) +
                   cell("max|w|/rms", stat_text(s->max_abs_over_rms)) +
                   cell("NaN / Inf", QString("%1 / %2").arg(s->nan_count).arg(s->inf_count)) + "</tr></table>";
    stats_label_->setText(html);
}

QString HeatmapWidget::describeCell(int row, int col) const {
    const Heatmap* h = heatmap();
    if (!h || row < 0 || col < 0 || row >= h->rows || col >= h->cols) return {};
    const auto [r0, r1] = h->row_range(row);
    const auto [c0, c1] = h->col_range(col);
    auto range = [](const char* what, int64_t a, int64_t b) {
        return b - a == 1 ? QString("%1 %2").arg(what).arg(a) : QString("%1s %2–%3").arg(what).arg(a).arg(b - 1);
    };
    if (r1 - r0 == 1 && c1 - c0 == 1)
        return QString("%1, %2 · |w| %3").arg(range("row", r0, r1), range("col", c0, c1), stat_text(h->max_at(row, col)));
    return QString("%1, %2 · max|w| %3 · mean|w| %4")
        .arg(range("row", r0, r1), range("col", c0, c1), stat_text(h->max_at(row, col)), stat_text(h->mean_at(row, col)));
}

void HeatmapWidget::onHover(int row, int col) {
    const QString text = describeCell(row, col);
    if (text.isEmpty()) {
        QToolTip::hideText();
        return;
    }
    readout_->setText(text);
    QToolTip::showText(QCursor::pos(), text, canvas_);
    emit statusMessage(QString::fromStdString(model_ ? model_->tensors[size_t(tensor_)].name : std::string()) + "  " + text);
}

void HeatmapWidget::zoomIn() { setZoom(zoom_ * kZoomStep, scroll_->viewport()->rect().center()); }
void HeatmapWidget::zoomOut() { setZoom(zoom_ / kZoomStep, scroll_->viewport()->rect().center()); }
void HeatmapWidget::zoomToFit() { setZoom(1.0, {}); }

void HeatmapWidget::setZoom(double zoom, QPoint anchor) {
    zoom = std::clamp(zoom, kMinZoom, kMaxZoom);
    // Keep the point under `anchor` (viewport coordinates) where it is.
    auto* hs = scroll_->horizontalScrollBar();
    auto* vs = scroll_->verticalScrollBar();
    const double ratio = zoom / zoom_;
    const double ax = anchor.x() + hs->value(), ay = anchor.y() + vs->value();
    zoom_ = zoom;
    applyZoom();
    hs->setValue(int(std::lround(ax * ratio - anchor.x())));
    vs->setValue(int(std::lround(ay * ratio - anchor.y())));
}

void HeatmapWidget::applyZoom() {
    // At fit (zoom 1) the canvas is exactly the viewport: no scroll bars to eat into it.
    const Qt::ScrollBarPolicy policy = zoom_ > 1.0 ? Qt::ScrollBarAsNeeded : Qt::ScrollBarAlwaysOff;
    scroll_->setHorizontalScrollBarPolicy(policy);
    scroll_->setVerticalScrollBarPolicy(policy);
    const QSize vp = scroll_->maximumViewportSize();
    QSize size(int(vp.width() * zoom_), int(vp.height() * zoom_));
    if (const Heatmap* h = heatmap(); h && h->rows == 1) size.setHeight(std::min(size.height(), std::max(48, int(40 * zoom_))));
    canvas_->setDisplaySize(size);
    zoom_label_->setText(QString("%1%").arg(int(std::lround(zoom_ * 100))));
}

void HeatmapWidget::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    applyZoom();
}

}  // namespace ef::views
