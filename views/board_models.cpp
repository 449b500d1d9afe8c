#include "views/board_models.h"

#include <QBrush>
#include <QColor>
#include <algorithm>
#include <cmath>

#include "core/remote/ssh_session.h"
#include "views/format_util.h"

namespace ef::views {

namespace {
const QColor kErrorColor(192, 48, 48);
const QColor kOkColor(30, 120, 60);
QVariant right_aligned() { return QVariant(int(Qt::AlignRight | Qt::AlignVCenter)); }
}  // namespace

// ---------------------------------------------------------------------------------------------

BoardListModel::BoardListModel(QObject* parent) : QAbstractTableModel(parent) {}

void BoardListModel::setBoards(std::vector<remote::BoardProfile> boards) {
    beginResetModel();
    boards_ = std::move(boards);
    endResetModel();
}

int BoardListModel::rowOf(const QString& name) const {
    for (size_t i = 0; i < boards_.size(); ++i)
        if (to_qstring(boards_[i].name) == name) return int(i);
    return -1;
}

void BoardListModel::setStatus(const QString& name, const QString& text, bool error) {
    status_[name] = {text, error};
    if (const int r = rowOf(name); r >= 0) emit dataChanged(index(r, StatusColumn), index(r, StatusColumn));
}

int BoardListModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(boards_.size()); }
int BoardListModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant BoardListModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= int(boards_.size()) || index.column() >= ColumnCount) return {};
    const auto& b = boards_[size_t(index.row())];
    const QString name = to_qstring(b.name);
    if (role == Qt::DisplayRole || role == Qt::ToolTipRole) {
        switch (index.column()) {
        case NameColumn: return name;
        case AddressColumn: return to_qstring(remote::board_address(b));
        case ArchColumn: return to_qstring(b.arch);
        case AuthColumn: return b.use_agent() ? tr("ssh-agent") : to_qstring(b.key_file);
        case WorkDirColumn: return to_qstring(b.work_dir);
        case WrapperColumn: return to_qstring(b.exec_wrapper);
        case StatusColumn: return status_.value(name).text;
        }
    }
    if (role == Qt::ForegroundRole && index.column() == StatusColumn && status_.contains(name))
        return QBrush(status_.value(name).error ? kErrorColor : kOkColor);
    return {};
}

QVariant BoardListModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole || section < 0 || section >= ColumnCount) return {};
    static const char* names[] = {"Board", "Address", "Arch", "Status", "Key", "Work dir", "Exec wrapper"};
    return tr(names[section]);
}

// ---------------------------------------------------------------------------------------------

ProfileResultsModel::ProfileResultsModel(QObject* parent) : QAbstractTableModel(parent) {}

void ProfileResultsModel::setRows(ProfileRows rows) {
    beginResetModel();
    rows_ = std::move(rows);
    endResetModel();
}

const ProfileRow* ProfileResultsModel::row(int r) const {
    return rows_ && r >= 0 && r < int(rows_->size()) ? &(*rows_)[size_t(r)] : nullptr;
}

int ProfileResultsModel::rowCount(const QModelIndex& parent) const { return parent.isValid() || !rows_ ? 0 : int(rows_->size()); }
int ProfileResultsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant ProfileResultsModel::data(const QModelIndex& index, int role) const {
    const ProfileRow* r = index.isValid() && index.column() < ColumnCount ? row(index.row()) : nullptr;
    if (!r) return {};
    const int c = index.column();
    if (c == TargetColumn && (role == Qt::DisplayRole || role == ValueRole)) return r->target;
    if (c == ArchColumn && (role == Qt::DisplayRole || role == ValueRole)) return r->arch;
    if (c == ErrorColumn) {
        if (role == Qt::DisplayRole || role == Qt::ToolTipRole || role == ValueRole) return r->error;
        if (role == Qt::ForegroundRole) return QBrush(kErrorColor);
        return {};
    }
    if (!r->report || c == TargetColumn || c == ArchColumn) return {};
    const auto& p = *r->report;
    if (role == Qt::TextAlignmentRole) return right_aligned();
    if (role == ValueRole) {
        switch (c) {
        case ThreadsColumn: return p.n_threads;
        case PrefillColumn: return p.prefill_tps;
        case DecodeColumn: return p.decode_tps;
        case PeakRssColumn: return qulonglong(p.peak_rss_bytes);
        case WeightsColumn: return qulonglong(p.weight_bytes);
        case GflopsColumn: return p.gflops_per_token;
        case WallColumn: return p.wall_s;
        case PerplexityColumn: return std::isnan(p.perplexity) ? QVariant() : QVariant(p.perplexity);
        }
        return {};
    }
    if (role != Qt::DisplayRole) return {};
    auto tps = [](double mean, double sd) { return QStringLiteral("%1 ± %2").arg(mean, 0, 'f', 1).arg(sd, 0, 'f', 1); };
    switch (c) {
    case ThreadsColumn: return p.n_threads;
    case PrefillColumn: return tps(p.prefill_tps, p.prefill_stddev);
    case DecodeColumn: return tps(p.decode_tps, p.decode_stddev);
    case PeakRssColumn: return human_bytes(p.peak_rss_bytes);
    case WeightsColumn: return human_bytes(p.weight_bytes);
    case GflopsColumn: return QString::number(p.gflops_per_token, 'g', 4);
    case WallColumn: return QString::number(p.wall_s, 'f', 2);
    case PerplexityColumn: return std::isnan(p.perplexity) ? QStringLiteral("—") : QString::number(p.perplexity, 'f', 4);
    }
    return {};
}

QVariant ProfileResultsModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole || section < 0 || section >= ColumnCount) return {};
    static const char* names[] = {"Target",    "Arch",        "Threads", "Prefill t/s", "Decode t/s", "Peak RSS",
                                  "Weights",   "GFLOP/token", "Wall s",  "PPL",         "Error"};
    return tr(names[section]);
}

// ---------------------------------------------------------------------------------------------

LayerTimesModel::LayerTimesModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTimesModel::setRows(const ProfileRows& rows) {
    beginResetModel();
    rows_ = rows;
    targets_.clear();
    n_layers_ = 0;
    if (rows_)
        for (const auto& r : *rows_)
            if (r.report) {
                targets_.push_back(&r);
                n_layers_ = std::max(n_layers_, int(r.report->layers.size()));
            }
    endResetModel();
}

int LayerTimesModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : n_layers_; }
// Layer, path, then one column per target.
int LayerTimesModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : 2 + int(targets_.size()); }

QVariant LayerTimesModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= n_layers_ || index.column() >= 2 + int(targets_.size())) return {};
    const int l = index.row();
    if (index.column() < 2) {
        if (role != Qt::DisplayRole) return {};
        if (index.column() == 0) return l;
        for (const ProfileRow* t : targets_)
            if (l < int(t->report->layers.size())) return to_qstring(t->report->layers[size_t(l)].path);
        return {};
    }
    const auto& layers = targets_[size_t(index.column() - 2)]->report->layers;
    if (l >= int(layers.size())) return {};
    const double ms = layers[size_t(l)].ms_per_token;
    if (role == ValueRole) return ms;
    if (role == Qt::DisplayRole) return QString::number(ms, 'f', 4);
    if (role == Qt::TextAlignmentRole) return right_aligned();
    return {};
}

QVariant LayerTimesModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole || section < 0 || section >= 2 + int(targets_.size())) return {};
    if (section == 0) return tr("Layer");
    if (section == 1) return tr("Path");
    return tr("%1 ms/token").arg(targets_[size_t(section - 2)]->target);
}

}  // namespace ef::views
