#include "views/heatmap_canvas.h"

#include <QMouseEvent>
#include <QPainter>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

#include "views/format_util.h"

namespace ef::views {

namespace {
// Anchor colours of a perceptually ordered dark-to-bright ramp (close to matplotlib's "inferno").
constexpr int kAnchors[][3] = {
    {0, 0, 4},      {22, 11, 57},   {66, 10, 104},  {106, 23, 110}, {147, 38, 103}, {188, 55, 84},
    {221, 81, 58},  {243, 120, 25}, {252, 165, 10}, {246, 215, 70}, {252, 255, 164},
};
constexpr int kNumAnchors = int(sizeof kAnchors / sizeof kAnchors[0]);
}  // namespace

LogColorMap::LogColorMap(double lo, double hi) : lo_(lo > 0 ? lo : 1e-30), hi_(std::max(hi, lo_)) {}

LogColorMap LogColorMap::for_heatmap(const Heatmap& h, double max_decades) {
    const double hi = h.max_value > 0 ? double(h.max_value) : 1.0;
    double lo = h.min_positive > 0 ? double(h.min_positive) : hi;
    lo = std::max(lo, hi * std::pow(10.0, -max_decades));
    if (lo >= hi) lo = hi / 10.0;  // constant tensor: one decade so the value sits at the top
    return LogColorMap(lo, hi);
}

double LogColorMap::position(double v) const {
    if (std::isnan(v) || v <= 0) return 0.0;
    if (v >= hi_) return 1.0;
    if (v <= lo_) return 0.0;
    return (std::log(v) - std::log(lo_)) / (std::log(hi_) - std::log(lo_));
}

QRgb LogColorMap::ramp(double t) {
    t = std::clamp(t, 0.0, 1.0) * (kNumAnchors - 1);
    const int i = std::min(int(t), kNumAnchors - 2);
    const double f = t - i;
    auto mix = [&](int c) { return int(std::lround(kAnchors[i][c] * (1 - f) + kAnchors[i + 1][c] * f)); };
    return qRgb(mix(0), mix(1), mix(2));
}

QImage render_heatmap(const Heatmap& h, const LogColorMap& cmap) {
    QImage img(std::max(1, h.cols), std::max(1, h.rows), QImage::Format_RGB32);
    img.fill(Qt::black);
    for (int r = 0; r < h.rows; ++r) {
        auto* line = reinterpret_cast<QRgb*>(img.scanLine(r));
        for (int c = 0; c < h.cols; ++c) line[c] = cmap.color(h.max_at(r, c));
    }
    return img;
}

HeatmapCanvas::HeatmapCanvas(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setAttribute(Qt::WA_OpaquePaintEvent);
    resize(display_);
}

void HeatmapCanvas::setHeatmap(std::shared_ptr<const Heatmap> h, QImage image) {
    heatmap_ = std::move(h);
    image_ = std::move(image);
    hover_row_ = hover_col_ = -1;
    update();
}

void HeatmapCanvas::clear() { setHeatmap(nullptr, QImage()); }

void HeatmapCanvas::setMarkers(std::vector<std::pair<int64_t, int64_t>> markers) {
    markers_ = std::move(markers);
    update();
}

void HeatmapCanvas::setDisplaySize(QSize size) {
    display_ = size.expandedTo(QSize(1, 1));
    resize(display_);
    updateGeometry();
    update();
}

bool HeatmapCanvas::cellAt(QPoint pos, int& row, int& col) const {
    if (!heatmap_ || heatmap_->rows == 0 || !rect().contains(pos)) return false;
    col = std::min(heatmap_->cols - 1, int(int64_t(pos.x()) * heatmap_->cols / std::max(1, width())));
    row = std::min(heatmap_->rows - 1, int(int64_t(pos.y()) * heatmap_->rows / std::max(1, height())));
    return true;
}

void HeatmapCanvas::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), palette().color(QPalette::Base));
    if (image_.isNull()) return;
    // Nearest-neighbour scaling: every cell stays a crisp block, no outlier is blurred away.
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);
    p.drawImage(rect(), image_);
    if (heatmap_ && !markers_.empty()) {
        // One ring per marked cell, at least 7 px wide so single outliers stay visible when zoomed out.
        const double cw = double(width()) / heatmap_->cols, ch = double(height()) / heatmap_->rows;
        const double d = std::max(7.0, std::min(cw, ch));
        std::vector<std::pair<int, int>> cells;
        for (const auto& [r, c] : markers_)
            if (r >= 0 && r < heatmap_->src_rows && c >= 0 && c < heatmap_->src_cols)
                cells.push_back({heatmap_->cell_of_row(r), heatmap_->cell_of_col(c)});
        std::sort(cells.begin(), cells.end());
        cells.erase(std::unique(cells.begin(), cells.end()), cells.end());
        p.setRenderHint(QPainter::Antialiasing, true);
        p.setBrush(Qt::NoBrush);
        for (const auto& [r, c] : cells) {
            const QPointF centre((c + 0.5) * cw, (r + 0.5) * ch);
            p.setPen(QPen(QColor(0, 0, 0, 200), 3.0));
            p.drawEllipse(centre, d / 2, d / 2);
            p.setPen(QPen(QColor(0, 230, 120), 1.5));
            p.drawEllipse(centre, d / 2, d / 2);
        }
        p.setRenderHint(QPainter::Antialiasing, false);
    }
    if (heatmap_ && hover_row_ >= 0) {
        const double cw = double(width()) / heatmap_->cols, ch = double(height()) / heatmap_->rows;
        const QRectF cell(hover_col_ * cw, hover_row_ * ch, cw, ch);
        p.setPen(QPen(QColor(0, 200, 255), 1.5));
        p.setBrush(Qt::NoBrush);
        p.drawRect(cell.adjusted(-1, -1, 1, 1));
    }
}

