// gguf::StreamWriter (core/formats/gguf_stream.h) and quantize_model_each: streaming a model out one
// tensor at a time must give the same file, byte for byte, as building the whole model in memory and
// calling save_model; errors and cancel leave no file under the target name.
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <iterator>

#include "core/formats/format.h"
#include "core/formats/gguf_stream.h"
#include "core/synth.h"
#include "quant/quantize_model.h"

using namespace ef;

// QVERIFY2 evaluates its message even on success, and an ok result has none.
#define CHECK_OK(r)                                        \
    do {                                                   \
        if (!(r).ok()) QFAIL((r).message().c_str());       \
    } while (0)

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

Model small_model(const std::string& arch) {
    SynthOptions so;
    so.arch = arch;
    so.dim = 128;
    so.n_layers = 2;
    so.vocab = 300;
    so.seed = 7;
    auto m = synth_model(so);
    if (!m) qFatal("synth: %s", m.message().c_str());
    return std::move(*m);
}

bool no_leftovers(const QTemporaryDir& dir, const QString& keep = {}) {
    const auto names = QDir(dir.path()).entryList(QDir::Files);
    for (const auto& n : names)
        if (n != keep) return false;
    return true;
}

}  // namespace

class TestGgufStream : public QObject {
    Q_OBJECT
private slots:
    void sameBytesAsSaveModel_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("target");  // ggml type name or "ef"
        QTest::newRow("llama q4_K") << "llama" << "q4_K";
        QTest::newRow("llama q8_0") << "llama" << "q8_0";
        QTest::newRow("mamba2 q6_K") << "mamba2" << "q6_K";
        QTest::newRow("llama ef3 + outliers") << "llama" << "ef";
        QTest::newRow("edgefusion ef3 + outliers") << "edgefusion" << "ef";
    }
    void sameBytesAsSaveModel() {
        QFETCH(QString, arch);
        QFETCH(QString, target);
        const Model m = small_model(arch.toStdString());
        ModelQuantOptions o;
        if (target == "ef") {
            o.ef_format = true;
            o.ef.bits = 3;
            o.ef.block = 64;
            o.ef.outlier_fraction = 0.005;
        } else {
            auto t = dtype_from_name(target.toStdString());
            QVERIFY(t.has_value());
            o.ggml_type = *t;
        }
        QTemporaryDir dir;
        const std::string whole = (dir.path() + "/whole.gguf").toStdString();
        const std::string streamed = (dir.path() + "/streamed.gguf").toStdString();

        ModelQuantReport r1, r2;
        auto q = quantize_model(m, o, nullptr, &r1);
        CHECK_OK(q);
        QVERIFY(save_model(*q, whole).ok());

        auto w = gguf::StreamWriter::create(m, streamed);
        CHECK_OK(w);
        size_t added = 0;
        auto st = quantize_model_each(m, o, nullptr, [&](Tensor&& t) { ++added; return (*w)->add(t); }, &r2);
        CHECK_OK(st);
        QVERIFY((*w)->commit().ok());

        QCOMPARE(added, q->tensors.size());
        const std::string a = slurp(whole), b = slurp(streamed);
        QVERIFY(!a.empty());
        QCOMPARE(b.size(), a.size());
        QVERIFY(a == b);
        QCOMPARE(r2.bytes, r1.bytes);
        QCOMPARE(r2.tensors.size(), r1.tensors.size());
        // The streamed file loads and holds what quantize_model made.
        auto back = load_model(streamed);
        CHECK_OK(back);
        QCOMPARE(back->tensors.size(), q->tensors.size());
        for (size_t i = 0; i < q->tensors.size(); ++i) QCOMPARE(back->tensors[i].dtype, q->tensors[i].dtype);
    }

    void sinkErrorStopsTheJob() {
        const Model m = small_model("llama");
        ModelQuantOptions o;
        o.ggml_type = DType::Q8_0;
        int calls = 0;
        auto st = quantize_model_each(m, o, nullptr, [&](Tensor&&) -> Status {
            if (++calls == 3) return make_error("disk full");
            return {};
        });
        QVERIFY(!st.ok());
        QCOMPARE(QString::fromStdString(st.message()), QString("disk full"));
        QCOMPARE(calls, 3);
    }

    void duplicateAndBadTensorsAreErrors() {
        const Model m = small_model("llama");
        QTemporaryDir dir;
        const std::string path = (dir.path() + "/x.gguf").toStdString();
        auto w = gguf::StreamWriter::create(m, path);
        QVERIFY(w.ok());
        QVERIFY((*w)->add(m.tensors[0]).ok());
        auto dup = (*w)->add(m.tensors[0]);
        QVERIFY(!dup.ok());
        QVERIFY2(dup.message().find("appears twice") != std::string::npos, dup.message().c_str());
        Tensor bad = m.tensors[1];
        bad.data = bad.data.subspan(0, bad.data.size() - 1);
        auto e = (*w)->add(bad);
        QVERIFY(!e.ok());
        QVERIFY2(e.message().find("bytes of data") != std::string::npos, e.message().c_str());
        w->reset();
        QVERIFY2(no_leftovers(dir), "an abandoned stream leaves its spool or a file behind");
    }

    void cancelledCommitLeavesNoFile() {
        const Model m = small_model("llama");
        QTemporaryDir dir;
        const std::string path = (dir.path() + "/x.gguf").toStdString();
        auto w = gguf::StreamWriter::create(m, path);
        QVERIFY(w.ok());
        for (const Tensor& t : m.tensors) QVERIFY((*w)->add(t).ok());
        Progress p;
        p.cancel();
        auto st = (*w)->commit(p);
        QVERIFY(!st.ok());
        QVERIFY2(st.message().find("cancelled") != std::string::npos, st.message().c_str());
        w->reset();
        QVERIFY(!QFile::exists(QString::fromStdString(path)));
        QVERIFY(no_leftovers(dir));
    }
};

QTEST_GUILESS_MAIN(TestGgufStream)
#include "test_gguf_stream.moc"
