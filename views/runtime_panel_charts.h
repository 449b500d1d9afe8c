// The runtime panel's charts (QtCharts): a live line chart whose axes follow the data, and the
// profile's per-layer horizontal bars coloured by the branch each layer takes.
#pragma once
#include <QChartView>
#include <QColor>
#include <QString>
#include <vector>

#include "views/runtime_worker.h"

class QLineSeries;
class QScatterSeries;
class QValueAxis;
class QBarCategoryAxis;
class QHorizontalStackedBarSeries;

namespace ef::views {

// Chart look shared by the panel: no animation, compact margins, the workbench's font.
void style_chart(QChart* chart, const QString& title);

class LiveLineChart : public QChartView {
    Q_OBJECT
public:
    LiveLineChart(const QString& title, const QString& x_title, const QString& y_title, QColor color,
                  QWidget* parent = nullptr);
    void append(double x, double y);
    // A second, dotted series of markers (e.g. each chunk's own PPL next to the running one).
    void appendMarker(double x, double y);
    void clear();
    int pointCount() const;
    int markerCount() const;
    QLineSeries* series() const { return line_; }
    QScatterSeries* markers() const { return markers_; }
    // x axis starts at `x_min` (e.g. 1 for chunk numbers); the y axis always includes 0.
    void setXMinimum(double x_min) { x_min_ = x_min; }
    void setIntegerX(bool on);
    // Names the two series and shows the legend.
    void setSeriesNames(const QString& line, const QString& markers);

private:
    void grow(double x, double y);
    QLineSeries* line_;
    QScatterSeries* markers_;
    QValueAxis* ax_;
    QValueAxis* ay_;
    double x_min_ = 0, x_max_ = 1, y_max_ = 1;
    bool integer_x_ = false;
};

QColor branch_color(LayerBranch b);
QString branch_name(LayerBranch b);

class LayerBarChart : public QChartView {
    Q_OBJECT
public:
    explicit LayerBarChart(QWidget* parent = nullptr);
    // One bar per layer (layer 0 at the top), coloured by branch; `unit` labels the value axis.
    void setLayers(const std::vector<double>& values, const std::vector<LayerBranch>& branch, const QString& title,
                   const QString& unit);
    void clear();
    int barCount() const { return bars_; }
    // The value of layer il's bar (whichever branch set holds it), for tests.
    double barValue(int il) const;
    QHorizontalStackedBarSeries* series() const { return series_; }

private:
    QHorizontalStackedBarSeries* series_;
    QBarCategoryAxis* ay_;
    QValueAxis* ax_;
    std::vector<double> values_;
    int bars_ = 0;
};

}  // namespace ef::views