void HeatmapCanvas::mouseMoveEvent(QMouseEvent* e) {
    int r = -1, c = -1;
    if (!cellAt(e->position().toPoint(), r, c)) r = c = -1;
    if (r != hover_row_ || c != hover_col_) {
        hover_row_ = r;
        hover_col_ = c;
        update();
        emit cellHovered(r, c);
    }
}

void HeatmapCanvas::leaveEvent(QEvent*) {
    hover_row_ = hover_col_ = -1;
    update();
    emit cellHovered(-1, -1);
}

void HeatmapCanvas::wheelEvent(QWheelEvent* e) {
    const int steps = e->angleDelta().y() / 120;
    if (steps == 0) return e->ignore();
    emit wheelZoom(steps, e->position().toPoint());
    e->accept();
}

ColorBar::ColorBar(QWidget* parent) : QWidget(parent) { setFixedWidth(barWidth()); }

void ColorBar::setColorMap(const LogColorMap& cmap, bool valid) {
    cmap_ = cmap;
    valid_ = valid;
    update();
}

void ColorBar::setTitle(const QString& title) {
    title_ = title;
    update();
}

void ColorBar::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const QFontMetrics fm = fontMetrics();
    const int top = 2 * fm.height(), bottom = height() - fm.height();
    const QRect bar(6, top, 18, std::max(1, bottom - top));
    if (!valid_) return;
    for (int y = bar.top(); y <= bar.bottom(); ++y) {
        const double t = 1.0 - double(y - bar.top()) / std::max(1, bar.height() - 1);
        p.setPen(QColor::fromRgb(LogColorMap::ramp(t)));
        p.drawLine(bar.left(), y, bar.right(), y);
    }
    p.setPen(palette().color(QPalette::WindowText));
    p.drawRect(bar.adjusted(0, 0, -1, -1));
    // Ticks at whole decades inside the range, plus both ends.
    auto y_of = [&](double v) { return bar.bottom() - int(std::lround(cmap_.position(v) * (bar.height() - 1))); };
    auto tick = [&](double v, bool end) {
        const int y = y_of(v);
        p.drawLine(bar.right(), y, bar.right() + 4, y);
        QString label = stat_text(v);
        if (!end) label = QString("1e%1").arg(int(std::lround(std::log10(v))));
        p.drawText(QRect(bar.right() + 7, y - fm.height() / 2, width() - bar.right() - 7, fm.height()),
                   Qt::AlignLeft | Qt::AlignVCenter, label);
    };
    tick(cmap_.hi(), true);
    tick(cmap_.lo(), true);
    const int d0 = int(std::ceil(std::log10(cmap_.lo()))), d1 = int(std::floor(std::log10(cmap_.hi())));
    for (int d = d0; d <= d1; ++d) {
        const double v = std::pow(10.0, d);
        if (std::abs(y_of(v) - y_of(cmap_.hi())) > fm.height() * 4 / 3 && std::abs(y_of(v) - y_of(cmap_.lo())) > fm.height() * 4 / 3)
            tick(v, false);
    }
    p.drawText(QRect(0, 0, width(), top), Qt::AlignHCenter | Qt::AlignTop, title_);
}

}  // namespace ef::views
