// The router analysis (runtime/router_analysis.h) on synthetic edgefusion models whose router
// gates are set to chosen alphas: gates, branches, entropies, ssm_frac and the FLOPs of the
// hard-routed path against the dense twin, all recomputed here from the definitions (sigmoid,
// binary entropy, 2 * rows * cols per weight matrix from the config's shapes).
#include <QtTest>
#include <cmath>

#include "core/synth.h"
#include "runtime/router_analysis.h"

using namespace ef;

namespace {

struct Dims {
    int64_t dim = 64, layers = 0, vocab = 300, ctx = 64, heads = 4, kv_heads = 2, ffn = 96;
    int64_t d_inner = 128, d_state = 8, d_conv = 4, ssm_heads = 8, groups = 1, dt_rank = 4;
    int version = 2;
    float tau = 1.0f;
};

Model make_model(const Dims& s, const std::vector<float>& alphas) {
    SynthOptions o;
    o.arch = "edgefusion";
    o.dim = s.dim;
    o.n_layers = int64_t(alphas.size());
    o.vocab = s.vocab;
    o.seed = 3;
    o.context_length = s.ctx;
    o.n_heads = s.heads;
    o.n_kv_heads = s.kv_heads;
    o.ffn_hidden = s.ffn;
    o.d_inner = s.d_inner;
    o.d_state = s.d_state;
    o.d_conv = s.d_conv;
    o.ssm_version = s.version;
    if (s.version == 2) {
        o.ssm_heads = s.ssm_heads;
        o.ssm_groups = s.groups;
    } else {
        o.dt_rank = s.dt_rank;
    }
    o.router_temperature = s.tau;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    for (size_t i = 0; i < alphas.size(); ++i) {
        const std::string name = "blk." + std::to_string(i) + ".router_gate";
        Tensor* t = m->find(name);
        if (!t) qFatal("no %s", name.c_str());
        auto nt = Tensor::from_f32(name, {1}, std::span<const float>(&alphas[i], 1));
        if (!nt) qFatal("%s", nt.message().c_str());
        *t = std::move(nt).value();
    }
    return std::move(m).value();
}

double expect_gate(float alpha, float tau) { return 1.0 / (1.0 + std::exp(-double(alpha) / double(tau))); }

double expect_entropy(double g) {
    if (g <= 0.0 || g >= 1.0) return 0.0;
    return -(g * std::log(g) + (1.0 - g) * std::log(1.0 - g)) / std::log(2.0);
}

// FLOPs per token from the layer formulas (2 * out * in per projection; attention scores and the
// weighted sum 4 * heads * head_dim * (pos + 1); the scan ~6 per state cell; the conv 2 * channels * K;
// the output head 2 * vocab * dim; the embedding lookup is free).
double attention_flops(const Dims& s, int64_t pos) {
    const int64_t hd = s.dim / s.heads;
    const double proj = 2.0 * double(s.dim * s.heads * hd + 2 * s.dim * s.kv_heads * hd + s.heads * hd * s.dim);
    return proj + 4.0 * double(s.heads * hd) * double(pos + 1);
}
double ssm_flops(const Dims& s) {
    if (s.version == 2) {
        const int64_t conv = s.d_inner + 2 * s.groups * s.d_state;
        const double in = 2.0 * double(s.dim) * double(2 * s.d_inner + 2 * s.groups * s.d_state + s.ssm_heads);
        const double out = 2.0 * double(s.d_inner * s.dim);
        return in + out + 6.0 * double(s.d_inner * s.d_state) + 2.0 * double(conv * s.d_conv);
    }
    const double in = 2.0 * double(s.dim * 2 * s.d_inner);
    const double x = 2.0 * double(s.d_inner * (s.dt_rank + 2 * s.d_state));
    const double dt = 2.0 * double(s.dt_rank * s.d_inner);
    const double out = 2.0 * double(s.d_inner * s.dim);
    return in + x + dt + out + 6.0 * double(s.d_inner * s.d_state) + 2.0 * double(s.d_inner * s.d_conv);
}
double ffn_flops(const Dims& s) { return 3.0 * 2.0 * double(s.dim * s.ffn); }
double head_flops(const Dims& s) { return 2.0 * double(s.vocab * s.dim); }

}  // namespace

class TestRouterAnalysis : public QObject {
    Q_OBJECT
private slots:
    void gatesAndSummary_data();
    void gatesAndSummary();
    void thresholdAtHalf();
    void convergence();
    void liveGates();
    void json();
    void nonEdgefusion();
};

