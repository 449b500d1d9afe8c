// Per-layer decode time of several run targets as grouped horizontal bars (one colour per target,
// layer 0 at the top), so a board's slow layers stand out beside the local run. It draws whatever
// a LayerTimesModel holds (rows = layers, columns 2.. = targets, LayerTimesModel::ValueRole = ms)
// and redraws when the model resets.
#pragma once
#include <QChartView>

class QAbstractItemModel;
class QHorizontalBarSeries;

namespace ef::views {

class TargetLayerChart : public QChartView {
    Q_OBJECT
public:
    explicit TargetLayerChart(QWidget* parent = nullptr);
    void setModel(QAbstractItemModel* model);
    // The series on display (tests read its bar sets); null before the first model with targets.
    QHorizontalBarSeries* series() const { return series_; }

private:
    void rebuild();
    QAbstractItemModel* model_ = nullptr;
    QHorizontalBarSeries* series_ = nullptr;
};

}  // namespace ef::views
