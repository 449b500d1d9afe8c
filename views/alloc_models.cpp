#include "views/alloc_models.h"

#include <QAbstractProxyModel>
#include <QBrush>
#include <QColor>
#include <QComboBox>
#include <QFont>
#include <algorithm>

#include "views/format_util.h"

namespace ef::views {

namespace {
double effective_bits(const AllocOption& o, int64_t weights) { return weights > 0 ? 8.0 * double(o.bytes) / double(weights) : 0.0; }
}  // namespace

// ---- AllocUnitModel ----

AllocUnitModel::AllocUnitModel(QObject* parent) : QAbstractTableModel(parent) {}

void AllocUnitModel::setMeasurement(AllocMeasurementPtr m) {
    beginResetModel();
    measurement_ = std::move(m);
    pins_.assign(measurement_ ? measurement_->result.plan.units.size() : 0, std::nullopt);
    alloc_.reset();
    endResetModel();
}

void AllocUnitModel::setAllocation(std::optional<AllocResult> r) {
    if (r && measurement_ && r->choice.size() != measurement_->result.plan.units.size()) r.reset();
    alloc_ = std::move(r);
    if (rowCount() > 0) emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
}

const AllocUnit* AllocUnitModel::unit(int row) const {
    if (!measurement_ || row < 0 || row >= int(measurement_->result.plan.units.size())) return nullptr;
    return &measurement_->result.plan.units[size_t(row)];
}

const AllocOption* AllocUnitModel::chosen(int row) const {
    const AllocUnit* u = unit(row);
    if (!u || !alloc_) return nullptr;
    const int c = alloc_->choice[size_t(row)];
    return c >= 0 && c < int(u->options.size()) ? &u->options[size_t(c)] : nullptr;
}

std::vector<int> AllocUnitModel::widths(int row) const {
    std::vector<int> w;
    if (const AllocUnit* u = unit(row))
        for (const auto& o : u->options) w.push_back(o.bits);
    return w;
}

bool AllocUnitModel::setPin(int row, int bits) {
    const AllocUnit* u = unit(row);
    if (!u) return false;
    std::optional<int> pin;
    if (bits != 0) {
        for (size_t i = 0; i < u->options.size(); ++i)
            if (u->options[i].bits == bits) pin = int(i);
        if (!pin) return false;
    }
    if (pins_[size_t(row)] == pin) return true;
    pins_[size_t(row)] = pin;
    emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
    emit pinsChanged();
    return true;
}

void AllocUnitModel::clearPins() {
    bool any = false;
    for (auto& p : pins_) any = any || p.has_value(), p.reset();
    if (!any) return;
    if (rowCount() > 0) emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
    emit pinsChanged();
}

std::vector<AllocUnit> AllocUnitModel::unitsWithPins() const {
    if (!measurement_) return {};
    std::vector<AllocUnit> units = measurement_->result.plan.units;
    for (size_t i = 0; i < units.size(); ++i) units[i].pin = pins_[i];
    return units;
}

int AllocUnitModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !measurement_ ? 0 : int(measurement_->result.plan.units.size());
}

int AllocUnitModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant AllocUnitModel::data(const QModelIndex& index, int role) const {
    const AllocUnit* u = index.isValid() ? unit(index.row()) : nullptr;
    if (!u || index.column() < 0 || index.column() >= ColumnCount) return {};
    const AllocOption* o = chosen(index.row());
    const auto& pin = pins_[size_t(index.row())];
    const int col = index.column();
    if (role == SortRole || role == Qt::EditRole) {
        switch (col) {
            case UnitColumn: return QString::fromStdString(u->name);
            case WeightsColumn: return qlonglong(u->weights);
            case BitsColumn: return o ? QVariant(o->bits) : QVariant();
            case EffectiveBitsColumn: return o ? QVariant(effective_bits(*o, u->weights)) : QVariant();
            case LossColumn: return o ? QVariant(o->loss) : QVariant();
            case BytesColumn: return o ? QVariant(qulonglong(o->bytes)) : QVariant();
            case PinColumn: return pin ? u->options[size_t(*pin)].bits : 0;
        }
    }
    if (role == Qt::DisplayRole) {
        switch (col) {
            case UnitColumn: return QString::fromStdString(u->name);
            case WeightsColumn: return grouped(u->weights);
            case BitsColumn: return o ? QString::number(o->bits) : QString("—");
            case EffectiveBitsColumn: return o ? QString::number(effective_bits(*o, u->weights), 'f', 3) : QString("—");
            case LossColumn: return o ? QString::number(o->loss, 'g', 4) : QString("—");
            case BytesColumn: return o ? grouped(qint64(o->bytes)) : QString("—");
            case PinColumn: return pin ? tr("%1 bits").arg(u->options[size_t(*pin)].bits) : tr("auto");
        }
    }
    if (role == Qt::TextAlignmentRole && col != UnitColumn && col != PinColumn) return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::FontRole && col == PinColumn && pin) {
        QFont f;
        f.setBold(true);
        return f;
    }
    if (role == Qt::BackgroundRole && pin) return QBrush(QColor(255, 243, 214));
    if (role == Qt::ToolTipRole) {
        QString t = tr("%1: %2 tensor(s)").arg(QString::fromStdString(u->name)).arg(u->tensors.size());
        for (const auto& name : u->tensors) t += "\n  " + QString::fromStdString(name);
        if (col == PinColumn) t += tr("\nDouble-click to pin this unit's width (auto: the solver chooses).");
        return t;
    }
    return {};
}