void TestRouterAnalysis::gatesAndSummary_data() {
    QTest::addColumn<int>("version");
    QTest::addColumn<float>("tau");
    QTest::addColumn<std::vector<float>>("alphas");
    QTest::newRow("mamba2 tau1") << 2 << 1.0f << std::vector<float>{-3.0f, 2.0f, -0.4f, 0.7f, -6.0f, 5.0f};
    QTest::newRow("mamba2 tau0.25") << 2 << 0.25f << std::vector<float>{-3.0f, 2.0f, -0.4f, 0.7f, -6.0f, 5.0f};
    QTest::newRow("mamba2 tau4") << 2 << 4.0f << std::vector<float>{-1.0f, -1.5f, -0.2f, 0.1f};
    QTest::newRow("mamba1 tau1") << 1 << 1.0f << std::vector<float>{1.5f, -2.5f, -0.1f};
    QTest::newRow("all attention") << 2 << 1.0f << std::vector<float>{1.0f, 2.0f, 3.0f};
    QTest::newRow("all ssm") << 1 << 2.0f << std::vector<float>{-1.0f, -2.0f, -3.0f, -4.0f};
}

void TestRouterAnalysis::gatesAndSummary() {
    QFETCH(int, version);
    QFETCH(float, tau);
    QFETCH(std::vector<float>, alphas);
    Dims s;
    s.version = version;
    s.tau = tau;
    const Model m = make_model(s, alphas);
    auto a = analyze_router(m);
    QVERIFY2(a.ok(), a.ok() ? "" : a.message().c_str());
    QCOMPARE(a->architecture, std::string("edgefusion"));
    QCOMPARE(a->temperature, tau);
    QCOMPARE(a->ssm_branch, version == 1 ? MixerKind::Mamba1 : MixerKind::Mamba2);
    QCOMPARE(a->layers.size(), alphas.size());

    int64_t n_ssm = 0;
    double h_sum = 0;
    const int64_t pos = s.ctx / 2;
    double dense = head_flops(s), routed = head_flops(s);
    for (size_t i = 0; i < alphas.size(); ++i) {
        const auto& l = a->layers[i];
        const double g = expect_gate(alphas[i], tau);
        QCOMPARE(l.layer, int64_t(i));
        QCOMPARE(l.alpha, alphas[i]);
        QVERIFY2(std::abs(l.gate - g) < 1e-6, qPrintable(QString("layer %1: g %2 vs %3").arg(i).arg(l.gate).arg(g)));
        QCOMPARE(l.ssm, g < 0.5);
        QVERIFY(std::abs(l.entropy_bits - expect_entropy(g)) < 1e-5);
        n_ssm += g < 0.5 ? 1 : 0;
        h_sum += expect_entropy(g);
        dense += attention_flops(s, pos) + ffn_flops(s);
        routed += (g < 0.5 ? ssm_flops(s) : attention_flops(s, pos)) + ffn_flops(s);
    }
    QCOMPARE(a->ssm_layers, n_ssm);
    QVERIFY(std::abs(a->ssm_frac - double(n_ssm) / double(alphas.size())) < 1e-12);
    QVERIFY(std::abs(a->mean_entropy_bits - h_sum / double(alphas.size())) < 1e-5);
    QCOMPARE(a->position, pos);
    QVERIFY2(std::abs(a->dense_gflops_per_token - dense * 1e-9) < 1e-9 * dense * 1e-9,
             qPrintable(QString("dense %1 vs %2").arg(a->dense_gflops_per_token).arg(dense * 1e-9)));
    QVERIFY2(std::abs(a->gflops_per_token - routed * 1e-9) < 1e-9 * routed * 1e-9,
             qPrintable(QString("routed %1 vs %2").arg(a->gflops_per_token).arg(routed * 1e-9)));
    QVERIFY(std::abs(a->flops_reduction_pct - 100.0 * (1.0 - routed / dense)) < 1e-9);
    QCOMPARE(a->converged, h_sum / double(alphas.size()) < 0.15);

    // Another position changes only the attention term: 4 * heads * head_dim per position and attention layer.
    auto b = analyze_router(m, 10);
    QVERIFY(b.ok());
    const double per_pos = 4.0 * double(s.dim) * 1e-9;
    const double attn_layers = double(int64_t(alphas.size()) - n_ssm);
    QVERIFY(std::abs((a->gflops_per_token - b->gflops_per_token) - per_pos * attn_layers * double(pos - 10)) < 1e-12);
    QVERIFY(std::abs((a->dense_gflops_per_token - b->dense_gflops_per_token) - per_pos * double(alphas.size()) * double(pos - 10)) < 1e-12);
}

void TestRouterAnalysis::thresholdAtHalf() {
    // alpha = 0 gives g = 0.5 exactly: one bit of entropy and attention (the runtime runs attention at g >= 0.5).
    Dims s;
    const Model m = make_model(s, {0.0f, -1e-3f, 1e-3f});
    auto a = analyze_router(m);
    QVERIFY(a.ok());
    QCOMPARE(a->layers[0].gate, 0.5);
    QCOMPARE(a->layers[0].ssm, false);
    QVERIFY(std::abs(a->layers[0].entropy_bits - 1.0) < 1e-12);
    QCOMPARE(a->layers[1].ssm, true);
    QCOMPARE(a->layers[2].ssm, false);
    QCOMPARE(binary_entropy_bits(0.0), 0.0);
    QCOMPARE(binary_entropy_bits(1.0), 0.0);
    QVERIFY(std::abs(binary_entropy_bits(0.11) - expect_entropy(0.11)) < 1e-12);
}

