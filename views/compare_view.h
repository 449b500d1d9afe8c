// The Compare dock (issue 4, "The paper's table", GUI): runs ef::compare_variants (quant/compare.h)
// for the loaded model on a worker thread (options: variants, EF target bits, n_ctx, chunks, tasks,
// limit, threads, the evaluation text; progress and cancel), then shows every metric per variant
// (views/compare_models.h) and, below the table, two scatter charts: memory (MB) vs KL and vs tokens/s,
// one labelled point per variant. The table exports as Markdown, CSV or JSON (compare_markdown /
// csv / json), written atomically.
#pragma once
#include <QString>
#include <QThreadPool>
#include <QWidget>
#include <memory>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "quant/compare.h"
#include "views/compare_models.h"

class QCheckBox;
class QChart;
class QChartView;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QSpinBox;
class QTableView;

namespace ef::views {

class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget* parent = nullptr);
    ~CompareView() override;  // cancels and waits for the running comparison

    // A new model drops the old table (a running comparison is cancelled).
    void setModel(std::shared_ptr<const Model> model, const QString& label = {});

    // Options as the widgets say; `text` is left empty (the worker reads textPath()).
    CompareOptions options() const;
    void setOptions(const CompareOptions& o);
    QString textPath() const;
    void setTextPath(const QString& path);

    bool start();  // false (with failed) when there is no model or no variant is chosen
    void cancel();
    bool busy() const { return busy_; }
    CompareResultPtr result() const { return result_; }

    CompareTableModel* tableModel() const { return table_model_; }
    QTableView* tableView() const { return table_; }
    QChart* klChart() const { return kl_chart_; }
    QChart* speedChart() const { return speed_chart_; }
    QString statusText() const;

    // The table as Markdown (.md), CSV (.csv) or JSON (.json) by the extension; atomic. Returns the
    // error text, empty on success.
    QString saveTable(const QString& path) const;

signals:
    void compareReady();
    void compareFailed(QString message);
    void compareCancelled();
    // Worker -> UI (queued).
    void computed(quint64 job, ef::views::CompareResultPtr result, QString error);
    void progressed(quint64 job, double fraction, QString stage);

private:
    void onComputed(quint64 job, const CompareResultPtr& r, const QString& error);
    void setBusy(bool busy);
    void rebuildCharts();
    void exportDialog();

    std::shared_ptr<const Model> model_;
    QString label_;
    CompareResultPtr result_;
    std::shared_ptr<Progress> progress_;
    quint64 job_ = 0;
    bool busy_ = false;

    std::vector<QCheckBox*> variants_;
    QDoubleSpinBox* bits_;
    QSpinBox* ctx_;
    QSpinBox* chunks_;
    QSpinBox* calib_windows_;
    QLineEdit* tasks_;
    QSpinBox* limit_;
    QSpinBox* bench_tokens_;
    QSpinBox* threads_;
    QLineEdit* text_;
    QLineEdit* eval_dir_;
    QPushButton* run_;
    QPushButton* cancel_;
    QPushButton* export_;
    QProgressBar* bar_;
    QLabel* status_;
    CompareTableModel* table_model_;
    QSortFilterProxyModel* proxy_;
    QTableView* table_;
    QChart* kl_chart_;
    QChart* speed_chart_;
    QChartView* kl_view_;
    QChartView* speed_view_;
    QThreadPool pool_;
};

}  // namespace ef::views
