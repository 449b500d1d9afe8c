#include "views/router_models.h"

#include <cmath>

namespace ef::views {

QColor router_branch_color(bool ssm) { return ssm ? QColor(0xe0, 0x7b, 0x24) : QColor(0x2f, 0x6f, 0xb5); }

RouterLayerModel::RouterLayerModel(QObject* parent) : QAbstractTableModel(parent) {}

void RouterLayerModel::setAnalysis(RouterAnalysisPtr a) {
    beginResetModel();
    analysis_ = std::move(a);
    endResetModel();
}

int RouterLayerModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !analysis_ ? 0 : int(analysis_->layers.size());
}

int RouterLayerModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant RouterLayerModel::data(const QModelIndex& index, int role) const {
    if (!analysis_ || !index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount) return {};
    const RouterLayer& l = analysis_->layers[size_t(index.row())];
    const int c = index.column();
    if (role == BranchColorRole) return router_branch_color(l.ssm);
    if (role == SortRole) {
        switch (c) {
            case LayerColumn: return qlonglong(l.layer);
            case GateColumn: return l.gate;
            case SsmShareColumn: return 1.0 - l.gate;
            case BranchColumn: return l.ssm ? 1 : 0;
            case EntropyColumn: return l.entropy_bits;
        }
        return {};
    }
    if (role == Qt::DisplayRole) {
        switch (c) {
            case LayerColumn: return QString::number(l.layer);
            case GateColumn: return QString::number(l.gate, 'f', 4);
            case SsmShareColumn: return QString::number(1.0 - l.gate, 'f', 4);
            case BranchColumn: return l.ssm ? tr("SSM") : tr("attention");
            case EntropyColumn: return QString::number(l.entropy_bits, 'f', 4);
        }
        return {};
    }
    if (role == Qt::DecorationRole && c == BranchColumn) return router_branch_color(l.ssm);
    if (role == Qt::TextAlignmentRole && c != BranchColumn) return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole) {
        QString t = tr("layer %1: g = %2 (attention share), 1 − g = %3 (SSM share); hard routing runs %4; entropy %5 bits")
                        .arg(l.layer)
                        .arg(l.gate, 0, 'f', 4)
                        .arg(1.0 - l.gate, 0, 'f', 4)
                        .arg(l.ssm ? tr("the SSM branch") : tr("attention"))
                        .arg(l.entropy_bits, 0, 'f', 4);
        if (std::isfinite(l.alpha)) t += tr("; router logit α = %1").arg(double(l.alpha), 0, 'g', 5);
        return t;
    }
    return {};
}

QVariant RouterLayerModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, o, role);
    switch (section) {
        case LayerColumn: return tr("Layer");
        case GateColumn: return tr("g (attention)");
        case SsmShareColumn: return tr("1 − g (SSM)");
        case BranchColumn: return tr("Branch");
        case EntropyColumn: return tr("Entropy (bits)");
    }
    return {};
}

}  // namespace ef::views
