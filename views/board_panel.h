// The Boards dock (issue 6 in the workbench): the boards of boards.json (add / edit / remove, a
// connection test), push of the runner and the workbench's model to the selected boards, and a
// profile run on the selected boards and this machine side by side, with live output. It drives the
// same core/remote calls as `edgefusion board | push | remote-profile`. One job at a time on a worker
// thread; every job shows progress and can be cancelled (a cancelled board run kills its remote
// process). Results are immutable values handed back to the UI thread by queued calls.
#pragma once
#include <QHash>
#include <QWidget>
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "core/progress.h"
#include "core/remote/board_profile.h"
#include "core/remote/run_target.h"
#include "core/remote/ssh_session.h"
#include "views/board_models.h"
#include "views/target_layer_chart.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTableView;
class QThreadPool;

namespace ef::views {

class BoardDialog;

// What one board's push did.
struct PushOutcome {
    QString board;
    QString error;  // empty = pushed
    remote::Deployment deployment;
};

class BoardPanel : public QWidget {
    Q_OBJECT
public:
    enum class Job { None, Test, Push, Profile };

    // boards_path: the boards file; empty = remote::default_boards_path().
    explicit BoardPanel(QWidget* parent = nullptr, const QString& boards_path = {});
    ~BoardPanel() override;  // cancels the running job and waits for it

    QString boardsPath() const { return boards_path_; }
    void setBoardsPath(const QString& path);  // and reloads
    void reload();                             // re-reads the boards file (an error goes to the status line)
    // known_hosts used for every connection; empty = ~/.ssh/known_hosts.
    void setKnownHostsFile(const QString& path) { known_hosts_ = path; }
    // The runner deployed for `arch` (empty = remote::find_runner's lookup beside the program).
    void setRunner(const QString& arch, const QString& path) { runners_[arch] = path; }
    // The workbench's current model: what Push and Profile send.
    void setModelFile(const QString& path);
    QString modelFile() const { return model_file_; }

    // Selects boards by name in the list (the targets of Test / Push / Profile).
    void selectBoards(const QStringList& names);
    QStringList selectedBoards() const;

    // Actions (the buttons). Add/Edit open the form dialog (non-modal; returned for tests), which
    // saves through upsert_board on accept. Remove asks `confirm` first.
    BoardDialog* addBoard();
    BoardDialog* editBoard();  // the first selected board; nullptr when none
    bool removeBoard();        // the selected boards; false when nothing was removed
    void testConnection();
    void push();
    void profile();
    void cancel();

    Job runningJob() const { return job_kind_; }
    bool isBusy() const { return job_kind_ != Job::None; }
    const std::vector<PushOutcome>& lastPush() const { return last_push_; }

    // Questions the UI asks; tests replace them. Both run on the UI thread. askUnknownHost decides
    // whether an unknown host key (SHA256 fingerprint) is trusted and added to known_hosts;
    // default: a message box "Trust and connect" / "Cancel".
    std::function<bool(const QString& host, const QString& fingerprint)> askUnknownHost;
    std::function<bool(const QString& question)> confirm;

    BoardListModel* boardModel() const { return boards_; }
    ProfileResultsModel* resultsModel() const { return results_; }
    LayerTimesModel* layerModel() const { return layers_; }
    TargetLayerChart* layerChart() const { return layer_chart_; }
    QTableView* boardView() const { return board_view_; }
    QTableView* resultsView() const { return results_view_; }
    QPlainTextEdit* logView() const { return log_; }
    QLabel* statusLabel() const { return status_; }
    QProgressBar* progressBar() const { return progress_; }
    QCheckBox* localCheck() const { return local_; }
    QSpinBox *threadsSpin, *ppSpin, *tgSpin, *repsSpin, *pplCtxSpin, *pplChunksSpin;
    QLineEdit* perplexityFile;
    QPushButton *add_button, *edit_button, *remove_button, *test_button, *push_button, *profile_button, *cancel_button;

signals:
    void boardTested(QString board, bool ok, QString message);
    void boardPushed(QString board, bool ok, QString message);
    void profileFinished(bool cancelled);
    void jobFinished();                      // any job, after the UI is idle again
    void message(QString text, bool error);  // for the window's log

private:
    using ProgressPtr = std::shared_ptr<Progress>;
    void refresh();
    std::vector<remote::BoardProfile> selectedProfiles() const;
    BoardDialog* openDialog(const remote::BoardProfile& initial, const QString& old_name);
    remote::ConnectOptions connectOptions(const ProgressPtr& progress);
    bool askHostOnUi(const QString& host, const QString& fingerprint);
    Result<std::string> runnerFor(const std::string& arch) const;
    ProgressPtr beginJob(Job kind, const QString& what);
    void endJob(quint64 job, const QString& text, bool error);
    void onProgress(quint64 job, double fraction, const QString& stage);
    void onOutput(quint64 job, const QString& target, const QByteArray& chunk, bool is_stderr);
    void onTested(quint64 job, const QString& board, bool ok, const QString& text);
    void onPushed(quint64 job, const PushOutcome& outcome);
    void onProfiled(quint64 job, const ProfileRows& rows, bool cancelled);
    void setStatus(const QString& text, bool error);

    QString boards_path_, known_hosts_, model_file_;
    QHash<QString, QString> runners_;
    BoardListModel* boards_;
    ProfileResultsModel* results_;
    LayerTimesModel* layers_;
    QTableView *board_view_, *results_view_, *layer_view_;
    TargetLayerChart* layer_chart_;
    QPlainTextEdit* log_;
    QHash<QString, QByteArray> pending_lines_;  // per target+stream: output after the last newline
    QLabel *status_, *model_label_;
    QProgressBar* progress_;
    QCheckBox* local_;
    QTabWidget* tabs_;

    QThreadPool* pool_;  // one thread: jobs run one after the other
    quint64 next_job_ = 0, job_ = 0;
    Job job_kind_ = Job::None;
    ProgressPtr job_progress_;
    std::vector<PushOutcome> last_push_;
    int push_failures_ = 0;
};

}  // namespace ef::views
