// Painting a magnitude heatmap: the log-scale colour map, the zoomable canvas and its colour bar.
#pragma once
#include <QImage>
#include <QWidget>
#include <memory>
#include <utility>
#include <vector>

#include "core/stats.h"

namespace ef::views {

// Log-scale mapping of |w| onto the "inferno"-like colour ramp (black -> purple -> orange -> pale yellow).
// The range is [lo, hi] with lo = max(smallest positive cell, hi / 10^max_decades); 0 maps to the
// bottom colour, values >= hi (and Inf) to the top colour.
class LogColorMap {
public:
    LogColorMap() = default;
    LogColorMap(double lo, double hi);
    static LogColorMap for_heatmap(const Heatmap& h, double max_decades = 6.0);
    double lo() const { return lo_; }
    double hi() const { return hi_; }
    double position(double v) const;  // 0..1
    QRgb color(double v) const { return ramp(position(v)); }
    static QRgb ramp(double t);       // 0..1 along the colour ramp

private:
    double lo_ = 1e-6, hi_ = 1.0;
};

// The cells as an image (one pixel per cell) under the given colour map.
QImage render_heatmap(const Heatmap& h, const LogColorMap& cmap);

class HeatmapCanvas : public QWidget {
    Q_OBJECT
public:
    explicit HeatmapCanvas(QWidget* parent = nullptr);
    void setHeatmap(std::shared_ptr<const Heatmap> h, QImage image);
    void clear();
    // Display size for a zoom factor relative to `fit` (the viewport size).
    void setDisplaySize(QSize size);
    // Cell under a widget position; false outside.
    bool cellAt(QPoint pos, int& row, int& col) const;
    // Source (row, col) positions drawn as rings over their cells (e.g. kept outliers); kept until replaced.
    void setMarkers(std::vector<std::pair<int64_t, int64_t>> markers);
    size_t markerCount() const { return markers_.size(); }

signals:
    void cellHovered(int row, int col);  // -1, -1 when leaving
    void wheelZoom(int steps, QPoint pos);

protected:
    void paintEvent(QPaintEvent*) override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void leaveEvent(QEvent*) override;
    void wheelEvent(QWheelEvent* e) override;
    QSize sizeHint() const override { return display_; }

private:
    std::shared_ptr<const Heatmap> heatmap_;
    QImage image_;
    QSize display_{400, 300};
    int hover_row_ = -1, hover_col_ = -1;
    std::vector<std::pair<int64_t, int64_t>> markers_;
};

// Vertical colour bar with log ticks labelled by value.
class ColorBar : public QWidget {
    Q_OBJECT
public:
    explicit ColorBar(QWidget* parent = nullptr);
    void setColorMap(const LogColorMap& cmap, bool valid);
    void setTitle(const QString& title);  // above the bar; "max |w|" by default
    QSize sizeHint() const override { return {barWidth(), 200}; }
    QSize minimumSizeHint() const override { return {barWidth(), 80}; }

protected:
    void paintEvent(QPaintEvent*) override;

private:
    int barWidth() const { return 44 + fontMetrics().horizontalAdvance("0.0000e-00"); }
    LogColorMap cmap_;
    bool valid_ = false;
    QString title_ = "max |w|";
};

}  // namespace ef::views
