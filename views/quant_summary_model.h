// The Quantize & Export summary's per-tensor table (issue 4, GUI): one row per weight of a
// ModelQuantReport (name, shape, source dtype -> dtype, method, code bits, effective bits, RMSE,
// outliers, bytes). Rows that use a fallback type (the target's block does not divide the row) are
// tinted and say so in their tooltip.
#pragma once
#include <QAbstractTableModel>

#include "quant/quantize_model.h"

namespace ef::views {

class QuantSummaryModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        NameColumn,
        ShapeColumn,
        FromColumn,
        ToColumn,
        MethodColumn,
        CodeBitsColumn,
        EffectiveBitsColumn,
        RmseColumn,
        OutliersColumn,
        BytesColumn,
        ColumnCount
    };
    static constexpr int SortRole = Qt::UserRole;  // raw numbers / strings for QSortFilterProxyModel
    static constexpr int FallbackRole = Qt::UserRole + 1;

    explicit QuantSummaryModel(QObject* parent = nullptr);
    void setReport(const ModelQuantReport& r);
    void clear();
    const ModelQuantReport& report() const { return report_; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    ModelQuantReport report_;
};

}  // namespace ef::views
