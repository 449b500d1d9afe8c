// The workbench's Boards dock (issue 6) against the real sshd fixture (tests/board/sshd_fixture.h),
// offscreen: boards added / edited / removed through the form dialog and re-read with load_boards,
// validation messages that write nothing, the unknown-host question (its fingerprint against
// ssh-keygen -lf; No leaves known_hosts alone, Yes appends the key, which ssh-keygen -F finds),
// connection tests (x86 board, qemu aarch64 board, an arch mismatch, a wrong key), push (remote
// files' SHA-256 by QCryptographicHash against the local files; a second push skips), and a profile
// of this machine + both boards side by side whose table equals the runner's own JSON (read here
// with QJsonDocument) and whose board PPL equals the local run's. Cancel during a board run leaves
// the UI idle, no numbers for that target, and no runner process under the fixture's sshd.
#include <QtTest>

#include <QAbstractItemModelTester>
#include <QAction>
#include <QBarSet>
#include <QCheckBox>
#include <QComboBox>
#include <QDockWidget>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QHorizontalBarSeries>
#include <QThread>

#include <cmath>
#include <memory>

#include "core/remote/board_profile.h"
#include "tests/board/sshd_fixture.h"
#include "views/board_dialog.h"
#include "views/board_models.h"
#include "views/board_panel.h"
#include "views/main_window.h"

using ef::test::ProcessResult;
using ef::test::run_process;
using namespace ef::remote;
using namespace ef::test::board;
using namespace ef::views;

namespace {

void fill(BoardDialog* d, const BoardProfile& b) {
    d->name->setText(QString::fromStdString(b.name));
    d->host->setText(QString::fromStdString(b.host));
    d->port->setText(QString::number(b.port));
    d->user->setText(QString::fromStdString(b.user));
    d->use_agent->setChecked(b.key_file.empty());
    d->key_file->setText(QString::fromStdString(b.key_file));
    d->arch->setCurrentText(QString::fromStdString(b.arch));
    d->work_dir->setText(QString::fromStdString(b.work_dir));
    d->exec_wrapper->setText(QString::fromStdString(b.exec_wrapper));
}

QString same(const BoardProfile& a, const BoardProfile& b) {
    QStringList diff;
    if (a.name != b.name) diff << "name";
    if (a.host != b.host) diff << "host";
    if (a.port != b.port) diff << "port";
    if (a.user != b.user) diff << "user";
    if (a.key_file != b.key_file) diff << "key_file";
    if (a.arch != b.arch) diff << "arch";
    if (a.work_dir != b.work_dir) diff << "work_dir";
    if (a.exec_wrapper != b.exec_wrapper) diff << "exec_wrapper";
    return diff.join(", ");
}

// The PIDs of processes under `root` whose command line mentions `needle`.
QList<pid_t> processes_under(pid_t root, const QByteArray& needle) {
    QList<pid_t> out;
    for (pid_t pid : descendants(root))
        if (read_all(QStringLiteral("/proc/%1/cmdline").arg(pid)).contains(needle)) out << pid;
    return out;
}

}  // namespace

class TestBoardPanel : public QObject, public SshdFixture {
    Q_OBJECT

    QString boardsFile() const { return p("cfg/boards.json"); }

    std::unique_ptr<BoardPanel> panel(const QString& known = "known_hosts") {
        auto w = std::make_unique<BoardPanel>(nullptr, boardsFile());
        w->setKnownHostsFile(p(known));
        w->setRunner("x86_64", kHostRunner);
        w->setRunner("aarch64", kBoardRunner);
        w->setModelFile(model_);
        w->confirm = [](const QString&) { return true; };
        w->askUnknownHost = [](const QString&, const QString&) { return false; };
        w->resize(1280, 760);
        return w;
    }
    // The boards every job test uses, written straight to the file.
    void standardBoards() {
        QFile::remove(boardsFile());
        BoardProfile mismatch = board("armnowrap", "aarch64");
        mismatch.exec_wrapper.clear();
        for (const BoardProfile& b : {board("x86", "x86_64"), board("arm", "aarch64"), board("badkey", "x86_64", "wrong_key"), mismatch})
            QVERIFY(upsert_board(boardsFile().toStdString(), b).ok());
    }

private slots:
    void initTestCase() {
        const QString e = startSshd();
        QVERIFY2(e.isEmpty(), qPrintable(e));
    }
    void cleanupTestCase() { stopSshd(); }

