// One row per tensor with its statistics. The statistics of all tensors are computed on a worker
// thread, one tensor after the other, and handed back by a queued signal as immutable values, so the
// table fills in while the user works; a new model cancels the running job.
#pragma once
#include <QAbstractTableModel>
#include <QFuture>
#include <QThreadPool>
#include <memory>
#include <optional>
#include <vector>

#include "core/model.h"
#include "core/stats.h"

Q_DECLARE_METATYPE(ef::TensorStats)

namespace ef::views {

class TensorTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        NameColumn, DTypeColumn, ShapeColumn, BytesColumn, MinColumn, MaxColumn,
        MeanColumn, StdColumn, KurtosisColumn, MaxOverRmsColumn, ColumnCount
    };
    enum Role {
        TensorIndexRole = Qt::UserRole + 1,  // int index into Model::tensors
        SortRole,                             // numeric value for numeric columns (NaN before computed)
    };

    explicit TensorTableModel(QObject* parent = nullptr);
    ~TensorTableModel() override;

    // Shows the model's tensors and starts computing their statistics.
    void setModel(std::shared_ptr<const Model> model);
    const std::shared_ptr<const Model>& model() const { return model_; }
    void cancelStats();
    bool statsRunning() const { return running_; }
    int statsDone() const { return done_; }
    // Stats of row `row` once computed.
    const TensorStats* stats(int row) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

signals:
    void statsProgress(int done, int total);
    void statsFinished(bool complete);  // false when cancelled or a tensor failed
    // Worker -> UI (queued): one tensor's result, tagged with the job generation.
    void tensorStatsComputed(quint64 generation, int row, ef::TensorStats stats, QString error);
    void jobEnded(quint64 generation, bool complete);

private:
    void onTensorStats(quint64 generation, int row, const ef::TensorStats& stats, const QString& error);
    void onJobEnded(quint64 generation, bool complete);

    std::shared_ptr<const Model> model_;
    std::vector<std::optional<TensorStats>> stats_;
    std::vector<QString> errors_;
    std::shared_ptr<Progress> progress_;  // of the running job
    quint64 generation_ = 0;
    int done_ = 0;
    bool running_ = false;
    QFuture<void> future_;
    QThreadPool pool_;  // one worker: jobs run one after the other
};

}  // namespace ef::views
