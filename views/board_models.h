// The Boards dock's item models: the boards of boards.json with each board's latest test / push
// outcome, and the profile results of one run (board runs and the local run side by side, a failed
// or cancelled target as a row with its error and no numbers), plus their per-layer decode times.
#pragma once
#include <QAbstractTableModel>
#include <QHash>
#include <memory>
#include <optional>
#include <vector>

#include "core/remote/board_profile.h"
#include "core/remote/run_target.h"

namespace ef::views {

class BoardListModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { NameColumn, AddressColumn, ArchColumn, StatusColumn, AuthColumn, WorkDirColumn, WrapperColumn, ColumnCount };

    explicit BoardListModel(QObject* parent = nullptr);
    void setBoards(std::vector<remote::BoardProfile> boards);
    const std::vector<remote::BoardProfile>& boards() const { return boards_; }
    int rowOf(const QString& name) const;  // -1 when absent

    // The latest outcome shown in the Status column; kept by name across reloads.
    void setStatus(const QString& name, const QString& text, bool error);
    QString status(const QString& name) const { return status_.value(name).text; }
    bool statusIsError(const QString& name) const { return status_.value(name).error; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    struct Status {
        QString text;
        bool error = false;
    };
    std::vector<remote::BoardProfile> boards_;
    QHash<QString, Status> status_;
};

// One target of a profile run: its report, or why there is none.
struct ProfileRow {
    QString target, arch;
    bool local = false;  // this machine (a board may be called "local" too)
    std::optional<remote::ProfileReport> report;
    QString error;
};
using ProfileRows = std::shared_ptr<const std::vector<ProfileRow>>;

class ProfileResultsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        TargetColumn,
        ArchColumn,
        ThreadsColumn,
        PrefillColumn,
        DecodeColumn,
        PeakRssColumn,
        WeightsColumn,
        GflopsColumn,
        WallColumn,
        PerplexityColumn,
        ErrorColumn,
        ColumnCount
    };
    static constexpr int ValueRole = Qt::UserRole;  // the raw number (t/s, bytes, s); invalid when none

    explicit ProfileResultsModel(QObject* parent = nullptr);
    void setRows(ProfileRows rows);
    void clear() { setRows(nullptr); }
    const ProfileRow* row(int r) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    ProfileRows rows_;
};

// Decode ms/token of each layer (rows), one column per target that has a report (the local run
// beside the boards): where a board is slow.
class LayerTimesModel : public QAbstractTableModel {
    Q_OBJECT
public:
    static constexpr int ValueRole = Qt::UserRole;

    explicit LayerTimesModel(QObject* parent = nullptr);
    void setRows(const ProfileRows& rows);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    std::vector<const ProfileRow*> targets_;  // rows with a report, into rows_
    ProfileRows rows_;
    int n_layers_ = 0;
};

}  // namespace ef::views
