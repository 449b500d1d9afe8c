#include "views/quant_summary_model.h"

#include <QBrush>
#include <QColor>

#include "views/format_util.h"

namespace ef::views {

QuantSummaryModel::QuantSummaryModel(QObject* parent) : QAbstractTableModel(parent) {}

void QuantSummaryModel::setReport(const ModelQuantReport& r) {
    beginResetModel();
    report_ = r;
    endResetModel();
}

void QuantSummaryModel::clear() { setReport({}); }

int QuantSummaryModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(report_.tensors.size());
}

int QuantSummaryModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant QuantSummaryModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount) return {};
    const TensorQuantReport& t = report_.tensors[size_t(index.row())];
    const bool kept = t.method == "kept";
    if (role == FallbackRole) return t.fallback;
    if (role == Qt::BackgroundRole) {
        if (t.fallback) return QBrush(QColor(255, 236, 179));  // amber: not the asked-for type
        return {};
    }
    if (role == Qt::ToolTipRole) {
        if (t.fallback)
            return tr("%1: the target block does not divide the row length %2, so %3 is used instead")
                .arg(to_qstring(t.name)).arg(t.cols).arg(to_qstring(t.dtype));
        return to_qstring(t.name);
    }
    if (role == Qt::TextAlignmentRole)
        return index.column() >= CodeBitsColumn ? QVariant(int(Qt::AlignRight | Qt::AlignVCenter)) : QVariant();
    if (role == SortRole) {
        switch (Column(index.column())) {
            case NameColumn: return to_qstring(t.name);
            case ShapeColumn: return qlonglong(t.rows * t.cols);
            case FromColumn: return to_qstring(t.source_dtype);
            case ToColumn: return to_qstring(t.dtype);
            case MethodColumn: return to_qstring(t.method);
            case CodeBitsColumn: return t.code_bits;
            case EffectiveBitsColumn: return t.effective_bits;
            case RmseColumn: return t.rmse;
            case OutliersColumn: return qlonglong(t.nnz);
            case BytesColumn: return qulonglong(t.bytes);
            case ColumnCount: break;
        }
        return {};
    }
    if (role != Qt::DisplayRole) return {};
    switch (Column(index.column())) {
        case NameColumn: return to_qstring(t.name);
        case ShapeColumn: return QString("(%1, %2)").arg(t.rows).arg(t.cols);
        case FromColumn: return to_qstring(t.source_dtype);
        case ToColumn: return to_qstring(t.dtype) + (t.fallback ? tr(" (fallback)") : QString());
        case MethodColumn: return to_qstring(t.method);
        case CodeBitsColumn: return QString::number(t.code_bits, 'f', 2);
        case EffectiveBitsColumn: return QString::number(t.effective_bits, 'f', 3);
        case RmseColumn: return kept ? QString("—") : QString::number(t.rmse, 'g', 4);
        case OutliersColumn: return t.nnz ? grouped(t.nnz) : QString();
        case BytesColumn: return human_bytes(t.bytes);
        case ColumnCount: break;
    }
    return {};
}

QVariant QuantSummaryModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole || section < 0 || section >= ColumnCount) return {};
    static const char* const names[] = {"Tensor", "Shape", "From", "To", "Method", "Code bits", "Eff. bits", "RMSE",
                                        "Outliers", "Bytes"};
    return tr(names[section]);
}

}  // namespace ef::views
