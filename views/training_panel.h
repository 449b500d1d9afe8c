// The Training dock (issue 5): `edgefusion train` from the workbench. Choose a YAML config
// (resources/configs/), an output folder and the CLI's options (--freeze-base, --base-model,
// threads, --debug); Start trains on a worker thread (views/train_job.h), Stop cancels through
// ef::Progress (the trainer saves a checkpoint), Resume continues from the output folder's latest
// checkpoint. Every logged step adds one point to the live charts — loss (val loss as markers),
// ssm_frac, mean gate entropy — and its per-layer gates go out through gatesUpdated (the main
// window hands them to the router view). The trainer's messages fill the log.
#pragma once
#include <QString>
#include <QWidget>
#include <vector>

#include "core/train/trainer.h"
#include "views/train_job.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace ef::views {

class LiveLineChart;

// resources/configs/demo_scratch.yaml found from the working folder or the executable's folder
// (and the folders above them); empty when there is none.
QString find_default_train_config();

class TrainingPanel : public QWidget {
    Q_OBJECT
public:
    explicit TrainingPanel(QWidget* parent = nullptr);
    ~TrainingPanel() override;

    QString configPath() const;
    void setConfigPath(const QString& path);  // also proposes an output folder runs/<config name>
    QString outputDir() const;
    void setOutputDir(const QString& dir);
    QString baseModel() const;
    void setBaseModel(const QString& path);
    bool freezeBase() const;
    void setFreezeBase(bool on);
    int threads() const;  // 0: the config's training.threads
    void setThreads(int n);
    bool debugRun() const;
    void setDebugRun(bool on);

    // Start: a fresh run (charts cleared). Resume: from the output folder's latest checkpoint; the
    // charts keep this session's points, or are filled from its train_log.jsonl when empty.
    // False (with a message) when the config does not load or a run is in flight.
    bool start();
    bool resume();
    void stop();
    bool isRunning() const { return job_->isRunning(); }

    // Logged steps of the current run (and, after Resume, the run it continues), in order.
    const std::vector<train::TrainLogEntry>& entries() const { return entries_; }
    TrainJobResultPtr lastResult() const { return last_; }

    LiveLineChart* lossChart() const { return loss_chart_; }      // line: loss, markers: val loss
    LiveLineChart* ssmChart() const { return ssm_chart_; }        // ssm_frac
    LiveLineChart* entropyChart() const { return entropy_chart_; }  // mean gate entropy (bits)
    QLabel* speedLabel() const { return speed_; }
    QLabel* statusLabel() const { return status_; }
    QPlainTextEdit* logView() const { return log_; }
    QPushButton* startButton() const { return start_button_; }
    QPushButton* stopButton() const { return stop_button_; }
    QPushButton* resumeButton() const { return resume_button_; }
    QPushButton* openButton() const { return open_button_; }

signals:
    void gatesUpdated(const std::vector<float>& gates);  // per layer g of the latest logged step
    void runFinished(bool ok, bool cancelled, const QString& message);
    void openModelRequested(const QString& path);  // "Open result": checkpoint_final/model.h5
    void message(const QString& text, bool error);

private:
    bool launch(bool resume);
    void addEntry(const train::TrainLogEntry& e);
    void clearCharts();
    void loadLog(const QString& jsonl);  // fills the charts from a train_log.jsonl
    void onFinished(TrainJobResultPtr r);
    void refresh();  // buttons by state
    void appendLog(const QString& line, bool error = false);
    void setStatus(const QString& text);

    TrainJob* job_;
    std::vector<train::TrainLogEntry> entries_;
    TrainJobResultPtr last_;
    QString run_dir_;  // the output folder of the run the charts show
    QLineEdit *config_, *output_, *base_;
    QCheckBox *freeze_, *debug_;
    QSpinBox* threads_;
    QPushButton *start_button_, *stop_button_, *resume_button_, *open_button_;
    QProgressBar* progress_;
    QLabel *status_, *speed_;
    LiveLineChart *loss_chart_, *ssm_chart_, *entropy_chart_;
    QPlainTextEdit* log_;
};

}  // namespace ef::views
