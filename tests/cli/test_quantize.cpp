// `edgefusion quantize` end to end on the real stories260K: RTN, imatrix and GPTQ at q8_0, q4_0,
// EF 4-bit and EF 3-bit, calibrated on the default text (the last 10% of wikitext-2-raw-test's
// lines). Every output loads and runs (edgefusion-run perplexity on a slice of the held-out part),
// its perplexity is within a sane factor of the F32 model's, and GPTQ / imatrix are not worse than
// RTN by more than the measurement noise (KL divergence against the F32 model over the same
// windows, with its standard error). The q8_0 file is opened by llama.cpp (node-llama-cpp
// --inspect). Bad input exits non-zero with a message and leaves no output file.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <map>

#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

namespace {

QString runner() { return QStringLiteral(EF_BINARY_DIR "/app/edgefusion-run"); }

struct Measured {
    double ppl = 0, ppl_err = 0, kl = 0, kl_err = 0;
};

}  // namespace

class TestQuantize : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString model_, slice_, base_;
    double f32_ppl_ = 0;
    std::map<QString, Measured> measured_;  // "format/method"

    // edgefusion-run perplexity on the slice: "Final estimate: PPL = X +/- E".
    double runner_ppl(const QString& model, double* err = nullptr) {
        auto r = run_process(runner(), {"perplexity", "-m", model, "-f", slice_, "-c", "128"}, 300000);
        if (r.exit_code != 0) {
            qWarning("%s", qPrintable(r.err));
            return -1;
        }
        const auto m = QRegularExpression("Final estimate: PPL = ([0-9.]+) \\+/- ([0-9.]+)").match(r.out);
        if (err) *err = m.hasMatch() ? m.captured(2).toDouble() : -1;
        return m.hasMatch() ? m.captured(1).toDouble() : -1;
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        EF_REQUIRE_SHARED(bin, "models/stories260K.bin");
        EF_REQUIRE_SHARED(wiki, "text/wikitext-2-raw-test.txt");
        model_ = bin;
        // The evaluation slice comes from the start of the file: far from the calibration part (the end).
        QFile in(wiki);
        QVERIFY(in.open(QIODevice::ReadOnly));
        const QByteArray slice = in.read(60000);
        slice_ = dir_.filePath("eval.txt");
        QFile out(slice_);
        QVERIFY(out.open(QIODevice::WriteOnly));
        out.write(slice);
        out.close();
        f32_ppl_ = runner_ppl(model_);
        QVERIFY(f32_ppl_ > 1);
        base_ = dir_.filePath("f32.klbase");
        auto b = run_process(cli_path(), {"evaluate", "-m", model_, "--perplexity", slice_, "-c", "128", "--kl-base-out", base_});
        QVERIFY2(b.exit_code == 0, qPrintable(b.err));
        qInfo("F32: PPL %.3f", f32_ppl_);
    }

    void variants_data() {
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("method");
        QTest::addColumn<double>("factor");  // PPL at most factor * F32's
        const struct {
            const char* f;
            double factor;
        } formats[] = {{"q8_0", 1.03}, {"q4_0", 1.5}, {"ef4", 1.5}, {"ef3", 2.5}};
        for (const auto& f : formats)
            for (const char* m : {"rtn", "imatrix", "gptq"})
                QTest::newRow(qPrintable(QString("%1 %2").arg(f.f, m))) << QString(f.f) << QString(m) << f.factor;
    }
    void variants() {
        QFETCH(QString, format);
        QFETCH(QString, method);
        QFETCH(double, factor);
        const QString out = dir_.filePath(format + "_" + method + ".gguf");
        QStringList args{"quantize", model_, "-o", out, "--method", method, "-t", "2"};
        if (format.startsWith("ef")) args << "--format" << "ef" << "--bits" << format.mid(2);
        else args << "--format" << format;
        if (method != "rtn") args << "--calib-tokens" << "8192";
        auto r = run_process(cli_path(), args, 300000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("| blk.0.attn_q.weight |") && r.out.contains("bits per weight"), qPrintable(r.out));
        if (method != "rtn") QVERIFY2(r.out.contains("Calibration: 8192 tokens"), qPrintable(r.out));
        QVERIFY(QFile::exists(out));

        Measured m;
        m.ppl = runner_ppl(out, &m.ppl_err);
        QVERIFY(m.ppl > 1);
        QVERIFY2(m.ppl <= factor * f32_ppl_, qPrintable(QString("PPL %1 vs F32 %2").arg(m.ppl).arg(f32_ppl_)));
        auto k = run_process(cli_path(), {"evaluate", "-m", out, "--kl-base", base_, "--json"}, 300000);
        QVERIFY2(k.exit_code == 0, qPrintable(k.err));
        const QJsonObject j = QJsonDocument::fromJson(k.out.toUtf8()).object();
        m.kl = j["mean_kl"].toDouble(-1);
        m.kl_err = j["kl_error"].toDouble(-1);
        QVERIFY(m.kl >= 0 && m.kl_err >= 0);
        measured_[format + "/" + method] = m;
        qInfo("%s %s: PPL %.3f +- %.3f (F32 %.3f), KL %.5f +- %.5f", qPrintable(format), qPrintable(method), m.ppl, m.ppl_err,
              f32_ppl_, m.kl, m.kl_err);

        // Not worse than RTN beyond noise: 3 standard errors of the KL (the sensitive measure: both are
        // scored on the same windows) and 3 of the PPL (stories260K is a TinyStories model, so the
        // wikitext PPL of every variant moves by several percent; q4_0 imatrix: KL better, PPL ~7% worse).
        if (method != "rtn" && format != "q8_0") {
            const auto base = measured_.find(format + "/rtn");
            QVERIFY(base != measured_.end());
            const Measured& rtn = base->second;
            QVERIFY2(m.kl <= rtn.kl + 3 * std::max(rtn.kl_err, m.kl_err),
                     qPrintable(QString("KL %1 vs RTN %2").arg(m.kl).arg(rtn.kl)));
            QVERIFY2(m.ppl <= rtn.ppl + 3 * std::max(rtn.ppl_err, m.ppl_err),
                     qPrintable(QString("PPL %1 vs RTN %2 +- %3").arg(m.ppl).arg(rtn.ppl).arg(rtn.ppl_err)));
        }
    }

    // GPTQ beats RTN at 3 bits clearly (KL), as the issue expects.
    void gptqBeatsRtnAt3Bits() {
        const auto g = measured_.find("ef3/gptq"), r = measured_.find("ef3/rtn");
        QVERIFY(g != measured_.end() && r != measured_.end());
        QVERIFY2(g->second.kl < r->second.kl, qPrintable(QString("%1 vs %2").arg(g->second.kl).arg(r->second.kl)));
    }

    void llamaCppLoadsQ8() {
        const QString q8 = dir_.filePath("q8_0_imatrix.gguf");
        QVERIFY(QFile::exists(q8));
        auto r = ef::test::run_node_script("llama_eval.mjs", {"--model", q8, "--inspect"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(j["architecture"].toString(), QString("llama"));
        QVERIFY2(j["typeDescription"].toString().contains("Q8_0"), qPrintable(r.out));
        QVERIFY(j["size"].toDouble() > 0);
        QCOMPARE(j["tensorCount"].toInt(), 47);
        // llama.cpp runs it: its argmax after every position equals our greedy continuation of the same file.
        const int n = 12;
        const auto g = run_process(runner(), {"generate", "-m", q8, "-p", "Once upon a time", "-n", QString::number(n), "--temp", "0", "--json"});
        QVERIFY2(g.exit_code == 0, qPrintable(g.err));
        const QJsonObject go = QJsonDocument::fromJson(g.out.toUtf8()).object();
        QStringList toks;
        for (const auto& v : go["prompt_tokens"].toArray()) toks << QString::number(v.toInt());
        const int prompt = int(toks.size());
        std::vector<int> ours;
        for (const auto& v : go["tokens"].toArray()) ours.push_back(v.toInt());
        QCOMPARE(int(ours.size()), n);
        for (int i = 0; i + 1 < n; ++i) toks << QString::number(ours[size_t(i)]);
        const auto lr = ef::test::run_node_script("llama_eval.mjs", {"--model", q8, "--tokens", toks.join(','), "--logits"});
        QVERIFY2(lr.exit_code == 0, qPrintable(lr.err));
        const QJsonArray logits = QJsonDocument::fromJson(lr.out.toUtf8()).object()["logits"].toArray();
        QCOMPARE(int(logits.size()), int(toks.size()));
        for (int i = 0; i < n; ++i) {
            const QJsonArray row = logits[prompt - 1 + i].toArray();
            int best = 0;
            for (int v = 1; v < row.size(); ++v)
                if (row[v].toDouble() > row[best].toDouble()) best = v;
            QVERIFY2(best == ours[size_t(i)], qPrintable(QString("step %1: llama.cpp %2, ours %3").arg(i).arg(best).arg(ours[size_t(i)])));
        }
    }

    // evaluate --heldout scores the text without its last 10% of lines (quantize's default calibration part).
    void evaluateHeldout() {
        QFile in(slice_);
        QVERIFY(in.open(QIODevice::ReadOnly));
        QList<QByteArray> lines;
        while (lines.size() < 60 && !in.atEnd()) lines << in.readLine();
        QCOMPARE(lines.size(), 60);
        const QString all = dir_.filePath("60.txt"), first = dir_.filePath("54.txt");
        QFile a(all), f(first);
        QVERIFY(a.open(QIODevice::WriteOnly) && f.open(QIODevice::WriteOnly));
        for (int i = 0; i < 60; ++i) {
            a.write(lines[i]);
            if (i < 54) f.write(lines[i]);
        }
        a.close();
        f.close();
        auto ev = [&](const QStringList& extra) {
            auto r = run_process(cli_path(), QStringList{"evaluate", "-m", model_, "-c", "32", "--json"} + extra);
            if (r.exit_code != 0) qWarning("%s", qPrintable(r.err));
            return QJsonDocument::fromJson(r.out.toUtf8()).object();
        };
        const QJsonObject held = ev({"--perplexity", all, "--heldout"}), want = ev({"--perplexity", first});
        const QJsonObject whole = ev({"--perplexity", all});
        QVERIFY(want["text_tokens"].toInt() > 0);
        QCOMPARE(held["text_tokens"].toInt(), want["text_tokens"].toInt());
        QCOMPARE(held["ppl"].toDouble(), want["ppl"].toDouble());
        QVERIFY(whole["text_tokens"].toInt() > held["text_tokens"].toInt());
    }

    void badInput_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("unknown format") << QStringList{"--format", "q7_0"} << "unknown --format 'q7_0'";
        QTest::newRow("block not dividing rows") << QStringList{"--format", "ef", "--bits", "4", "--block", "128"}
                                                 << "blk.0.attn_q.weight (64 x 64): block size 128 does not divide";
        QTest::newRow("strict ggml block") << QStringList{"--format", "q4_K", "--strict"} << "blk.0.attn_q.weight";
        QTest::newRow("outliers over 5%") << QStringList{"--format", "ef", "--outliers", "6"} << "within 0..5";
        QTest::newRow("calibration text too short") << QStringList{"--format", "q4_0", "--method", "imatrix", "--calib", "SHORT"}
                                                    << "calibration text too short";
        QTest::newRow("missing calibration file") << QStringList{"--format", "q4_0", "--method", "gptq", "--calib", "/nonexistent/c.txt"}
                                                  << "cannot open the calibration text";
        QTest::newRow("gptq to a k-quant") << QStringList{"--format", "q4_K", "--method", "gptq"} << "gptq makes";
        QTest::newRow("missing model") << QStringList{"--format", "q8_0", "MODEL=/nonexistent/m.gguf"} << "/nonexistent/m.gguf";
    }
    void badInput() {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        const QString shortText = dir_.filePath("short.txt");
        QFile s(shortText);
        QVERIFY(s.open(QIODevice::WriteOnly));
        s.write("Once upon a time");
        s.close();
        QString model = model_;
        QStringList a;
        for (const QString& x : args) {
            if (x == "SHORT") a << shortText;
            else if (x.startsWith("MODEL=")) model = x.mid(6);
            else a << x;
        }
        const QString out = dir_.filePath("bad.gguf");
        auto r = run_process(cli_path(), QStringList{"quantize", model, "-o", out} + a);
        QVERIFY(r.exit_code != 0);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
        QVERIFY(!QFile::exists(out));
    }
};

QTEST_GUILESS_MAIN(TestQuantize)
#include "test_quantize.moc"
