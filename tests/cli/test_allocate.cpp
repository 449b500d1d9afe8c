// `edgefusion allocate` end to end on stories260K: JSON output consistent with itself (the chosen
// widths' bytes and losses add up to the totals, the budget holds, pins hold), a memory budget with
// the KV cache counted, -o writing a model whose EF tensors have the chosen widths, and bad input
// (budget below the minimum, unknown pin, no budget) exiting non-zero with a clear message.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "core/formats/format.h"
#include "tests/support/test_support.h"

using ef::test::cli_path;
using ef::test::run_process;

class TestAllocate : public QObject {
    Q_OBJECT
    QString model_;

    QJsonObject run_json(const QStringList& args) {
        auto r = run_process(cli_path(), QStringList{"allocate", model_} + args + QStringList{"--json", "-t", "2"}, 300000);
        if (r.exit_code != 0) qWarning("%s", qPrintable(r.err));
        return QJsonDocument::fromJson(r.out.toUtf8()).object();
    }

private slots:
    void initTestCase() {
        EF_REQUIRE_SHARED(bin, "models/stories260K.bin");
        EF_REQUIRE_SHARED(txt, "text/wikitext-2-raw-test.txt");
        model_ = bin;
    }

    void budgets_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("budgetKey");
        QTest::newRow("code bits, KL") << QStringList{"--code-bits", "3.5"} << "budget_code_bits";
        QTest::newRow("effective bits, proxy, per tensor") << QStringList{"--bits", "4.6", "--proxy", "--per-tensor"} << "budget_bits";
        QTest::newRow("code bits, pinned") << QStringList{"--code-bits", "4", "--pin", "blk.2=8", "--pin", "blk.4=2", "--proxy"}
                                           << "budget_code_bits";
        QTest::newRow("memory with KV cache") << QStringList{"--memory", "1.2MB", "--context", "512", "--proxy"} << "budget_bytes";
    }
    void budgets() {
        QFETCH(QStringList, args);
        QFETCH(QString, budgetKey);
        const QJsonObject j = run_json(args);
        QVERIFY(j.contains("units"));
        QVERIFY(j.contains(budgetKey));
        double loss = 0, bytes = 0, code = 0, weights = 0;
        for (const auto& v : j["units"].toArray()) {
            const QJsonObject u = v.toObject();
            loss += u["loss"].toDouble();
            bytes += u["bytes"].toDouble();
            code += u["bits"].toDouble() * u["weights"].toDouble();
            weights += u["weights"].toDouble();
            if (u["unit"].toString() == "blk.2" && args.contains("blk.2=8")) QCOMPARE(u["bits"].toInt(), 8);
            if (u["unit"].toString() == "blk.4" && args.contains("blk.4=2")) QCOMPARE(u["bits"].toInt(), 2);
        }
        QVERIFY(qAbs(loss - j["predicted_loss"].toDouble()) <= 1e-9 * qMax(1.0, loss));
        QCOMPARE(bytes, j["quantized_bytes"].toDouble());
        QVERIFY(qAbs(8 * bytes / weights - j["average_effective_bits"].toDouble()) < 1e-9);
        if (budgetKey == "budget_code_bits") QVERIFY(code / weights <= j[budgetKey].toDouble() + 1e-12);
        if (budgetKey == "budget_bits") QVERIFY(8 * bytes / weights <= j[budgetKey].toDouble() + 1e-12);
        if (budgetKey == "budget_bytes") {
            // KV cache of stories260K at 512 positions: 5 layers x 2 x 4 KV heads x 8 dims x 512 x 4 bytes.
            QCOMPARE(j["kv_ssm_state_bytes"].toDouble(), 5.0 * 2 * 4 * 8 * 512 * 4);
            QCOMPARE(j["total_bytes"].toDouble(), bytes + j["kept_bytes"].toDouble() + j["kv_ssm_state_bytes"].toDouble());
            QVERIFY(j["total_bytes"].toDouble() <= 1.2e6);
        }
    }

    void writesTheAllocatedModel() {
        QTemporaryDir dir;
        const QString out = dir.filePath("alloc.gguf");
        auto r = run_process(cli_path(), {"allocate", model_, "--code-bits", "4", "--proxy", "-o", out, "--json"}, 300000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        auto m = ef::load_model(out.toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        for (const auto& v : j["units"].toArray()) {
            const QJsonObject u = v.toObject();
            for (const auto& t : u["tensors"].toArray()) {
                const ef::Tensor* tt = m->find(t.toString().toStdString());
                QVERIFY(tt);
                const std::string want = "ef" + std::to_string(u["bits"].toInt()) + "_b64";
                QCOMPARE(std::string(ef::dtype_name(tt->dtype)), want);
            }
        }
    }

    void badInput_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("bits below minimum") << QStringList{"--bits", "3.1"} << "below the minimum possible, 3.1152 effective bits";
        QTest::newRow("memory below minimum") << QStringList{"--memory", "100KB", "--proxy"} << "below the minimum possible";
        QTest::newRow("unknown pin") << QStringList{"--code-bits", "4", "--pin", "blk.9=3", "--proxy"} << "no unit named blk.9";
        QTest::newRow("pin width") << QStringList{"--code-bits", "4", "--pin", "blk.0=7", "--proxy"} << "not one of the candidate widths";
        QTest::newRow("no budget") << QStringList{"--proxy"} << "exactly one of";
        QTest::newRow("two budgets") << QStringList{"--bits", "4", "--memory", "1GB"} << "exactly one of";
        QTest::newRow("bad memory unit") << QStringList{"--memory", "4XB"} << "unknown unit";
        QTest::newRow("outliers range") << QStringList{"--bits", "4", "--outliers", "0.2"} << "outside [0, 0.05]";
    }
    void badInput() {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        auto r = run_process(cli_path(), QStringList{"allocate", model_} + args, 300000);
        QVERIFY(r.exit_code != 0);
        QVERIFY2(r.err.contains(message), qPrintable(r.err));
    }
};

QTEST_APPLESS_MAIN(TestAllocate)
#include "test_allocate.moc"
