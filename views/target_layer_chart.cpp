#include "views/target_layer_chart.h"

#include <QAbstractItemModel>
#include <QBarCategoryAxis>
#include <QBarSet>
#include <QHorizontalBarSeries>
#include <QValueAxis>
#include <algorithm>

#include "views/board_models.h"
#include "views/runtime_panel_charts.h"

namespace ef::views {

TargetLayerChart::TargetLayerChart(QWidget* parent) : QChartView(parent) {
    setRenderHint(QPainter::Antialiasing);
    style_chart(chart(), tr("Decode time per layer (ms/token)"));
    setMinimumHeight(180);
}

void TargetLayerChart::setModel(QAbstractItemModel* model) {
    if (model_) disconnect(model_, nullptr, this, nullptr);
    model_ = model;
    if (model_) connect(model_, &QAbstractItemModel::modelReset, this, &TargetLayerChart::rebuild);
    rebuild();
}

void TargetLayerChart::rebuild() {
    QChart* c = chart();
    c->removeAllSeries();  // deletes the old series and its bar sets
    series_ = nullptr;
    for (QAbstractAxis* a : c->axes()) {
        c->removeAxis(a);
        delete a;
    }
    if (!model_) return;
    const int layers = model_->rowCount(), targets = model_->columnCount() - 2;
    if (layers <= 0 || targets <= 0) return;

    series_ = new QHorizontalBarSeries;
    double max_ms = 0;
    for (int t = 0; t < targets; ++t) {
        // Header "<target> ms/token": the legend names the target only.
        QString name = model_->headerData(2 + t, Qt::Horizontal).toString();
        name = name.section(' ', 0, -2);
        auto* set = new QBarSet(name);
        // Layer 0 at the top: categories run bottom-up, so append the last layer first.
        for (int l = layers - 1; l >= 0; --l) {
            const double ms = model_->data(model_->index(l, 2 + t), LayerTimesModel::ValueRole).toDouble();
            set->append(ms);
            max_ms = std::max(max_ms, ms);
        }
        series_->append(set);
    }
    c->addSeries(series_);
    QStringList categories;
    for (int l = layers - 1; l >= 0; --l)
        categories << tr("%1 %2").arg(l).arg(model_->data(model_->index(l, 1)).toString());
    auto* ay = new QBarCategoryAxis;
    ay->append(categories);
    auto* ax = new QValueAxis;
    ax->setRange(0, max_ms > 0 ? max_ms * 1.05 : 1.0);
    ax->setTitleText(tr("ms/token"));
    c->addAxis(ay, Qt::AlignLeft);
    c->addAxis(ax, Qt::AlignBottom);
    series_->attachAxis(ay);
    series_->attachAxis(ax);
    c->legend()->setVisible(true);
    c->legend()->setAlignment(Qt::AlignBottom);
}

}  // namespace ef::views
