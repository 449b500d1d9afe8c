// llama.cpp (via node-llama-cpp, tests/reference/llama_eval.mjs) loads GGUF files written by our
// writer and runs them: per-position logits come back finite and vocab-sized, and a greedy
// continuation is produced. (Whether our runtime computes the same logits is checked elsewhere.)
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "core/formats/gguf.h"
#include "tests/support/test_support.h"
#include "core/synth.h"

using namespace ef;

namespace {

// A synthetic model of `arch` (core/synth.h); an empty Model and *error on failure.
Model synth(const std::string& arch, DType type, int64_t vocab, int64_t dim, int64_t layers, std::string* error) {
    SynthOptions o;
    o.arch = arch;
    o.type = type;
    o.vocab = vocab;
    o.dim = dim;
    o.n_layers = layers;
    o.context_length = 256;
    // synth quantizes ssm_dt.weight too, whose rows are dt_rank long: make them fit a block.
    if (type_traits(type).quantized && (arch == "mamba" || arch == "jamba")) o.dt_rank = 32;
    auto m = synth_model(o);
    if (!m) {
        *error = m.message();
        return {};
    }
    return std::move(m.value());
}
}  // namespace

class TestLlamacppRuns : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        QString err;
        if (test::reference_modules(&err).isEmpty()) QFAIL(qPrintable(err));
    }

    void runs_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("dim");
        QTest::addColumn<int>("layers");
        for (const char* a : {"llama", "mamba2", "granitehybrid"})
            for (DType t : {DType::F32, DType::Q8_0}) {
                const QString tag = QStringLiteral("%1 %2").arg(a, QString::fromUtf8(dtype_name(t).data()));
                QTest::newRow(tag.toUtf8()) << QString(a) << int(t) << (t == DType::F32 ? 64 : 128)
                                            << (t == DType::F32 ? 4 : 3);
            }
        // llama.cpp knows these rows too; one file each shows our keys and names suit them.
        for (const char* a : {"mamba", "jamba"})
            QTest::newRow(QStringLiteral("%1 f32").arg(a).toUtf8()) << QString(a) << int(DType::F32) << 64 << 4;
    }
    void runs() {
        QFETCH(QString, arch);
        QFETCH(int, dtype);
        QFETCH(int, dim);
        QFETCH(int, layers);
        const int64_t vocab = 512;
        std::string err;
        Model m = synth(arch.toStdString(), DType(dtype), vocab, dim, layers, &err);
        QVERIFY2(!m.architecture.empty(), err.c_str());
        const QString path = dir_.filePath(QStringLiteral("%1-%2.gguf").arg(arch).arg(dtype));
        Status s = gguf::write_model(m, path.toStdString(), Progress::none());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());

        const QList<int> prompt = {1, 17, 300, 42, 511};
        QStringList ids;
        for (int t : prompt) ids << QString::number(t);
        const int n_greedy = 6;
        const auto r = test::run_node_script(
            "llama_eval.mjs",
            {"--model", path, "--tokens", ids.join(','), "--greedy", QString::number(n_greedy), "--logits"}, 180000);
        QVERIFY2(r.exit_code == 0, qPrintable(QStringLiteral("llama.cpp did not run %1 (exit %2):\n%3")
                                                  .arg(path).arg(r.exit_code).arg(r.err.right(4000))));
        if (!r.err.trimmed().isEmpty()) qInfo("llama.cpp said: %s", qPrintable(r.err.left(2000)));
        const auto doc = QJsonDocument::fromJson(r.out.toUtf8());
        QVERIFY2(doc.isObject(), qPrintable("no JSON from llama_eval.mjs: " + r.out.left(400)));
        const QJsonObject o = doc.object();

        const QJsonArray logits = o.value("logits").toArray();
        QCOMPARE(logits.size(), prompt.size());
        for (qsizetype pos = 0; pos < logits.size(); ++pos) {
            const QJsonArray row = logits[pos].toArray();
            QCOMPARE(row.size(), qsizetype(vocab));
            double lo = INFINITY, hi = -INFINITY;
            for (const QJsonValue& v : row) {
                QVERIFY2(v.isDouble() && std::isfinite(v.toDouble()),
                         qPrintable(QStringLiteral("non-finite logit at position %1").arg(pos)));
                lo = std::min(lo, v.toDouble());
                hi = std::max(hi, v.toDouble());
            }
            QVERIFY2(hi > lo, "all logits equal: the weights had no effect");
        }
        const QJsonArray greedy = o.value("greedy").toArray();
        QCOMPARE(greedy.size(), qsizetype(n_greedy));
        for (const QJsonValue& g : greedy) QVERIFY(g.toInt(-1) >= 0 && g.toInt(-1) < vocab);
        // Temperature-0 sampling must pick the arg-max of the last prompt position's logits.
        const QJsonArray last = logits.last().toArray();
        qsizetype best = 0;
        for (qsizetype i = 1; i < last.size(); ++i)
            if (last[i].toDouble() > last[best].toDouble()) best = i;
        QCOMPARE(greedy[0].toInt(), int(best));
    }
};

QTEST_GUILESS_MAIN(TestLlamacppRuns)
#include "test_llamacpp_runs.moc"