    // Add / edit (incl. a rename) / remove through the dialog and the actions; the file re-read
    // with load_boards holds exactly what was entered.
    void add_edit_remove_through_panel() {
        QFile::remove(boardsFile());
        auto w = panel();
        QAbstractItemModelTester tester(w->boardModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        BoardProfile x86 = board("x86", "x86_64"), arm = board("arm", "aarch64");
        arm.key_file.clear();  // the ssh-agent
        for (const BoardProfile& b : {x86, arm}) {
            QPointer<BoardDialog> d = w->addBoard();
            QVERIFY(d);
            fill(d, b);
            d->save_button->click();
            QVERIFY2(d && d->errorText().isEmpty(), d ? qPrintable(d->errorText()) : "");
            QVERIFY(!d->isVisible());
        }
        auto loaded = load_boards(boardsFile().toStdString());
        QVERIFY2(loaded.ok(), loaded.ok() ? "" : loaded.message().c_str());
        QCOMPARE(loaded->size(), size_t(2));
        QCOMPARE(same((*loaded)[0], x86), QString());
        QCOMPARE(same((*loaded)[1], arm), QString());
        QVERIFY((*loaded)[1].use_agent());
        QCOMPARE(w->boardModel()->rowCount(), 2);
        QVERIFY2(!read_all(boardsFile()).contains("password"), "a password field is stored");

        // Edit: new port and work dir; then a rename replaces the entry.
        w->selectBoards({"x86"});
        QPointer<BoardDialog> e = w->editBoard();
        QVERIFY(e);
        QCOMPARE(e->host->text(), QStringLiteral("127.0.0.1"));
        e->port->setText("2222");
        e->work_dir->setText(p("elsewhere"));
        e->save_button->click();
        QVERIFY(e && e->errorText().isEmpty());
        x86.port = 2222;
        x86.work_dir = p("elsewhere").toStdString();
        auto x = find_board(boardsFile().toStdString(), "x86");
        QVERIFY(x.ok());
        QCOMPARE(same(*x, x86), QString());
        w->selectBoards({"arm"});
        QPointer<BoardDialog> r = w->editBoard();
        QVERIFY(r);
        r->name->setText("arm2");
        r->save_button->click();
        loaded = load_boards(boardsFile().toStdString());
        QVERIFY(loaded.ok());
        QCOMPARE(loaded->size(), size_t(2));
        arm.name = "arm2";
        QCOMPARE(same((*loaded)[1], arm), QString());
        QCOMPARE(w->selectedBoards(), QStringList{"arm2"});

        // Remove asks first; No keeps the board.
        QString asked;
        w->confirm = [&](const QString& q) {
            asked = q;
            return false;
        };
        w->selectBoards({"x86"});
        QVERIFY(!w->removeBoard());
        QVERIFY(asked.contains("x86"));
        QCOMPARE(load_boards(boardsFile().toStdString())->size(), size_t(2));
        w->confirm = [](const QString&) { return true; };
        w->selectBoards({"x86"});
        QVERIFY(w->removeBoard());
        loaded = load_boards(boardsFile().toStdString());
        QVERIFY(loaded.ok());
        QCOMPARE(loaded->size(), size_t(1));
        QCOMPARE(QString::fromStdString((*loaded)[0].name), QStringLiteral("arm2"));
        QCOMPARE(w->boardModel()->rowCount(), 1);
    }

    // A bad field: the dialog shows validate()'s message, stays open and writes nothing.
    void invalid_board_writes_nothing_data() {
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("message");
        QTest::newRow("port out of range") << "port" << "70000" << "out of range";
        QTest::newRow("port zero") << "port" << "0" << "out of range";
        QTest::newRow("port not a number") << "port" << "22x" << "not a number";
        QTest::newRow("empty host") << "host" << "" << "host is empty";
        QTest::newRow("empty name") << "name" << "" << "name is empty";
        QTest::newRow("empty user") << "user" << "" << "user is empty";
        QTest::newRow("no key, no agent") << "key" << "" << "no key file";
    }
    void invalid_board_writes_nothing() {
        QFETCH(QString, field);
        QFETCH(QString, value);
        QFETCH(QString, message);
        standardBoards();
        const QByteArray before = read_all(boardsFile());
        auto w = panel();
        QPointer<BoardDialog> d = w->addBoard();
        QVERIFY(d);
        fill(d, board("newboard", "x86_64"));
        QLineEdit* edit = field == "port" ? d->port : field == "host" ? d->host : field == "name" ? d->name : field == "user" ? d->user : d->key_file;
        edit->setText(value);
        d->save_button->click();
        QVERIFY(d);
        QVERIFY2(d->errorText().contains(message), qPrintable("dialog says: " + d->errorText()));
        QVERIFY(d->isVisible());
        QCOMPARE(read_all(boardsFile()), before);
        QCOMPARE(w->boardModel()->rowCount(), 4);
        if (QString(QTest::currentDataTag()) == "port out of range")
            QVERIFY(d->grab().toImage().save(ef::test::screenshot_dir() + "/board-dialog.png"));
        d->reject();
    }

    // The question gets the fingerprint ssh-keygen prints, on the UI thread; No refuses and
    // leaves known_hosts alone, Yes connects and appends the key.
    void unknown_host_asks_with_fingerprint() {
        standardBoards();
        auto w = panel("fresh/known_hosts");
        QVERIFY(QDir().mkpath(p("fresh")));
        QStringList hosts, fps;
        bool on_ui = true, answer = false;
        w->askUnknownHost = [&](const QString& host, const QString& fp) {
            hosts << host;
            fps << fp;
            on_ui = on_ui && QThread::currentThread() == qApp->thread();
            return answer;
        };
        QSignalSpy tested(w.get(), &BoardPanel::boardTested);
        w->selectBoards({"x86"});
        w->testConnection();
        QVERIFY(w->isBusy());
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 60000);
        QCOMPARE(tested.size(), 1);
        QCOMPARE(fps, QStringList{host_fp_});
        QVERIFY2(hosts.value(0).contains("127.0.0.1"), qPrintable(hosts.value(0)));
        QVERIFY(on_ui);
        QCOMPARE(tested[0][1].toBool(), false);
        QVERIFY2(tested[0][2].toString().contains(host_fp_), qPrintable(tested[0][2].toString()));
        QVERIFY(w->boardModel()->statusIsError("x86"));
        QVERIFY(read_all(p("fresh/known_hosts")).isEmpty());

        answer = true;
        w->testConnection();
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 60000);
        QCOMPARE(tested.size(), 2);
        QCOMPARE(fps, (QStringList{host_fp_, host_fp_}));
        QVERIFY2(tested[1][1].toBool(), qPrintable(tested[1][2].toString()));
        QVERIFY2(tested[1][2].toString().contains("added to known_hosts"), qPrintable(tested[1][2].toString()));
        const ProcessResult f = run_process(QStringLiteral("ssh-keygen"),
                                            {"-F", QStringLiteral("[127.0.0.1]:%1").arg(port_), "-f", p("fresh/known_hosts")});
        QVERIFY2(f.exit_code == 0 && f.out.contains("ssh-ed25519"), qPrintable(describe("ssh-keygen -F", f)));
        // Known now: no question.
        w->testConnection();
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 60000);
        QCOMPARE(fps.size(), 2);
        QVERIFY(tested[2][1].toBool());
    }

    // A changed host key is refused by the library whatever the question would say; its message is shown.
    void changed_host_key_shown() {
        standardBoards();
        QVERIFY(write_all(p("kh_changed"), known_line(p("other_host_key.pub"))));
        const QByteArray before = read_all(p("kh_changed"));
        auto w = panel("kh_changed");
        int asked = 0;
        w->askUnknownHost = [&](const QString&, const QString&) {
            ++asked;
            return true;
        };
        w->selectBoards({"x86"});
        w->testConnection();
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 60000);
        QCOMPARE(asked, 0);
        QVERIFY(w->boardModel()->statusIsError("x86"));
        QVERIFY2(w->boardModel()->status("x86").contains("HOST KEY MISMATCH"), qPrintable(w->boardModel()->status("x86")));
        QCOMPARE(read_all(p("kh_changed")), before);
    }

    // One run over four boards: x86 and the qemu aarch64 board pass, an aarch64 profile on this
    // x86 host without a wrapper is an arch mismatch, a wrong key is refused.
    void test_connection_reports_each_board() {
        standardBoards();
        auto w = panel();
        QSignalSpy tested(w.get(), &BoardPanel::boardTested);
        w->selectBoards({"x86", "arm", "badkey", "armnowrap"});
        QCOMPARE(w->selectedBoards().size(), 4);
        QVERIFY(w->test_button->isEnabled());
        w->test_button->click();
        QVERIFY(!w->test_button->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 120000);
        QCOMPARE(tested.size(), 4);
        const ProcessResult uname = run_process(QStringLiteral("uname"), {"-m"});
        const QString host_arch = uname.out.trimmed();
        BoardListModel* m = w->boardModel();
        QVERIFY2(!m->statusIsError("x86") && m->status("x86").contains("ok: " + host_arch), qPrintable(m->status("x86")));
        QVERIFY2(m->status("x86").contains(host_fp_), qPrintable(m->status("x86")));
        QVERIFY2(!m->statusIsError("arm") && m->status("arm").contains("aarch64") && m->status("arm").contains(kQemu),
                 qPrintable(m->status("arm")));
        QVERIFY2(m->statusIsError("armnowrap") && m->status("armnowrap").contains("is " + host_arch + ", but its profile says aarch64"),
                 qPrintable(m->status("armnowrap")));
        QVERIFY2(m->statusIsError("badkey") && m->status("badkey").contains("refused the key"), qPrintable(m->status("badkey")));
        const QModelIndex st = m->index(m->rowOf("badkey"), BoardListModel::StatusColumn);
        QCOMPARE(m->data(st).toString(), m->status("badkey"));
        QVERIFY(w->test_button->isEnabled());
    }

    // Push the runner + model to both boards; the files on the board equal the local ones; again: skipped.
    void push_uploads_then_skips() {
        standardBoards();
        auto w = panel();
        QSignalSpy pushed(w.get(), &BoardPanel::boardPushed);
        w->selectBoards({"x86", "arm"});
        QVERIFY(w->push_button->isEnabled());
        w->push_button->click();
        QVERIFY(w->cancel_button->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 120000);
        QCOMPARE(w->lastPush().size(), size_t(2));
        for (const PushOutcome& o : w->lastPush()) {
            QVERIFY2(o.error.isEmpty(), qPrintable(o.board + ": " + o.error));
            QVERIFY(!o.deployment.runner_skipped && !o.deployment.model_skipped);
        }
        const QString name = QFileInfo(model_).fileName();
        QCOMPARE(file_sha256(p("board-x86/models/" + name)), file_sha256(model_));
        QCOMPARE(file_sha256(p("board-arm/models/" + name)), file_sha256(model_));
        QCOMPARE(file_sha256(p("board-x86/bin/edgefusion-run-x86_64")), file_sha256(kHostRunner));
        QCOMPARE(file_sha256(p("board-arm/bin/edgefusion-run-aarch64")), file_sha256(kBoardRunner));
        QVERIFY2(w->boardModel()->status("arm").contains("runner uploaded, model uploaded"), qPrintable(w->boardModel()->status("arm")));
        QCOMPARE(w->progressBar()->value(), 1000);

        w->push();
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 120000);
        QCOMPARE(w->lastPush().size(), size_t(2));
        for (const PushOutcome& o : w->lastPush()) {
            QVERIFY2(o.error.isEmpty(), qPrintable(o.error));
            QVERIFY2(o.deployment.runner_skipped && o.deployment.model_skipped, qPrintable(o.board));
        }
        QCOMPARE(w->boardModel()->status("x86"), QStringLiteral("pushed: runner unchanged (skipped), model unchanged (skipped)"));
        QCOMPARE(pushed.size(), 4);
    }

    // This machine and both boards in one table; each row equals the runner's own JSON.
    void profile_local_and_boards_side_by_side() {
        standardBoards();
        auto w = panel();
        QAbstractItemModelTester t1(w->resultsModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester t2(w->layerModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        w->selectBoards({"x86", "arm"});
        w->localCheck()->setChecked(true);
        w->ppSpin->setValue(8);
        w->tgSpin->setValue(8);
        w->repsSpin->setValue(1);
        w->perplexityFile->setText(text_);
        w->pplCtxSpin->setValue(32);
        w->pplChunksSpin->setValue(2);
        QSignalSpy done(w.get(), &BoardPanel::profileFinished);
        w->profile_button->click();
        QVERIFY(w->isBusy());
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 300000);
        QCOMPARE(done.size(), 1);
        QCOMPARE(done[0][0].toBool(), false);
        ProfileResultsModel* m = w->resultsModel();
        QCOMPARE(m->rowCount(), 3);
        const QStringList targets{"local", "x86", "arm"};
        const QStringList arches{"x86_64", "x86_64", "aarch64"};
        auto val = [&](int r, int c) { return m->data(m->index(r, c), ProfileResultsModel::ValueRole); };
        for (int r = 0; r < 3; ++r) {
            QCOMPARE(val(r, ProfileResultsModel::TargetColumn).toString(), targets[r]);
            QCOMPARE(val(r, ProfileResultsModel::ArchColumn).toString(), arches[r]);
            QVERIFY2(val(r, ProfileResultsModel::ErrorColumn).toString().isEmpty(), qPrintable(val(r, ProfileResultsModel::ErrorColumn).toString()));
            const ProfileRow* row = m->row(r);
            QVERIFY(row && row->report);
            // The runner's JSON, read here with Qt's parser.
            const QJsonObject j = QJsonDocument::fromJson(QByteArray::fromStdString(row->report->json)).object();
            QVERIFY2(!j.isEmpty(), "no runner JSON");
            QCOMPARE(val(r, ProfileResultsModel::ThreadsColumn).toInt(), j["n_threads"].toInt());
            QCOMPARE(val(r, ProfileResultsModel::PrefillColumn).toDouble(), j["prefill"].toObject()["avg_ts"].toDouble());
            QCOMPARE(val(r, ProfileResultsModel::DecodeColumn).toDouble(), j["decode"].toObject()["avg_ts"].toDouble());
            QCOMPARE(val(r, ProfileResultsModel::PeakRssColumn).toULongLong(), qulonglong(j["peak_rss_bytes"].toDouble()));
            QCOMPARE(val(r, ProfileResultsModel::WeightsColumn).toULongLong(), qulonglong(j["weight_bytes"].toDouble()));
            QCOMPARE(val(r, ProfileResultsModel::GflopsColumn).toDouble(), j["gflops_per_token"].toDouble());
            QCOMPARE(val(r, ProfileResultsModel::WallColumn).toDouble(), row->report->wall_s);
            QCOMPARE(val(r, ProfileResultsModel::PerplexityColumn).toDouble(), row->report->perplexity);
            QVERIFY(val(r, ProfileResultsModel::DecodeColumn).toDouble() > 0);
            QVERIFY(val(r, ProfileResultsModel::WallColumn).toDouble() > 0);
            // Per-layer times: column 2 + r, one row per layer of the JSON.
            const QJsonArray layers = j["layers"].toArray();
            QCOMPARE(w->layerModel()->rowCount(), int(layers.size()));
            for (int l = 0; l < layers.size(); ++l)
                QCOMPARE(w->layerModel()->data(w->layerModel()->index(l, 2 + r), LayerTimesModel::ValueRole).toDouble(),
                         layers[l].toObject()["ms_per_token"].toDouble());
            // The chart beside the table: one bar set per target, layer 0 drawn at the top (last bar).
            QHorizontalBarSeries* bars = w->layerChart()->series();
            QVERIFY(bars && bars->count() == 3);
            QCOMPARE(bars->barSets()[r]->label(), targets[r]);
            QCOMPARE(bars->barSets()[r]->count(), int(layers.size()));
            for (int l = 0; l < layers.size(); ++l)
                QCOMPARE(bars->barSets()[r]->at(int(layers.size()) - 1 - l), layers[l].toObject()["ms_per_token"].toDouble());
        }
        QCOMPARE(w->layerModel()->columnCount(), 5);
        // Same model everywhere: same weights; the boards' perplexity equals this machine's.
        const double local_ppl = val(0, ProfileResultsModel::PerplexityColumn).toDouble();
        QVERIFY(std::isfinite(local_ppl) && local_ppl > 1);
        for (int r = 1; r < 3; ++r) {
            QCOMPARE(val(r, ProfileResultsModel::WeightsColumn), val(0, ProfileResultsModel::WeightsColumn));
            const double ppl = val(r, ProfileResultsModel::PerplexityColumn).toDouble();
            QVERIFY2(std::abs(ppl - local_ppl) <= 1e-3 * local_ppl, qPrintable(QStringLiteral("%1: PPL %2 vs local %3").arg(targets[r]).arg(ppl).arg(local_ppl)));
        }
        for (const QString& b : {QStringLiteral("x86"), QStringLiteral("arm")})
            QVERIFY2(w->boardModel()->status(b).startsWith("profiled: decode") && !w->boardModel()->statusIsError(b),
                     qPrintable(w->boardModel()->status(b)));
        const QString log = w->logView()->toPlainText();
        for (const QString& t : targets) QVERIFY2(log.contains("[" + t + "] "), qPrintable("no live output from " + t + ":\n" + log.left(2000)));

        w->show();
        QVERIFY(QTest::qWaitForWindowExposed(w.get()));
        const QImage shot = w->grab().toImage();
        QVERIFY(!shot.isNull());
        QVERIFY(shot.save(ef::test::screenshot_dir() + "/board-panel.png"));
        auto* tabs = w->findChild<QTabWidget*>();
        QVERIFY(tabs);
        tabs->setCurrentIndex(1);  // Per layer: table and chart
        QVERIFY(w->grab().toImage().save(ef::test::screenshot_dir() + "/board-panel-layers.png"));
    }

    // Cancel while the board runs: the UI is idle again, no numbers for that target, and the
    // runner process on the board (this machine, under the fixture's sshd) is gone.
    void cancel_profile_kills_remote_run() {
        standardBoards();
        const QString slow = p("slow.gguf");
        const ProcessResult s = run_process(ef::test::cli_path(), {"synth", "--arch", "llama", "--dim", "512", "--layers", "8", "--vocab",
                                                                  "300", "--context", "1024", "--seed", "3", "-o", slow});
        QVERIFY2(s.exit_code == 0, qPrintable(describe("edgefusion synth", s)));
        auto w = panel();
        w->setModelFile(slow);
        w->localCheck()->setChecked(false);
        w->ppSpin->setValue(512);
        w->tgSpin->setValue(256);
        w->repsSpin->setValue(100);
        w->selectBoards({"x86"});
        w->profile();
        QVERIFY(w->isBusy());
        QList<pid_t> running;
        QTRY_VERIFY_WITH_TIMEOUT(!(running = processes_under(pid_t(sshd_pid_), "edgefusion-run-x86_64")).isEmpty() || !w->isBusy(), 60000);
        QVERIFY2(w->isBusy(), "the run ended before it could be cancelled");
        QVERIFY(!running.isEmpty());
        w->cancel_button->click();
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 30000);
        QCOMPARE(w->resultsModel()->rowCount(), 1);
        const ProfileRow* row = w->resultsModel()->row(0);
        QVERIFY(row && !row->report);
        QVERIFY2(row->error.contains("cancelled"), qPrintable(row->error));
        for (int c = ProfileResultsModel::ThreadsColumn; c <= ProfileResultsModel::PerplexityColumn; ++c)
            QVERIFY(!w->resultsModel()->data(w->resultsModel()->index(0, c), ProfileResultsModel::ValueRole).isValid());
        for (pid_t pid : running) QVERIFY2(process_gone(pid, 5000), qPrintable(QStringLiteral("runner %1 still runs").arg(pid)));
        QVERIFY(processes_under(pid_t(sshd_pid_), "edgefusion-run-x86_64").isEmpty());
        QVERIFY(w->boardModel()->statusIsError("x86"));
        // Usable again.
        QVERIFY(w->profile_button->isEnabled() && w->test_button->isEnabled() && !w->cancel_button->isEnabled());
        QVERIFY2(w->statusLabel()->text().contains("cancelled"), qPrintable(w->statusLabel()->text()));
        w->testConnection();
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 60000);
        QVERIFY2(!w->boardModel()->statusIsError("x86"), qPrintable(w->boardModel()->status("x86")));
    }

    // Cancel during the model's upload: the UI is idle again, the outcome says cancelled, and the
    // board has neither the file nor a partial one.
    void cancel_push_leaves_no_file() {
        standardBoards();
        QVERIFY(upsert_board(boardsFile().toStdString(), board("fresh", "x86_64")).ok());
        const QString big = p("big model.gguf");
        {
            QFile f(big);
            QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
            QByteArray chunk(1 << 20, '\0');
            for (int mb = 0; mb < 300; ++mb) {
                for (int i = 0; i < chunk.size(); i += 512) chunk[i] = char(mb * 31 + i / 512);
                QCOMPARE(f.write(chunk), qint64(chunk.size()));
            }
        }
        auto w = panel();
        w->setModelFile(big);
        w->selectBoards({"fresh"});
        w->push();
        QTRY_VERIFY_WITH_TIMEOUT(w->statusLabel()->text().startsWith("upload big model.gguf") || !w->isBusy(), 60000);
        QVERIFY2(w->isBusy(), "the push ended before it could be cancelled");
        w->cancel();
        QTRY_VERIFY_WITH_TIMEOUT(!w->isBusy(), 30000);
        QCOMPARE(w->lastPush().size(), size_t(1));
        QVERIFY2(w->lastPush()[0].error.contains("cancelled"), qPrintable(w->lastPush()[0].error));
        QVERIFY(!QFile::exists(p("board-fresh/models/big model.gguf")));
        QCOMPARE(QDir(p("board-fresh/models")).entryList(QDir::Files | QDir::Hidden), QStringList());
        QVERIFY2(w->statusLabel()->text().contains("cancelled"), qPrintable(w->statusLabel()->text()));
        QVERIFY(w->push_button->isEnabled() && !w->cancel_button->isEnabled());
        QFile::remove(big);
    }

    // The main window has the dock (View menu) and hands it the loaded model's file.
    void main_window_dock_gets_the_model() {
        qputenv("XDG_CONFIG_HOME", p("xdg").toUtf8());
        MainWindow mw;
        QVERIFY(mw.boardDock() && mw.boardPanel());
        QCOMPARE(mw.boardPanel()->boardsPath(), p("xdg/edgefusion/boards.json"));
        bool in_menu = false;
        for (QAction* a : mw.menuBar()->actions())
            if (a->menu())
                for (QAction* b : a->menu()->actions()) in_menu = in_menu || b == mw.boardDock()->toggleViewAction();
        QVERIFY(in_menu);
        QSignalSpy loaded(&mw, &MainWindow::modelLoaded);
        mw.openFile(model_);
        QTRY_VERIFY_WITH_TIMEOUT(loaded.size() == 1, 30000);
        QCOMPARE(mw.boardPanel()->modelFile(), QFileInfo(model_).absoluteFilePath());
        QVERIFY(mw.boardPanel()->profile_button->isEnabled());  // "this machine" is ticked by default
    }
};

QTEST_MAIN(TestBoardPanel)
#include "test_board_panel.moc"
