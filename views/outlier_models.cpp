#include "views/outlier_models.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "views/format_util.h"

namespace ef::views {

QString outlier_statistic_name(OutlierStatistic s) {
    switch (s) {
        case OutlierStatistic::MaxOverRms: return QObject::tr("max|w| / rms");
        case OutlierStatistic::Kurtosis: return QObject::tr("excess kurtosis");
        case OutlierStatistic::BeyondKSigma: return QObject::tr("beyond kσ");
        case OutlierStatistic::Budget: return QObject::tr("outlier budget");
    }
    return {};
}

double overview_value(const TensorOutliers& t, OutlierStatistic s, int64_t b) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (b < 0 || b >= t.blocks_per_row) return nan;
    double sum = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < t.rows; ++r) {
        const size_t i = t.index(r, b);
        double v = nan;
        switch (s) {
            case OutlierStatistic::MaxOverRms: v = t.block_max_over_rms[i]; break;
            case OutlierStatistic::Kurtosis: v = t.block_kurtosis[i]; break;
            case OutlierStatistic::BeyondKSigma: v = t.block_beyond_k_sigma[i]; break;
            case OutlierStatistic::Budget: v = t.block_budget[i]; break;
        }
        if (std::isnan(v)) continue;
        sum += v;
        ++n;
    }
    return n ? sum / double(n) : nan;
}

// ---- overview ----

OutlierOverviewModel::OutlierOverviewModel(QObject* parent) : QAbstractTableModel(parent) {}

void OutlierOverviewModel::setAnalysis(OutlierAnalysisPtr a) {
    beginResetModel();
    analysis_ = std::move(a);
    order_.clear();
    cols_ = 0;
    if (analysis_) {
        const auto& ts = analysis_->tensors;
        for (int i = 0; i < int(ts.size()); ++i) order_.push_back(i);
        // Layers ascending, tensors outside the stack (-1) last; stable keeps model order inside.
        auto key = [&](int i) { return ts[size_t(i)].layer < 0 ? std::numeric_limits<int>::max() : ts[size_t(i)].layer; };
        std::stable_sort(order_.begin(), order_.end(), [&](int x, int y) { return key(x) < key(y); });
        for (const auto& t : ts) cols_ = std::max(cols_, int(t.blocks_per_row));
    }
    rebuild();
    endResetModel();
}

void OutlierOverviewModel::setStatistic(OutlierStatistic s) {
    if (s == stat_) return;
    stat_ = s;
    rebuild();
    if (rowCount() && columnCount()) emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

void OutlierOverviewModel::rebuild() {
    values_.assign(order_.size() * size_t(cols_), std::numeric_limits<double>::quiet_NaN());
    for (size_t r = 0; r < order_.size(); ++r)
        for (int c = 0; c < cols_; ++c)
            values_[r * size_t(cols_) + size_t(c)] = overview_value(analysis_->tensors[size_t(order_[r])], stat_, c);
}

const TensorOutliers* OutlierOverviewModel::tensorAt(int row) const {
    if (!analysis_ || row < 0 || row >= int(order_.size())) return nullptr;
    return &analysis_->tensors[size_t(order_[size_t(row)])];
}

double OutlierOverviewModel::value(int row, int col) const {
    if (row < 0 || row >= int(order_.size()) || col < 0 || col >= cols_) return std::numeric_limits<double>::quiet_NaN();
    return values_[size_t(row) * size_t(cols_) + size_t(col)];
}

int OutlierOverviewModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(order_.size()); }
int OutlierOverviewModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : cols_; }

QVariant OutlierOverviewModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
    const double v = value(index.row(), index.column());
    if (role == Qt::DisplayRole) return stat_text(v);
    if (role == ValueRole) return v;
    if (role == Qt::TextAlignmentRole) return int(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant OutlierOverviewModel::headerData(int section, Qt::Orientation o, int role) const {
    if (role != Qt::DisplayRole || !analysis_) return {};
    if (o == Qt::Vertical) {
        const TensorOutliers* t = tensorAt(section);
        return t ? to_qstring(t->name) : QVariant();
    }
    if (section < 0 || section >= cols_) return {};
    const qint64 b = analysis_->block;
    return QString("%1–%2").arg(section * b).arg((section + 1) * b - 1);
}

// ---- layer table ----

OutlierLayerModel::OutlierLayerModel(QObject* parent) : QAbstractTableModel(parent) {}

void OutlierLayerModel::setAnalysis(OutlierAnalysisPtr a) {
    beginResetModel();
    analysis_ = std::move(a);
    endResetModel();
}

int OutlierLayerModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !analysis_ ? 0 : int(analysis_->layers.size());
}
int OutlierLayerModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant OutlierLayerModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
    const LayerOutliers& l = analysis_->layers[size_t(index.row())];
    if (role == SortRole) {
        switch (index.column()) {
            case LayerColumn: return l.layer < 0 ? std::numeric_limits<int>::max() : l.layer;
            case WeightsColumn: return qlonglong(l.weights);
            case BudgetShareColumn: return l.budget_share;
            case BudgetColumn: return qlonglong(l.budget);
            case BeyondColumn: return qlonglong(l.beyond_k_sigma);
            case MaxOverRmsColumn: return l.max_over_rms;
        }
        return {};
    }
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
            case LayerColumn: return l.layer < 0 ? tr("other") : QString::number(l.layer);
            case WeightsColumn: return grouped(l.weights);
            case BudgetShareColumn: return QString::number(100.0 * l.budget_share, 'f', 2) + " %";
            case BudgetColumn: return grouped(l.budget);
            case BeyondColumn: return grouped(l.beyond_k_sigma);
            case MaxOverRmsColumn: return stat_text(l.max_over_rms);
        }
        return {};
    }
    if (role == Qt::ToolTipRole && index.column() == BudgetShareColumn)
        return tr("%1 % of the model's outlier budget; %2 % of its weights")
            .arg(100.0 * l.budget_share, 0, 'f', 2)
            .arg(100.0 * l.weight_share, 0, 'f', 2);
    if (role == Qt::TextAlignmentRole)
        return int((index.column() == LayerColumn ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignVCenter);
    return {};
}

QVariant OutlierLayerModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
        case LayerColumn: return tr("Layer");
        case WeightsColumn: return tr("Weights");
        case BudgetShareColumn: return tr("Budget share");
        case BudgetColumn: return tr("Outliers");
        case BeyondColumn: return tr("Beyond kσ");
        case MaxOverRmsColumn: return tr("max|w|/rms");
    }
    return {};
}

}  // namespace ef::views