void TestRouterAnalysis::convergence() {
    Dims s;
    // Nearly hard gates: |alpha| = 7 -> g ~ 0.0009 or 0.9991, entropy ~ 0.011 bits.
    auto hard = analyze_router(make_model(s, {-7.0f, -7.0f, 7.0f, -7.0f}));
    QVERIFY(hard.ok());
    QVERIFY(hard->mean_entropy_bits < 0.15);
    QVERIFY(hard->converged);
    QCOMPARE(hard->ssm_layers, int64_t(3));
    QCOMPARE(hard->flops_reduction_pct > 0, attention_flops(s, s.ctx / 2) > ssm_flops(s));  // tiny dims: SSM may cost more
    // The same logits at a high temperature are soft again.
    s.tau = 8.0f;
    auto soft = analyze_router(make_model(s, {-7.0f, -7.0f, 7.0f, -7.0f}));
    QVERIFY(soft.ok());
    QVERIFY(soft->mean_entropy_bits > 0.5);
    QVERIFY(!soft->converged);
    QCOMPARE(soft->ssm_layers, int64_t(3));  // the branch depends only on the sign of alpha
    QCOMPARE(soft->gflops_per_token, hard->gflops_per_token);
}

void TestRouterAnalysis::liveGates() {
    Dims s;
    const Model m = make_model(s, {1.0f, 1.0f, 1.0f});
    const std::vector<float> g = {0.2f, 0.9f, 0.49f};
    auto a = analyze_router_gates(m, g);
    QVERIFY(a.ok());
    QCOMPARE(a->ssm_layers, int64_t(2));
    QVERIFY(std::isnan(a->layers[0].alpha));
    QVERIFY(std::abs(a->layers[1].entropy_bits - expect_entropy(double(0.9f))) < 1e-12);
    auto wrong = analyze_router_gates(m, std::vector<float>{0.1f});
    QVERIFY(!wrong.ok());
    QVERIFY(wrong.message().find("1 gates for 3 layers") != std::string::npos);
    auto bad = analyze_router_gates(m, std::vector<float>{0.1f, 1.5f, 0.2f});
    QVERIFY(!bad.ok());
}

void TestRouterAnalysis::json() {
    Dims s;
    const std::vector<float> alphas = {-2.0f, 3.0f};
    auto a = analyze_router(make_model(s, alphas));
    QVERIFY(a.ok());
    const auto j = router_analysis_json(*a);
    QCOMPARE(j["architecture"].get<std::string>(), std::string("edgefusion"));
    QCOMPARE(j["layers"].size(), size_t(2));
    QCOMPARE(j["layers"][0]["branch"].get<std::string>(), std::string("ssm"));
    QCOMPARE(j["layers"][1]["branch"].get<std::string>(), std::string("attention"));
    QVERIFY(std::abs(j["layers"][0]["gate"].get<double>() - expect_gate(-2.0f, 1.0f)) < 1e-6);
    QCOMPARE(j["summary"]["ssm_layers"].get<int64_t>(), int64_t(1));
    QCOMPARE(j["summary"]["ssm_frac"].get<double>(), 0.5);
    QCOMPARE(j["summary"]["converged"].get<bool>(), a->converged);
    QCOMPARE(j["summary"]["criterion"]["mean_gate_entropy_bits_below"].get<double>(), 0.15);
    const std::string text = router_analysis_text(*a);
    QVERIFY(text.find("ssm_frac") != std::string::npos);
    QVERIFY(text.find("converged") != std::string::npos);
    const std::string line = router_summary_line(*a);
    QVERIFY2(line.find("ssm_frac 50.0% (1/2)") != std::string::npos, line.c_str());
}

void TestRouterAnalysis::nonEdgefusion() {
    for (const char* arch : {"llama", "mamba2", "jamba"}) {
        SynthOptions o;
        o.arch = arch;
        o.dim = 64;
        o.n_layers = 2;
        o.vocab = 300;
        o.context_length = 32;
        auto m = synth_model(o);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        m->source_path = "some/model.gguf";
        auto a = analyze_router(*m);
        QVERIFY(!a.ok());
        QVERIFY2(a.message().find(std::string("architecture '") + arch + "'") != std::string::npos, a.message().c_str());
        QVERIFY2(a.message().find("some/model.gguf") != std::string::npos, a.message().c_str());
        QVERIFY(a.message().find("edgefusion") != std::string::npos);
    }
}

QTEST_GUILESS_MAIN(TestRouterAnalysis)
#include "test_router_analysis.moc"
