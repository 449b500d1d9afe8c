// The compare table (issue 4, "The paper's table", GUI): one row per variant of a CompareResult with
// every metric of VariantResult - perplexity (±), KL vs the reference (±), top-1 agreement, one
// column per zero-shot task and their mean, weight / state / total memory, tokens/s, GFLOPs/token,
// effective bits per weight (all weights, and the quantized projections) and the storage types.
#pragma once
#include <QAbstractTableModel>
#include <memory>

#include "quant/compare.h"

namespace ef::views {

using CompareResultPtr = std::shared_ptr<const CompareResult>;

class CompareTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    // Fixed columns; the task columns sit between MeanAccColumn's predecessors: see column().
    enum Metric {
        VariantMetric,
        PplMetric,
        PplErrorMetric,
        KlMetric,
        KlErrorMetric,
        Top1Metric,
        TaskMetric,  // one column per task of the result
        MeanAccMetric,
        WeightMbMetric,
        StateMbMetric,
        MemoryMbMetric,
        TokensPerSecondMetric,
        GflopsMetric,
        BitsMetric,
        QuantBitsMetric,
        DTypesMetric,
        DescriptionMetric,
    };
    static constexpr int SortRole = Qt::UserRole;  // raw numbers for QSortFilterProxyModel

    explicit CompareTableModel(QObject* parent = nullptr);
    void setResult(CompareResultPtr r);
    const CompareResult* result() const { return result_.get(); }

    // The column of a metric (for TaskMetric: of task `task`), -1 when absent; and the reverse.
    int column(Metric m, int task = 0) const;
    Metric metricOf(int column, int* task = nullptr) const;
    static double megabytes(uint64_t bytes) { return double(bytes) / 1e6; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    int tasks() const { return result_ ? int(result_->tasks.size()) : 0; }
    CompareResultPtr result_;
};

}  // namespace ef::views

Q_DECLARE_METATYPE(ef::views::CompareResultPtr)
