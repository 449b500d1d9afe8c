#include "views/runtime_panel_charts.h"

#include <QApplication>
#include <QBarCategoryAxis>
#include <QBarSet>
#include <QGraphicsLayout>
#include <QHorizontalStackedBarSeries>
#include <QLegendMarker>
#include <QLineSeries>
#include <QScatterSeries>
#include <QValueAxis>
#include <algorithm>
#include <cmath>

namespace ef::views {

namespace {
// A "nice" axis end above v: 1, 2, 2.5 or 5 times a power of ten.
double nice_ceil(double v) {
    if (!(v > 0)) return 1;
    const double p = std::pow(10.0, std::floor(std::log10(v)));
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (m * p >= v * 1.0001) return m * p;
    return 10 * p;
}

void style_axis(QAbstractAxis* a, const QString& title) {
    QFont f = QApplication::font();
    f.setPointSizeF(f.pointSizeF() * 0.85);
    a->setLabelsFont(f);
    a->setTitleText(title);
    f.setBold(false);
    a->setTitleFont(f);
    a->setGridLineColor(QColor(226, 229, 234));
    a->setLinePenColor(QColor(170, 176, 184));
    a->setLabelsColor(QColor(70, 76, 84));
    a->setTitleBrush(QColor(90, 96, 104));
}
}  // namespace

void style_chart(QChart* chart, const QString& title) {
    chart->setAnimationOptions(QChart::NoAnimation);
    chart->setBackgroundRoundness(0);
    chart->setMargins(QMargins(4, 2, 6, 2));
    chart->layout()->setContentsMargins(0, 0, 0, 0);
    chart->setBackgroundBrush(Qt::white);
    chart->setPlotAreaBackgroundVisible(false);
    QFont tf = QApplication::font();
    tf.setBold(true);
    tf.setPointSizeF(tf.pointSizeF() * 0.9);
    chart->setTitleFont(tf);
    chart->setTitleBrush(QColor(40, 44, 52));
    chart->setTitle(title);
    QFont lf = QApplication::font();
    lf.setPointSizeF(lf.pointSizeF() * 0.85);
    chart->legend()->setFont(lf);
}

LiveLineChart::LiveLineChart(const QString& title, const QString& x_title, const QString& y_title, QColor color,
                             QWidget* parent)
    : QChartView(parent), line_(new QLineSeries), markers_(new QScatterSeries), ax_(new QValueAxis), ay_(new QValueAxis) {
    auto* chart = new QChart;
    style_chart(chart, title);
    chart->legend()->hide();
    QPen pen(color);
    pen.setWidthF(2.0);
    line_->setPen(pen);
    line_->setPointsVisible(true);
    markers_->setMarkerSize(7);
    markers_->setColor(QColor(150, 156, 166));
    markers_->setBorderColor(QColor(150, 156, 166));
    chart->addSeries(line_);
    chart->addSeries(markers_);
    style_axis(ax_, x_title);
    style_axis(ay_, y_title);
    ax_->setLabelFormat("%.3g");
    ay_->setLabelFormat("%.4g");
    ax_->setTickType(QValueAxis::TicksDynamic);
    ay_->setTickType(QValueAxis::TicksDynamic);
    chart->addAxis(ax_, Qt::AlignBottom);
    chart->addAxis(ay_, Qt::AlignLeft);
    for (QAbstractSeries* s : {static_cast<QAbstractSeries*>(line_), static_cast<QAbstractSeries*>(markers_)}) {
        s->attachAxis(ax_);
        s->attachAxis(ay_);
    }
    setChart(chart);
    setRenderHint(QPainter::Antialiasing);
    setMinimumSize(220, 120);
    clear();
}

void LiveLineChart::setIntegerX(bool on) {
    integer_x_ = on;
    ax_->setLabelFormat(on ? "%d" : "%.3g");
}

void LiveLineChart::grow(double x, double y) {
    x_max_ = std::max(x_max_, x);
    y_max_ = std::max(y_max_, y);
    // Round ticks (1, 2, 2.5, 5 x 10^k) anchored at the axis start, about five of them.
    double xs = nice_ceil(std::max(x_max_ - x_min_, 1e-9) / 5);
    if (integer_x_) xs = std::max(1.0, std::round(xs));
    ax_->setTickAnchor(x_min_);
    ax_->setTickInterval(xs);
    if (integer_x_)  // whole numbers (chunks): half a step of room so the end points are not clipped
        ax_->setRange(x_min_ - 0.3, std::max(x_max_, x_min_ + 1) + 0.3);
    else
        ax_->setRange(x_min_, x_min_ + xs * std::max(1.0, std::ceil((x_max_ - x_min_) / xs - 1e-9)));
    const double ys = nice_ceil(std::max(y_max_ * 1.05, 1e-9) / 4);
    ay_->setTickAnchor(0);
    ay_->setTickInterval(ys);
    ay_->setRange(0, ys * std::max(1.0, std::ceil(y_max_ * 1.05 / ys)));
    // Plain numbers: "20000", not "2e+04".
    ay_->setLabelFormat(ys >= 1 ? "%.0f" : "%.3g");
    if (!integer_x_) ax_->setLabelFormat(xs >= 1 ? "%.0f" : "%.3g");
}

void LiveLineChart::setSeriesNames(const QString& line, const QString& markers) {
    line_->setName(line);
    markers_->setName(markers);
    chart()->legend()->setVisible(true);
    chart()->legend()->setAlignment(Qt::AlignTop);
}

void LiveLineChart::append(double x, double y) {
    if (!std::isfinite(x) || !std::isfinite(y)) return;
    line_->append(x, y);
    grow(x, y);
}

void LiveLineChart::appendMarker(double x, double y) {
    if (!std::isfinite(x) || !std::isfinite(y)) return;
    markers_->append(x, y);
    grow(x, y);
}

void LiveLineChart::clear() {
    line_->clear();
    markers_->clear();
    x_max_ = x_min_;
    y_max_ = 0;
    grow(x_min_ + (integer_x_ ? 4 : 1), 1);  // an empty frame with round ticks
    x_max_ = x_min_;
    y_max_ = 0;
}

int LiveLineChart::pointCount() const { return int(line_->count()); }
int LiveLineChart::markerCount() const { return int(markers_->count()); }

QColor branch_color(LayerBranch b) {
    switch (b) {
        case LayerBranch::Attention: return QColor(38, 110, 200);
        case LayerBranch::Mamba: return QColor(40, 150, 100);
        case LayerBranch::RoutedAttention: return QColor(130, 96, 210);
        case LayerBranch::RoutedSsm: return QColor(226, 132, 40);
        case LayerBranch::RoutedBoth: return QColor(140, 146, 156);
    }
    return Qt::gray;
}

QString branch_name(LayerBranch b) {
    switch (b) {
        case LayerBranch::Attention: return QObject::tr("attention");
        case LayerBranch::Mamba: return QObject::tr("mamba");
        case LayerBranch::RoutedAttention: return QObject::tr("routed → attention");
        case LayerBranch::RoutedSsm: return QObject::tr("routed → SSM");
        case LayerBranch::RoutedBoth: return QObject::tr("routed, both (soft)");
    }
    return {};
}

LayerBarChart::LayerBarChart(QWidget* parent)
    : QChartView(parent), series_(new QHorizontalStackedBarSeries), ay_(new QBarCategoryAxis), ax_(new QValueAxis) {
    auto* chart = new QChart;
    style_chart(chart, tr("Per-layer time"));
    chart->legend()->setAlignment(Qt::AlignBottom);
    series_->setBarWidth(0.72);
    chart->addSeries(series_);
    style_axis(ay_, QString());
    style_axis(ax_, QString());
    ax_->setLabelFormat("%.3g");
    chart->addAxis(ay_, Qt::AlignLeft);
    chart->addAxis(ax_, Qt::AlignBottom);
    series_->attachAxis(ay_);
    series_->attachAxis(ax_);
    setChart(chart);
    setRenderHint(QPainter::Antialiasing);
    setMinimumSize(260, 180);
}

void LayerBarChart::clear() {
    series_->clear();
    ay_->clear();
    ax_->setRange(0, 1);
    values_.clear();
    bars_ = 0;
}

void LayerBarChart::setLayers(const std::vector<double>& values, const std::vector<LayerBranch>& branch,
                              const QString& title, const QString& unit) {
    clear();
    chart()->setTitle(title);
    ax_->setTitleText(unit);
    const int n = int(std::min(values.size(), branch.size()));
    values_.assign(values.begin(), values.begin() + n);
    // A stacked series with one set per branch: each layer's value sits in its branch's set (0 in
    // the others), so every layer is one bar in its branch colour and the legend names the colours.
    // Categories run bottom-up, so layer 0 goes last to be drawn at the top.
    QStringList cats;
    for (int i = n - 1; i >= 0; --i) cats << QStringLiteral("L%1").arg(i);
    ay_->append(cats);
    for (LayerBranch b : {LayerBranch::Attention, LayerBranch::Mamba, LayerBranch::RoutedAttention, LayerBranch::RoutedSsm,
                          LayerBranch::RoutedBoth}) {
        if (std::find(branch.begin(), branch.begin() + n, b) == branch.begin() + n) continue;
        auto* set = new QBarSet(branch_name(b));
        set->setColor(branch_color(b));
        set->setBorderColor(branch_color(b).darker(115));
        for (int i = n - 1; i >= 0; --i) set->append(branch[size_t(i)] == b ? values[size_t(i)] : 0.0);
        series_->append(set);
    }
    const double mx = n ? *std::max_element(values_.begin(), values_.end()) : 0.0;
    const double step = nice_ceil(std::max(mx * 1.05, 1e-12) / 5);
    ax_->setTickType(QValueAxis::TicksDynamic);
    ax_->setTickAnchor(0);
    ax_->setTickInterval(step);
    ax_->setRange(0, step * std::max(1.0, std::ceil(mx * 1.05 / step)));
    bars_ = n;
}

double LayerBarChart::barValue(int il) const {
    return il >= 0 && size_t(il) < values_.size() ? values_[size_t(il)] : 0.0;
}

}  // namespace ef::views
