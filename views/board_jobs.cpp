// The Boards dock's worker jobs: connection test, push and profile. Each runs on the panel's pool
// with copies of everything it needs (profiles, runner paths, the request), so the UI may change
// meanwhile; what it produces goes back as values by queued calls tagged with the job's id.
#include <QCheckBox>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTableView>
#include <QThreadPool>
#include <chrono>
#include <future>
#include <mutex>

#include "core/remote/board_tools.h"
#include "views/board_panel.h"
#include "views/format_util.h"

namespace ef::views {

using namespace std::chrono_literals;

// An unknown host key: the worker asks the UI thread and blocks until the answer comes. The wait
// gives up when the job is cancelled, so a panel closing during a question never deadlocks
// (a plain BlockingQueuedConnection would, against the destructor's wait for the job).
// Questions from concurrent targets are asked one after the other.
remote::ConnectOptions BoardPanel::connectOptions(const ProgressPtr& progress) {
    remote::ConnectOptions o;
    o.known_hosts = known_hosts_.toStdString();
    auto one_at_a_time = std::make_shared<std::mutex>();
    o.ask_unknown_host = [this, progress, one_at_a_time](const std::string& host, const std::string& fp) {
        std::lock_guard lock(*one_at_a_time);
        if (progress->cancelled()) return false;
        auto answer = std::make_shared<std::promise<bool>>();
        std::future<bool> f = answer->get_future();
        QMetaObject::invokeMethod(
            this, [this, answer, h = to_qstring(host), k = to_qstring(fp)] { answer->set_value(askHostOnUi(h, k)); },
            Qt::QueuedConnection);
        while (f.wait_for(50ms) != std::future_status::ready)
            if (progress->cancelled()) return false;
        return f.get();
    };
    return o;
}

bool BoardPanel::askHostOnUi(const QString& host, const QString& fingerprint) {
    if (askUnknownHost) return askUnknownHost(host, fingerprint);
    QMessageBox box(QMessageBox::Warning, tr("Unknown host key"),
                    tr("The host %1 is not in known_hosts.\n\nIts key fingerprint is\n%2\n\nCompare it with the board's own "
                       "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the board) before trusting it.")
                        .arg(host, fingerprint),
                    QMessageBox::NoButton, this);
    QPushButton* trust = box.addButton(tr("Trust and connect"), QMessageBox::AcceptRole);
    box.addButton(QMessageBox::Cancel);
    box.setDefaultButton(QMessageBox::Cancel);
    box.exec();
    return box.clickedButton() == trust;
}

// ---------------------------------------------------------------------------------------------

void BoardPanel::testConnection() {
    const auto boards = selectedProfiles();
    if (boards.empty()) return setStatus(tr("Select a board to test."), true);
    const ProgressPtr prog = beginJob(Job::Test, tr("Testing %1…").arg(selectedBoards().join(", ")));
    if (!prog) return;
    const quint64 job = job_;
    for (const auto& b : boards) boards_->setStatus(to_qstring(b.name), tr("testing…"), false);
    pool_->start([this, job, prog, boards, opts = connectOptions(prog)] {
        for (size_t i = 0; i < boards.size() && !prog->cancelled(); ++i) {
            const auto& b = boards[i];
            prog->report(double(i) / double(boards.size()), b.name + ": connecting");
            auto c = remote::test_board(b, opts);
            QString text = c ? QStringLiteral("ok: %1, host key %2%3")
                                   .arg(to_qstring(c->uname), to_qstring(c->fingerprint),
                                        c->added_host_key ? QStringLiteral(" (added to known_hosts)") : QString())
                             : to_qstring(c.message());
            if (c && !b.exec_wrapper.empty()) text += QStringLiteral(", runs %1 through %2").arg(to_qstring(b.arch), to_qstring(b.exec_wrapper));
            QMetaObject::invokeMethod(this, [this, job, name = to_qstring(b.name), ok = c.ok(), text] { onTested(job, name, ok, text); },
                                      Qt::QueuedConnection);
        }
        const bool cancelled = prog->cancelled();
        QMetaObject::invokeMethod(this, [this, job, cancelled] { endJob(job, cancelled ? tr("Test cancelled.") : tr("Test done."), false); },
                                  Qt::QueuedConnection);
    });
}

void BoardPanel::onTested(quint64 job, const QString& board, bool ok, const QString& text) {
    if (job != job_) return;
    boards_->setStatus(board, text, !ok);
    board_view_->resizeColumnToContents(BoardListModel::StatusColumn);
    log_->appendPlainText(QStringLiteral("[%1] test: %2").arg(board, text));
    emit boardTested(board, ok, text);
}

// ---------------------------------------------------------------------------------------------

void BoardPanel::push() {
    const auto boards = selectedProfiles();
    if (boards.empty()) return setStatus(tr("Select the boards to push to."), true);
    if (model_file_.isEmpty()) return setStatus(tr("Open a model in the workbench first."), true);
    std::vector<Result<std::string>> runners;
    for (const auto& b : boards) runners.push_back(runnerFor(b.arch));
    const ProgressPtr prog = beginJob(Job::Push, tr("Pushing to %1…").arg(selectedBoards().join(", ")));
    if (!prog) return;
    const quint64 job = job_;
    last_push_.clear();
    push_failures_ = 0;
    pool_->start([this, job, prog, boards, runners, model = model_file_.toStdString(), opts = connectOptions(prog)] {
        const double n = double(boards.size());
        for (size_t i = 0; i < boards.size() && !prog->cancelled(); ++i) {
            const auto& b = boards[i];
            PushOutcome o;
            o.board = to_qstring(b.name);
            if (!runners[i]) {
                o.error = to_qstring(runners[i].message());
            } else {
                // This board's share of the bar; the job's cancel reaches the upload through it.
                Progress* self = nullptr;
                Progress sub([&self, prog, i, n](double f, const std::string& stage) {
                    if (prog->cancelled() && self) self->cancel();
                    prog->report((double(i) + f) / n, stage);
                });
                self = &sub;
                if (prog->cancelled()) sub.cancel();
                prog->report(double(i) / n, b.name + ": connecting");
                remote::BoardTarget t(b, *runners[i], opts);
                auto d = t.deploy(model, sub);
                if (d) o.deployment = *d;
                else o.error = to_qstring(d.message());
            }
            QMetaObject::invokeMethod(this, [this, job, o] { onPushed(job, o); }, Qt::QueuedConnection);
        }
        const bool cancelled = prog->cancelled();
        QMetaObject::invokeMethod(
            this,
            [this, job, cancelled] {
                const bool failed = push_failures_ > 0;
                endJob(job, cancelled ? tr("Push cancelled.") : failed ? tr("Push failed on %n board(s).", "", push_failures_) : tr("Push done."),
                       failed);
            },
            Qt::QueuedConnection);
    });
}

void BoardPanel::onPushed(quint64 job, const PushOutcome& o) {
    if (job != job_) return;
    last_push_.push_back(o);
    auto what = [](bool skipped) { return skipped ? tr("unchanged (skipped)") : tr("uploaded"); };
    const QString text = o.error.isEmpty() ? tr("pushed: runner %1, model %2").arg(what(o.deployment.runner_skipped), what(o.deployment.model_skipped))
                                           : o.error;
    if (!o.error.isEmpty()) ++push_failures_;
    boards_->setStatus(o.board, text, !o.error.isEmpty());
    if (o.error.isEmpty()) {
        log_->appendPlainText(QStringLiteral("[%1] runner %2 %3").arg(o.board, to_qstring(o.deployment.runner_path), what(o.deployment.runner_skipped)));
        log_->appendPlainText(QStringLiteral("[%1] model  %2 %3").arg(o.board, to_qstring(o.deployment.model_path), what(o.deployment.model_skipped)));
    } else {
        log_->appendPlainText(QStringLiteral("[%1] push failed: %2").arg(o.board, o.error));
    }
    emit boardPushed(o.board, o.error.isEmpty(), text);
}

// ---------------------------------------------------------------------------------------------

void BoardPanel::profile() {
    const auto boards = selectedProfiles();
    const bool local = local_->isChecked();
    if (model_file_.isEmpty()) return setStatus(tr("Open a model in the workbench first."), true);
    if (boards.empty() && !local) return setStatus(tr("Select boards or tick 'this machine'."), true);
    remote::RunRequest req;
    req.model_path = model_file_.toStdString();
    req.threads = threadsSpin->value();
    req.profile_args = {"--pp", std::to_string(ppSpin->value()), "--tg", std::to_string(tgSpin->value()), "-r",
                        std::to_string(repsSpin->value())};
    if (!perplexityFile->text().trimmed().isEmpty()) {
        req.perplexity_text = perplexityFile->text().trimmed().toStdString();
        req.perplexity_args = {"-c", std::to_string(pplCtxSpin->value()), "--chunks", std::to_string(pplChunksSpin->value())};
    }
    // Targets in table order: this machine first, then the boards in list order.
    struct Spec {
        bool local = false;
        remote::BoardProfile board;
        Result<std::string> runner = make_error("");
    };
    std::vector<Spec> specs;
    if (local) specs.push_back({true, {}, runnerFor(remote::host_arch())});
    for (const auto& b : boards) specs.push_back({false, b, runnerFor(b.arch)});
    const ProgressPtr prog = beginJob(Job::Profile, tr("Profiling on %n target(s)…", "", int(specs.size())));
    if (!prog) return;
    const quint64 job = job_;
    results_->clear();
    layers_->setRows(nullptr);
    pending_lines_.clear();
    log_->clear();
    pool_->start([this, job, prog, specs, req, opts = connectOptions(prog)] {
        std::vector<std::unique_ptr<remote::RunTarget>> owned;
        std::vector<remote::RunTarget*> run;
        std::vector<int> run_index(specs.size(), -1);  // spec -> index into run
        for (size_t i = 0; i < specs.size(); ++i) {
            if (!specs[i].runner) continue;
            if (specs[i].local) owned.push_back(std::make_unique<remote::LocalTarget>(*specs[i].runner));
            else owned.push_back(std::make_unique<remote::BoardTarget>(specs[i].board, *specs[i].runner, opts));
            run_index[i] = int(run.size());
            run.push_back(owned.back().get());
        }
        // Live output: copied and posted; safe from every target's thread.
        auto out = [this, job](const std::string& target, std::string_view chunk, bool is_err) {
            QMetaObject::invokeMethod(
                this, [this, job, t = to_qstring(target), c = QByteArray(chunk.data(), qsizetype(chunk.size())), is_err] { onOutput(job, t, c, is_err); },
                Qt::QueuedConnection);
        };
        auto results = remote::run_profiles(run, req, out, *prog);
        auto rows = std::make_shared<std::vector<ProfileRow>>();
        for (size_t i = 0; i < specs.size(); ++i) {
            ProfileRow r;
            r.local = specs[i].local;
            r.target = r.local ? QStringLiteral("local") : to_qstring(specs[i].board.name);
            r.arch = to_qstring(specs[i].local ? remote::host_arch() : specs[i].board.arch);
            if (run_index[i] < 0) r.error = to_qstring(specs[i].runner.message());
            else if (const auto& res = results[size_t(run_index[i])]; res) r.report = *res;
            else r.error = to_qstring(res.message());
            rows->push_back(std::move(r));
        }
        const bool cancelled = prog->cancelled();
        QMetaObject::invokeMethod(this, [this, job, rows = ProfileRows(rows), cancelled] { onProfiled(job, rows, cancelled); },
                                  Qt::QueuedConnection);
    });
}

void BoardPanel::onProfiled(quint64 job, const ProfileRows& rows, bool cancelled) {
    if (job != job_) return;
    for (auto it = pending_lines_.begin(); it != pending_lines_.end(); ++it)  // output without a final newline
        if (!it.value().isEmpty()) log_->appendPlainText(QStringLiteral("[%1] %2").arg(QString(it.key()).remove(QChar(1)), QString::fromUtf8(it.value())));
    pending_lines_.clear();
    results_->setRows(rows);
    layers_->setRows(rows);
    results_view_->resizeColumnsToContents();
    layer_view_->resizeColumnsToContents();
    int failed = 0;
    for (const auto& r : *rows) {
        failed += r.report ? 0 : 1;
        if (!r.local)
            boards_->setStatus(r.target, r.report ? tr("profiled: decode %1 t/s").arg(r.report->decode_tps, 0, 'f', 1) : r.error, !r.report);
    }
    board_view_->resizeColumnToContents(BoardListModel::StatusColumn);
    const QString text = cancelled ? tr("Profile cancelled.")
                         : failed  ? tr("Profile done; %n target(s) failed (see the Error column).", "", failed)
                                   : tr("Profile done on %n target(s).", "", int(rows->size()));
    endJob(job, text, !cancelled && failed > 0);
    emit profileFinished(cancelled);
}

}  // namespace ef::views
