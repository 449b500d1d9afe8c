// The training ops' backward passes (core/train/grad_ops.h); checkers in train_ops_check.h.
//  - Every backward against central finite differences: L = sum(out * R) for a fixed random R,
//    each checked input element perturbed by +-h in float (h = 2e-2 max(1, |x|), and h / 2: the two
//    central differences combined by Richardson extrapolation), L accumulated in double; all
//    elements of small inputs, a random subset of 40 of bigger ones; every gradient output
//    (parameters included). Bound: |numeric - analytic| <= 1e-2 * max(|analytic|, 0.05 * rms of
//    that gradient) - what remains there is the float rounding of the forward (seen up to 5e-3).
//  - Attention, the Mamba-1 scan and SSD again against independent double-precision forwards,
//    where the differences are exact to ~1e-9: bound 1e-4 relative (seen up to 1e-5).
//  - The accumulate convention: backward twice gives twice the gradients; asking for one gradient
//    alone (the others empty spans) gives the same values as asking for all.
//  - The checks can fail: deliberately wrong backwards are caught.
// Forwards against the runtime, threads and speed: test_train_ops_runtime.cpp.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/train/grad_ops.h"
#include "tests/unit/train_ops_check.h"

using namespace ef;
using namespace ef::train_test;

class TestTrainOps : public QObject {
    Q_OBJECT
private slots:
    // ---- finite differences --------------------------------------------------------------------

