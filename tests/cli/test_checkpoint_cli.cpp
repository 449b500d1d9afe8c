// The seed's commands on a training checkpoint folder: a tiny hybrid trained for a few steps by
// `edgefusion train` (its DIR/checkpoint_final/ holds model.h5, train_state.h5 and config.yaml), then
//   edgefusion quantize --checkpoint DIR/checkpoint_final --output-dir DIR/checkpoint_quantized
//   edgefusion evaluate --checkpoint DIR/checkpoint_final
//   edgefusion infer --checkpoint DIR/checkpoint_final --prompt "..." --profile
// The quantized GGUF is read back by @huggingface/gguf (independent parser); folders that hold no
// model or several give clear errors.
#include <QDir>
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

class TestCheckpointCli : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString run_, ck_;

private slots:
    void initTestCase() {
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QFile in(text);
        QVERIFY(in.open(QIODevice::ReadOnly));
        const QString small = dir_.filePath("text.txt");
        QVERIFY(write_file(small, in.read(40000)));
        const QString cfg = dir_.filePath("c.yaml");
        const QString yaml =
            "model:\n  arch: edgefusion\n  dim: 32\n  layers: 2\n  heads: 4\n  kv_heads: 2\n  ffn_hidden: 48\n"
            "  vocab_size: 300\n  context: 64\n  ssm:\n    version: 2\n    d_inner: 64\n    d_state: 8\n    heads: 4\n"
            "data:\n  train_text: " + small + "\n  val_fraction: 0.1\n  seq_len: 16\n  batch: 2\n"
            "training:\n  steps: 4\n  warmup: 1\n  lr: 0.005\n  log_every: 2\n  threads: 2\n"
            "router:\n  lambda: 0.05\nquantization:\n  format: q8_0\n";
        QVERIFY(write_file(cfg, yaml.toUtf8()));
        run_ = dir_.filePath("run");
        auto r = run_process(cli_path(), {"train", "--config", cfg, "--output-dir", run_, "--skip-quantization"}, 600000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        ck_ = run_ + "/checkpoint_final";
        QVERIFY(QFile::exists(ck_ + "/model.h5"));
        QVERIFY(QFile::exists(ck_ + "/train_state.h5"));  // not a model: the resolver must skip it
    }

    void quantize_checkpoint() {
        const QString out = run_ + "/checkpoint_quantized";
        auto r = run_process(cli_path(), {"quantize", "--checkpoint", ck_, "--output-dir", out});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        QVERIFY2(r.err.contains("--format q8_0 (from " + ck_ + "/config.yaml)"), qPrintable(r.err));
        const QString gguf = out + "/model.gguf";
        QVERIFY(QFile::exists(gguf));
        // The independent parser sees the quantized weights as GGML_TYPE_Q8_0 (8).
        auto p = ef::test::run_node_script("gguf_parse.mjs", {gguf});
        QVERIFY2(p.exit_code == 0, qPrintable(p.err));
        const QJsonObject j = QJsonDocument::fromJson(p.out.toUtf8()).object();
        int q8 = 0;
        bool attn_q = false;
        for (const auto& v : j["tensorInfos"].toArray()) {
            const QJsonObject t = v.toObject();
            q8 += t["dtype"].toInt() == 8;
            if (t["name"].toString() == "blk.0.attn_q.weight") attn_q = t["dtype"].toInt() == 8;
        }
        QVERIFY(attn_q);
        QVERIFY(q8 >= 2 * 7);  // per layer at least q, k, v, o, gate, up, down
        // An explicit --format wins over the run's config; -o and --output-dir exclude each other.
        auto e = run_process(cli_path(), {"quantize", "--checkpoint", ck_, "--output-dir", dir_.filePath("q4"), "--format", "q4_0"});
        QVERIFY2(e.exit_code == 0, qPrintable(e.err));
        QVERIFY(QFile::exists(dir_.filePath("q4/model.gguf")));
        auto both = run_process(cli_path(), {"quantize", "--checkpoint", ck_, "-o", "x.gguf", "--output-dir", "y"});
        QCOMPARE(both.exit_code, 1);
        QVERIFY2(both.err.contains("either -o FILE or --output-dir DIR"), qPrintable(both.err));
        auto two = run_process(cli_path(), {"quantize", ck_ + "/model.h5", "--checkpoint", ck_, "-o", "x.gguf"});
        QCOMPARE(two.exit_code, 1);
        QVERIFY2(two.err.contains("either as MODEL or as --checkpoint"), qPrintable(two.err));
    }

    void evaluate_checkpoint() {
        // No mode: perplexity on the run's held-out tokens.
        auto r = run_process(cli_path(), {"evaluate", "--checkpoint", ck_});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        QVERIFY2(r.out.contains("Perplexity on the held-out"), qPrintable(r.out));
        // A folder with an explicit mode, as JSON.
        auto j = run_process(cli_path(), {"evaluate", "--checkpoint", ck_, "--perplexity", dir_.filePath("text.txt"), "-c", "32",
                                          "--chunks", "4", "--json"});
        QVERIFY2(j.exit_code == 0, qPrintable(j.err));
        const QJsonObject o = QJsonDocument::fromJson(j.out.toUtf8()).object();
        QVERIFY2(o["ppl"].toDouble() > 1.0, qPrintable(j.out));
        // The folder and its model file give the same numbers.
        auto f = run_process(cli_path(), {"evaluate", "-m", ck_ + "/model.h5", "--perplexity", dir_.filePath("text.txt"), "-c", "32",
                                          "--chunks", "4", "--json"});
        QVERIFY2(f.exit_code == 0, qPrintable(f.err));
        QCOMPARE(f.out, j.out);
    }

    void infer_checkpoint() {
        auto r = run_process(cli_path(), {"infer", "--checkpoint", ck_, "--prompt", "To be", "-n", "8", "--temp", "0", "--profile"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        QVERIFY2(r.out.startsWith("To be"), qPrintable(r.out));
        for (const char* key : {"prefill", "decode", "peak RSS", "GFLOPs/token", "op kind"})
            QVERIFY2(r.out.contains(key), qPrintable(QString(key) + " missing in\n" + r.out));
        // One row per layer: "    0  attention+ffn ..." or "    1  mamba2+ffn ...".
        int layer_rows = 0;
        for (const QString& line : r.out.split('\n'))
            if (line.contains("+ffn")) ++layer_rows;
        QCOMPARE(layer_rows, 2);
        // Greedy decoding is deterministic: the same text from the model file.
        auto a = run_process(cli_path(), {"infer", "--checkpoint", ck_, "--prompt", "To be", "-n", "8", "--temp", "0"});
        auto b = run_process(cli_path(), {"infer", "-m", ck_ + "/model.h5", "--prompt", "To be", "-n", "8", "--temp", "0"});
        QVERIFY2(a.exit_code == 0 && b.exit_code == 0, qPrintable(a.err + b.err));
        QCOMPARE(a.out, b.out);
        auto missing = run_process(cli_path(), {"infer", "--checkpoint", ck_});
        QCOMPARE(missing.exit_code, 1);
        QVERIFY2(missing.err.contains("missing --prompt"), qPrintable(missing.err));
    }

    void bad_folders() {
        QTemporaryDir d;
        auto empty = run_process(cli_path(), {"infer", "--checkpoint", d.path(), "--prompt", "x"});
        QCOMPARE(empty.exit_code, 1);
        QVERIFY2(empty.err.contains("holds no model file"), qPrintable(empty.err));
        QVERIFY(QFile::copy(ck_ + "/model.h5", d.filePath("a.h5")));
        QVERIFY(QFile::copy(ck_ + "/model.h5", d.filePath("b.h5")));
        auto several = run_process(cli_path(), {"evaluate", "--checkpoint", d.path()});
        QCOMPARE(several.exit_code, 1);
        QVERIFY2(several.err.contains("several model files (a.h5, b.h5)"), qPrintable(several.err));
        auto none = run_process(cli_path(), {"quantize", "--checkpoint", d.filePath("nope"), "--output-dir", d.filePath("q")});
        QCOMPARE(none.exit_code, 1);
        QVERIFY2(none.err.contains("no such file or directory"), qPrintable(none.err));
    }
};

QTEST_GUILESS_MAIN(TestCheckpointCli)
#include "test_checkpoint_cli.moc"
