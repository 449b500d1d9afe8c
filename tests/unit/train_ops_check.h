// Shared by tests/unit/test_train_ops*.cpp: random data, comparisons, and the gradient checkers
// (central finite differences in float, and against independent double-precision forwards).
#pragma once
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/train/grad_ops.h"

namespace ef::train_test {

namespace tr = ef::train;

using Vec = std::vector<float>;

inline Vec uniform(size_t n, float lo, float hi, std::mt19937& rng) {
    std::uniform_real_distribution<float> d(lo, hi);
    Vec v(n);
    for (float& x : v) x = d(rng);
    return v;
}

inline Vec row(const Vec& v, int64_t t, int64_t n) { return Vec(v.begin() + t * n, v.begin() + (t + 1) * n); }

// max |a - b| / max(1, |b|); infinity on a size mismatch or NaN.
inline double max_rel_diff(const Vec& a, const Vec& b) {
    if (a.size() != b.size()) return INFINITY;
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(double(a[i]) - double(b[i])) / std::max(1.0, std::fabs(double(b[i])));
        if (std::isnan(d)) return INFINITY;
        m = std::max(m, d);
    }
    return m;
}

// One op under test: its inputs, a forward giving the output, and a backward that accumulates
// the gradients of every input from dout (recomputing whatever the forward saves).
struct Input {
    std::string name;
    Vec value;
};
using Grads = std::vector<std::span<float>>;  // one per input; empty = not wanted
struct GradCase {
    std::vector<Input> in;
    std::function<Vec(const std::vector<Input>&)> forward;
    std::function<void(const Grads&, std::span<const float> dout, const std::vector<Input>&)> backward;
    // For the losses: the value in double (a float output would round away the differences).
    std::function<double(const std::vector<Input>&)> scalar;
    std::vector<std::string> zero_ok;  // inputs whose gradient is zero here by the math (T = 1)
    float rel_h = 2e-2f;               // the finite-difference step, relative to max(1, |x|)
};

constexpr double kFdTol = 1e-2;

inline double rms(const Vec& v) {
    double s = 0.0;
    for (float x : v) s += double(x) * double(x);
    return v.empty() ? 0.0 : std::sqrt(s / double(v.size()));
}