    void matmul_grad_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("C");
        QTest::addColumn<int>("OC");
        QTest::newRow("1x1x1") << 1 << 1 << 1;
        QTest::newRow("5x7x3 odd") << 5 << 7 << 3;
        QTest::newRow("4x16x16 one tile") << 4 << 16 << 16;
        QTest::newRow("67x130x45 across blocks") << 67 << 130 << 45;
        QTest::newRow("9x33x200 head-like") << 9 << 33 << 200;
    }
    void matmul_grad() {
        QFETCH(int, T);
        QFETCH(int, C);
        QFETCH(int, OC);
        std::mt19937 rng(uint32_t(T * 131 + C * 7 + OC));
        GradCase gc;
        gc.in = {{"x", uniform(size_t(T * C), -1, 1, rng)}, {"W", uniform(size_t(OC * C), -1, 1, rng)}};
        gc.forward = [=](const std::vector<Input>& in) {
            Vec out(size_t(T * OC));
            tr::matmul_forward(out, in[0].value, in[1].value, T, C, OC, nullptr);
            return out;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
            tr::matmul_backward(g[0], g[1], dout, in[0].value, in[1].value, T, C, OC, nullptr);
        };
        CHECK_CASE(gc, 1);
    }

    void rmsnorm_grad_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("C");
        QTest::addColumn<int>("G");
        QTest::newRow("plain 3x8") << 3 << 8 << 1;
        QTest::newRow("plain 5x33 odd") << 5 << 33 << 1;
        QTest::newRow("groups 4x12 G=3") << 4 << 12 << 3;
        QTest::newRow("groups 2x64 G=2") << 2 << 64 << 2;
    }
    void rmsnorm_grad() {
        QFETCH(int, T);
        QFETCH(int, C);
        QFETCH(int, G);
        std::mt19937 rng(uint32_t(T * 31 + C + G));
        GradCase gc;
        gc.in = {{"x", uniform(size_t(T * C), -2, 2, rng)}, {"w", uniform(size_t(C), 0.5f, 1.5f, rng)}};
        const float eps = 1e-5f;
        gc.forward = [=](const std::vector<Input>& in) {
            Vec out(size_t(T * C)), rstd(size_t(T * G));
            if (G == 1) tr::rmsnorm_forward(out, rstd, in[0].value, in[1].value, T, C, eps);
            else tr::rmsnorm_groups_forward(out, rstd, in[0].value, in[1].value, T, C, G, eps);
            return out;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
            Vec out(size_t(T * C)), rstd(size_t(T * G));
            if (G == 1) {
                tr::rmsnorm_forward(out, rstd, in[0].value, in[1].value, T, C, eps);
                tr::rmsnorm_backward(g[0], g[1], dout, in[0].value, in[1].value, rstd, T, C);
            } else {
                tr::rmsnorm_groups_forward(out, rstd, in[0].value, in[1].value, T, C, G, eps);
                tr::rmsnorm_groups_backward(g[0], g[1], dout, in[0].value, in[1].value, rstd, T, C, G);
            }
        };
        CHECK_CASE(gc, 2);
    }

    void embedding_grad() {
        const int64_t V = 11, C = 6;
        const std::vector<int32_t> tokens{3, 0, 3, 10, 7, 3};  // repeats add up
        std::mt19937 rng(3);
        GradCase gc;
        gc.in = {{"wte", uniform(size_t(V * C), -1, 1, rng)}};
        gc.forward = [=](const std::vector<Input>& in) {
            Vec out(tokens.size() * size_t(C));
            tr::embedding_forward(out, tokens, in[0].value, C);
            return out;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>&) {
            tr::embedding_backward(g[0], dout, tokens, C);
        };
        // Rows of tokens never used get no gradient, so the rms floor is what bounds their check.
        CHECK_CASE(gc, 3);
    }

    void elementwise_grad_data() {
        QTest::addColumn<QString>("op");
        for (const char* op : {"swiglu", "silu", "softplus", "mul"}) QTest::newRow(op) << QString(op);
    }
    void elementwise_grad() {
        QFETCH(QString, op);
        const size_t n = 37;
        std::mt19937 rng(4);
        GradCase gc;
        const bool two = op == "swiglu" || op == "mul";
        gc.in = {{"a", uniform(n, -4, 4, rng)}};
        if (two) gc.in.push_back({"b", uniform(n, -2, 2, rng)});
        gc.forward = [=](const std::vector<Input>& in) {
            Vec out(n);
            if (op == "swiglu") tr::swiglu_forward(out, in[0].value, in[1].value);
            if (op == "silu") tr::silu_forward(out, in[0].value);
            if (op == "softplus") tr::softplus_forward(out, in[0].value);
            if (op == "mul") tr::mul_forward(out, in[0].value, in[1].value);
            return out;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
            if (op == "swiglu") tr::swiglu_backward(g[0], g[1], dout, in[0].value, in[1].value);
            if (op == "silu") tr::silu_backward(g[0], dout, in[0].value);
            if (op == "softplus") tr::softplus_backward(g[0], dout, in[0].value);
            if (op == "mul") tr::mul_backward(g[0], g[1], dout, in[0].value, in[1].value);
        };
        CHECK_CASE(gc, 5);
    }

    void rope_grad_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("H");
        QTest::addColumn<int>("D");
        QTest::addColumn<int>("rope_dim");
        QTest::newRow("full 5x2x8") << 5 << 2 << 8 << 8;
        QTest::newRow("partial rope_dim 4 of 10") << 6 << 3 << 10 << 4;
        QTest::newRow("odd rope_dim 5 of 6") << 4 << 1 << 6 << 5;
    }
    void rope_grad() {
        QFETCH(int, T);
        QFETCH(int, H);
        QFETCH(int, D);
        QFETCH(int, rope_dim);
        std::mt19937 rng(6);
        GradCase gc;
        gc.in = {{"x", uniform(size_t(T * H * D), -1, 1, rng)}};
        const float theta = 10000.0f;
        gc.forward = [=](const std::vector<Input>& in) {
            Vec x = in[0].value;
            tr::rope_forward(x, T, H, D, rope_dim, theta);
            return x;
        };
        // The rope backward transforms dout into dx in place; the harness adds it up.
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>&) {
            if (g[0].empty()) return;
            Vec d(dout.begin(), dout.end());
            tr::rope_backward(d, T, H, D, rope_dim, theta);
            for (size_t i = 0; i < d.size(); ++i) g[0][i] += d[i];
        };
        CHECK_CASE(gc, 6);
    }

    void attention_grad_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("H");
        QTest::addColumn<int>("KVH");
        QTest::addColumn<int>("D");
        QTest::newRow("one position") << 1 << 2 << 2 << 4;
        QTest::newRow("MHA 5x2x8") << 5 << 2 << 2 << 8;
        QTest::newRow("GQA 4:2, 7 positions, D=6") << 7 << 4 << 2 << 6;
        QTest::newRow("MQA 3:1, 9 positions") << 9 << 3 << 1 << 5;
        QTest::newRow("GQA 6:2, 33 positions (subsets)") << 33 << 6 << 2 << 16;
    }
    void attention_grad() {
        QFETCH(int, T);
        QFETCH(int, H);
        QFETCH(int, KVH);
        QFETCH(int, D);
        std::mt19937 rng(uint32_t(7 + T + H * 3 + KVH));
        GradCase gc;
        gc.in = {{"q", uniform(size_t(T * H * D), -1.5f, 1.5f, rng)},
                 {"k", uniform(size_t(T * KVH * D), -1.5f, 1.5f, rng)},
                 {"v", uniform(size_t(T * KVH * D), -1, 1, rng)}};
        const float scale = 1.0f / std::sqrt(float(D));
        gc.forward = [=](const std::vector<Input>& in) {
            Vec out(size_t(T * H * D)), probs(size_t(H * T * T));
            tr::attention_forward(out, probs, in[0].value, in[1].value, in[2].value, T, H, KVH, D, scale, nullptr);
            return out;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
            Vec out(size_t(T * H * D)), probs(size_t(H * T * T));
            tr::attention_forward(out, probs, in[0].value, in[1].value, in[2].value, T, H, KVH, D, scale, nullptr);
            tr::attention_backward(g[0], g[1], g[2], dout, in[0].value, in[1].value, in[2].value, probs, T, H, KVH, D,
                                   scale, nullptr);
        };
        if (T == 1) gc.zero_ok = {"q", "k"};  // one position: softmax of one score is 1 whatever it is
        CHECK_CASE(gc, 8);
    }

    void conv1d_grad_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("C");
        QTest::addColumn<int>("K");
        QTest::addColumn<bool>("bias");
        QTest::newRow("T=6 C=3 K=4 bias") << 6 << 3 << 4 << true;
        QTest::newRow("T=2 C=5 K=4 (shorter than the kernel)") << 2 << 5 << 4 << true;
        QTest::newRow("T=9 C=7 K=3 no bias") << 9 << 7 << 3 << false;
        QTest::newRow("K=1") << 4 << 2 << 1 << true;
    }
    void conv1d_grad() {
        QFETCH(int, T);
        QFETCH(int, C);
        QFETCH(int, K);
        QFETCH(bool, bias);
        std::mt19937 rng(9);
        GradCase gc;
        gc.in = {{"x", uniform(size_t(T * C), -1, 1, rng)}, {"w", uniform(size_t(C * K), -1, 1, rng)}};
        if (bias) gc.in.push_back({"bias", uniform(size_t(C), -1, 1, rng)});
        gc.forward = [=](const std::vector<Input>& in) {
            Vec out(size_t(T * C));
            tr::conv1d_forward(out, in[0].value, in[1].value, bias ? std::span<const float>(in[2].value) : std::span<const float>(),
                               T, C, K);
            return out;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
            tr::conv1d_backward(g[0], g[1], bias ? g[2] : std::span<float>(), dout, in[0].value, in[1].value, T, C, K);
        };
        CHECK_CASE(gc, 10);
    }

    void selective_scan_grad_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("C");
        QTest::addColumn<int>("N");
        QTest::newRow("T=1") << 1 << 3 << 4;
        QTest::newRow("T=6 C=3 N=4") << 6 << 3 << 4;
        QTest::newRow("T=13 C=5 N=7 odd") << 13 << 5 << 7;
        QTest::newRow("T=24 C=16 N=16 (subsets)") << 24 << 16 << 16;
    }
    void selective_scan_grad() {
        QFETCH(int, T);
        QFETCH(int, C);
        QFETCH(int, N);
        std::mt19937 rng(uint32_t(11 + T + C + N));
        GradCase gc;
        gc.in = {{"x", uniform(size_t(T * C), -1, 1, rng)},  {"dt", uniform(size_t(T * C), -2, 1, rng)},
                 {"A", negative(size_t(C * N), rng)},        {"B", uniform(size_t(T * N), -1, 1, rng)},
                 {"C", uniform(size_t(T * N), -1, 1, rng)},  {"D", uniform(size_t(C), -1, 1, rng)}};
        gc.forward = [=](const std::vector<Input>& in) {
            Vec y(size_t(T * C)), hs(size_t((T + 1) * C * N));
            tr::selective_scan_forward(y, hs, in[0].value, in[1].value, in[2].value, in[3].value, in[4].value,
                                       in[5].value, T, C, N);
            return y;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dy, const std::vector<Input>& in) {
            Vec y(size_t(T * C)), hs(size_t((T + 1) * C * N));
            tr::selective_scan_forward(y, hs, in[0].value, in[1].value, in[2].value, in[3].value, in[4].value,
                                       in[5].value, T, C, N);
            tr::selective_scan_backward(g[0], g[1], g[2], g[3], g[4], g[5], dy, hs, in[0].value, in[1].value,
                                        in[2].value, in[3].value, in[4].value, in[5].value, T, C, N);
        };
        if (T == 1) gc.zero_ok = {"A"};  // from h = 0 the first step's decay multiplies nothing
        CHECK_CASE(gc, 12);
    }

    void ssd_grad_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("H");
        QTest::addColumn<int>("P");
        QTest::addColumn<int>("G");
        QTest::addColumn<int>("N");
        QTest::newRow("T=1") << 1 << 2 << 3 << 1 << 4;
        QTest::newRow("T=7 H=2 P=3 G=1 N=4") << 7 << 2 << 3 << 1 << 4;
        QTest::newRow("T=9 H=4 P=5 G=2 N=3 (groups)") << 9 << 4 << 5 << 2 << 3;
        QTest::newRow("T=5 H=3 P=2 G=3 N=6 (a group per head)") << 5 << 3 << 2 << 3 << 6;
        QTest::newRow("T=20 H=4 P=16 G=2 N=16 (subsets)") << 20 << 4 << 16 << 2 << 16;
    }
    void ssd_grad() {
        QFETCH(int, T);
        QFETCH(int, H);
        QFETCH(int, P);
        QFETCH(int, G);
        QFETCH(int, N);
        std::mt19937 rng(uint32_t(13 + T + H + P + G + N));
        GradCase gc;
        gc.in = {{"x", uniform(size_t(T * H * P), -1, 1, rng)}, {"dt", uniform(size_t(T * H), -2, 1, rng)},
                 {"A", negative(size_t(H), rng)},               {"B", uniform(size_t(T * G * N), -1, 1, rng)},
                 {"C", uniform(size_t(T * G * N), -1, 1, rng)}, {"D", uniform(size_t(H), -1, 1, rng)}};
        gc.forward = [=](const std::vector<Input>& in) {
            Vec y(size_t(T * H * P)), Ss(size_t((T + 1) * H * P * N));
            tr::ssd_forward(y, Ss, in[0].value, in[1].value, in[2].value, in[3].value, in[4].value, in[5].value, T, H,
                            P, G, N, nullptr);
            return y;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dy, const std::vector<Input>& in) {
            Vec y(size_t(T * H * P)), Ss(size_t((T + 1) * H * P * N));
            tr::ssd_forward(y, Ss, in[0].value, in[1].value, in[2].value, in[3].value, in[4].value, in[5].value, T, H,
                            P, G, N, nullptr);
            tr::ssd_backward(g[0], g[1], g[2], g[3], g[4], g[5], dy, Ss, in[0].value, in[1].value, in[2].value,
                             in[3].value, in[4].value, in[5].value, T, H, P, G, N, nullptr);
        };
        if (T == 1) gc.zero_ok = {"A"};
        CHECK_CASE(gc, 14);
    }

    void gate_mix_grad_data() {
        QTest::addColumn<float>("alpha");
        QTest::addColumn<float>("tau");
        QTest::newRow("alpha 0.3 tau 1") << 0.3f << 1.0f;
        QTest::newRow("alpha -1.2 tau 0.5") << -1.2f << 0.5f;
        QTest::newRow("alpha 2 tau 4") << 2.0f << 4.0f;
    }
    void gate_mix_grad() {
        QFETCH(float, alpha);
        QFETCH(float, tau);
        const size_t n = 23;
        std::mt19937 rng(15);
        GradCase gc;
        gc.in = {{"a", uniform(n, -1, 1, rng)}, {"s", uniform(n, -1, 1, rng)}, {"alpha", Vec{alpha}}};
        gc.forward = [=](const std::vector<Input>& in) {
            Vec out(n);
            tr::gate_mix_forward(out, in[0].value, in[1].value, in[2].value[0], tau);
            return out;
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
            tr::gate_mix_backward(g[0], g[1], g[2].empty() ? nullptr : g[2].data(), dout, in[0].value, in[1].value,
                                  in[2].value[0], tau);
        };
        CHECK_CASE(gc, 16);
    }

    // The losses are scalars: "out" is the loss itself (R then is one random factor).
    void losses_grad_data() {
        QTest::addColumn<QString>("loss");
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("V");
        QTest::addColumn<float>("scale");
        QTest::newRow("cross-entropy 4x7") << "ce" << 4 << 7 << 1.0f;
        QTest::newRow("cross-entropy 6x50, scale 0.5, an ignored row") << "ce" << 6 << 50 << 0.5f;
        QTest::newRow("KL 3x9") << "kl" << 3 << 9 << 1.0f;
        QTest::newRow("KL 5x64, scale 2") << "kl" << 5 << 64 << 2.0f;
    }
    void losses_grad() {
        QFETCH(QString, loss);
        QFETCH(int, T);
        QFETCH(int, V);
        QFETCH(float, scale);
        std::mt19937 rng(uint32_t(17 + T + V));
        std::vector<int32_t> targets(static_cast<size_t>(T));
        for (int t = 0; t < T; ++t) targets[size_t(t)] = int32_t(rng() % uint32_t(V));
        if (T > 4) targets[2] = -1;
        const Vec teacher = uniform(size_t(T * V), -3, 3, rng);
        const bool ce = loss == "ce";
        GradCase gc;
        gc.in = {{"logits", uniform(size_t(T * V), -3, 3, rng)}};
        gc.forward = [=](const std::vector<Input>& in) {
            const double L = ce ? tr::cross_entropy_forward(in[0].value, targets, T, V) : tr::kl_forward(in[0].value, teacher, T, V);
            return Vec{float(L * double(scale))};
        };
        gc.scalar = [=](const std::vector<Input>& in) {
            return (ce ? tr::cross_entropy_forward(in[0].value, targets, T, V) : tr::kl_forward(in[0].value, teacher, T, V)) *
                   double(scale);
        };
        gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
            if (g[0].empty()) return;
            Vec d(g[0].size(), 0.0f);
            if (ce) tr::cross_entropy_backward(d, in[0].value, targets, T, V, scale);
            else tr::kl_backward(d, in[0].value, teacher, T, V, scale);
            for (size_t i = 0; i < d.size(); ++i) g[0][i] += dout[0] * d[i];
        };
        CHECK_CASE(gc, 18);
    }

    // The loss values themselves, against a direct double computation.
    void loss_values() {
        const int64_t T = 3, V = 5;
        const Vec z{0.1f, -1.0f, 2.0f, 0.5f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, -3.0f, 0.0f, 3.0f, 0.2f, -0.2f};
        const Vec zt{1.0f, 0.0f, 0.0f, 0.5f, -1.0f, 2.0f, 1.0f, 0.0f, -1.0f, -2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        const std::vector<int32_t> targets{2, -1, 4};
        auto log_softmax = [&](const Vec& v, int64_t t, int64_t i) {
            double s = 0.0;
            for (int64_t j = 0; j < V; ++j) s += std::exp(double(v[size_t(t * V + j)]));
            return double(v[size_t(t * V + i)]) - std::log(s);
        };
        const double ce = -(log_softmax(z, 0, 2) + log_softmax(z, 2, 4)) / 2.0;
        QVERIFY(std::fabs(tr::cross_entropy_forward(z, targets, T, V) - ce) < 1e-6);  // exponentials in float, sums in double
        // Uniform logits over V: the loss is log V.
        QVERIFY(std::fabs(tr::cross_entropy_forward(std::span<const float>(z).subspan(5, 5), std::vector<int32_t>{1}, 1, V) -
                          std::log(5.0)) < 1e-6);
        double kl = 0.0;
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < V; ++i) {
                const double lt = log_softmax(zt, t, i), ls = log_softmax(z, t, i);
                kl += std::exp(lt) * (lt - ls);
            }
        QVERIFY(std::fabs(tr::kl_forward(z, zt, T, V) - kl / double(T)) < 1e-6);
        QCOMPARE(tr::kl_forward(z, z, T, V), 0.0);
        QVERIFY(tr::kl_forward(z, zt, T, V) > 0.1);
    }

    // ---- against double precision --------------------------------------------------------------

    void gradients_against_double_data() {
        QTest::addColumn<QString>("op");
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("a");  // attention: H; scan: C; ssd: H
        QTest::addColumn<int>("b");  // attention: KVH; scan: N; ssd: P
        QTest::addColumn<int>("c");  // attention: D; ssd: G (N = 8)
        QTest::newRow("attention GQA 6:2, T=70 (two row blocks)") << "attention" << 70 << 6 << 2 << 16;
        QTest::newRow("attention MQA 3:1, T=9, D=5") << "attention" << 9 << 3 << 1 << 5;
        QTest::newRow("selective scan T=30 C=8 N=16") << "scan" << 30 << 8 << 16 << 0;
        QTest::newRow("ssd T=30 H=4 P=8 G=2") << "ssd" << 30 << 4 << 8 << 2;
    }
    void gradients_against_double() {
        QFETCH(QString, op);
        QFETCH(int, T);
        QFETCH(int, a);
        QFETCH(int, b);
        QFETCH(int, c);
        std::mt19937 rng(uint32_t(40 + T + a));
        std::vector<Input> in;
        std::vector<Vec> g;
        Vec R;
        std::function<double(const std::vector<DVec>&)> loss;
        auto zeros = [&] {
            g.clear();
            for (const Input& i : in) g.emplace_back(i.value.size(), 0.0f);
        };
        if (op == "attention") {
            const int64_t H = a, KVH = b, D = c;
            const float scale = 1.0f / std::sqrt(float(D));
            in = {{"q", uniform(size_t(T * H * D), -1.5f, 1.5f, rng)}, {"k", uniform(size_t(T * KVH * D), -1.5f, 1.5f, rng)},
                  {"v", uniform(size_t(T * KVH * D), -1, 1, rng)}};
            R = uniform(size_t(T * H * D), -1, 1, rng);
            zeros();
            Vec out(size_t(T * H * D)), probs(size_t(H * T * T));
            tr::attention_forward(out, probs, in[0].value, in[1].value, in[2].value, T, H, KVH, D, scale, nullptr);
            tr::attention_backward(g[0], g[1], g[2], R, in[0].value, in[1].value, in[2].value, probs, T, H, KVH, D, scale,
                                   nullptr);
            const DVec Rd(R.begin(), R.end());
            loss = [=](const std::vector<DVec>& x) { return attention_loss_d(x, Rd, T, H, KVH, D, double(scale)); };
        } else if (op == "scan") {
            const int64_t C = a, N = b;
            in = {{"x", uniform(size_t(T * C), -1, 1, rng)},  {"dt", uniform(size_t(T * C), -2, 1, rng)},
                  {"A", negative(size_t(C * N), rng)},        {"B", uniform(size_t(T * N), -1, 1, rng)},
                  {"C", uniform(size_t(T * N), -1, 1, rng)},  {"D", uniform(size_t(C), -1, 1, rng)}};
            R = uniform(size_t(T * C), -1, 1, rng);
            zeros();
            Vec y(size_t(T * C)), hs(size_t((T + 1) * C * N));
            tr::selective_scan_forward(y, hs, in[0].value, in[1].value, in[2].value, in[3].value, in[4].value,
                                       in[5].value, T, C, N);
            tr::selective_scan_backward(g[0], g[1], g[2], g[3], g[4], g[5], R, hs, in[0].value, in[1].value, in[2].value,
                                        in[3].value, in[4].value, in[5].value, T, C, N);
            const DVec Rd(R.begin(), R.end());
            loss = [=](const std::vector<DVec>& x) { return scan_loss_d(x, Rd, T, C, N); };
        } else {
            const int64_t H = a, P = b, G = c, N = 8;
            in = {{"x", uniform(size_t(T * H * P), -1, 1, rng)}, {"dt", uniform(size_t(T * H), -2, 1, rng)},
                  {"A", negative(size_t(H), rng)},               {"B", uniform(size_t(T * G * N), -1, 1, rng)},
                  {"C", uniform(size_t(T * G * N), -1, 1, rng)}, {"D", uniform(size_t(H), -1, 1, rng)}};
            R = uniform(size_t(T * H * P), -1, 1, rng);
            zeros();
            Vec y(size_t(T * H * P)), Ss(size_t((T + 1) * H * P * N));
            tr::ssd_forward(y, Ss, in[0].value, in[1].value, in[2].value, in[3].value, in[4].value, in[5].value, T, H, P,
                            G, N, nullptr);
            tr::ssd_backward(g[0], g[1], g[2], g[3], g[4], g[5], R, Ss, in[0].value, in[1].value, in[2].value,
                             in[3].value, in[4].value, in[5].value, T, H, P, G, N, nullptr);
            const DVec Rd(R.begin(), R.end());
            loss = [=](const std::vector<DVec>& x) { return ssd_loss_d(x, Rd, T, H, P, G, N); };
        }
        const std::string fails = check_against_double(in, g, loss, rng);
        QVERIFY2(fails.empty(), fails.c_str());
    }

    // Ids outside the vocabulary (corrupt data) read no memory: a zero embedding row without
    // gradient, an ignored cross-entropy row.
    void out_of_range_ids() {
        const int64_t V = 4, C = 3;
        const Vec wte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        const std::vector<int32_t> tokens{1, -5, 4, 3};
        Vec out(tokens.size() * size_t(C), NAN), dwte(wte.size(), 0.0f);
        tr::embedding_forward(out, tokens, wte, C);
        QCOMPARE(out, (Vec{4, 5, 6, 0, 0, 0, 0, 0, 0, 10, 11, 12}));
        tr::embedding_backward(dwte, Vec(out.size(), 1.0f), tokens, C);
        QCOMPARE(dwte, (Vec{0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1}));
        const Vec z{0.5f, -1, 2, 0, 1, 1, 1, 1};
        const double both = tr::cross_entropy_forward(z, std::vector<int32_t>{2, 9}, 2, V);
        QCOMPARE(both, tr::cross_entropy_forward(std::span<const float>(z).first(4), std::vector<int32_t>{2}, 1, V));
        Vec dz(z.size(), 0.0f);
        tr::cross_entropy_backward(dz, z, std::vector<int32_t>{2, 9}, 2, V);
        QCOMPARE(Vec(dz.begin() + 4, dz.end()), Vec(4, 0.0f));
        QVERIFY(dz[2] < 0.0f);
    }

    // The checks above can fail: a backward off by 3% (beyond the float bound) or 0.1% (beyond
    // the double bound) in one gradient is reported, and so is one that forgets to accumulate.
    void checks_can_fail() {
        const int64_t T = 6, C = 9, OC = 5;
        std::mt19937 rng(50);
        for (int variant = 0; variant < 2; ++variant) {
            GradCase gc;
            gc.in = {{"x", uniform(size_t(T * C), -1, 1, rng)}, {"W", uniform(size_t(OC * C), -1, 1, rng)}};
            gc.forward = [=](const std::vector<Input>& in) {
                Vec out(size_t(T * OC));
                tr::matmul_forward(out, in[0].value, in[1].value, T, C, OC, nullptr);
                return out;
            };
            gc.backward = [=](const Grads& g, std::span<const float> dout, const std::vector<Input>& in) {
                if (variant == 0) {  // dW 3% too big
                    Vec dW(size_t(OC * C), 0.0f);
                    tr::matmul_backward(g[0], dW, dout, in[0].value, in[1].value, T, C, OC, nullptr);
                    if (!g[1].empty())
                        for (size_t i = 0; i < dW.size(); ++i) g[1][i] += 1.03f * dW[i];
                } else {  // overwrites instead of accumulating
                    if (!g[0].empty()) std::fill(g[0].begin(), g[0].end(), 0.0f);
                    if (!g[1].empty()) std::fill(g[1].begin(), g[1].end(), 0.0f);
                    tr::matmul_backward(g[0], g[1], dout, in[0].value, in[1].value, T, C, OC, nullptr);
                }
            };
            const std::string f = check_case(gc, 51);
            QVERIFY2(!f.empty(), variant == 0 ? "a 3% error in dW passed" : "a non-accumulating backward passed");
            QVERIFY(f.find(variant == 0 ? "W[" : "accumulate") != std::string::npos);
        }
        // Against double: the scan's dA 0.1% off.
        const int64_t Ts = 8, Cs = 3, N = 4;
        std::vector<Input> in = {{"x", uniform(size_t(Ts * Cs), -1, 1, rng)}, {"dt", uniform(size_t(Ts * Cs), -2, 1, rng)},
                                 {"A", negative(size_t(Cs * N), rng)},        {"B", uniform(size_t(Ts * N), -1, 1, rng)},
                                 {"C", uniform(size_t(Ts * N), -1, 1, rng)},  {"D", uniform(size_t(Cs), -1, 1, rng)}};
        const Vec R = uniform(size_t(Ts * Cs), -1, 1, rng);
        std::vector<Vec> g;
        for (const Input& i : in) g.emplace_back(i.value.size(), 0.0f);
        Vec y(size_t(Ts * Cs)), hs(size_t((Ts + 1) * Cs * N));
        tr::selective_scan_forward(y, hs, in[0].value, in[1].value, in[2].value, in[3].value, in[4].value, in[5].value, Ts,
                                   Cs, N);
        tr::selective_scan_backward(g[0], g[1], g[2], g[3], g[4], g[5], R, hs, in[0].value, in[1].value, in[2].value,
                                    in[3].value, in[4].value, in[5].value, Ts, Cs, N);
        for (float& v : g[2]) v *= 1.001f;
        const DVec Rd(R.begin(), R.end());
        const std::string f = check_against_double(in, g, [&](const std::vector<DVec>& x) { return scan_loss_d(x, Rd, Ts, Cs, N); }, rng);
        QVERIFY2(f.find("A[") != std::string::npos, "a 0.1% error in dA passed the double check");
        QVERIFY(f.find("B[") == std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestTrainOps)
#include "test_train_ops.moc"
