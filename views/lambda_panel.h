// The Lambda dock (issue 5): what the router's sparsity weight lambda does to the loaded edgefusion
// model. Releasing the log-scale slider (0, then 1e-4 .. 1) starts a short gate re-training in the
// background — core/train/lambda_sweep.h's train_lambda_point, the same as one point of
// `edgefusion sweep-lambda`: base frozen (only gates and SSM branches train), a few steps on a text,
// from the loaded model every time, then KL to the loaded model and perplexity on held-out windows.
// Progress and cancel sit below the slider; a new slider release cancels the run in flight and starts
// the new lambda once it has stopped. A finished run sends the re-trained model's router analysis out
// (analysisReady: the main window shows it in the router view) and adds a point to the
// lambda -> (ssm_frac, KL, GFLOPs/token) curve, kept in a table and drawn one metric at a time. A
// cancelled run adds nothing: the curve stays as it was.
#pragma once
#include <QAbstractTableModel>
#include <QChartView>
#include <QString>
#include <QTemporaryDir>
#include <QWidget>
#include <memory>
#include <optional>
#include <vector>

#include "core/model.h"
#include "core/train/lambda_sweep.h"
#include "runtime/router_analysis.h"
#include "views/train_job.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QLineSeries;
class QProgressBar;
class QPushButton;
class QScatterSeries;
class QSlider;
class QSpinBox;
class QTableView;
class QValueAxis;
class QCategoryAxis;

namespace ef::views {

// One re-training's outcome: lambda, the re-trained gates, ssm_frac, entropy, KL, perplexity, GFLOPs.
using LambdaPoint = train::LambdaPoint;

// The curve's points by increasing lambda (one per lambda: a repeat replaces it).
class LambdaCurveModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { LambdaColumn, SsmFracColumn, EntropyColumn, KlColumn, PplColumn, GflopsColumn, ColumnCount };
    static constexpr int SortRole = Qt::UserRole;  // the number behind the text

    explicit LambdaCurveModel(QObject* parent = nullptr);
    int addPoint(const LambdaPoint& p);  // returns its row
    void clear();
    const std::vector<LambdaPoint>& points() const { return points_; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    std::vector<LambdaPoint> points_;
};

// lambda on the chart's x axis: log10(lambda), with lambda = 0 one decade left of 1e-4.
double lambda_axis_x(double lambda);
QString lambda_text(double lambda);  // "0", "3.2e-3"

// The curve drawn for one metric at a time.
class LambdaCurveChart : public QChartView {
    Q_OBJECT
public:
    enum Metric { SsmFrac, Kl, Gflops, MetricCount };
    explicit LambdaCurveChart(QWidget* parent = nullptr);
    void setPoints(const std::vector<LambdaPoint>& points);
    void setMetric(Metric m);
    Metric metric() const { return metric_; }
    // Every metric has its series (only the selected one is shown): x = lambda_axis_x, y = the value.
    QLineSeries* series(Metric m) const { return lines_[m]; }

private:
    void rescale();
    QLineSeries* lines_[MetricCount];
    QScatterSeries* dots_[MetricCount];
    QCategoryAxis* ax_;
    QValueAxis* ay_;
    Metric metric_ = SsmFrac;
};

class LambdaPanel : public QWidget {
    Q_OBJECT
public:
    static constexpr int kSliderMax = 81;  // 0: lambda 0; 1..81: 1e-4 .. 1, 20 positions a decade
    static double lambdaAt(int position);
    static int positionFor(double lambda);

    explicit LambdaPanel(QWidget* parent = nullptr);
    ~LambdaPanel() override;

    // The model re-training starts from, and its file (re-training reads the model from disk; an
    // empty path: the model is written to a temporary file first). Clears the curve.
    void setModel(std::shared_ptr<const Model> model, const QString& path = {});
    std::shared_ptr<const Model> model() const { return model_; }
    bool applicable() const;  // an edgefusion model is loaded

    QString textPath() const;
    void setTextPath(const QString& path);  // default: the demo config's training text
    int steps() const;
    void setSteps(int n);
    void setBatch(int batch, int seq_len);  // default 4 x 64
    void setLearningRate(double lr);        // default 0.01
    void setEvalWindows(int n);             // held-out windows for KL and perplexity (default 8)
    void setThreads(int n);

    // Starts a re-training at lambda (as a slider release does); a run in flight is cancelled and
    // this lambda starts when it has stopped. False (with a message) when nothing can start.
    bool retrain(double lambda);
    void cancel();  // the run in flight and any pending lambda
    bool isRunning() const { return job_->isRunning(); }

    QSlider* slider() const { return slider_; }
    LambdaCurveModel* curveModel() const { return curve_; }
    LambdaCurveChart* curveChart() const { return chart_; }
    QTableView* curveTable() const { return table_; }
    QPushButton* cancelButton() const { return cancel_button_; }
    QLabel* statusLabel() const { return status_; }
    QString lastRunDir() const { return run_dir_; }  // the output folder of the latest run

signals:
    void analysisReady(const ef::RouterAnalysis& analysis);  // the re-trained model's router
    void gatesUpdated(const std::vector<float>& gates);      // live gates while training
    void retrainFinished(bool ok, bool cancelled, const QString& message);
    void openModelRequested(const QString& path);
    void message(const QString& text, bool error);

private:
    void onFinished(TrainJobResultPtr r);
    void refresh();
    void showLambda(int position);

    std::shared_ptr<const Model> model_;
    QString model_path_, base_file_;
    int model_serial_ = 0, running_serial_ = 0;
    std::unique_ptr<QTemporaryDir> tmp_;
    TrainJob* job_;
    double running_lambda_ = 0;
    std::optional<double> pending_;
    QString run_dir_;
    int runs_ = 0;
    int batch_ = 4, seq_len_ = 64, eval_windows_ = 8;
    double lr_ = 0.01;

    QSlider* slider_;
    QLabel *lambda_label_, *status_, *model_label_;
    QLineEdit* text_;
    QSpinBox *steps_, *threads_;
    QPushButton *cancel_button_, *open_button_;
    QProgressBar* progress_;
    QComboBox* metric_;
    LambdaCurveModel* curve_;
    LambdaCurveChart* chart_;
    QTableView* table_;
};

}  // namespace ef::views