// Finite differences, the accumulate convention and the one-gradient-alone calls for one case.
// Returns an empty string when everything holds, else what failed.
inline std::string check_case(GradCase& gc, uint32_t seed, size_t max_elems = 40) {
    std::mt19937 rng(seed);
    const Vec out = gc.forward(gc.in);
    const Vec R = uniform(out.size(), -1.0f, 1.0f, rng);
    auto loss = [&] {
        if (gc.scalar) return double(R[0]) * gc.scalar(gc.in);
        const Vec o = gc.forward(gc.in);
        double L = 0.0;
        for (size_t i = 0; i < o.size(); ++i) L += double(o[i]) * double(R[i]);
        return L;
    };
    const size_t n_in = gc.in.size();
    auto zeros = [&] {
        std::vector<Vec> g(n_in);
        for (size_t k = 0; k < n_in; ++k) g[k].assign(gc.in[k].value.size(), 0.0f);
        return g;
    };
    auto spans = [](std::vector<Vec>& g) {
        Grads s;
        for (Vec& v : g) s.emplace_back(v);
        return s;
    };
    std::vector<Vec> grads = zeros();
    gc.backward(spans(grads), R, gc.in);

    std::string fails;
    for (size_t k = 0; k < n_in; ++k) {
        Vec& v = gc.in[k].value;
        std::vector<size_t> idx(v.size());
        std::iota(idx.begin(), idx.end(), size_t(0));
        if (idx.size() > max_elems) {
            std::shuffle(idx.begin(), idx.end(), rng);
            idx.resize(max_elems);
        }
        const double floor = 0.05 * rms(grads[k]);
        double worst = 0.0;
        for (size_t i : idx) {
            // Central differences at h and h / 2, combined (Richardson) to cancel the h^2 error term.
            const float saved = v[i];
            auto central = [&](float h) {
                const float up = saved + h, down = saved - h;
                v[i] = up;
                const double Lp = loss();
                v[i] = down;
                const double Lm = loss();
                v[i] = saved;
                return (Lp - Lm) / (double(up) - double(down));
            };
            const float h = gc.rel_h * std::max(1.0f, std::fabs(saved));
            const double num = (4.0 * central(0.5f * h) - central(h)) / 3.0;
            const double ana = grads[k][i];
            const double err = std::fabs(num - ana) / std::max({std::fabs(ana), floor, 1e-6});
            worst = std::max(worst, err);
            if (err > kFdTol && fails.size() < 2000)
                fails += gc.in[k].name + "[" + std::to_string(i) + "]: numeric " + std::to_string(num) + " analytic " +
                         std::to_string(ana) + "\n";
        }
        qInfo("  d%s: %zu of %zu elements, worst rel err %.2e", gc.in[k].name.c_str(), idx.size(), v.size(), worst);
    }

    // Twice: every gradient doubles.
    std::vector<Vec> twice = zeros();
    gc.backward(spans(twice), R, gc.in);
    gc.backward(spans(twice), R, gc.in);
    for (size_t k = 0; k < n_in; ++k) {
        const double scale = rms(grads[k]) + 1e-30;
        for (size_t i = 0; i < grads[k].size(); ++i)
            if (std::fabs(double(twice[k][i]) - 2.0 * double(grads[k][i])) > 1e-5 * (2.0 * std::fabs(grads[k][i]) + scale)) {
                fails += "accumulate: d" + gc.in[k].name + "[" + std::to_string(i) + "] " + std::to_string(twice[k][i]) +
                         " after two calls, " + std::to_string(grads[k][i]) + " after one\n";
                break;
            }
    }
    // One gradient alone, the others not asked for.
    for (size_t k = 0; k < n_in; ++k) {
        std::vector<Vec> alone = zeros();
        Grads s(n_in);
        s[k] = alone[k];
        gc.backward(s, R, gc.in);
        const double scale = rms(grads[k]) + 1e-30;
        for (size_t i = 0; i < grads[k].size(); ++i)
            if (std::fabs(double(alone[k][i]) - double(grads[k][i])) > 1e-6 * (std::fabs(grads[k][i]) + scale)) {
                fails += "alone: d" + gc.in[k].name + "[" + std::to_string(i) + "] differs\n";
                break;
            }
    }
    // The gradients are not all zero (a check that can only pass must not be mistaken for one).
    for (size_t k = 0; k < n_in; ++k)
        if (rms(grads[k]) == 0.0 && std::find(gc.zero_ok.begin(), gc.zero_ok.end(), gc.in[k].name) == gc.zero_ok.end())
            fails += "d" + gc.in[k].name + " is all zero\n";
    return fails;
}

// ---- double-precision references for the ops with the longest chains ----------------------------
// Independent double forwards of attention, the Mamba-1 scan and SSD giving L = sum(out * R); their
// central differences (h = 1e-6 max(1, |x|)) are exact to ~1e-9, so the float analytic gradients
// are held to a tight bound: |numeric - analytic| <= 1e-4 * max(|analytic|, 0.01 * rms).
using DVec = std::vector<double>;

