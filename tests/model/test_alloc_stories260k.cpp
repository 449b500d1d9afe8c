// Bit allocation on the real stories260K (issue 4's quality claim): per-tensor KL sensitivities
// measured on calibration windows from the last 10% of WikiText-2 test, the exact allocation, the
// whole model quantized with the chosen widths (real EF tensors), and its KL on held-out windows
// from the first part of the text, against uniform 3-bit at the same settings (B = 64, the largest
// size dividing the 64-wide rows; p = 0.5% and p = 0). Prints every number.
#include <QtTest>
#include <fstream>
#include <sstream>

#include "core/formats/format.h"
#include "quant/sensitivity.h"
#include "tests/support/test_support.h"

using namespace ef;

class TestAllocStories260k : public QObject {
    Q_OBJECT
private slots:
    void allocationBeatsUniform3Bit_data() {
        QTest::addColumn<double>("p");
        QTest::newRow("outliers 0.5%") << 0.005;
        QTest::newRow("no outliers") << 0.0;
    }
    void allocationBeatsUniform3Bit() {
        QFETCH(double, p);
        EF_REQUIRE_SHARED(bin, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tokp, "models/tok512.bin");
        EF_REQUIRE_SHARED(txt, "text/wikitext-2-raw-test.txt");
        LoadOptions lo;
        lo.tokenizer_path = tokp.toStdString();
        auto m = load_model(bin.toStdString(), lo);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        std::ifstream in(txt.toStdString(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string text = ss.str();
        auto tok = Tokenizer::create(m->vocab);
        QVERIFY(tok.ok());
        const int n_ctx = 128;
        // Calibration: the last 10% of the text; evaluation: windows from its start (disjoint).
        const std::string calib_text = text.substr(text.size() - text.size() / 10);
        const std::string eval_text = text.substr(0, text.size() / 4);
        auto calib = calibration_windows(*tok, calib_text, n_ctx, 4);
        auto held = calibration_windows(*tok, eval_text, n_ctx, 16, 8);
        QVERIFY2(calib.ok() && held.ok(), "windows");

        SensitivityOptions o;
        o.per_tensor = true;
        o.threads = 2;
        o.outlier_fraction = p;
        auto s = measure_sensitivity(*m, *calib, o);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        qInfo("measured %zu units x %zu widths in %.2f s", s->plan.units.size(), o.bits.size(), s->seconds);
        const auto& units = s->plan.units;
        auto ref = KlReference::create(*m, *held);
        QVERIFY(ref.ok());

        auto eval_choice = [&](const std::vector<int>& choice, double* eff, double* code) -> double {
            uint64_t bytes = 0, cbits = 0;
            int64_t w = 0;
            for (size_t i = 0; i < units.size(); ++i) {
                bytes += units[i].options[size_t(choice[i])].bytes;
                cbits += uint64_t(units[i].options[size_t(choice[i])].bits) * uint64_t(units[i].weights);
                w += units[i].weights;
            }
            *eff = 8.0 * double(bytes) / double(w);
            *code = double(cbits) / double(w);
            auto q = apply_allocation(*m, *s, choice, o);
            if (!q) qFatal("%s", q.message().c_str());
            auto kl = ref->kl(*q);
            if (!kl) qFatal("%s", kl.message().c_str());
            return *kl;
        };

        // Uniform 3-bit.
        const int i3 = int(std::find(o.bits.begin(), o.bits.end(), 3) - o.bits.begin());
        std::vector<int> uni(units.size(), i3);
        double u_eff = 0, u_code = 0;
        const double u_kl = eval_choice(uni, &u_eff, &u_code);
        qInfo("uniform 3-bit: KL %.5f, %.4f effective / %.4f code bits per weight", u_kl, u_eff, u_code);

        // The claim as stated: an average of 3.1 effective bits (fewer than uniform 3-bit's) against uniform
        // 3-bit. With outliers that is below what the format can do on these small matrices (the CSR row
        // pointers and row scales cost ~0.8 bit per weight on 32..64-row tensors): a clear error instead.
        AllocBudget b31;
        b31.average_bits = 3.1;
        auto r31 = allocate_bits(units, b31);
        if (p > 0) {
            QVERIFY(!r31.ok());
            QVERIFY(r31.message().find("below the minimum possible") != std::string::npos);
            qInfo("3.1 effective bits: %s", r31.message().c_str());
        } else {
            QVERIFY2(r31.ok(), r31.ok() ? "" : r31.message().c_str());
            double f_eff = 0, f_code = 0;
            const double f_kl = eval_choice(r31->choice, &f_eff, &f_code);
            qInfo("allocation at 3.1 effective bits: KL %.5f (predicted %.5f), %.4f effective / %.4f code bits", f_kl,
                  r31->loss, f_eff, f_code);
            QVERIFY(f_eff <= u_eff);
            // Measured 2026-11-23: 0.763 against uniform 3-bit's 0.700 at 3.25 effective bits — the 0.15 bit
            // per weight less costs more than the allocation wins back on this 5-layer model. Kept as a
            // visible known failure (an XPASS fails the test once it holds), not loosened.
            QEXPECT_FAIL("no outliers", "3.1 effective bits does not beat uniform 3-bit (3.25 effective) on stories260K", Continue);
            QVERIFY2(f_kl < u_kl, qPrintable(QString("allocation at 3.1 effective bits: KL %1 vs uniform 3-bit %2").arg(f_kl).arg(u_kl)));
        }

        // 3.1 code bits (scales and outliers not counted; more effective bits than uniform 3-bit).
        AllocBudget bc;
        bc.kind = BudgetKind::AverageCodeBits;
        bc.average_bits = 3.1;
        auto rc = allocate_bits(units, bc);
        QVERIFY2(rc.ok(), rc.ok() ? "" : rc.message().c_str());
        double c_eff = 0, c_code = 0;
        const double c_kl = eval_choice(rc->choice, &c_eff, &c_code);
        qInfo("allocation at 3.1 code bits: KL %.5f (predicted %.5f), %.4f effective / %.4f code bits", c_kl, rc->loss,
              c_eff, c_code);

        // The fair comparison: at most uniform 3-bit's effective bits.
        AllocBudget be;
        be.average_bits = u_eff;
        auto re = allocate_bits(units, be);
        QVERIFY2(re.ok(), re.ok() ? "" : re.message().c_str());
        double e_eff = 0, e_code = 0;
        const double e_kl = eval_choice(re->choice, &e_eff, &e_code);
        qInfo("allocation at uniform 3-bit's %.4f effective bits: KL %.5f (predicted %.5f), %.4f effective / %.4f code bits",
              u_eff, e_kl, re->loss, e_eff, e_code);
        QVERIFY(e_eff <= u_eff + 1e-9);
        QVERIFY2(e_kl < u_kl, qPrintable(QString("allocation KL %1 vs uniform 3-bit %2").arg(e_kl).arg(u_kl)));
    }
};

QTEST_APPLESS_MAIN(TestAllocStories260k)
#include "test_alloc_stories260k.moc"
