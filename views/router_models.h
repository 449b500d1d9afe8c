// The router view's per-layer table (issue 5): one row per layer of an ef::RouterAnalysis
// (runtime/router_analysis.h) — layer, g (attention share), 1 - g (SSM share), the branch hard
// routing takes, the gate's entropy in bits — with the branch colour as a role so every view of
// the router colours layers the same way (and like `edgefusion analyze-router --plot`).
#pragma once
#include <QAbstractTableModel>
#include <QColor>
#include <memory>

#include "runtime/router_analysis.h"

namespace ef::views {

// Attention #2f6fb5, SSM #e07b24 (the CLI plot's colours).
QColor router_branch_color(bool ssm);

using RouterAnalysisPtr = std::shared_ptr<const RouterAnalysis>;

class RouterLayerModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { LayerColumn, GateColumn, SsmShareColumn, BranchColumn, EntropyColumn, ColumnCount };
    static constexpr int SortRole = Qt::UserRole;             // numbers (branch: 1 = SSM, 0 = attention)
    static constexpr int BranchColorRole = Qt::UserRole + 1;  // QColor of the branch taken, every column

    explicit RouterLayerModel(QObject* parent = nullptr);
    void setAnalysis(RouterAnalysisPtr a);  // null: empty
    const RouterAnalysis* analysis() const { return analysis_.get(); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    RouterAnalysisPtr analysis_;
};

}  // namespace ef::views