inline double softplus_d(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

inline double attention_loss_d(const std::vector<DVec>& in, const DVec& R, int64_t T, int64_t H, int64_t KVH, int64_t D,
                        double scale) {
    const DVec &q = in[0], &k = in[1], &v = in[2];
    double L = 0.0;
    for (int64_t h = 0; h < H; ++h) {
        const int64_t kvh = h / (H / KVH);
        for (int64_t t = 0; t < T; ++t) {
            DVec p(size_t(t + 1));
            double mx = -INFINITY, sum = 0.0;
            for (int64_t s = 0; s <= t; ++s) {
                double d = 0.0;
                for (int64_t i = 0; i < D; ++i) d += q[size_t((t * H + h) * D + i)] * k[size_t((s * KVH + kvh) * D + i)];
                p[size_t(s)] = d * scale;
                mx = std::max(mx, p[size_t(s)]);
            }
            for (double& x : p) sum += (x = std::exp(x - mx));
            for (int64_t i = 0; i < D; ++i) {
                double o = 0.0;
                for (int64_t s = 0; s <= t; ++s) o += p[size_t(s)] / sum * v[size_t((s * KVH + kvh) * D + i)];
                L += o * R[size_t((t * H + h) * D + i)];
            }
        }
    }
    return L;
}

// Inputs x, dt, A, B, C, D as in grad_ops.h.
inline double scan_loss_d(const std::vector<DVec>& in, const DVec& R, int64_t T, int64_t C, int64_t N) {
    const DVec &x = in[0], &dt = in[1], &A = in[2], &B = in[3], &Cm = in[4], &D = in[5];
    double L = 0.0;
    for (int64_t c = 0; c < C; ++c) {
        DVec h(size_t(N), 0.0);
        for (int64_t t = 0; t < T; ++t) {
            const size_t i = size_t(t * C + c);
            const double d = softplus_d(dt[i]);
            double y = x[i] * D[size_t(c)];
            for (int64_t n = 0; n < N; ++n) {
                h[size_t(n)] = h[size_t(n)] * std::exp(d * A[size_t(c * N + n)]) + B[size_t(t * N + n)] * x[i] * d;
                y += h[size_t(n)] * Cm[size_t(t * N + n)];
            }
            L += y * R[i];
        }
    }
    return L;
}

inline double ssd_loss_d(const std::vector<DVec>& in, const DVec& R, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N) {
    const DVec &x = in[0], &dt = in[1], &A = in[2], &B = in[3], &Cm = in[4], &D = in[5];
    double L = 0.0;
    for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / G);
        DVec S(size_t(P * N), 0.0);
        for (int64_t t = 0; t < T; ++t) {
            const double d = softplus_d(dt[size_t(t * H + h)]), a = std::exp(d * A[size_t(h)]);
            for (int64_t p = 0; p < P; ++p) {
                const size_t i = size_t((t * H + h) * P + p);
                double y = x[i] * D[size_t(h)];
                for (int64_t n = 0; n < N; ++n) {
                    double& st = S[size_t(p * N + n)];
                    st = st * a + B[size_t((t * G + g) * N + n)] * x[i] * d;
                    y += st * Cm[size_t((t * G + g) * N + n)];
                }
                L += y * R[i];
            }
        }
    }
    return L;
}

// Central differences of a double loss at the float inputs against float analytic gradients.
inline std::string check_against_double(const std::vector<Input>& in, const std::vector<Vec>& grads,
                                 const std::function<double(const std::vector<DVec>&)>& loss, std::mt19937& rng,
                                 size_t max_elems = 30) {
    std::vector<DVec> xd;
    for (const Input& i : in) xd.emplace_back(i.value.begin(), i.value.end());
    std::string fails;
    for (size_t k = 0; k < in.size(); ++k) {
        std::vector<size_t> idx(xd[k].size());
        std::iota(idx.begin(), idx.end(), size_t(0));
        std::shuffle(idx.begin(), idx.end(), rng);
        idx.resize(std::min(idx.size(), max_elems));
        const double floor = 0.01 * rms(grads[k]);
        double worst = 0.0;
        for (size_t i : idx) {
            const double saved = xd[k][i], h = 1e-6 * std::max(1.0, std::fabs(saved));
            xd[k][i] = saved + h;
            const double Lp = loss(xd);
            xd[k][i] = saved - h;
            const double Lm = loss(xd);
            xd[k][i] = saved;
            const double num = (Lp - Lm) / (2.0 * h), ana = grads[k][i];
            const double err = std::fabs(num - ana) / std::max({std::fabs(ana), floor, 1e-12});
            worst = std::max(worst, err);
            if (err > 1e-4 && fails.size() < 2000)
                fails += in[k].name + "[" + std::to_string(i) + "]: numeric " + std::to_string(num) + " analytic " +
                         std::to_string(ana) + "\n";
        }
        qInfo("  d%s: %zu elements, worst rel err %.2e", in[k].name.c_str(), idx.size(), worst);
    }
    return fails;
}

#define CHECK_CASE(gc, seed) \
    do { \
        const std::string f_ = check_case(gc, seed); \
        QVERIFY2(f_.empty(), f_.c_str()); \
    } while (0)

// Mamba-style A: negative decays.
inline Vec negative(size_t n, std::mt19937& rng) { return uniform(n, -1.5f, -0.1f, rng); }

}  // namespace ef::train_test
