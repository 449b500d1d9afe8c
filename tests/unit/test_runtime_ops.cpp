// The scalar reference operators (runtime/ops.h), each on a tiny case worked out by hand here.
#include <QtTest>
#include <cmath>
#include <vector>

#include "core/synth.h"
#include "runtime/ops.h"
#include "runtime/session.h"

using namespace ef;

namespace {
void expect_near(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-6) {
    QCOMPARE(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        QVERIFY2(std::fabs(double(got[i]) - want[i]) <= tol,
                 qPrintable(QStringLiteral("element %1: got %2, expected %3").arg(i).arg(double(got[i]), 0, 'g', 9).arg(want[i], 0, 'g', 9)));
}
const double kLn2 = std::log(2.0);
}  // namespace

class TestRuntimeOps : public QObject {
    Q_OBJECT
private slots:
    void scalars() {
        QVERIFY(std::fabs(rt::sigmoid(0.0f) - 0.5f) < 1e-7f);
        QVERIFY(std::fabs(rt::silu(1.0f) - 0.7310585786f) < 1e-6f);  // 1 / (1 + e^-1)
        QVERIFY(std::fabs(rt::silu(-2.0f) - (-0.2384058440f)) < 1e-6f);
        QVERIFY(std::fabs(rt::softplus(0.0f) - float(kLn2)) < 1e-6f);
        QCOMPARE(rt::softplus(30.0f), 30.0f);  // passed through above 20
    }

    void softmax_of_1_2_3() {
        std::vector<float> x{1, 2, 3};
        rt::softmax(x);
        // e^k / (e + e^2 + e^3)
        expect_near(x, {0.09003057317, 0.2447284711, 0.6652409558});
    }

    void swiglu() {
        std::vector<float> out(2);
        rt::swiglu(out, std::vector<float>{0, 1}, std::vector<float>{5, 2});
        expect_near(out, {0.0, 2 * 0.7310585786});
    }

    void rmsnorm_of_1_2_3() {
        // mean of squares 14/3; 1/sqrt(14/3 + eps) with eps 1e-5; weights scale each element.
        std::vector<float> out(3);
        rt::rmsnorm(out, std::vector<float>{1, 2, 3}, std::vector<float>{1, 0.5f, 2}, 1e-5f);
        const double s = 1.0 / std::sqrt(14.0 / 3.0 + 1e-5);
        expect_near(out, {1 * s, 2 * s * 0.5, 3 * s * 2});
    }

    void rmsnorm_per_group() {
        // Two groups normalized alone: [1, 1] -> [1, 1] and [2, 2] -> [1, 1] (a whole-vector norm
        // would give [0.63, 0.63, 1.26, 1.26]).
        std::vector<float> out(4);
        rt::rmsnorm_groups(out, std::vector<float>{1, 1, 2, 2}, std::vector<float>{1, 1, 1, 3}, 2, 0.0f);
        expect_near(out, {1, 1, 1, 3});
    }

