// The Runtime panel: run the loaded model on the CPU from the workbench. Three tabs: Generate
// (prompt, sampling controls, streaming output, live tokens/s and memory charts), Profile (pp/tg
// speed, memory, FLOPs, per-layer decode time bars) and Evaluate (perplexity over a text file with a
// running-PPL chart). Threads and routing, shared by all three, sit in the tab bar's corner. All
// compute runs in RuntimeWorker; one job at a time, every job can be stopped.
#pragma once
#include <QElapsedTimer>
#include <QWidget>
#include <memory>
#include <vector>

#include "core/model.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTimer;

namespace ef::views {

class LayerBarChart;
class LiveLineChart;
class RuntimeWorker;
struct GenerateSummary;
struct ProfileReport;
struct PerplexitySummary;
class RuntimePanel;

class GenerateTab : public QWidget {
    Q_OBJECT
public:
    explicit GenerateTab(RuntimePanel* panel);
    void start();
    void stop();
    void refresh();  // enables what the panel's state allows
    bool isRunning() const { return job_ != 0; }
    QString generatedText() const { return QString::fromUtf8(generated_); }

    QPlainTextEdit *prompt, *output;
    QDoubleSpinBox *temperature, *top_p, *min_p, *repeat_penalty;
    QSpinBox *top_k, *seed, *max_tokens;
    QCheckBox* ignore_eos;
    QPushButton *generate_button, *stop_button;
    LiveLineChart *speed_chart, *memory_chart;
    QLabel* status;

signals:
    void finished(bool ok);

private:
    void onToken(quint64 job, const QByteArray& piece, int n, double seconds);
    void onFinished(quint64 job, const GenerateSummary& s);
    void onFailed(quint64 job, const QString& message);
    void addMemoryPoint(double seconds);

    RuntimePanel* panel_;
    quint64 job_ = 0;
    QByteArray generated_;
    void addSpeedPoint();
    std::vector<double> times_;  // arrival time of each token (worker clock, seconds since the job began)
    double last_t_ = -1;         // time of the latest speed point
    int last_n_ = 0, tok_n_ = 0, window_ = 4;  // tokens at the latest point, so far, between points
    QTimer* rss_timer_;  // samples resident memory while a job runs (prefill included)
    QElapsedTimer clock_;
};

class ProfileTab : public QWidget {
    Q_OBJECT
public:
    explicit ProfileTab(RuntimePanel* panel);
    void start();
    void stop();
    void refresh();
    bool isRunning() const { return job_ != 0; }

    QSpinBox *pp, *tg, *reps;
    QPushButton *run_button, *cancel_button;
    QProgressBar* progress;
    QLabel *prefill, *decode, *peak_rss, *weights, *kv_cache, *ssm_state, *gflops, *op_kinds, *status;
    LayerBarChart* layer_chart;

signals:
    void finished(bool ok);

private:
    void onFinished(quint64 job, const ProfileReport& r);
    void onEnded(quint64 job, const QString& message);

    RuntimePanel* panel_;
    quint64 job_ = 0;
};

class EvaluateTab : public QWidget {
    Q_OBJECT
public:
    explicit EvaluateTab(RuntimePanel* panel);
    void start();  // asks for a file when none is set
    void stop();
    void refresh();
    bool isRunning() const { return job_ != 0; }
    double lastPpl() const { return ppl_; }
    double lastPplError() const { return ppl_error_; }

    QLineEdit* file;
    QPushButton* browse_button;
    QSpinBox *n_ctx, *max_chunks;
    QPushButton *run_button, *cancel_button;
    QProgressBar* progress;
    QLabel *result, *status;
    LiveLineChart* ppl_chart;

signals:
    void finished(bool ok);

private:
    void browse();
    void onFinished(quint64 job, const PerplexitySummary& s);
    void onEnded(quint64 job, const QString& message);

    RuntimePanel* panel_;
    quint64 job_ = 0;
    double ppl_ = 0, ppl_error_ = 0;
};

class RuntimePanel : public QWidget {
    Q_OBJECT
public:
    explicit RuntimePanel(QWidget* parent = nullptr);
    ~RuntimePanel() override;

    // The model to run (nullptr: none). Stops a running job; the tokenizer is built off the UI
    // thread, and tokenizerReady tells when Generate / Evaluate can run.
    void setModel(std::shared_ptr<const Model> model);
    std::shared_ptr<const Model> model() const { return model_; }
    std::shared_ptr<const Tokenizer> tokenizer() const { return tok_; }
    SessionOptions sessionOptions() const;
    RuntimeWorker* worker() const { return worker_; }
    bool isBusy() const;
    void refresh();  // re-evaluates what can run (after a job or a model change)

    QTabWidget* tabs() const { return tabs_; }  // Generate, Profile, Evaluate (each in a scroll area)
    GenerateTab* generateTab() const { return generate_; }
    ProfileTab* profileTab() const { return profile_; }
    EvaluateTab* evaluateTab() const { return evaluate_; }
    QSpinBox* threadsSpin() const { return threads_; }
    QComboBox* routingCombo() const { return routing_; }
    QLabel* hintLabel() const { return hint_; }

signals:
    void tokenizerReady(bool available);
    void message(QString text, bool error);  // for the window's log

private:
    void onTokenizer(quint64 request, std::shared_ptr<const Tokenizer> tok, const QString& error);

    std::shared_ptr<const Model> model_;
    std::shared_ptr<const Tokenizer> tok_;
    QString tok_error_;
    bool tok_pending_ = false;
    quint64 tok_request_ = 0;  // tags tokenizer builds: only the latest model's counts
    RuntimeWorker* worker_;
    QTabWidget* tabs_;
    QLabel* hint_;
    QSpinBox* threads_;
    QComboBox* routing_;
    GenerateTab* generate_;
    ProfileTab* profile_;
    EvaluateTab* evaluate_;
};

}  // namespace ef::views
