// `edgefusion sweep-lambda` end to end on stories260K hybridized (gates and SSM branches distilled
// for a few steps per lambda, base frozen): the JSON on stdout parses with a point per lambda, the
// CSV has a header and a row per lambda, the tables are saved beside the runs; bad lambda lists and
// a config without a base model are clear errors.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

namespace {

bool write_file(const QString& path, const QByteArray& data) {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return false;
    f.write(data);
    return true;
}

}  // namespace

class TestSweepLambdaCli : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString cfg_;

private slots:
    void initTestCase() {
        EF_REQUIRE_SHARED(base, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QFile in(text);
        QVERIFY(in.open(QIODevice::ReadOnly));
        const QString small = dir_.filePath("text.txt");
        QVERIFY(write_file(small, in.read(60000)));
        cfg_ = dir_.filePath("c.yaml");
        const QString yaml = "model:\n  arch: edgefusion\n  base: " + base + "\n  tokenizer: " + tok +
                             "\ndata:\n  train_text: " + small + "\n  val_fraction: 0.1\n  seq_len: 32\n  batch: 2\n"
                             "training:\n  steps: 100\n  lr: 0.05\n  min_lr: 0.05\n  warmup: 0\n  weight_decay: 0\n"
                             "  threads: 2\n  log_every: 2\nrouter:\n  init_gate: 0.5\ndistill:\n  enabled: true\n";
        QVERIFY(write_file(cfg_, yaml.toUtf8()));
    }

    void json_table() {
        const QString out = dir_.filePath("sweep_json");
        auto r = run_process(cli_path(), {"sweep-lambda", "--config", cfg_, "--output-dir", out, "--lambdas", "0,0.5", "--steps", "4",
                                          "--eval-windows", "2", "--json"},
                             600000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        QJsonParseError perr;
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8(), &perr).object();
        QVERIFY2(perr.error == QJsonParseError::NoError, qPrintable(perr.errorString() + "\n" + r.out));
        const QJsonArray pts = j["points"].toArray();
        QCOMPARE(pts.size(), 2);
        QCOMPARE(pts[0].toObject()["lambda"].toDouble(), 0.0);
        QCOMPARE(pts[1].toObject()["lambda"].toDouble(), 0.5);
        QCOMPARE(j["eval_positions"].toInt(), 2 * 32);
        for (const auto& v : pts) {
            const QJsonObject p = v.toObject();
            QCOMPARE(p["steps"].toInt(), 4);
            QCOMPARE(p["gates"].toArray().size(), 5);
            for (const char* k : {"ssm_frac", "gate_entropy_bits", "kl", "val_ppl", "gflops_per_token", "dense_gflops_per_token"})
                QVERIFY2(p.contains(k), k);
            QVERIFY(p["gflops_per_token"].toDouble() > 0);
            QVERIFY(p["gflops_per_token"].toDouble() <= p["dense_gflops_per_token"].toDouble());
            QVERIFY(QFile::exists(p["checkpoint"].toString() + "/model.h5"));
        }
        QVERIFY(pts[1].toObject()["ssm_frac"].toDouble() >= pts[0].toObject()["ssm_frac"].toDouble());
        QVERIFY(QFile::exists(out + "/lambda_0/checkpoint_final/model.h5"));
        QVERIFY(QFile::exists(out + "/lambda_0.5/train_log.jsonl"));
        for (const char* f : {"/sweep.md", "/sweep.csv", "/sweep.json"}) QVERIFY2(QFile::exists(out + f), f);
        QVERIFY2(r.err.contains("lambda 0.5: ssm_frac"), qPrintable(r.err));  // progress lines go to stderr

        // The saved CSV: a header and one row per lambda, numbers in every numeric column.
        QFile csv(out + "/sweep.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        const QStringList lines = QString::fromUtf8(csv.readAll()).trimmed().split('\n');
        QCOMPARE(lines.size(), 3);
        const QStringList header = lines[0].split(',');
        QCOMPARE(header[0], QString("lambda"));
        QVERIFY(header.contains("gflops_per_token") && header.contains("kl") && header.contains("val_ppl"));
        for (int i = 1; i < 3; ++i) {
            const QStringList cells = lines[i].split(',');
            QCOMPARE(cells.size(), header.size());
            for (int c = 0; c < 11; ++c) {
                bool ok = false;
                cells[c].toDouble(&ok);
                QVERIFY2(ok, qPrintable(header[c] + " = " + cells[c]));
            }
        }
    }

    void csv_and_markdown() {
        auto r = run_process(cli_path(), {"sweep-lambda", "--config", cfg_, "--output-dir", dir_.filePath("sweep_csv"), "--lambdas", "0.1",
                                          "--steps", "2", "--eval-windows", "1", "--csv"},
                             600000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QVERIFY2(r.out.startsWith("lambda,ssm_frac,gate_entropy_bits"), qPrintable(r.out));
        QCOMPARE(r.out.trimmed().split('\n').size(), 2);
        QFile md(dir_.filePath("sweep_csv/sweep.md"));
        QVERIFY(md.open(QIODevice::ReadOnly));
        QVERIFY(md.readAll().contains("| lambda | ssm_frac |"));
    }

    // The demo's path: a hybrid trained from scratch, then the sweep from its checkpoint with the
    // same config (its shape keys are not used; KL is measured against the checkpoint, soft-routed).
    void from_trained_checkpoint() {
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        const QString cfg = dir_.filePath("scratch_run.yaml");
        QVERIFY(write_file(cfg, ("model:\n  arch: edgefusion\n  dim: 32\n  layers: 2\n  heads: 4\n  kv_heads: 2\n  ffn_hidden: 48\n"
                                 "  vocab_size: 300\n  context: 64\n  ssm:\n    version: 2\n    d_inner: 64\n    d_state: 8\n    heads: 4\n"
                                 "data:\n  train_text: " + dir_.filePath("text.txt") + "\n  val_fraction: 0.1\n  seq_len: 16\n  batch: 2\n"
                                 "training:\n  steps: 4\n  warmup: 1\n  lr: 0.005\n  log_every: 2\n  threads: 2\n"
                                 "router:\n  lambda: 0.05\n  tau_start: 1.0\n  tau_end: 0.5\n  anneal: linear\n").toUtf8()));
        const QString run = dir_.filePath("scratch_run");
        auto t = run_process(cli_path(), {"train", "--config", cfg, "--output-dir", run, "--skip-quantization"}, 600000);
        QVERIFY2(t.exit_code == 0, qPrintable(t.err + t.out));
        auto r = run_process(cli_path(), {"sweep-lambda", "--config", cfg, "--output-dir", dir_.filePath("sweep_ck"), "--base-model",
                                          run + "/checkpoint_final", "--lambdas", "0,1", "--steps", "3", "--eval-windows", "2", "--json"},
                             600000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        QVERIFY2(r.err.contains("the config's shape keys are not used"), qPrintable(r.err));
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QVERIFY2(j["reference"].toString().contains("soft routing"), qPrintable(r.out));
        const QJsonArray pts = j["points"].toArray();
        QCOMPARE(pts.size(), 2);
        QCOMPARE(pts[0].toObject()["gates"].toArray().size(), 2);
        QVERIFY(pts[1].toObject()["mean_gate"].toDouble() < pts[0].toObject()["mean_gate"].toDouble());
    }

    void errors_data() {
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<QString>("expected");
        QTest::newRow("not a number") << QStringList{"--lambdas", "0,abc"} << "--lambdas: lambda 'abc' is not a number";
        QTest::newRow("negative") << QStringList{"--lambdas", "0.1,-0.5"} << "--lambdas: lambda '-0.5' must be a finite number >= 0";
        QTest::newRow("empty item") << QStringList{"--lambdas", "0,,1"} << "has an empty item";
        QTest::newRow("twice") << QStringList{"--lambdas", "0.1,0.1"} << "lambda 0.1 is given twice";
        QTest::newRow("missing") << QStringList{} << "missing --lambdas";
        QTest::newRow("both formats") << QStringList{"--lambdas", "0", "--json", "--csv"} << "at most one of --json and --csv";
        QTest::newRow("bad steps") << QStringList{"--lambdas", "0", "--steps", "0"} << "--steps";
    }
    void errors() {
        QFETCH(QStringList, extra);
        QFETCH(QString, expected);
        auto r = run_process(cli_path(), QStringList{"sweep-lambda", "--config", cfg_, "--output-dir", dir_.filePath("bad")} + extra);
        QCOMPARE(r.exit_code, 1);
        QVERIFY2(r.err.startsWith("edgefusion sweep-lambda: "), qPrintable(r.err));
        QVERIFY2(r.err.contains(expected), qPrintable(r.err));
        QVERIFY(!QFile::exists(dir_.filePath("bad")));
    }

    void no_base_model() {
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        const QString cfg = dir_.filePath("scratch.yaml");
        QVERIFY(write_file(cfg, ("model:\n  arch: edgefusion\n  dim: 32\n  layers: 2\n  heads: 4\n  ffn_hidden: 48\n  vocab_size: 300\n"
                                 "  context: 64\n  ssm:\n    d_inner: 64\n    d_state: 8\n    heads: 4\ndata:\n  train_text: " +
                                 text + "\n").toUtf8()));
        auto r = run_process(cli_path(), {"sweep-lambda", "--config", cfg, "--output-dir", dir_.filePath("x"), "--lambdas", "0"});
        QCOMPARE(r.exit_code, 1);
        QVERIFY2(r.err.contains("needs a base model"), qPrintable(r.err));
    }
};

QTEST_GUILESS_MAIN(TestSweepLambdaCli)
#include "test_sweep_lambda.moc"