    void matvec_f32() {
        // [[1, 2, 3], [4, 5, 6]] @ [1, 0, -1] = [-2, -2]
        auto w = Tensor::from_f32("w", {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
        QVERIFY(w.ok());
        std::vector<float> y(2);
        QVERIFY(rt::matvec(y, *w, std::vector<float>{1, 0, -1}, rt::ActRounding::Ggml).ok());
        expect_near(y, {-2, -2});
        // A row slice: row 1 only.
        std::vector<float> y1(1);
        QVERIFY(rt::matvec(y1, *w, std::vector<float>{1, 1, 1}, rt::ActRounding::Exact, 1, 1).ok());
        expect_near(y1, {15});
        // Wrong input length is an error, not a crash.
        QVERIFY(!rt::matvec(y, *w, std::vector<float>{1, 2}, rt::ActRounding::Exact).ok());
    }

    void matvec_q8_0_rows() {
        // Row r of a Q8_0 weight holds q = (j - 16) * (r + 1) with a block scale; values chosen
        // as multiples of 1/8 so Q8_0 stores them exactly: w[r][j] = (j - 16) * (r + 1) / 8.
        std::vector<float> vals(64);
        for (int r = 0; r < 2; ++r)
            for (int j = 0; j < 32; ++j) vals[size_t(r * 32 + j)] = float((j - 16) * (r + 1)) / 8.0f;
        // amax 2 (row 0) and 4 (row 1): 127 steps do not hit eighths exactly, so dequantize first
        // and compute the expectation from the dequantized row, not from `vals`.
        auto w = Tensor::from_f32("w", {2, 32}, vals, DType::Q8_0);
        QVERIFY(w.ok());
        std::vector<float> row0(32), row1(32);
        QVERIFY(rt::tensor_row(row0, *w, 0).ok());
        QVERIFY(rt::tensor_row(row1, *w, 1).ok());
        // x's amax is 127, so ggml's Q8_0 activation scale is exactly 1: 127 stays, 0.5 rounds to 0.
        std::vector<float> x(32, 0.0f);
        x[0] = 127.0f;  // picks w[r][0]
        x[31] = 127.0f; // and w[r][31]
        x[5] = 0.5f;    // lost to rounding (half to even) with ActRounding::Ggml only
        std::vector<float> y(2);
        QVERIFY(rt::matvec(y, *w, x, rt::ActRounding::Ggml).ok());
        expect_near(y, {127.0 * (double(row0[0]) + row0[31]), 127.0 * (double(row1[0]) + row1[31])}, 1e-4);
        QVERIFY(rt::matvec(y, *w, x, rt::ActRounding::Exact).ok());
        expect_near(y, {127.0 * (double(row0[0]) + row0[31]) + 0.5 * row0[5], 127.0 * (double(row1[0]) + row1[31]) + 0.5 * row1[5]}, 1e-4);
        QVERIFY(std::fabs(row0[0] - (-2.0f)) < 0.02f);  // ~ -16/8, within one Q8_0 step
    }

    void activation_rounding_like_ggml() {
        // Q8_0 partner: block amax 127 -> d = 1, values round half to even.
        std::vector<float> x(32, 0.0f);
        x[0] = 0.5f; x[1] = 1.5f; x[2] = 2.5f; x[3] = -0.5f; x[4] = 127.0f; x[5] = -3.7f;
        const auto r = rt::round_activations(DType::Q8_0, x);
        expect_near({r[0], r[1], r[2], r[3], r[4], r[5]}, {0, 2, 2, 0, 127, -4});
        // F32 weights: activations untouched.
        QCOMPARE(rt::round_activations(DType::F32, x)[5], -3.7f);
        // F16 partner: 1 + 3 * 2^-11 is halfway between two halves -> even mantissa, 1 + 2^-9.
        const auto h = rt::round_activations(DType::F16, std::vector<float>{1.0f + 3.0f / 2048.0f, 1.0f / 3.0f});
        expect_near(h, {1.0 + 1.0 / 512.0, 0.333251953125}, 0.0);
        // Q8_K partner (k-quants): the largest-magnitude value -2 maps to -127 with d = 1 / 63.5.
        std::vector<float> k(256, 0.0f);
        k[0] = -2.0f; k[1] = 1.0f;
        const auto rk = rt::round_activations(DType::Q4_K, k);
        expect_near({rk[0], rk[1]}, {-2.0, 64.0 / 63.5}, 1e-6);  // 63.5 rounds to even 64
    }

    void rope_one_pair() {
        // Head of 4 with rope_dim 4, theta 10000, position 3: pair 0 turns by 3 rad, pair 1 by
        // 3 * 10000^(-2/4) = 0.03 rad. Second head: rope_dim 2 leaves its last pair alone.
        std::vector<float> x{1, 0, 0, 1, /*head 2*/ 0, 2, 5, 6};
        rt::rope(std::span<float>(x.data(), 4), 1, 4, 4, 3, 10000.0f);
        expect_near(std::vector<float>(x.begin(), x.begin() + 4), {std::cos(3.0), std::sin(3.0), -std::sin(0.03), std::cos(0.03)});
        std::vector<float> y{0, 2, 5, 6, 1, 0, 7, 8};
        rt::rope(y, 2, 4, 2, 1, 10000.0f);  // angle 1 rad on dims 0-1 of both heads
        expect_near(y, {-2 * std::sin(1.0), 2 * std::cos(1.0), 5, 6, std::cos(1.0), std::sin(1.0), 7, 8});
        // Position 0 is the identity.
        std::vector<float> z{0.3f, -0.7f};
        rt::rope(z, 1, 2, 2, 0, 10000.0f);
        expect_near(z, {0.3, -0.7});
    }

    void attention_two_positions_gqa() {
        // One KV head shared by two query heads (head_dim 2), two cached positions:
        // head 0: q = [1, 0], keys [0, 0] and [ln 3, 0] -> scores 0, ln 3 -> p = [1/4, 3/4];
        //   values [4, 0], [0, 8] -> [1, 6].
        // head 1: q = [0, 0] -> uniform -> [2, 4].
        const std::vector<float> q{1, 0, 0, 0};
        const std::vector<float> k{0, 0, float(std::log(3.0)), 0};
        const std::vector<float> v{4, 0, 0, 8};
        std::vector<float> out(4);
        rt::attention(out, q, k, v, 2, 2, 1, 2, 1.0f);
        expect_near(out, {1, 6, 2, 4}, 1e-6);
        // Causality is the caller's cache: with one position only the first value comes back.
        std::vector<float> out1(4);
        rt::attention(out1, q, k, v, 1, 2, 1, 2, 1.0f);
        expect_near(out1, {4, 0, 4, 0});
        // The scale multiplies the scores: scale 0 -> uniform for head 0 too.
        rt::attention(out, q, k, v, 2, 2, 1, 2, 0.0f);
        expect_near(out, {2, 4, 2, 4}, 1e-6);
    }

    void conv1d_causal_with_state() {
        // Kernel [1, 2, 3] (oldest first), bias 0.5, inputs 1, 2, 3 on channel 0;
        // channel 1: kernel [0, 0, -1], no history effect.
        std::vector<float> state(4, 0.0f);  // (2 channels, k - 1 = 2)
        const std::vector<float> w{1, 2, 3, 0, 0, -1}, b{0.5f, 0};
        std::vector<float> out(2);
        rt::conv1d_step(out, state, std::vector<float>{1, 10}, w, b, 2, 3);
        expect_near(out, {3 * 1 + 0.5, -10});             // window [0, 0, 1]
        rt::conv1d_step(out, state, std::vector<float>{2, 20}, w, b, 2, 3);
        expect_near(out, {1 * 0 + 2 * 1 + 3 * 2 + 0.5, -20});  // window [0, 1, 2]
        rt::conv1d_step(out, state, std::vector<float>{3, 30}, w, b, 2, 3);
        expect_near(out, {1 * 1 + 2 * 2 + 3 * 3 + 0.5, -30});  // window [1, 2, 3]
        expect_near(state, {2, 3, 20, 30});
    }

    void mamba1_scan_two_steps() {
        // One channel, two states: A = [-1, -2], B = [1, 2], C = [3, 4], D = 0.5, dt = 0 so
        // softplus(dt) = ln 2, and exp(ln2 * A) = [1/2, 1/4].
        // step 1 (x = 2): h = ln2 * 2 * B = [2 ln2, 4 ln2]; y = 3*2ln2 + 4*4ln2 + 0.5*2 = 22 ln2 + 1.
        // step 2 (x = 1): h = [2ln2/2 + ln2, 4ln2/4 + 2ln2] = [2 ln2, 3 ln2]; y = 18 ln2 + 0.5.
        std::vector<float> h(2, 0.0f), y(1);
        const std::vector<float> A{-1, -2}, B{1, 2}, C{3, 4}, D{0.5f}, dt{0};
        rt::selective_scan_step(y, h, std::vector<float>{2}, dt, A, B, C, D, 1, 2);
        expect_near(y, {22 * kLn2 + 1}, 1e-5);
        rt::selective_scan_step(y, h, std::vector<float>{1}, dt, A, B, C, D, 1, 2);
        expect_near(y, {18 * kLn2 + 0.5}, 1e-5);
        expect_near(h, {2 * kLn2, 3 * kLn2}, 1e-6);
    }

    void mamba2_ssd_groups() {
        // 4 heads of size 1, 2 groups (heads 0-1 -> group 0, heads 2-3 -> group 1), d_state 1:
        // B = [1 | 10], C = [2 | 3], A = -1 for all, D = [0, 0, 0, 1], dt = 0 -> ln 2.
        // step 1 (x = 1): S = ln2 * B[g] = [ln2, ln2, 10ln2, 10ln2]; y = S * C[g] + D = [2ln2, 2ln2, 30ln2, 30ln2 + 1]
        // step 2 (x = 0): S halves (exp(-ln2)); y = [ln2, ln2, 15ln2, 15ln2].
        std::vector<float> S(4, 0.0f), y(4);
        const std::vector<float> dt(4, 0.0f), A(4, -1.0f), B{1, 10}, C{2, 3}, D{0, 0, 0, 1};
        rt::ssd_step(y, S, std::vector<float>{1, 1, 1, 1}, dt, A, B, C, D, 4, 1, 2, 1);
        expect_near(y, {2 * kLn2, 2 * kLn2, 30 * kLn2, 30 * kLn2 + 1}, 1e-5);
        rt::ssd_step(y, S, std::vector<float>{0, 0, 0, 0}, dt, A, B, C, D, 4, 1, 2, 1);
        expect_near(y, {kLn2, kLn2, 15 * kLn2, 15 * kLn2}, 1e-5);
        // head_dim 2: both lanes of a head share dt and A but keep their own state.
        std::vector<float> S2(2, 0.0f), y2(2);
        rt::ssd_step(y2, S2, std::vector<float>{1, 3}, std::vector<float>{0}, std::vector<float>{-1}, std::vector<float>{1},
                     std::vector<float>{1}, std::vector<float>{0}, 1, 2, 1, 1);
        expect_near(y2, {kLn2, 3 * kLn2}, 1e-6);
    }

    // Session bookkeeping (the numbers themselves are checked against llama.cpp in
    // tests/model/test_runtime_vs_llamacpp.cpp).
    void session_reset_and_errors() {
        SynthOptions o;
        o.arch = "llama";
        o.dim = 32;
        o.n_layers = 1;
        o.vocab = 300;
        auto m = synth_model(o);
        QVERIFY(m.ok());
        SessionOptions so;
        so.max_positions = 3;
        auto s = Session::create(*m, so);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        const std::vector<int32_t> toks{1, 270, 5};
        auto a = s->prefill(toks);
        QVERIFY(a.ok());
        QCOMPARE(a->size(), size_t(300));
        QCOMPARE(s->position(), int64_t(3));
        auto full = s->eval(7);
        QVERIFY(!full.ok());
        QVERIFY2(full.message().find("context is full") != std::string::npos, full.message().c_str());
        s->reset();
        QCOMPARE(s->position(), int64_t(0));
        auto b = s->prefill(toks);
        QVERIFY(b.ok());
        QVERIFY(*a == *b);  // same state after reset: bit-identical logits
        s->reset();
        auto bad = s->eval(300);
        QVERIFY(!bad.ok());
        QVERIFY2(bad.message().find("outside the vocabulary") != std::string::npos, bad.message().c_str());
        // A missing weight is an error naming it, not a crash.
        Model broken = *m;
        std::erase_if(broken.tensors, [](const Tensor& t) { return t.name == "blk.0.attn_k.weight"; });
        auto e = Session::create(broken);
        QVERIFY(!e.ok());
        QVERIFY2(e.message().find("blk.0.attn_k.weight") != std::string::npos, e.message().c_str());
        QCOMPARE(argmax(std::vector<float>{1, 3, 3, 2}), 1);
    }
};

QTEST_GUILESS_MAIN(TestRuntimeOps)
#include "test_runtime_ops.moc"
