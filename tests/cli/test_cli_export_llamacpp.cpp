// `edgefusion export-llamacpp` end to end: synth -> export with a default type and per-tensor
// types -> the file's architecture and tensor types as read back (our reader), and llama.cpp
// (llama_eval.mjs) evaluates it; bad input exits non-zero with a message.
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "core/formats/format.h"
#include "core/synth.h"
#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

class TestCliExportLlamacpp : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

    QString synth(const QString& arch, const QString& name) {
        const QString out = dir_.filePath(name);
        auto r = run_process(cli_path(), {"synth", "--arch", arch, "--dim", "256", "--layers", "2", "--vocab", "512", "--ffn", "512",
                                          "--seed", "3", "-o", out});
        return r.exit_code == 0 ? out : QString();
    }

private slots:
    void llama_types() {
        const QString in = synth("llama", "llama.gguf");
        QVERIFY(!in.isEmpty());
        const QString out = dir_.filePath("llama-q4k.gguf");
        auto r = run_process(cli_path(), {"export-llamacpp", in, "-o", out, "--type", "q4_K", "--tensor-type",
                                          "blk.0.attn_q.weight=q8_0", "--tensor-type=blk.1.ffn_down.weight=q6_K,output.weight=q5_0"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        auto m = ef::load_model(out.toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        auto type = [&](const char* n) { return QString::fromUtf8(ef::dtype_name(m->find(n)->dtype).data()); };
        QCOMPARE(type("blk.0.attn_q.weight"), QString("q8_0"));
        QCOMPARE(type("blk.1.ffn_down.weight"), QString("q6_K"));
        QCOMPARE(type("output.weight"), QString("q5_0"));
        QCOMPARE(type("blk.0.attn_k.weight"), QString("q4_K"));
        QCOMPARE(type("token_embd.weight"), QString("q4_K"));
        QCOMPARE(type("blk.0.attn_norm.weight"), QString("f32"));
        auto insp = ef::test::run_node_script("llama_eval.mjs", {"--model", out, "--tokens", "1,300,42", "--greedy", "2"});
        QVERIFY2(insp.exit_code == 0, qPrintable(insp.err.right(2000)));
    }

    void edgefusion_becomes_granitehybrid() {
        // Gates set so that layer 0 keeps attention and layer 1 its Mamba-2 branch.
        ef::SynthOptions o;
        o.arch = "edgefusion";
        o.dim = 64;
        o.n_layers = 2;
        o.vocab = 512;
        o.seed = 5;
        auto ef_model = ef::synth_model(o);
        QVERIFY2(ef_model.ok(), ef_model.ok() ? "" : ef_model.message().c_str());
        for (int i = 0; i < 2; ++i) {
            const std::string name = "blk." + std::to_string(i) + ".router_gate";
            auto t = ef::Tensor::from_f32(name, {1}, std::vector<float>{i == 0 ? 2.0f : -2.0f});
            QVERIFY(t.ok());
            *ef_model->find(name) = std::move(t.value());
        }
        const QString in = dir_.filePath("ef.gguf");
        QVERIFY(ef::save_model(*ef_model, in.toStdString()).ok());
        const QString out = dir_.filePath("ef-gh.gguf");
        auto r = run_process(cli_path(), {"export-llamacpp", in, "-o", out});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("granitehybrid"), qPrintable(r.out));
        auto m = ef::load_model(out.toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(QString::fromStdString(m->architecture), QString("granitehybrid"));
        QCOMPARE(m->layers[0].mixer, ef::MixerKind::Attention);
        QCOMPARE(m->layers[1].mixer, ef::MixerKind::Mamba2);
        auto insp = ef::test::run_node_script("llama_eval.mjs", {"--model", out, "--tokens", "1,300,42", "--greedy", "2"});
        QVERIFY2(insp.exit_code == 0, qPrintable(insp.err.right(2000)));
    }

    void bad_input_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("no -o") << QStringList{"IN"} << "missing -o";
        QTest::newRow("not gguf") << QStringList{"IN", "-o", "x.safetensors"} << ".gguf";
        QTest::newRow("unknown type") << QStringList{"IN", "-o", "x.gguf", "--type", "q9_X"} << "unknown type";
        QTest::newRow("EF type") << QStringList{"IN", "-o", "x.gguf", "--type", "ef3_b128"} << "not a ggml type";
        QTest::newRow("bad tensor-type") << QStringList{"IN", "-o", "x.gguf", "--tensor-type", "attn_q"} << "NAME=TYPE";
        QTest::newRow("unknown tensor") << QStringList{"IN", "-o", "x.gguf", "--tensor-type", "blk.7.attn_q.weight=q8_0"}
                                        << "does not have";
        QTest::newRow("missing file") << QStringList{"/nonexistent.gguf", "-o", "x.gguf"} << "nonexistent";
    }
    void bad_input() {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        const QString in = dir_.filePath("llama.gguf");
        if (!QFile::exists(in)) QVERIFY(!synth("llama", "llama.gguf").isEmpty());
        for (QString& a : args) {
            if (a == "IN") a = in;
            else if (a.startsWith("x.")) a = dir_.filePath(a);
        }
        args.prepend("export-llamacpp");
        auto r = run_process(cli_path(), args);
        QVERIFY(r.exit_code != 0);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
        QVERIFY(!QFile::exists(dir_.filePath("x.gguf")));
    }
};

QTEST_GUILESS_MAIN(TestCliExportLlamacpp)
#include "test_cli_export_llamacpp.moc"
