// The CLI end to end: synth -> inspect -> convert across every format, checked against the
// @huggingface/gguf parser and the shared real model; bad input exits non-zero with a message.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "core/formats/format.h"
#include "core/synth.h"
#include "core/hdf5/hdf5_format.h"
#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

namespace {

QJsonObject parse_json(const QString& text) {
    const auto doc = QJsonDocument::fromJson(text.toUtf8());
    return doc.object();
}

}  // namespace

class TestCli : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() { ef::register_hdf5_format(); }

    void synth_inspect_matches_reference_parser_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("type");
        for (const char* a : {"llama", "mamba", "mamba2", "granitehybrid", "jamba", "edgefusion"})
            for (const char* t : {"f32", "q8_0"}) QTest::newRow((QString(a) + "/" + t).toUtf8()) << a << t;
    }
    void synth_inspect_matches_reference_parser() {
        QFETCH(QString, arch);
        QFETCH(QString, type);
        QTemporaryDir dir;
        const QString out = dir.filePath("m.gguf");
        auto r = run_process(cli_path(), {"synth", "--arch", arch, "--dim", "64", "--layers", "4", "--vocab", "512",
                                          "--type", type, "--seed", "7", "-o", out});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        auto insp = run_process(cli_path(), {"inspect", out, "--json"});
        QVERIFY2(insp.exit_code == 0, qPrintable(insp.err));
        const auto j = parse_json(insp.out);
        QCOMPARE(j["architecture"].toString(), arch);
        QCOMPARE(j["format"].toString(), QString("gguf"));
        QCOMPARE(j["layers"].toArray().size(), 4);

        // Independent count: the tensors @huggingface/gguf finds in the same file.
        auto ref = ef::test::run_node_script("gguf_parse.mjs", {out});
        QVERIFY2(ref.exit_code == 0, qPrintable(ref.err));
        const auto parsed = parse_json(ref.out);
        qint64 params = 0;
        for (const auto& ti : parsed["tensorInfos"].toArray()) {
            qint64 n = 1;
            for (const auto& d : ti.toObject()["shape"].toArray())
                n *= d.isString() ? d.toString().toLongLong() : d.toInteger();
            params += n;
        }
        QCOMPARE(j["parameters"].toInteger(), params);
        QCOMPARE(parsed["metadata"].toObject()["general.architecture"].toObject()["value"].toString(), arch);
    }

    void convert_round_trip_through_every_format() {
        QTemporaryDir dir;
        const QString a = dir.filePath("a.gguf"), b = dir.filePath("b.h5"), c = dir.filePath("c.safetensors"),
                      d = dir.filePath("d.gguf");
        auto r = run_process(cli_path(), {"synth", "--arch", "llama", "--dim", "64", "--layers", "2", "--vocab", "300",
                                          "--seed", "3", "-o", a});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        for (auto [in, out] : {std::pair{a, b}, std::pair{b, c}, std::pair{c, d}}) {
            auto cr = run_process(cli_path(), {"convert", in, out});
            QVERIFY2(cr.exit_code == 0, qPrintable(cr.err));
        }
        auto ma = ef::load_model(a.toStdString());
        auto md = ef::load_model(d.toStdString());
        QVERIFY2(ma.ok(), ma.ok() ? "" : ma.message().c_str());
        QVERIFY2(md.ok(), md.ok() ? "" : md.message().c_str());
        QCOMPARE(md->tensors.size(), ma->tensors.size());
        QVERIFY(md->config == ma->config);
        for (const auto& t : ma->tensors) {
            const auto* u = md->find(t.name);
            QVERIFY2(u, t.name.c_str());
            QVERIFY(u->shape == t.shape);
            QCOMPARE(u->dtype, t.dtype);
            QVERIFY2(std::equal(t.data.begin(), t.data.end(), u->data.begin(), u->data.end()), t.name.c_str());
        }
        QCOMPARE(md->vocab.tokens, ma->vocab.tokens);
    }

    void inspect_stories260k() {
        EF_REQUIRE_SHARED(model, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        auto r = run_process(cli_path(), {"inspect", model, "--tokenizer", tok, "--json"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const auto j = parse_json(r.out);
        QCOMPARE(j["architecture"].toString(), QString("llama"));
        QCOMPARE(j["layers"].toArray().size(), 5);
        // From shared/README.md: dim 64, hidden 172, 5 layers, 8 heads / 4 KV heads, vocab 512,
        // classifier shared with the embedding.
        const qint64 dim = 64, hidden = 172, kv = 4 * (dim / 8), vocab = 512;
        const qint64 per_layer = dim + dim * dim + 2 * dim * kv + dim * dim + dim + 3 * dim * hidden;
        QCOMPARE(j["parameters"].toInteger(), vocab * dim + 5 * per_layer + dim);
        QCOMPARE(j["vocab"].toObject()["size"].toInteger(), vocab);
        auto text = run_process(cli_path(), {"inspect", model, "--tokenizer", tok});
        QVERIFY(text.out.contains("architecture  llama"));
    }

    void inspect_stats_of_stories260k() {
        EF_REQUIRE_SHARED(model, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        auto r = run_process(cli_path(), {"inspect", model, "--tokenizer", tok, "--stats", "--json"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const auto rows = parse_json(r.out)["tensor_stats"].toArray();
        QCOMPARE(rows.size(), 47);
        // Independent of our readers: the embedding table is the first 512*64 floats after the
        // llama2.c header of seven int32 (shared/README.md).
        QFile f(model);
        QVERIFY(f.open(QIODevice::ReadOnly));
        f.seek(7 * 4);
        const QByteArray raw = f.read(512 * 64 * 4);
        QCOMPARE(raw.size(), 512 * 64 * 4);
        const auto* v = reinterpret_cast<const float*>(raw.constData());
        double lo = v[0], hi = v[0], sum = 0;
        for (int i = 0; i < 512 * 64; ++i) {
            lo = std::min(lo, double(v[i]));
            hi = std::max(hi, double(v[i]));
            sum += v[i];
        }
        QJsonObject emb;
        for (const auto& row : rows)
            if (row.toObject()["name"].toString() == "token_embd.weight") emb = row.toObject();
        QCOMPARE(emb["min"].toDouble(), lo);
        QCOMPARE(emb["max"].toDouble(), hi);
        QVERIFY(std::abs(emb["mean"].toDouble() - sum / (512 * 64)) < 1e-9);
        QCOMPARE(emb["nan"].toInt(), 0);
    }

    void bad_input_is_an_error_not_a_crash_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("message");
        QTest::newRow("missing file") << QStringList{"inspect", "/nonexistent/model.gguf"} << 1 << "/nonexistent/model.gguf";
        QTest::newRow("unknown command") << QStringList{"frobnicate"} << 2 << "unknown command";
        QTest::newRow("unknown option") << QStringList{"inspect", "--jsn", "x.gguf"} << 1 << "unknown option --jsn";
        QTest::newRow("unknown arch") << QStringList{"synth", "--arch", "gpt9", "--dim", "64", "--layers", "2", "--vocab",
                                                     "300", "-o", "/tmp/never.gguf"} << 1 << "unknown architecture";
        QTest::newRow("bad int") << QStringList{"synth", "--arch", "llama", "--dim", "6x4", "--layers", "2", "--vocab",
                                                "300", "-o", "/tmp/never.gguf"} << 1 << "--dim";
        QTest::newRow("bad extension") << QStringList{"convert", "a.gguf", "out.xyz"} << 1 << "extension";
    }
    void bad_input_is_an_error_not_a_crash() {
        QFETCH(QStringList, args);
        QFETCH(int, code);
        QFETCH(QString, message);
        auto r = run_process(cli_path(), args);
        QCOMPARE(r.exit_code, code);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
    }

    void nan_weights_are_reported() {
        QTemporaryDir dir;
        ef::SynthOptions o;
        o.arch = "llama";
        o.dim = 64;
        o.n_layers = 2;
        o.vocab = 300;
        auto m = ef::synth_model(o);
        QVERIFY(m.ok());
        auto* t = m->find("blk.1.ffn_up.weight");
        QVERIFY(t);
        auto values = t->to_f32();
        QVERIFY(values.ok());
        (*values)[5] = std::numeric_limits<float>::quiet_NaN();
        (*values)[6] = std::numeric_limits<float>::infinity();
        auto poisoned = ef::Tensor::from_f32(t->name, t->shape, *values);
        QVERIFY(poisoned.ok());
        *t = std::move(*poisoned);
        const QString path = dir.filePath("nan.gguf");
        QVERIFY(ef::save_model(*m, path.toStdString()).ok());

        auto plain = run_process(cli_path(), {"inspect", path});
        QCOMPARE(plain.exit_code, 0);  // opening does not read the weights
        auto checked = run_process(cli_path(), {"inspect", path, "--check"});
        QCOMPARE(checked.exit_code, 1);
        QVERIFY2(checked.err.contains("blk.1.ffn_up.weight (1 NaN, 1 Inf)"), qPrintable(checked.err));
        QVERIFY(checked.err.contains(path));
        const QString out = dir.filePath("out.h5");
        auto refused = run_process(cli_path(), {"convert", path, out});
        QCOMPARE(refused.exit_code, 1);
        QVERIFY(!QFileInfo::exists(out));
        auto forced = run_process(cli_path(), {"convert", path, out, "--allow-nonfinite"});
        QVERIFY2(forced.exit_code == 0, qPrintable(forced.err));
    }

    void corrupt_file_names_the_file() {
        QTemporaryDir dir;
        const QString good = dir.filePath("good.gguf");
        auto r = run_process(cli_path(), {"synth", "--arch", "mamba2", "--dim", "64", "--layers", "2", "--vocab", "300",
                                          "-o", good});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QFile f(good);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray bytes = f.readAll();
        const QString cut = dir.filePath("cut.gguf");
        QFile g(cut);
        QVERIFY(g.open(QIODevice::WriteOnly));
        g.write(bytes.left(bytes.size() / 2));
        g.close();
        auto ir = run_process(cli_path(), {"inspect", cut});
        QCOMPARE(ir.exit_code, 1);
        QVERIFY2(ir.err.contains(cut), qPrintable(ir.err));
        // A failed conversion leaves nothing under the target name.
        const QString out = dir.filePath("never.h5");
        auto cr = run_process(cli_path(), {"convert", cut, out});
        QCOMPARE(cr.exit_code, 1);
        QVERIFY(!QFileInfo::exists(out));
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
