// `edgefusion inspect --outliers`: the per-tensor and per-layer outlier report on the shared real model,
// checked against direct formulas over the raw llama2.c bytes; the same report from the model converted
// to HDF5; bad options exit non-zero with a message.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

class TestCliOutliers : public QObject {
    Q_OBJECT
private slots:
    void reportOnStories260K() {
        EF_REQUIRE_SHARED(model, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        auto r = run_process(cli_path(), {"inspect", model, "--tokenizer", tok, "--outliers", "--block", "32", "--json"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object()["outliers"].toObject();
        QCOMPARE(o["block"].toInt(), 32);
        // 260032 parameters minus the 11 norm vectors of 64: 259328 matrix weights; floor(0.005 * n).
        QCOMPARE(o["total_weights"].toInteger(), 259328);
        QCOMPARE(o["budget"].toInteger(), qint64(std::floor(0.005 * 259328)));
        const QJsonArray ts = o["tensors"].toArray();
        QCOMPARE(ts.size(), 36);
        qint64 sum = 0;
        QJsonObject emb;
        for (const auto& t : ts) {
            sum += t.toObject()["budget"].toInteger();
            if (t.toObject()["name"].toString() == "token_embd.weight") emb = t.toObject();
        }
        QCOMPARE(sum, o["budget"].toInteger());
        QCOMPARE(o["layers"].toArray().size(), 6);  // 5 layers + the tensors outside them

        // The embedding table is the first 512*64 floats after the 7-int32 llama2.c header.
        QFile f(model);
        QVERIFY(f.open(QIODevice::ReadOnly));
        f.seek(7 * 4);
        const QByteArray raw = f.read(512 * 64 * 4);
        const auto* v = reinterpret_cast<const float*>(raw.constData());
        const int n = 512 * 64;
        long double s = 0, sq = 0, mx = 0;
        for (int i = 0; i < n; ++i) s += v[i], sq += (long double)v[i] * v[i], mx = std::max<long double>(mx, std::fabs(v[i]));
        const long double mean = s / n;
        long double m2 = 0, m4 = 0;
        for (int i = 0; i < n; ++i) m2 += (v[i] - mean) * (v[i] - mean), m4 += std::pow(v[i] - mean, 4);
        m2 /= n, m4 /= n;
        const long double sigma = std::sqrt(m2);
        int beyond = 0;
        for (int i = 0; i < n; ++i) beyond += std::fabs(v[i] - mean) > 3 * sigma;
        QVERIFY(std::fabs(emb["kurtosis"].toDouble() - double(m4 / (m2 * m2) - 3)) < 1e-9);
        QVERIFY(std::fabs(emb["max_over_rms"].toDouble() - double(mx / std::sqrt(sq / n))) < 1e-9);
        QCOMPARE(emb["beyond_k_sigma"].toInt(), beyond);
        QCOMPARE(emb["layer"].toInt(), -1);

        // Converted to HDF5 (convert keeps working), the report is the same.
        QTemporaryDir dir;
        const QString h5 = dir.path() + "/s.h5";
        auto c = run_process(cli_path(), {"convert", model, h5, "--tokenizer", tok});
        QVERIFY2(c.exit_code == 0, qPrintable(c.err));
        auto r2 = run_process(cli_path(), {"inspect", h5, "--outliers", "--block", "32", "--json"});
        QVERIFY2(r2.exit_code == 0, qPrintable(r2.err));
        QCOMPARE(QJsonDocument::fromJson(r2.out.toUtf8()).object()["outliers"].toObject(), o);

        auto text = run_process(cli_path(), {"inspect", h5, "--outliers"});
        QVERIFY2(text.exit_code == 0, qPrintable(text.err));
        QVERIFY(text.out.contains("per-layer share of the outlier budget"));
        QVERIFY(text.out.contains("blk.4.ffn_up.weight"));
    }

    void badOptions_data() {
        QTest::addColumn<QStringList>("extra");
        QTest::addColumn<QString>("message");
        QTest::newRow("p too large") << QStringList{"--p", "0.2"} << "outside [0, 0.05]";
        QTest::newRow("k not a number") << QStringList{"--k", "abc"} << "--k";
        QTest::newRow("block 0") << QStringList{"--block", "0"} << "--block";
    }
    void badOptions() {
        QFETCH(QStringList, extra);
        QFETCH(QString, message);
        EF_REQUIRE_SHARED(model, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        auto r = run_process(cli_path(), QStringList{"inspect", model, "--tokenizer", tok, "--outliers"} + extra);
        QVERIFY(r.exit_code != 0);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
    }
};

QTEST_GUILESS_MAIN(TestCliOutliers)
#include "test_cli_outliers.moc"