bool AllocUnitModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (!index.isValid() || index.column() != PinColumn || role != Qt::EditRole) return false;
    bool ok = false;
    const int bits = value.toInt(&ok);
    return ok && setPin(index.row(), bits);
}

Qt::ItemFlags AllocUnitModel::flags(const QModelIndex& index) const {
    if (!index.isValid()) return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemNeverHasChildren;
    if (index.column() == PinColumn) f |= Qt::ItemIsEditable;
    return f;
}

QVariant AllocUnitModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, o, role);
    const bool proxy = measurement_ && measurement_->result.proxy;
    switch (section) {
        case UnitColumn: return tr("Unit");
        case WeightsColumn: return tr("Weights");
        case BitsColumn: return tr("Bits");
        case EffectiveBitsColumn: return tr("Eff. bits");
        case LossColumn: return proxy ? tr("Proxy error") : tr("KL (nats)");
        case BytesColumn: return tr("Bytes");
        case PinColumn: return tr("Pin");
    }
    return {};
}

// ---- AllocOptionModel ----

AllocOptionModel::AllocOptionModel(QObject* parent) : QAbstractTableModel(parent) {}

void AllocOptionModel::setUnit(std::optional<AllocUnit> unit, int chosen, int pinned) {
    beginResetModel();
    unit_ = std::move(unit);
    chosen_ = chosen;
    pinned_ = pinned;
    endResetModel();
}

int AllocOptionModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !unit_ ? 0 : int(unit_->options.size());
}

int AllocOptionModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant AllocOptionModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || !unit_ || index.row() >= int(unit_->options.size()) || index.column() >= ColumnCount) return {};
    const AllocOption& o = unit_->options[size_t(index.row())];
    const bool is_chosen = index.row() == chosen_, is_pinned = index.row() == pinned_;
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
            case BitsColumn: return QString::number(o.bits);
            case EffectiveBitsColumn: return QString::number(effective_bits(o, unit_->weights), 'f', 3);
            case BytesColumn: return grouped(qint64(o.bytes));
            case LossColumn: return QString::number(o.loss, 'g', 4);
            case StateColumn: return is_pinned ? tr("pinned") : is_chosen ? tr("chosen") : QString();
        }
    }
    if (role == Qt::UserRole) {
        switch (index.column()) {
            case BitsColumn: return o.bits;
            case EffectiveBitsColumn: return effective_bits(o, unit_->weights);
            case BytesColumn: return qulonglong(o.bytes);
            case LossColumn: return o.loss;
            case StateColumn: return is_chosen;
        }
    }
    if (role == Qt::TextAlignmentRole && index.column() != StateColumn) return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::FontRole && is_chosen) {
        QFont f;
        f.setBold(true);
        return f;
    }
    return {};
}

QVariant AllocOptionModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, o, role);
    switch (section) {
        case BitsColumn: return tr("Bits");
        case EffectiveBitsColumn: return tr("Eff. bits");
        case BytesColumn: return tr("Bytes");
        case LossColumn: return tr("Loss");
        case StateColumn: return tr("");
    }
    return {};
}

// ---- PinDelegate ----

QWidget* PinDelegate::createEditor(QWidget* parent, const QStyleOptionViewItem&, const QModelIndex& index) const {
    auto* combo = new QComboBox(parent);
    combo->addItem(tr("auto"), 0);
    // The widths come from the source model (the view may sit behind a proxy).
    const QAbstractItemModel* m = index.model();
    QModelIndex src = index;
    while (auto* px = qobject_cast<const QAbstractProxyModel*>(m)) {
        src = px->mapToSource(src);
        m = px->sourceModel();
    }
    if (auto* um = qobject_cast<const AllocUnitModel*>(m))
        for (int b : um->widths(src.row())) combo->addItem(tr("%1 bits").arg(b), b);
    return combo;
}

void PinDelegate::setEditorData(QWidget* editor, const QModelIndex& index) const {
    auto* combo = static_cast<QComboBox*>(editor);
    const int i = combo->findData(index.data(Qt::EditRole).toInt());
    combo->setCurrentIndex(std::max(0, i));
}

void PinDelegate::setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const {
    auto* combo = static_cast<QComboBox*>(editor);
    model->setData(index, combo->currentData(), Qt::EditRole);
}

}  // namespace ef::views
