// `edgefusion train` end to end: --dry-run catches bad input with a clear error (unknown key,
// impossible shape, a base model of an unsupported architecture, data shorter than one batch) and
// prints the memory estimate for a good config; --debug trains 100 steps of a tiny hybrid and
// writes checkpoint_final (which `edgefusion inspect` loads), the JSONL log and the quantized model.
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

QString tiny_config(const QString& text, const QString& extra_model = {}, const QString& seq_len = "16") {
    return "model:\n  arch: edgefusion\n  dim: 32\n  layers: 2\n  heads: 4\n  kv_heads: 2\n  ffn_hidden: 48\n"
           "  vocab_size: 280\n  context: 64\n" + extra_model +
           "  ssm:\n    version: 2\n    d_inner: 64\n    d_state: 8\n    heads: 4\n"
           "data:\n  train_text: " + text + "\n  val_fraction: 0.1\n  seq_len: " + seq_len + "\n  batch: 2\n"
           "training:\n  steps: 1000\n  warmup: 5\n  lr: 0.005\n  log_every: 25\n  eval_every: 50\n  threads: 2\n"
           "router:\n  lambda: 0.05\n  tau_start: 1.0\n  tau_end: 0.5\n  anneal: linear\n"
           "quantization:\n  format: q8_0\n";
}

bool write_file(const QString& path, const QString& text) {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return false;
    f.write(text.toUtf8());
    return true;
}

}  // namespace

class TestTrainCli : public QObject {
    Q_OBJECT
private slots:
    void dry_run_errors_data() {
        QTest::addColumn<QString>("case_name");
        QTest::addColumn<QString>("expected");
        QTest::newRow("unknown key") << "unknown_key" << "c.yaml:23: unknown key 'training.stepz'";
        QTest::newRow("impossible shape") << "shape" << "c.yaml: 'model.dim' (30) is not divisible by 'model.heads' (4)";
        QTest::newRow("unsupported base") << "base"
            << "architecture 'mamba2' is not supported for training (llama is hybridized into edgefusion; edgefusion trains as it is)";
        QTest::newRow("short data") << "short"
            << "is shorter than one batch: 10 training tokens, a window of seq_len 16 needs 17";
        QTest::newRow("missing text") << "missing" << "'data.train_text': cannot read";
    }
    void dry_run_errors() {
        QFETCH(QString, case_name);
        QFETCH(QString, expected);
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QTemporaryDir dir;
        const QString cfg = dir.filePath("c.yaml");
        QString yaml = tiny_config(text);
        QStringList extra;
        if (case_name == "unknown_key") {
            yaml.replace("  warmup: 5\n", "  warmup: 5\n  stepz: 3\n");  // line 23
        } else if (case_name == "shape") {
            yaml.replace("  dim: 32\n", "  dim: 30\n");
        } else if (case_name == "base") {
            const QString base = dir.filePath("m2.gguf");
            auto s = run_process(cli_path(), {"synth", "--arch", "mamba2", "--dim", "64", "--layers", "2", "--vocab", "300", "-o", base});
            QVERIFY2(s.exit_code == 0, qPrintable(s.err));
            // With a base model the shape comes from it: a config without shape keys.
            yaml = "model:\n  arch: edgefusion\ndata:\n  train_text: " + text + "\n  seq_len: 16\n  batch: 2\n";
            extra = {"--base-model", base};
        } else if (case_name == "short") {
            const QString small = dir.filePath("small.txt");
            QVERIFY(write_file(small, "to be or"));  // BOS and 9 tokens (8 characters and the leading "▁")
            yaml.replace("train_text: " + text, "train_text: " + small);
            yaml.replace("  val_fraction: 0.1\n", "  val_fraction: 0\n");
            yaml.replace("  eval_every: 50\n", "");
        } else if (case_name == "missing") {
            yaml.replace("train_text: " + text, "train_text: " + dir.filePath("nope.txt"));
        }
        QVERIFY(write_file(cfg, yaml));
        auto r = run_process(cli_path(), QStringList{"train", "--config", cfg, "--output-dir", dir.filePath("out"), "--dry-run"} + extra);
        QCOMPARE(r.exit_code, 1);
        QVERIFY2(r.err.contains(expected), qPrintable(r.err));
        QVERIFY2(r.err.startsWith("edgefusion train: "), qPrintable(r.err));
        QVERIFY(!QFile::exists(dir.filePath("out/checkpoint_final")));
    }

