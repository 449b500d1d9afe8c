// `edgefusion evaluate` end to end on the real stories260K: perplexity (Markdown and JSON), a KL
// base saved and compared with the same model (KL 0, top-1 100%, base PPL = the perplexity run's),
// every zero-shot task on the shared files with --limit 20, and bad input exiting non-zero with a
// message. (Numbers are checked against llama.cpp in tests/model/test_eval_reference.cpp.)
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "core/formats/format.h"
#include "core/synth.h"
#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

class TestEvaluate : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString model_, text_, short_, mismatch_;

    QJsonObject json_of(const QStringList& args) {
        auto r = run_process(cli_path(), QStringList{"evaluate", "-m", model_} + args + QStringList{"--json"}, 300000);
        if (r.exit_code != 0) qWarning("%s", qPrintable(r.err));
        return QJsonDocument::fromJson(r.out.toUtf8()).object();
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        EF_REQUIRE_SHARED(bin, "models/stories260K.bin");
        EF_REQUIRE_SHARED(txt, "text/tinyshakespeare.txt");
        model_ = bin;
        QFile in(txt);
        QVERIFY(in.open(QIODevice::ReadOnly));
        const QByteArray slice = in.read(1200);
        text_ = dir_.filePath("slice.txt");
        QFile out(text_);
        QVERIFY(out.open(QIODevice::WriteOnly));
        out.write(slice);
        out.close();
        short_ = dir_.filePath("short.txt");
        QFile s(short_);
        QVERIFY(s.open(QIODevice::WriteOnly));
        s.write("First Citizen: hello");
        s.close();
        // A GGUF whose config (feed_forward_length) disagrees with its FFN tensors.
        ef::SynthOptions so;
        so.dim = 64;
        so.n_layers = 2;
        so.vocab = 300;
        so.context_length = 64;
        auto m = ef::synth_model(so);
        QVERIFY(m.ok());
        m->config.ffn_hidden += 32;
        mismatch_ = dir_.filePath("mismatch.gguf");
        QVERIFY(ef::save_model(*m, mismatch_.toStdString()).ok());
    }

    void perplexityAndKlBase() {
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        auto md = run_process(cli_path(), {"evaluate", "--checkpoint", model_, "--tokenizer", tok, "--perplexity", text_,
                                           "-c", "64", "--chunks", "3"});
        QVERIFY2(md.exit_code == 0, qPrintable(md.err));
        QVERIFY2(md.out.contains("| PPL |") && md.out.contains("| 3 |"), qPrintable(md.out));

        const QJsonObject p = json_of({"--perplexity", text_, "-c", "64", "--chunks", "3"});
        QCOMPARE(p["metric"].toString(), QString("perplexity"));
        QCOMPARE(p["chunks"].toInt(), 3);
        QCOMPARE(p["scored_tokens"].toInt(), 3 * 31);
        QCOMPARE(p["chunk_ppl"].toArray().size(), 3);
        const double ppl = p["ppl"].toDouble();
        QVERIFY2(ppl > 1 && ppl < 512, qPrintable(QString::number(ppl)));
        QVERIFY(p["ppl_error"].toDouble() > 0);

        const QString base = dir_.filePath("base.klbase");
        const QJsonObject w = json_of({"--perplexity", text_, "-c", "64", "--chunks", "3", "--kl-base-out", base});
        QVERIFY(QFile::exists(base));
        QCOMPARE(w["ppl"].toDouble(), ppl);
        const QJsonObject k = json_of({"--kl-base", base});
        QCOMPARE(k["metric"].toString(), QString("kl_divergence"));
        QCOMPARE(k["mean_kl"].toDouble(), 0.0);
        QCOMPARE(k["max_kl"].toDouble(), 0.0);
        QCOMPARE(k["top1_agreement"].toDouble(), 1.0);
        QCOMPARE(k["positions"].toInt(), 93);
        QVERIFY(std::abs(k["base_ppl"].toDouble() - ppl) < 1e-5 * ppl);
        QVERIFY(std::abs(k["ppl"].toDouble() - ppl) < 1e-9 * ppl);

        const QString topk = dir_.filePath("top4.klbase");
        json_of({"--perplexity", text_, "-c", "64", "--chunks", "3", "--kl-base-out", topk, "--kl-top-k", "4"});
        QVERIFY(QFile(topk).size() < QFile(base).size());
        QCOMPARE(json_of({"--kl-base", topk})["top_k"].toInt(), 4);
    }

    void everyTaskRuns() {
        EF_REQUIRE_SHARED(evdir, "eval");
        const QJsonObject j = json_of({"--task", "all", "--limit", "20", "--eval-dir", evdir});
        const QJsonArray rs = j["results"].toArray();
        QCOMPARE(rs.size(), 6);
        QStringList names;
        for (const auto& v : rs) {
            const QJsonObject r = v.toObject();
            names << r["task"].toString();
            QCOMPARE(r["n"].toInt(), 20);
            const double acc = r["acc"].toDouble(-1);
            QVERIFY2(acc >= 0 && acc <= 1, qPrintable(r["task"].toString()));
            qInfo("%s: acc %.3f", qPrintable(r["task"].toString()), acc);
        }
        QCOMPARE(names, QStringList({"arc_easy", "arc_challenge", "piqa", "winogrande", "hellaswag", "lambada"}));
        const double norm = rs[4].toObject()["acc_norm"].toDouble(-1);
        QVERIFY(norm >= 0 && norm <= 1);
        QVERIFY(rs[5].toObject()["ppl"].toDouble() > 1);
        // Markdown table with one task.
        auto md = run_process(cli_path(), {"evaluate", "-m", model_, "--task", "piqa", "--limit", "3", "--eval-dir", evdir});
        QVERIFY2(md.exit_code == 0, qPrintable(md.err));
        QVERIFY2(md.out.contains("| piqa | 3 |"), qPrintable(md.out));
    }

    void badInput_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expect");
        QTest::newRow("no model") << QStringList{"--perplexity", "x.txt"} << "missing --model";
        QTest::newRow("no mode") << QStringList{"-m", "@M"} << "exactly one of";
        QTest::newRow("two modes") << QStringList{"-m", "@M", "--task", "piqa", "--kl-base", "b"} << "exactly one of";
        QTest::newRow("missing text") << QStringList{"-m", "@M", "--perplexity", "/nonexistent/t.txt"} << "cannot open the text file";
        QTest::newRow("short text") << QStringList{"-m", "@M", "--perplexity", "@S", "-c", "64"} << "needs at least 128";
        QTest::newRow("ctx too big") << QStringList{"-m", "@M", "--perplexity", "@T", "-c", "4096"} << "exceeds the model's context";
        QTest::newRow("bad ctx") << QStringList{"-m", "@M", "--perplexity", "@T", "-c", "zero"} << "--ctx-size";
        QTest::newRow("unknown task") << QStringList{"-m", "@M", "--task", "mmlu"} << "unknown task 'mmlu'";
        QTest::newRow("missing eval dir") << QStringList{"-m", "@M", "--task", "piqa", "--eval-dir", "/nonexistent"} << "cannot open";
        QTest::newRow("kl base not a file") << QStringList{"-m", "@M", "--kl-base", "@T"} << "wrong magic";
        QTest::newRow("kl-base-out alone") << QStringList{"-m", "@M", "--kl-base-out", "x.bin"} << "needs --perplexity";
        QTest::newRow("missing model") << QStringList{"-m", "/nonexistent/m.gguf", "--task", "piqa"} << "m.gguf";
        QTest::newRow("tensors disagree with config") << QStringList{"-m", "@X", "--perplexity", "@T", "-c", "16"}
                                                      << "tensor blk.0.ffn_";
        QTest::newRow("tensors disagree, task") << QStringList{"-m", "@X", "--task", "piqa", "--limit", "1"} << "tensor blk.0.ffn_";
    }
    void badInput() {
        QFETCH(QStringList, args);
        QFETCH(QString, expect);
        for (QString& a : args) {
            if (a == "@M") a = model_;
            if (a == "@T") a = text_;
            if (a == "@S") a = short_;
            if (a == "@X") a = mismatch_;
        }
        auto r = run_process(cli_path(), QStringList{"evaluate"} + args);
        QVERIFY2(r.exit_code != 0 && r.exit_code != -1, qPrintable(QString::number(r.exit_code) + r.err));
        QVERIFY2(r.err.contains(expect), qPrintable(r.err));
    }
};

QTEST_GUILESS_MAIN(TestEvaluate)
#include "test_evaluate.moc"
