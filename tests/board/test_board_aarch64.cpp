// The board build: edgefusion-run cross-compiled for aarch64 (cmake/BoardBuild.cmake, static)
// runs under qemu-aarch64 and must behave like the x86 runner built from the same source: its
// NEON kernels equal the scalar references (selftest), greedy generation gives the identical
// token stream, perplexity agrees within 1e-4 relative, and the binary is a static aarch64 ELF.
// The x86 runner is the reference only for "same program, other ISA"; the models' correctness
// against llama.cpp is checked by tests/model.
#include <QtTest>

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QTemporaryDir>

#include "tests/support/test_support.h"

using ef::test::ProcessResult;
using ef::test::run_process;

namespace {

const QString kQemu = QStringLiteral(EF_QEMU_AARCH64);
const QString kBoardRunner = QStringLiteral(EF_BOARD_RUNNER);
const QString kHostRunner = QStringLiteral(EF_HOST_RUNNER);

ProcessResult run_board(const QStringList& args, int timeout_ms = 60000) {
    return run_process(kQemu, QStringList{kBoardRunner} + args, timeout_ms);
}
ProcessResult run_host(const QStringList& args, int timeout_ms = 60000) {
    return run_process(kHostRunner, args, timeout_ms);
}

QString describe(const char* what, const ProcessResult& r) {
    return QStringLiteral("%1 exited %2\nstdout:\n%3\nstderr:\n%4").arg(what).arg(r.exit_code).arg(r.out, r.err);
}

// "Final estimate: PPL = 12.3456 +/- ..." -> 12.3456 (NaN when absent).
double final_ppl(const QString& out) {
    static const QRegularExpression re(QStringLiteral("Final estimate: PPL = ([0-9.eE+-]+)"));
    const auto m = re.match(out);
    return m.hasMatch() ? m.captured(1).toDouble() : qQNaN();
}

// "\"tokens\": [1,2,3]" of generate --json.
QString json_tokens(const QString& out) {
    static const QRegularExpression re(QStringLiteral("\"tokens\": \\[([0-9,]*)\\]"));
    const auto m = re.match(out);
    return m.hasMatch() ? m.captured(1) : QStringLiteral("<no tokens in output>");
}

}  // namespace

class TestBoardAarch64 : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