    void dry_run_estimate() {
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        auto r = run_process(cli_path(), {"train", "--config", ef::test::source_path("resources/configs/demo_scratch.yaml"), "--dry-run"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("memory estimate: params "), qPrintable(r.out));
        QVERIFY(r.out.contains("nothing was trained"));
        auto h = run_process(cli_path(), {"train", "--config", ef::test::source_path("resources/configs/hybridize_stories260k.yaml"),
                                          "--dry-run", "--freeze-base"});
        QVERIFY2(h.exit_code == 0, qPrintable(h.err));
        QVERIFY2(h.out.contains("hybridized from") && h.out.contains("base frozen"), qPrintable(h.out));
        // The demo's second stage, on the shipped demo as its base (the first stage's checkpoint is not committed).
        auto d = run_process(cli_path(), {"train", "--config", ef::test::source_path("resources/configs/demo_harden.yaml"), "--base-model",
                                          ef::test::source_path("resources/demo/edgefusion-demo-q8_0.gguf"), "--dry-run"});
        QVERIFY2(d.exit_code == 0, qPrintable(d.err));
        QVERIFY2(d.out.contains("fine-tuned from") && d.out.contains("entropy 0.05, tau 0.25 -> 0.1"), qPrintable(d.out));
    }

    void usage_errors() {
        auto a = run_process(cli_path(), {"train", "--output-dir", "x"});
        QCOMPARE(a.exit_code, 1);
        QVERIFY(a.err.contains("missing --config"));
        auto b = run_process(cli_path(), {"train", "--config", "nope.yaml", "--output-dir", "x"});
        QCOMPARE(b.exit_code, 1);
        QVERIFY2(b.err.contains("nope.yaml: cannot open the config file"), qPrintable(b.err));
        auto c = run_process(cli_path(), {"train", "--config", "c.yaml", "--dry-run", "--debug"});
        QCOMPARE(c.exit_code, 1);
    }

    void debug_run_writes_checkpoint() {
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QTemporaryDir dir;
        const QString cfg = dir.filePath("c.yaml");
        QVERIFY(write_file(cfg, tiny_config(text)));
        const QString out = dir.filePath("run");
        auto r = run_process(cli_path(), {"train", "--config", cfg, "--output-dir", out, "--debug"}, 600000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        QVERIFY2(r.out.contains("trained 100 steps"), qPrintable(r.out));
        QVERIFY(r.out.contains("ssm_frac"));

        // The log: one JSON object per line with loss, ssm_frac, entropy and the per-layer gates.
        QFile log(out + "/train_log.jsonl");
        QVERIFY(log.open(QIODevice::ReadOnly));
        const QList<QByteArray> lines = log.readAll().trimmed().split('\n');
        QCOMPARE(lines.size(), 5);  // steps 1, 25, 50, 75, 100
        const QJsonObject first = QJsonDocument::fromJson(lines.front()).object();
        const QJsonObject last = QJsonDocument::fromJson(lines.back()).object();
        QCOMPARE(last["step"].toInt(), 100);
        QCOMPARE(last["gates"].toArray().size(), 2);
        QVERIFY(last.contains("ssm_frac") && last.contains("gate_entropy_bits") && last.contains("val_loss"));
        QVERIFY(last["loss"].toDouble() < first["loss"].toDouble());

        auto insp = run_process(cli_path(), {"inspect", out + "/checkpoint_final/model.h5", "--json"});
        QVERIFY2(insp.exit_code == 0, qPrintable(insp.err));
        const QJsonObject j = QJsonDocument::fromJson(insp.out.toUtf8()).object();
        QCOMPARE(j["architecture"].toString(), QString("edgefusion"));
        QCOMPARE(j["layers"].toArray().size(), 2);
        // Not skipped: the final checkpoint quantized to q8_0.
        auto q = run_process(cli_path(), {"inspect", out + "/checkpoint_quantized/model.gguf", "--tensors"});
        QVERIFY2(q.exit_code == 0, qPrintable(q.err));
        QVERIFY2(q.out.contains("q8_0"), qPrintable(q.out));

        auto skip = run_process(cli_path(), {"train", "--config", cfg, "--output-dir", dir.filePath("run2"), "--debug",
                                             "--skip-quantization"}, 600000);
        QVERIFY2(skip.exit_code == 0, qPrintable(skip.err));
        QVERIFY(QFile::exists(dir.filePath("run2/checkpoint_final/model.h5")));
        QVERIFY(!QFile::exists(dir.filePath("run2/checkpoint_quantized/model.gguf")));
    }
};

QTEST_GUILESS_MAIN(TestTrainCli)
#include "test_train_cli.moc"
