#include "views/tensor_table_model.h"

#include <QColor>
#include <QtConcurrent>
#include <cmath>
#include <limits>

#include "views/format_util.h"

namespace ef::views {

TensorTableModel::TensorTableModel(QObject* parent) : QAbstractTableModel(parent) {
    qRegisterMetaType<ef::TensorStats>();
    pool_.setMaxThreadCount(1);
    connect(this, &TensorTableModel::tensorStatsComputed, this, &TensorTableModel::onTensorStats,
            Qt::QueuedConnection);
    connect(this, &TensorTableModel::jobEnded, this, &TensorTableModel::onJobEnded, Qt::QueuedConnection);
}

TensorTableModel::~TensorTableModel() {
    // The worker emits on `this`: stop it and wait before the object goes away.
    if (progress_) progress_->cancel();
    pool_.waitForDone();
}

void TensorTableModel::cancelStats() {
    if (progress_) progress_->cancel();
}

void TensorTableModel::setModel(std::shared_ptr<const Model> model) {
    cancelStats();
    beginResetModel();
    model_ = std::move(model);
    const size_t n = model_ ? model_->tensors.size() : 0;
    stats_.assign(n, std::nullopt);
    errors_.assign(n, QString());
    done_ = 0;
    ++generation_;
    endResetModel();
    running_ = false;
    if (!model_ || n == 0) return;

    running_ = true;
    progress_ = std::make_shared<Progress>();
    // The job owns what it reads (model, cancel flag); results come back through queued signals.
    future_ = QtConcurrent::run(&pool_, [this, gen = generation_, m = model_, p = progress_] {
        bool complete = true;
        for (size_t i = 0; i < m->tensors.size(); ++i) {
            if (p->cancelled()) {
                complete = false;
                break;
            }
            auto s = tensor_stats(m->tensors[i], *p);
            if (s) emit tensorStatsComputed(gen, int(i), *s, QString());
            else if (!p->cancelled()) emit tensorStatsComputed(gen, int(i), TensorStats{}, QString::fromStdString(s.message()));
            if (!s) complete = false;
        }
        emit jobEnded(gen, complete);
    });
}

void TensorTableModel::onTensorStats(quint64 generation, int row, const ef::TensorStats& stats, const QString& error) {
    if (generation != generation_ || row < 0 || size_t(row) >= stats_.size()) return;  // stale job
    if (error.isEmpty()) stats_[size_t(row)] = stats;
    else errors_[size_t(row)] = error;
    ++done_;
    emit dataChanged(index(row, MinColumn), index(row, MaxOverRmsColumn));
    emit statsProgress(done_, int(stats_.size()));
}

void TensorTableModel::onJobEnded(quint64 generation, bool complete) {
    if (generation != generation_) return;
    running_ = false;
    emit statsFinished(complete);
}

const TensorStats* TensorTableModel::stats(int row) const {
    if (row < 0 || size_t(row) >= stats_.size() || !stats_[size_t(row)]) return nullptr;
    return &*stats_[size_t(row)];
}

int TensorTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !model_ ? 0 : int(model_->tensors.size());
}

int TensorTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant TensorTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || !model_ || size_t(index.row()) >= model_->tensors.size()) return {};
    const Tensor& t = model_->tensors[size_t(index.row())];
    const TensorStats* s = stats(index.row());
    const int col = index.column();
    auto stat = [&](int c) -> double {
        if (!s) return std::nan("");
        switch (c) {
            case MinColumn: return s->min;
            case MaxColumn: return s->max;
            case MeanColumn: return s->mean;
            case StdColumn: return s->std;
            case KurtosisColumn: return s->kurtosis;
            case MaxOverRmsColumn: return s->max_abs_over_rms;
        }
        return std::nan("");
    };
    switch (role) {
        case Qt::DisplayRole:
            switch (col) {
                case NameColumn: return QString::fromStdString(t.name);
                case DTypeColumn: return to_qstring(dtype_name(t.dtype));
                case ShapeColumn: return shape_text(t.shape);
                case BytesColumn: return human_bytes(t.nbytes());
            }
            if (!errors_[size_t(index.row())].isEmpty()) return QStringLiteral("error");
            return s ? stat_text(stat(col)) : QStringLiteral("…");
        case SortRole:
            switch (col) {
                case NameColumn: return QString::fromStdString(t.name);
                case DTypeColumn: return to_qstring(dtype_name(t.dtype));
                case ShapeColumn: return qlonglong(t.numel());
                case BytesColumn: return qulonglong(t.nbytes());
            }
            // NaN (not computed yet, or undefined like the kurtosis of a constant) would make the
            // proxy's ordering inconsistent: it sorts as the lowest value instead.
            if (const double v = stat(col); !std::isnan(v)) return v;
            return -std::numeric_limits<double>::infinity();
        case Qt::TextAlignmentRole:
            return col >= BytesColumn ? QVariant(Qt::AlignRight | Qt::AlignVCenter) : QVariant();
        case Qt::ToolTipRole: {
            const QString& err = errors_[size_t(index.row())];
            if (!err.isEmpty()) return err;
            if (s && s->nan_count + s->inf_count > 0)
                return QString("%1 NaN, %2 Inf values (excluded from the statistics)").arg(s->nan_count).arg(s->inf_count);
            return QString::fromStdString(t.name);
        }
        case Qt::ForegroundRole:
            // Flag what a surgeon should look at: non-finite values and heavy outliers.
            if (s && col >= MinColumn && s->nan_count + s->inf_count > 0) return QColor(200, 40, 40);
            if (s && col == MaxOverRmsColumn && s->max_abs_over_rms > 20) return QColor(210, 110, 0);
            if (s && col == KurtosisColumn && s->kurtosis > 10) return QColor(210, 110, 0);
            return {};
        case TensorIndexRole: return index.row();
    }
    return {};
}

QVariant TensorTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal) return {};
    static const char* names[] = {"Name", "dtype", "Shape", "Bytes", "Min", "Max",
                                  "Mean", "Std", "Kurtosis", "max|w|/rms"};
    static const char* tips[] = {"Canonical tensor name", "Element type", "Shape (outermost first)",
                                 "Bytes in the file", "Smallest finite value", "Largest finite value",
                                 "Mean of finite values", "Population standard deviation",
                                 "Excess kurtosis (0 for a normal distribution)",
                                 "Largest magnitude over RMS: the outlier ratio"};
    if (section < 0 || section >= ColumnCount) return {};
    if (role == Qt::DisplayRole) return QString(names[section]);
    if (role == Qt::ToolTipRole) return QString(tips[section]);
    return {};
}

}  // namespace ef::views