private slots:
    void initTestCase() {
        QVERIFY2(QFile::exists(kQemu), qPrintable(kQemu + " is missing: run scripts/setup.sh (qemu-user)"));
        QVERIFY2(QFile::exists(kBoardRunner), qPrintable(kBoardRunner + " is missing: build target ef_board_aarch64"));
        QVERIFY2(QFile::exists(kHostRunner), qPrintable(kHostRunner + " is missing: build target edgefusion-run"));
        QVERIFY(tmp_.isValid());
    }

    // `file` and readelf (binutils) — not our code — say what the binary is.
    void binary_is_static_aarch64_elf() {
        const ProcessResult f = run_process(QStringLiteral("file"), {QStringLiteral("-b"), kBoardRunner});
        QVERIFY2(f.exit_code == 0, qPrintable(describe("file", f)));
        QVERIFY2(f.out.contains(QStringLiteral("ELF 64-bit")) && f.out.contains(QStringLiteral("ARM aarch64")),
                 qPrintable("not a 64-bit aarch64 ELF: " + f.out));
        QVERIFY2(f.out.contains(QStringLiteral("statically linked")), qPrintable("not statically linked: " + f.out));

        const ProcessResult e = run_process(QStringLiteral("readelf"), {QStringLiteral("-h"), QStringLiteral("-l"), QStringLiteral("-d"), kBoardRunner});
        QVERIFY2(e.exit_code == 0, qPrintable(describe("readelf", e)));
        QVERIFY2(e.out.contains(QRegularExpression(QStringLiteral("Machine:\\s+AArch64"))), qPrintable(e.out.left(2000)));
        QVERIFY2(!e.out.contains(QStringLiteral("INTERP")), "has a program interpreter (dynamically linked)");
        QVERIFY2(!e.out.contains(QStringLiteral("(NEEDED)")), "needs shared libraries");
    }

    // Every NEON kernel against its scalar reference, on the (emulated) board CPU.
    void selftest_neon_kernels() {
        const ProcessResult r = run_board({QStringLiteral("selftest")});
        qInfo("%s", qPrintable(r.out));
        QVERIFY2(r.exit_code == 0, qPrintable(describe("qemu-aarch64 edgefusion-run selftest", r)));
        QVERIFY2(r.out.contains(QStringLiteral("cpu: aarch64")), qPrintable(r.out));
        QVERIFY2(r.out.contains(QStringLiteral("detected isa: neon")), qPrintable(r.out));
        // Every kernel type has a NEON kernel, and each was checked (rows: type, act type, kernel).
        for (const char* row : {"f32 +f32", "f16 +f16", "bf16 +bf16", "q8_0 +q8_0", "q4_0 +q8_0", "q4_K +q8_K",
                                "q5_K +q8_K", "q6_K +q8_K", "q3_K +q8_K", "q2_K +q8_K"})
            QVERIFY2(r.out.contains(QRegularExpression(QStringLiteral("\\n%1 +neon .* ok").arg(QLatin1String(row)))),
                     qPrintable(QStringLiteral("no passing NEON row for %1:\n").arg(QLatin1String(row)) + r.out));
        QVERIFY2(!r.out.contains(QStringLiteral("FAIL")), qPrintable(r.out));
    }

    // The same command on this x86 machine: its AVX2/AVX-512 kernels (tests/unit/test_kernels
    // checks them in depth); here it shows the runner's command works on both builds.
    void selftest_host() {
        const ProcessResult r = run_host({QStringLiteral("selftest")});
        QVERIFY2(r.exit_code == 0, qPrintable(describe("edgefusion-run selftest", r)));
        QVERIFY2(r.out.contains(QStringLiteral("cpu: x86_64")) && r.out.contains(QStringLiteral("all equal")), qPrintable(r.out));
    }

    // bench and profile run on the board build too (timings are meaningless under qemu; the
    // JSON must be complete).
    void bench_and_profile_run_on_board() {
        EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
        const ProcessResult b = run_board({"bench", "-m", stories, "-p", "16", "-n", "8", "-r", "1", "-t", "2", "--json"});
        QVERIFY2(b.exit_code == 0, qPrintable(describe("qemu-aarch64 edgefusion-run bench", b)));
        QJsonParseError e{};
        QJsonDocument::fromJson(b.out.toUtf8(), &e);
        QVERIFY2(e.error == QJsonParseError::NoError, qPrintable("bench --json: " + e.errorString() + "\n" + b.out));
        const ProcessResult p = run_board({"profile", "-m", stories, "--pp", "16", "--tg", "8", "-r", "1", "--json"});
        QVERIFY2(p.exit_code == 0, qPrintable(describe("qemu-aarch64 edgefusion-run profile", p)));
        const QJsonDocument d = QJsonDocument::fromJson(p.out.toUtf8(), &e);
        QVERIFY2(e.error == QJsonParseError::NoError && d.isObject(), qPrintable("profile --json: " + e.errorString() + "\n" + p.out));
        QCOMPARE(d.object().value(QStringLiteral("architecture")).toString(), QStringLiteral("llama"));
        QVERIFY2(d.object().value(QStringLiteral("peak_rss_bytes")).toDouble() > 0, qPrintable(p.out));
    }

    // Bad input to the board binary: a usage error (exit 2), not a crash.
    void selftest_rejects_bad_options() {
        const ProcessResult r = run_board({QStringLiteral("selftest"), QStringLiteral("--bogus")});
        QCOMPARE(r.exit_code, 2);
    }

    void greedy_generate_matches_x86_data() {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("prompt");
        QTest::addColumn<QString>("threads");
        EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
        QTest::newRow("stories260K llama2.c f32") << stories << QStringLiteral("Once upon a time") << QStringLiteral("1");
        // The thread pool on aarch64's weaker memory ordering.
        QTest::newRow("stories260K llama2.c f32 -t 2") << stories << QStringLiteral("Once upon a time") << QStringLiteral("2");
        // Q8_0 GGUF (mmap) written by the x86 CLI: the NEON Q8_0 kernel inside a forward pass.
        const QString q8 = tmp_.filePath(QStringLiteral("llama-q8_0.gguf"));
        const ProcessResult s = run_process(ef::test::cli_path(),
                                            {"synth", "--arch", "llama", "--dim", "128", "--layers", "2", "--vocab", "300",
                                             "--type", "q8_0", "--seed", "7", "-o", q8});
        QVERIFY2(s.exit_code == 0, qPrintable(describe("edgefusion synth", s)));
        QTest::newRow("synth llama gguf q8_0") << q8 << QStringLiteral("hello") << QStringLiteral("1");
        // Q4_0 mamba2 (SSD scan): the NEON Q4_0 kernel and the SSM path.
        const QString q4 = tmp_.filePath(QStringLiteral("mamba2-q4_0.gguf"));
        const ProcessResult s2 = run_process(ef::test::cli_path(),
                                             {"synth", "--arch", "mamba2", "--dim", "128", "--layers", "2", "--vocab", "300",
                                              "--type", "q4_0", "--seed", "7", "-o", q4});
        QVERIFY2(s2.exit_code == 0, qPrintable(describe("edgefusion synth", s2)));
        QTest::newRow("synth mamba2 gguf q4_0") << q4 << QStringLiteral("hello") << QStringLiteral("1");
        // Q4_K llama (rows of 256 for the super-blocks): the NEON k-quant kernels on Q8_K activations.
        const QString q4k = tmp_.filePath(QStringLiteral("llama-q4_K.gguf"));
        const ProcessResult s3 = run_process(ef::test::cli_path(),
                                             {"synth", "--arch", "llama", "--dim", "256", "--layers", "2", "--vocab", "300",
                                              "--type", "q4_K", "--seed", "7", "-o", q4k});
        QVERIFY2(s3.exit_code == 0, qPrintable(describe("edgefusion synth", s3)));
        QTest::newRow("synth llama gguf q4_K") << q4k << QStringLiteral("hello") << QStringLiteral("1");
    }
    void greedy_generate_matches_x86() {
        QFETCH(QString, model);
        QFETCH(QString, prompt);
        QFETCH(QString, threads);
        const QStringList args = {"generate", "-m", model, "-p", prompt, "-n", "24", "--temp", "0", "-t", threads};
        const ProcessResult host = run_host(args);
        QVERIFY2(host.exit_code == 0, qPrintable(describe("edgefusion-run generate", host)));
        const ProcessResult board = run_board(args);
        QVERIFY2(board.exit_code == 0, qPrintable(describe("qemu-aarch64 edgefusion-run generate", board)));
        qInfo("aarch64: %s", qPrintable(board.out.trimmed()));
        QVERIFY2(host.out.size() > prompt.size() + 1, qPrintable("no continuation: " + host.out));
        QCOMPARE(board.out, host.out);

        // The same for the token ids (a text can hide a different tokenization).
        const ProcessResult hj = run_host(args + QStringList{"--json"});
        const ProcessResult bj = run_board(args + QStringList{"--json"});
        QVERIFY2(hj.exit_code == 0 && bj.exit_code == 0, qPrintable(describe("generate --json", bj.exit_code ? bj : hj)));
        QCOMPARE(json_tokens(bj.out), json_tokens(hj.out));
        QVERIFY2(json_tokens(hj.out).count(',') == 23, qPrintable("expected 24 tokens: " + hj.out));
    }

    // llama-perplexity style, n_ctx 64, 2 chunks, on the first 3 KB of tinyshakespeare.
    void perplexity_matches_x86() {
        EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QFile in(text);
        QVERIFY(in.open(QIODevice::ReadOnly));
        const QString small = tmp_.filePath(QStringLiteral("small.txt"));
        QFile out(small);
        QVERIFY(out.open(QIODevice::WriteOnly));
        out.write(in.read(3000));
        out.close();

        const QStringList args = {"perplexity", "-m", stories, "-f", small, "-c", "64", "--chunks", "2"};
        const ProcessResult host = run_host(args);
        QVERIFY2(host.exit_code == 0, qPrintable(describe("edgefusion-run perplexity", host)));
        const ProcessResult board = run_board(args);
        QVERIFY2(board.exit_code == 0, qPrintable(describe("qemu-aarch64 edgefusion-run perplexity", board)));
        QVERIFY2(board.err.contains(QStringLiteral("2 chunks")), qPrintable(board.err));
        const double h = final_ppl(host.out), b = final_ppl(board.out);
        qInfo("PPL x86 %.4f, aarch64 %.4f", h, b);
        QVERIFY2(std::isfinite(h) && h > 1.0, qPrintable(host.out));
        QVERIFY2(std::isfinite(b), qPrintable(board.out));
        QVERIFY2(std::fabs(b - h) <= 1e-4 * h, qPrintable(QStringLiteral("PPL aarch64 %1 vs x86 %2").arg(b, 0, 'g', 10).arg(h, 0, 'g', 10)));
    }
};

QTEST_GUILESS_MAIN(TestBoardAarch64)
#include "test_board_aarch64.moc"
