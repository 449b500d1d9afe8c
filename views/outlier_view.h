// The outlier dock (issue 4): runs ef::analyze_outliers on a worker thread for the loaded model
// (options B, k, p; progress and cancel), then shows the layers x blocks overview heatmap coloured by
// the chosen statistic (definition in views/outlier_models.h; colour bar and hover read-out from
// views/heatmap_canvas.h) and the sortable per-layer table. Clicking an overview row asks for that
// tensor's heatmap with its kept outliers marked (tensorActivated + outlierPositions).
#pragma once
#include <QFuture>
#include <QThreadPool>
#include <QWidget>
#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/outlier_analysis.h"
#include "core/progress.h"
#include "core/stats.h"
#include "views/outlier_models.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QSpinBox;
class QTableView;

namespace ef::views {

class ColorBar;
class HeatmapCanvas;

class OutlierView : public QWidget {
    Q_OBJECT
public:
    explicit OutlierView(QWidget* parent = nullptr);
    ~OutlierView() override;  // cancels and waits for the running analysis

    // A new model drops the old analysis (a running one is cancelled).
    void setModel(std::shared_ptr<const Model> model);
    OutlierAnalysisOptions options() const;
    void setOptions(int64_t block, double k, double fraction);
    void setStatistic(OutlierStatistic s);

    // Starts the analysis with the current options; returns false (with analysisFailed) when there
    // is no model or the options are invalid.
    bool startAnalysis();
    void cancel();
    bool busy() const { return busy_; }
    OutlierAnalysisPtr analysis() const { return analysis_; }

    OutlierOverviewModel* overviewModel() const { return overview_; }
    OutlierLayerModel* layerModel() const { return layers_; }
    QSortFilterProxyModel* layerProxy() const { return layer_proxy_; }
    QTableView* layerTable() const { return layer_table_; }
    HeatmapCanvas* canvas() const { return canvas_; }
    // Overview read-out for a cell: "blk.0.attn_q.weight · cols 0–31 · mean max|w|/rms 4.12".
    QString describeCell(int row, int col) const;
    // Acts as a click on overview row `row`: the tensor's kept outliers are found on a worker thread,
    // then tensorActivated is emitted (a later click supersedes an earlier one still scanning).
    void activateRow(int row);

    // Positions (row, col) of `t` (the tensor viewed as a matrix) whose magnitude reaches the
    // analysis threshold: the kept outliers under magnitude selection (ties at the threshold all
    // marked), at most `cap` of them, largest first.
    static std::vector<std::pair<int64_t, int64_t>> outlierPositions(const Tensor& t, const OutlierAnalysis& a,
                                                                     size_t cap = 4096);

signals:
    void analysisReady();
    void analysisFailed(QString message);
    void analysisCancelled();
    // Overview row clicked: the model's tensor index and the positions to mark.
    void tensorActivated(int tensor_index, std::vector<std::pair<int64_t, int64_t>> outliers);
    // Worker -> UI (queued).
    void computed(quint64 job, ef::OutlierAnalysisPtr result, QString error);
    void progressed(quint64 job, double fraction);
    void marksFound(quint64 click, int tensor_index, std::vector<std::pair<int64_t, int64_t>> outliers);

protected:
    bool eventFilter(QObject* o, QEvent* e) override;

private:
    void onComputed(quint64 job, const OutlierAnalysisPtr& r, const QString& error);
    void setBusy(bool busy);
    void refreshCanvas();

    std::shared_ptr<const Model> model_;
    OutlierAnalysisPtr analysis_;
    std::shared_ptr<Progress> progress_;
    quint64 job_ = 0;
    bool busy_ = false;
    std::shared_ptr<const Heatmap> heatmap_;

    OutlierOverviewModel* overview_;
    OutlierLayerModel* layers_;
    QSortFilterProxyModel* layer_proxy_;
    QSpinBox* block_;
    QDoubleSpinBox* k_;
    QDoubleSpinBox* p_;
    QComboBox* stat_;
    QPushButton* run_;
    QPushButton* cancel_;
    QProgressBar* bar_;
    QLabel* status_;
    QLabel* readout_;
    HeatmapCanvas* canvas_;
    ColorBar* colorbar_;
    QTableView* layer_table_;
    QThreadPool pool_;
    QThreadPool marks_pool_;  // the scan for a clicked tensor's kept outliers (never behind an analysis)
    std::atomic<quint64> click_{0};  // the latest click (read by the worker); older scans are dropped
};

}  // namespace ef::views

Q_DECLARE_METATYPE(ef::OutlierAnalysisPtr)
