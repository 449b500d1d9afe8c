// Boards over SSH against a real OpenSSH server: the fixture starts Debian's /usr/sbin/sshd on
// 127.0.0.1 (free port, generated host and client keys, its own sshd_config) as this user, and
// stops it by its PID. The x86 board runs the host runner; the aarch64 board runs the static
// aarch64 runner under qemu-aarch64 through the profile's exec wrapper. References are
// independent of our code: ssh-keygen's fingerprints, the shell's own word parsing, coreutils'
// sha256sum and QCryptographicHash, the runner run locally.
#include <QtTest>

#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <atomic>

#include "core/remote/local_process.h"
#include "core/remote/remote_util.h"
#include "tests/board/sshd_fixture.h"

using ef::test::ProcessResult;
using ef::test::run_process;
using namespace ef::remote;
using namespace ef::test::board;

class TestBoardSsh : public QObject, public SshdFixture {
    Q_OBJECT

private slots:
    void initTestCase() {
        const QString e = startSshd();
        QVERIFY2(e.isEmpty(), qPrintable(e));
    }

    void cleanupTestCase() { stopSshd(); }

    // The shell itself must read each quoted word back exactly.
    void shell_quote_round_trips_data() {
        QTest::addColumn<QString>("text");
        QTest::newRow("plain") << "model.gguf";
        QTest::newRow("spaces") << "my model file.gguf";
        QTest::newRow("single quotes") << "it's 'quoted'";
        QTest::newRow("double quotes") << "say \"hi\"";
        QTest::newRow("dollar") << "$HOME ${PATH} $(id)";
        QTest::newRow("backticks") << "`id` `rm -rf x`";
        QTest::newRow("semicolon") << "a; echo pwned; b && c || d | e";
        QTest::newRow("glob and newline") << "*?[a]\nsecond line\t~";
        QTest::newRow("empty") << "";
        QTest::newRow("backslash") << "a\\b\\'c";
    }
    void shell_quote_round_trips() {
        QFETCH(QString, text);
        const std::string q = shell_quote(text.toStdString());
        const ProcessResult r = run_process(QStringLiteral("/bin/sh"), {"-c", QString::fromStdString("printf '%s' " + q)});
        QVERIFY2(r.exit_code == 0, qPrintable(describe("sh", r)));
        QCOMPARE(r.out, text);
        // Two words joined stay two words.
        const ProcessResult n = run_process(QStringLiteral("/bin/sh"),
                                            {"-c", QString::fromStdString("set -- " + shell_join({text.toStdString(), "x y"}) + "; echo $#")});
        QCOMPARE(n.out.trimmed(), QStringLiteral("2"));
    }

