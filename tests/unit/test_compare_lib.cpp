// quant/compare.h below the CLI: llama.cpp's Q4_K_M / Q3_K_M per-tensor types on a model whose rows
// take k-quants without fallback (dim 256, 8 layers), against tables derived by hand from
// llama-quant.cpp (use_more_bits(i, 8) holds for i = 0, 3, 6, 7), and cancellation.
#include <QtTest>

#include "core/synth.h"
#include "quant/compare.h"

class TestCompareLib : public QObject {
    Q_OBJECT
    static ef::Model model(bool tied) {
        ef::SynthOptions so;
        so.dim = 256;
        so.n_layers = 8;
        so.ffn_hidden = 512;
        so.tied_embeddings = tied;
        auto m = ef::synth_model(so);
        if (!m) qFatal("%s", m.message().c_str());
        return std::move(*m);
    }

private slots:
    void recipes_data() {
        QTest::addColumn<QString>("recipe");
        QTest::addColumn<bool>("tied");
        QTest::newRow("q4_k_m") << "q4_k_m" << false;
        QTest::newRow("q3_k_m") << "q3_k_m" << false;
        QTest::newRow("q4_k_m tied") << "q4_k_m" << true;
    }
    void recipes() {
        QFETCH(QString, recipe);
        QFETCH(bool, tied);
        const ef::Model m = model(tied);
        auto types = ef::llamacpp_recipe_types(m, recipe.toStdString());
        QVERIFY2(types.ok(), types.ok() ? "" : types.message().c_str());
        const bool q4 = recipe == "q4_k_m";
        const auto more = [](int i) { return i == 0 || i == 3 || i == 6 || i == 7; };
        auto type_of = [&](const std::string& n) { return std::string(ef::dtype_name(types->at(n))); };
        for (int i = 0; i < 8; ++i) {
            const std::string b = "blk." + std::to_string(i) + ".";
            QCOMPARE(type_of(b + "attn_q.weight"), std::string(q4 ? "q4_K" : "q3_K"));
            QCOMPARE(type_of(b + "attn_k.weight"), std::string(q4 ? "q4_K" : "q3_K"));
            QCOMPARE(type_of(b + "attn_v.weight"), std::string(q4 ? (more(i) ? "q6_K" : "q4_K") : (i < 2 ? "q5_K" : "q4_K")));
            QCOMPARE(type_of(b + "attn_output.weight"), std::string("q4_K"));
            QCOMPARE(type_of(b + "ffn_down.weight"), std::string(q4 ? (more(i) ? "q6_K" : "q4_K") : "q4_K"));
            QCOMPARE(type_of(b + "ffn_gate.weight"), std::string(q4 ? "q4_K" : "q3_K"));
            QCOMPARE(type_of(b + "ffn_up.weight"), std::string(q4 ? "q4_K" : "q3_K"));
            QVERIFY(!types->count(b + "attn_norm.weight"));
        }
        if (tied) {
            QVERIFY(!types->count("output.weight"));
            QCOMPARE(type_of("token_embd.weight"), std::string("q6_K"));  // the output's rule
        } else {
            QCOMPARE(type_of("output.weight"), std::string("q6_K"));
            QCOMPARE(type_of("token_embd.weight"), std::string(q4 ? "q4_K" : "q3_K"));
        }
        QVERIFY(!ef::llamacpp_recipe_types(m, "q4_k_s").ok());
    }

    void cancelled() {
        const ef::Model m = model(false);
        ef::CompareOptions o;
        for (int i = 0; i < 200; ++i) o.text += "once upon a time there was a little girl who liked to play.\n";
        o.tasks = {};
        o.variants = {"f32", "q8_0"};
        ef::Progress p;
        p.cancel();
        auto r = ef::compare_variants(m, o, p);
        QVERIFY(!r.ok());
        QVERIFY2(r.message().find("cancelled") != std::string::npos, r.message().c_str());
    }

    void unknownVariant() {
        ef::CompareOptions o;
        o.variants = {"q9_9"};
        auto r = ef::compare_variants(model(false), o);
        QVERIFY(!r.ok());
        QVERIFY(r.message().find("unknown variant 'q9_9'") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestCompareLib)
#include "test_compare_lib.moc"
