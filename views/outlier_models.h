// Item models of the outlier view (issue 4): the layers x blocks overview and the per-layer table,
// both read from one immutable ef::OutlierAnalysis (core/outlier_analysis.h).
//
// Overview definition: one row per analysed tensor, grouped by layer (layers ascending, then the
// tensors outside the layer stack), model order inside a layer; one column per block column b
// (input columns [b*B, (b+1)*B) ). A cell's value is the MEAN over the tensor's rows of the chosen
// per-block statistic for block column b, skipping NaN blocks (all-zero or constant blocks); NaN when
// no row has a finite value or the tensor has fewer block columns than the widest tensor.
#pragma once
#include <QAbstractTableModel>
#include <vector>

#include "core/outlier_analysis.h"

namespace ef::views {

enum class OutlierStatistic { MaxOverRms, Kurtosis, BeyondKSigma, Budget };
QString outlier_statistic_name(OutlierStatistic s);

// The overview cell value defined above.
double overview_value(const TensorOutliers& t, OutlierStatistic s, int64_t block_col);

class OutlierOverviewModel : public QAbstractTableModel {
    Q_OBJECT
public:
    static constexpr int ValueRole = Qt::UserRole;  // double (NaN for an empty cell)

    explicit OutlierOverviewModel(QObject* parent = nullptr);
    void setAnalysis(OutlierAnalysisPtr a);
    void setStatistic(OutlierStatistic s);
    OutlierStatistic statistic() const { return stat_; }
    const OutlierAnalysis* analysis() const { return analysis_.get(); }
    // Tensor shown in overview row `row` (null out of range).
    const TensorOutliers* tensorAt(int row) const;
    double value(int row, int col) const;  // the cell value (NaN when empty)

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    void rebuild();
    OutlierAnalysisPtr analysis_;
    OutlierStatistic stat_ = OutlierStatistic::MaxOverRms;
    std::vector<int> order_;      // overview row -> index into analysis_->tensors
    int cols_ = 0;
    std::vector<double> values_;  // (rows, cols_) row-major, cached for the current statistic
};

class OutlierLayerModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { LayerColumn, WeightsColumn, BudgetShareColumn, BudgetColumn, BeyondColumn, MaxOverRmsColumn, ColumnCount };
    static constexpr int SortRole = Qt::UserRole;  // numbers for QSortFilterProxyModel

    explicit OutlierLayerModel(QObject* parent = nullptr);
    void setAnalysis(OutlierAnalysisPtr a);
    const OutlierAnalysis* analysis() const { return analysis_.get(); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    OutlierAnalysisPtr analysis_;
};

}  // namespace ef::views
