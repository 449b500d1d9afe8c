// Item models of the bit-allocation editor (issue 4): the per-unit table (one row per unit of the
// measurement: a layer or a tensor) and the selected unit's options. Both read one immutable
// AllocMeasurement (the sensitivities, measured once) plus the current pins and solve, which the view
// (views/alloc_view.h) recomputes with ef::allocate_bits on every budget or pin change.
//
// Pins are edited in the table: the Pin column's EditRole is the pinned code width k (0 = not pinned,
// the solver chooses); the model stores it and emits pinsChanged so the view re-solves.
#pragma once
#include <QAbstractTableModel>
#include <QStyledItemDelegate>
#include <memory>
#include <optional>
#include <vector>

#include "quant/bit_alloc.h"
#include "quant/sensitivity.h"

namespace ef::views {

// One finished measurement: what measure_sensitivity returned and the options it ran with.
struct AllocMeasurement {
    SensitivityResult result;
    SensitivityOptions options;
    int windows = 0;         // calibration windows used
    int window_tokens = 0;   // tokens per window
};
using AllocMeasurementPtr = std::shared_ptr<const AllocMeasurement>;

class AllocUnitModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { UnitColumn, WeightsColumn, BitsColumn, EffectiveBitsColumn, LossColumn, BytesColumn, PinColumn, ColumnCount };
    static constexpr int SortRole = Qt::UserRole;  // numbers for sorting and tests

    explicit AllocUnitModel(QObject* parent = nullptr);
    // A new measurement clears the pins and the solve.
    void setMeasurement(AllocMeasurementPtr m);
    const AllocMeasurement* measurement() const { return measurement_.get(); }
    // The solve to show (choice per unit); nullopt shows no chosen width (e.g. a budget below the minimum).
    void setAllocation(std::optional<AllocResult> r);
    const std::optional<AllocResult>& allocation() const { return alloc_; }

    // Pins as option indexes per unit (nullopt: free).
    const std::vector<std::optional<int>>& pins() const { return pins_; }
    // Pins `row` to code width `bits` (0 unpins); false when bits is not one of the unit's options.
    bool setPin(int row, int bits);
    void clearPins();
    // The measured units with the current pins applied: what allocate_bits gets.
    std::vector<AllocUnit> unitsWithPins() const;
    // Candidate widths of the unit in `row` (for the pin editor).
    std::vector<int> widths(int row) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

signals:
    void pinsChanged();

private:
    const AllocUnit* unit(int row) const;
    const AllocOption* chosen(int row) const;
    AllocMeasurementPtr measurement_;
    std::vector<std::optional<int>> pins_;
    std::optional<AllocResult> alloc_;
};

// The candidate widths of one unit: bits, effective bits, bytes, loss, and which one is chosen/pinned.
class AllocOptionModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { BitsColumn, EffectiveBitsColumn, BytesColumn, LossColumn, StateColumn, ColumnCount };
    explicit AllocOptionModel(QObject* parent = nullptr);
    // unit: null clears; chosen/pinned: option indexes (-1 for none).
    void setUnit(std::optional<AllocUnit> unit, int chosen, int pinned);
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    std::optional<AllocUnit> unit_;
    int chosen_ = -1, pinned_ = -1;
};

// Editor of the Pin column: a combo of "auto" and the unit's widths.
class PinDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    using QStyledItemDelegate::QStyledItemDelegate;
    QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    void setEditorData(QWidget* editor, const QModelIndex& index) const override;
    void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override;
};

}  // namespace ef::views