    // Our SHA-256 against coreutils' sha256sum (and the FIPS 180 "abc" vector).
    void sha256_matches_coreutils() {
        QCOMPARE(QString::fromStdString(sha256_hex("abc")), QStringLiteral("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        for (const QString& f : {model_, text_, kBoardRunner}) {
            const ProcessResult r = run_process(QStringLiteral("sha256sum"), {f});
            QVERIFY2(r.exit_code == 0, qPrintable(describe("sha256sum", r)));
            auto ours = sha256_file(f.toStdString());
            QVERIFY2(ours.ok(), ours.ok() ? "" : ours.message().c_str());
            QCOMPARE(QString::fromStdString(*ours), r.out.left(64));
        }
    }

    // boards.json: round trip, replace by name, remove, bad values and a corrupt file named.
    void board_profiles_stored_as_json() {
        const std::string path = p("cfg/edgefusion/boards.json").toStdString();
        BoardProfile a = board("one", "x86_64"), b = board("two", "aarch64");
        b.key_file.clear();  // the agent
        QVERIFY(upsert_board(path, a).ok());
        QVERIFY(upsert_board(path, b).ok());
        a.port = 2222;
        QVERIFY(upsert_board(path, a).ok());
        const QJsonObject j = QJsonDocument::fromJson(read_all(QString::fromStdString(path))).object();
        const QJsonArray arr = j["boards"].toArray();
        QCOMPARE(arr.size(), 2);
        QCOMPARE(arr[0].toObject()["port"].toInt(), 2222);
        QCOMPARE(arr[1].toObject()["exec_wrapper"].toString(), kQemu);
        auto loaded = load_boards(path);
        QVERIFY(loaded.ok());
        QVERIFY((*loaded)[1].use_agent());
        QCOMPARE(QDir(p("cfg/edgefusion")).entryList(QDir::Files | QDir::Hidden), QStringList{"boards.json"});
        QVERIFY(remove_board(path, "one").ok());
        QVERIFY(!remove_board(path, "one").ok());
        QCOMPARE(load_boards(path)->size(), size_t(1));
        BoardProfile bad = a;
        bad.arch = "mips";
        QVERIFY(!upsert_board(path, bad).ok());
        bad = a;
        bad.port = 70000;
        QVERIFY(!upsert_board(path, bad).ok());
        QVERIFY(write_all(p("corrupt.json"), "{\"boards\": [ {\"name\": "));
        auto c = load_boards(p("corrupt.json").toStdString());
        QVERIFY(!c.ok());
        QVERIFY2(QString::fromStdString(c.message()).contains("corrupt.json"), c.message().c_str());
    }

    void unknown_host_refused_without_consent() {
        auto s = SshSession::connect(board("x86", "x86_64"), opts("fresh/known_hosts"));
        QVERIFY(!s.ok());
        const QString msg = QString::fromStdString(s.message());
        QVERIFY2(msg.contains("unknown host key") && msg.contains(host_fp_), qPrintable(msg + "\nexpected fingerprint " + host_fp_));
        QVERIFY(!QFile::exists(p("fresh/known_hosts")));
    }

    void unknown_host_accepted_with_consent() {
        auto s = SshSession::connect(board("x86", "x86_64"), opts("fresh/known_hosts", true));
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        QVERIFY((*s)->added_host_key());
        QCOMPARE(QString::fromStdString((*s)->fingerprint()), host_fp_);
        // OpenSSH's own ssh-keygen finds the entry it wrote.
        const ProcessResult f = run_process(QStringLiteral("ssh-keygen"),
                                            {"-F", QStringLiteral("[127.0.0.1]:%1").arg(port_), "-f", p("fresh/known_hosts")});
        QVERIFY2(f.exit_code == 0 && f.out.contains("ssh-ed25519"), qPrintable(describe("ssh-keygen -F", f)));
        // Now known: no consent needed.
        auto again = SshSession::connect(board("x86", "x86_64"), opts("fresh/known_hosts"));
        QVERIFY2(again.ok(), again.ok() ? "" : again.message().c_str());
        QVERIFY(!(*again)->added_host_key());
    }

    void changed_host_key_always_refused() {
        QVERIFY(write_all(p("kh_changed"), known_line(p("other_host_key.pub"))));
        const QByteArray before = read_all(p("kh_changed"));
        for (bool accept : {false, true}) {
            auto s = SshSession::connect(board("x86", "x86_64"), opts("kh_changed", accept));
            QVERIFY(!s.ok());
            QVERIFY2(QString::fromStdString(s.message()).contains("HOST KEY MISMATCH"), s.message().c_str());
        }
        QCOMPARE(read_all(p("kh_changed")), before);
    }

    void wrong_client_key_refused() {
        auto s = SshSession::connect(board("x86", "x86_64", "wrong_key"), opts());
        QVERIFY(!s.ok());
        QVERIFY2(QString::fromStdString(s.message()).contains("refused the key"), s.message().c_str());
    }

    // push + profile on the x86 board; the model's name has spaces and quotes; the same report
    // type as the local run, which must agree on everything but speed.
    void push_and_profile_x86_board() {
        BoardTarget t(board("x86", "x86_64"), kHostRunner.toStdString(), opts());
        std::string log;
        auto rep = t.profile(request(), [&](const std::string&, std::string_view c, bool) { log.append(c); }, ef::Progress::none());
        QVERIFY2(rep.ok(), rep.ok() ? "" : rep.message().c_str());
        const QString remote_model = p("board-x86/models/") + QFileInfo(model_).fileName();
        QVERIFY2(QFile::exists(remote_model), qPrintable(remote_model));
        QCOMPARE(file_sha256(remote_model), file_sha256(model_));
        QCOMPARE(file_sha256(p("board-x86/bin/edgefusion-run-x86_64")), file_sha256(kHostRunner));
        QVERIFY(QFileInfo(p("board-x86/bin/edgefusion-run-x86_64")).isExecutable());
        QVERIFY2(log.find("\"decode\"") != std::string::npos, "the runner's output was not streamed");

        LocalTarget local(kHostRunner.toStdString());
        auto lr = local.profile(request(), {}, ef::Progress::none());
        QVERIFY2(lr.ok(), lr.ok() ? "" : lr.message().c_str());
        QCOMPARE(QString::fromStdString(rep->target), QStringLiteral("x86"));
        QCOMPARE(QString::fromStdString(rep->model), remote_model);  // the runner saw the quoted name intact
        QCOMPARE(rep->weight_bytes, lr->weight_bytes);
        QCOMPARE(rep->kv_cache_bytes, lr->kv_cache_bytes);
        QCOMPARE(rep->layers.size(), size_t(2));
        QCOMPARE(rep->layers.size(), lr->layers.size());
        QCOMPARE(QString::fromStdString(rep->layers[1].path), QString::fromStdString(lr->layers[1].path));
        QVERIFY(rep->decode_tps > 0 && rep->prefill_tps > 0 && rep->peak_rss_bytes > 0);
    }

    // A second push uploads nothing; a changed model is uploaded again.
    void unchanged_files_skipped() {
        BoardTarget t(board("x86", "x86_64"), kHostRunner.toStdString(), opts());
        auto d = t.deploy(model_.toStdString(), ef::Progress::none());
        QVERIFY2(d.ok(), d.ok() ? "" : d.message().c_str());
        QVERIFY(d->runner_skipped);
        QVERIFY(d->model_skipped);
        const QString copy = p("changed.gguf");
        QByteArray bytes = read_all(model_);
        QVERIFY(write_all(copy, bytes));
        auto d1 = t.deploy(copy.toStdString(), ef::Progress::none());
        QVERIFY2(d1.ok() && !d1->model_skipped && d1->runner_skipped, d1.ok() ? "skip flags" : d1.message().c_str());
        bytes.append('\0');  // same name, new content
        QVERIFY(write_all(copy, bytes));
        auto d2 = t.deploy(copy.toStdString(), ef::Progress::none());
        QVERIFY2(d2.ok() && !d2->model_skipped, d2.ok() ? "not re-uploaded" : d2.message().c_str());
        QCOMPARE(file_sha256(p("board-x86/models/changed.gguf")), file_sha256(copy));
    }

    // The emulated ARM board: the static aarch64 runner under qemu-aarch64 (the exec wrapper),
    // with perplexity; the local x86 run of the same model is the reference.
    void push_and_profile_aarch64_board() {
        BoardTarget t(board("arm", "aarch64"), kBoardRunner.toStdString(), opts());
        RunRequest req = request();
        req.perplexity_text = text_.toStdString();
        req.perplexity_args = {"-c", "32", "--chunks", "2"};
        auto rep = t.profile(req, {}, ef::Progress::none());
        QVERIFY2(rep.ok(), rep.ok() ? "" : rep.message().c_str());
        QCOMPARE(file_sha256(p("board-arm/bin/edgefusion-run-aarch64")), file_sha256(kBoardRunner));
        QCOMPARE(QString::fromStdString(rep->arch), QStringLiteral("aarch64"));
        LocalTarget local(kHostRunner.toStdString());
        auto lr = local.profile(req, {}, ef::Progress::none());
        QVERIFY2(lr.ok(), lr.ok() ? "" : lr.message().c_str());
        QCOMPARE(rep->weight_bytes, lr->weight_bytes);
        QCOMPARE(rep->layers.size(), lr->layers.size());
        QVERIFY(rep->decode_tps > 0 && rep->peak_rss_bytes > 0);
        QVERIFY2(std::isfinite(rep->perplexity) && std::isfinite(lr->perplexity), "no perplexity");
        QVERIFY2(std::abs(rep->perplexity - lr->perplexity) <= 1e-3 * lr->perplexity,
                 qPrintable(QStringLiteral("board PPL %1 vs local %2").arg(rep->perplexity).arg(lr->perplexity)));
    }

    // The connection dies halfway (the sshd processes serving it are killed from the progress
    // callback): an error, and nothing under the final name; the next upload works and removes
    // the stale part.
    void dropped_connection_leaves_no_partial_file() {
        const QString big = p("big model.bin");
        QByteArray data(24 << 20, '\0');
        for (int i = 0; i < data.size(); i += 4096) data[i] = char(i * 7919 >> 12);
        QVERIFY(write_all(big, data));
        auto s = SshSession::connect(board("x86", "x86_64"), opts());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        bool dropped = false;
        ef::Progress prog([&](double f, const std::string&) {
            if (dropped || f < 0.2) return;
            dropped = true;
            for (pid_t pid : descendants(pid_t(sshd_pid_))) ::kill(pid, SIGKILL);  // children of the sshd we started
        });
        const std::string rdir = p("board-drop").toStdString();
        auto r = (*s)->upload(big.toStdString(), rdir, "big model.bin", 0644, prog);
        QVERIFY(dropped);
        QVERIFY2(!r.ok(), "the upload succeeded although its connection was killed");
        QVERIFY(!QFile::exists(p("board-drop/big model.bin")));
        QVERIFY2(sshd_.state() == QProcess::Running, "the fixture's sshd itself died");

        auto s2 = SshSession::connect(board("x86", "x86_64"), opts());
        QVERIFY2(s2.ok(), s2.ok() ? "" : s2.message().c_str());
        auto r2 = (*s2)->upload(big.toStdString(), rdir, "big model.bin", 0644, ef::Progress::none());
        QVERIFY2(r2.ok() && !r2->skipped, r2.ok() ? "skipped" : r2.message().c_str());
        QCOMPARE(file_sha256(p("board-drop/big model.bin")), file_sha256(big));
        QCOMPARE(QDir(p("board-drop")).entryList(QDir::Files | QDir::Hidden), QStringList{"big model.bin"});
    }

    // Cancel kills the remote process by its PID; the board no longer has it.
    void cancel_kills_remote_process() {
        auto s = SshSession::connect(board("x86", "x86_64"), opts());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        ef::Progress prog;
        std::atomic<long> pid{-1};
        std::thread canceller([&] {
            for (int i = 0; i < 200 && pid.load() < 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            prog.cancel();
        });
        const auto t0 = std::chrono::steady_clock::now();
        auto r = (*s)->exec({"sleep", "300"}, "", {}, prog, [&](long p) { pid = p; });
        canceller.join();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        QVERIFY2(!r.ok() && QString::fromStdString(r.message()).contains("cancelled"), r.ok() ? "finished" : r.message().c_str());
        QVERIFY(pid.load() > 0);
        QVERIFY2(secs < 30, "cancel did not stop the remote command");
        // The board is this machine: its /proc is the board's.
        QVERIFY2(process_gone(pid.load(), 5000), qPrintable(QStringLiteral("remote process %1 still runs").arg(pid.load())));
        // And the board says so too (kill -0 fails).
        auto check = (*s)->run_shell("kill -0 " + std::to_string(pid.load()) + " 2>/dev/null && echo alive || echo gone");
        QVERIFY2(check.ok(), check.ok() ? "" : check.message().c_str());
        QCOMPARE(QString::fromStdString(*check).trimmed(), QStringLiteral("gone"));
    }

    // The local twin: cancel kills the child it started.
    void local_cancel_kills_child() {
        ef::Progress prog;
        std::thread canceller([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            prog.cancel();
        });
        auto r = run_local({"sleep", "300"}, {}, prog);
        canceller.join();
        QVERIFY(!r.ok());
        QVERIFY2(QString::fromStdString(r.message()).contains("cancelled"), r.message().c_str());
    }

    // The CLI end to end: board add/list/test/remove, push, remote-profile over two boards and
    // the local run concurrently, settings in XDG_CONFIG_HOME.
    void cli_boards_push_and_remote_profile() {
        const QStringList env{"XDG_CONFIG_HOME=" + p("config")};
        const QString cli = ef::test::cli_path();
        auto run = [&](const QStringList& args, int ms = 180000) { return run_process(cli, args, ms, env); };
        for (const QString& name : {QStringLiteral("cx86"), QStringLiteral("carm")}) {
            const bool arm = name == "carm";
            QStringList a{"board", "add", name, "--host", "127.0.0.1", "--port", QString::number(port_), "--user", user_,
                          "--key", p("client_key"), "--arch", arm ? "aarch64" : "x86_64", "--work-dir", p("cli-" + name)};
            if (arm) a << "--exec-wrapper" << kQemu;
            const ProcessResult r = run(a);
            QVERIFY2(r.exit_code == 0, qPrintable(describe("board add", r)));
        }
        const QJsonObject saved = QJsonDocument::fromJson(read_all(p("config/edgefusion/boards.json"))).object();
        QCOMPARE(saved["boards"].toArray().size(), 2);
        QVERIFY2(!read_all(p("config/edgefusion/boards.json")).contains("password"), "a password field is stored");
        const ProcessResult list = run({"board", "list"});
        QVERIFY2(list.exit_code == 0 && list.out.contains("cx86") && list.out.contains("carm"), qPrintable(describe("board list", list)));

        const QString kh = p("cli_known_hosts");
        const ProcessResult t0 = run({"board", "test", "cx86", "--known-hosts", kh});
        QVERIFY2(t0.exit_code != 0 && t0.err.contains(host_fp_), qPrintable(describe("board test (unknown host)", t0)));
        const ProcessResult t1 = run({"board", "test", "cx86", "--known-hosts", kh, "--accept-new-host-key"});
        QVERIFY2(t1.exit_code == 0 && t1.out.contains("x86_64"), qPrintable(describe("board test --accept-new-host-key", t1)));

        const ProcessResult push = run({"push", "--board", "carm", model_, "--known-hosts", kh});
        QVERIFY2(push.exit_code == 0 && push.out.contains("uploaded"), qPrintable(describe("push", push)));
        QCOMPARE(file_sha256(p("cli-carm/bin/edgefusion-run-aarch64")), file_sha256(kBoardRunner));
        const ProcessResult push2 = run({"push", "--board", "carm", model_, "--known-hosts", kh});
        QVERIFY2(push2.exit_code == 0 && push2.out.count("unchanged (skipped)") == 2, qPrintable(describe("push again", push2)));

        const ProcessResult prof = run({"remote-profile", "--board", "cx86,carm", "--local", model_, "--known-hosts", kh, "--json",
                                        "--pp", "8", "--tg", "8", "-r", "1"});
        QVERIFY2(prof.exit_code == 0, qPrintable(describe("remote-profile", prof)));
        const QJsonArray rows = QJsonDocument::fromJson(prof.out.toUtf8()).array();
        QCOMPARE(rows.size(), 3);
        QStringList targets;
        for (const auto& v : rows) {
            const QJsonObject o = v.toObject();
            targets << o["target"].toString();
            QVERIFY2(o["decode"].toObject()["avg_ts"].toDouble() > 0, qPrintable(QJsonDocument(o).toJson()));
            QCOMPARE(o["layers"].toArray().size(), 2);
        }
        QCOMPARE(targets, (QStringList{"local", "cx86", "carm"}));
        QVERIFY2(prof.err.contains("[carm] ") && prof.err.contains("[cx86] "), qPrintable("no live log:\n" + prof.err));
        const ProcessResult table = run({"remote-profile", "--board", "cx86", model_, "--known-hosts", kh, "--pp", "8", "--tg", "8", "-r", "1"});
        QVERIFY2(table.exit_code == 0 && table.out.contains("| cx86 | x86_64 |"), qPrintable(describe("remote-profile table", table)));

        const ProcessResult rm = run({"board", "remove", "cx86"});
        QVERIFY2(rm.exit_code == 0, qPrintable(describe("board remove", rm)));
        const ProcessResult list2 = run({"board", "list"});
        QVERIFY(!list2.out.contains("cx86") && list2.out.contains("carm"));
    }
};

QTEST_GUILESS_MAIN(TestBoardSsh)
#include "test_board_ssh.moc"
