#include "views/compare_models.h"

#include "views/format_util.h"

namespace ef::views {

CompareTableModel::CompareTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void CompareTableModel::setResult(CompareResultPtr r) {
    beginResetModel();
    result_ = std::move(r);
    endResetModel();
}

int CompareTableModel::column(Metric m, int task) const {
    if (m < TaskMetric) return int(m);
    if (m == TaskMetric) return task >= 0 && task < tasks() ? int(TaskMetric) + task : -1;
    return int(m) - 1 + tasks();
}

CompareTableModel::Metric CompareTableModel::metricOf(int c, int* task) const {
    if (task) *task = 0;
    if (c < int(TaskMetric)) return Metric(c);
    if (c < int(TaskMetric) + tasks()) {
        if (task) *task = c - int(TaskMetric);
        return TaskMetric;
    }
    return Metric(c - tasks() + 1);
}

int CompareTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !result_ ? 0 : int(result_->variants.size());
}

int CompareTableModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(DescriptionMetric) + tasks();  // DescriptionMetric - 1 + tasks + 1
}

QVariant CompareTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || !result_ || index.row() >= rowCount() || index.column() >= columnCount()) return {};
    const VariantResult& v = result_->variants[size_t(index.row())];
    int task = 0;
    const Metric m = metricOf(index.column(), &task);
    if (role == Qt::ToolTipRole) return to_qstring(v.description);
    if (role == Qt::TextAlignmentRole)
        return m == VariantMetric || m == DTypesMetric || m == DescriptionMetric ? QVariant() : QVariant(int(Qt::AlignRight | Qt::AlignVCenter));
    double x = 0;
    switch (m) {
        case VariantMetric: return role == Qt::DisplayRole || role == SortRole ? QVariant(to_qstring(v.name)) : QVariant();
        case DTypesMetric:
        case DescriptionMetric: {
            if (role != Qt::DisplayRole && role != SortRole) return {};
            if (m == DescriptionMetric) return to_qstring(v.description);
            QString s;
            for (const auto& [name, n] : v.dtypes) s += (s.isEmpty() ? "" : ", ") + QString("%1 %2").arg(n).arg(to_qstring(name));
            return s;
        }
        case PplMetric: x = v.ppl; break;
        case PplErrorMetric: x = v.ppl_error; break;
        case KlMetric: x = v.kl; break;
        case KlErrorMetric: x = v.kl_error; break;
        case Top1Metric: x = v.top1; break;
        case TaskMetric: {
            const std::string& name = result_->tasks[size_t(task)];
            auto it = v.task_acc.find(name);
            x = it == v.task_acc.end() ? 0.0 : it->second;
            break;
        }
        case MeanAccMetric: x = v.mean_acc; break;
        case WeightMbMetric: x = megabytes(v.weight_bytes); break;
        case StateMbMetric: x = megabytes(v.state_bytes); break;
        case MemoryMbMetric: x = megabytes(v.memory_bytes); break;
        case TokensPerSecondMetric: x = v.tokens_per_s; break;
        case GflopsMetric: x = v.gflops_per_token; break;
        case BitsMetric: x = v.bits_per_weight; break;
        case QuantBitsMetric: x = v.quant_bits_per_weight; break;
    }
    if (role == SortRole) return x;
    if (role != Qt::DisplayRole) return {};
    switch (m) {
        case Top1Metric:
        case TaskMetric:
        case MeanAccMetric: return QString::number(100.0 * x, 'f', 1) + " %";
        case WeightMbMetric:
        case StateMbMetric:
        case MemoryMbMetric: return QString::number(x, 'f', 3);
        case TokensPerSecondMetric: return QString::number(x, 'f', 1);
        case BitsMetric:
        case QuantBitsMetric: return QString::number(x, 'f', 3);
        default: return QString::number(x, 'g', 5);
    }
}

QVariant CompareTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || section < 0 || section >= columnCount()) return {};
    int task = 0;
    const Metric m = metricOf(section, &task);
    if (role == Qt::ToolTipRole) {
        switch (m) {
            case KlMetric: return tr("KL(reference ‖ variant) on the held-out windows");
            case MemoryMbMetric: return tr("weights + KV cache / SSM state for n_ctx positions (computed), MB = 10⁶ bytes");
            case BitsMetric: return tr("effective bits per weight over all weights (scales and outliers counted)");
            case QuantBitsMetric: return tr("effective bits per weight over the 2-D projection weights");
            case TokensPerSecondMetric: return tr("decode speed, best of 3");
            default: return {};
        }
    }
    if (role != Qt::DisplayRole) return {};
    switch (m) {
        case VariantMetric: return tr("Variant");
        case PplMetric: return tr("PPL");
        case PplErrorMetric: return tr("PPL ±");
        case KlMetric: return tr("KL");
        case KlErrorMetric: return tr("KL ±");
        case Top1Metric: return tr("Top-1");
        case TaskMetric: return to_qstring(result_->tasks[size_t(task)]);
        case MeanAccMetric: return tr("Mean acc.");
        case WeightMbMetric: return tr("Weights MB");
        case StateMbMetric: return tr("State MB");
        case MemoryMbMetric: return tr("Memory MB");
        case TokensPerSecondMetric: return tr("tok/s");
        case GflopsMetric: return tr("GFLOPs/tok");
        case BitsMetric: return tr("Bits/w");
        case QuantBitsMetric: return tr("Quant bits/w");
        case DTypesMetric: return tr("Types");
        case DescriptionMetric: return tr("Description");
    }
    return {};
}

}  // namespace ef::views
