// Embedding, RMSNorm, the elementwise ops, RoPE, conv1d, the gate mixing and the losses
// (see grad_ops.h). Matmul: grad_ops_matmul.cpp; attention: grad_ops_attention.cpp;
// the state-space scans: grad_ops_ssm.cpp.
#include "core/train/grad_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/train/grad_ops_detail.h"
#include "runtime/ops.h"

namespace ef::train {

namespace {

// d silu(x) / dx = s * (1 + x * (1 - s)), s = sigmoid(x).
float silu_grad(float x) {
    const float s = rt::sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

}  // namespace

// ---- embedding ---------------------------------------------------------------------------------

// A token outside [0, V) (corrupt data) reads no memory: its row is zeros and gets no gradient.
static bool valid_token(int32_t tok, size_t rows) { return tok >= 0 && size_t(tok) < rows; }

void embedding_forward(std::span<float> out, std::span<const int32_t> tokens, std::span<const float> wte, int64_t C) {
    const size_t V = wte.size() / size_t(C);
    for (size_t t = 0; t < tokens.size(); ++t) {
        float* o = out.data() + t * size_t(C);
        if (valid_token(tokens[t], V)) std::memcpy(o, wte.data() + size_t(tokens[t]) * size_t(C), size_t(C) * sizeof(float));
        else std::fill(o, o + C, 0.0f);
    }
}

void embedding_backward(std::span<float> dwte, std::span<const float> dout, std::span<const int32_t> tokens, int64_t C) {
    if (dwte.empty()) return;
    const size_t V = dwte.size() / size_t(C);
    // Sequential over t: repeated tokens add into the same row.
    for (size_t t = 0; t < tokens.size(); ++t) {
        if (!valid_token(tokens[t], V)) continue;
        float* row = dwte.data() + size_t(tokens[t]) * size_t(C);
        const float* d = dout.data() + t * size_t(C);
        for (int64_t c = 0; c < C; ++c) row[c] += d[c];
    }
}

// ---- RMSNorm -----------------------------------------------------------------------------------

// One row of n values as rt::rmsnorm: squares summed in double, eps added to the mean, out = x * r * w.
static float rmsnorm_row(float* out, const float* x, const float* w, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[i] * x[i]);
    const float mean = float(ss / double(n));
    const float r = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * r * w[i];
    return r;
}

// out_i = x_i r w_i with r = (mean(x^2) + eps)^(-1/2), dr/dx_j = -r^3 x_j / n:
//   dx_j = r w_j dout_j - r^3 x_j / n * sum_i dout_i w_i x_i;   dw_i = dout_i x_i r.
static void rmsnorm_row_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, float r,
                                 int64_t n) {
    if (dx) {
        double dot = 0.0;
        for (int64_t i = 0; i < n; ++i) dot += double(dout[i]) * double(w[i]) * double(x[i]);
        const float k = float(dot * double(r) * double(r) * double(r) / double(n));
        for (int64_t j = 0; j < n; ++j) dx[j] += r * w[j] * dout[j] - k * x[j];
    }
    if (dw)
        for (int64_t i = 0; i < n; ++i) dw[i] += dout[i] * x[i] * r;
}

void rmsnorm_forward(std::span<float> out, std::span<float> rstd, std::span<const float> x, std::span<const float> w,
                     int64_t T, int64_t C, float eps) {
    rmsnorm_groups_forward(out, rstd, x, w, T, C, 1, eps);
}

void rmsnorm_backward(std::span<float> dx, std::span<float> dw, std::span<const float> dout, std::span<const float> x,
                      std::span<const float> w, std::span<const float> rstd, int64_t T, int64_t C) {
    rmsnorm_groups_backward(dx, dw, dout, x, w, rstd, T, C, 1);
}

void rmsnorm_groups_forward(std::span<float> out, std::span<float> rstd, std::span<const float> x,
                            std::span<const float> w, int64_t T, int64_t C, int64_t G, float eps) {
    const int64_t n = C / G;  // one group: x[t, g * n .. (g + 1) * n), w likewise
    for (int64_t t = 0; t < T; ++t)
        for (int64_t g = 0; g < G; ++g) {
            const int64_t o = t * C + g * n;
            rstd[size_t(t * G + g)] = rmsnorm_row(out.data() + o, x.data() + o, w.data() + g * n, n, eps);
        }
}

void rmsnorm_groups_backward(std::span<float> dx, std::span<float> dw, std::span<const float> dout,
                             std::span<const float> x, std::span<const float> w, std::span<const float> rstd, int64_t T,
                             int64_t C, int64_t G) {
    const int64_t n = C / G;
    for (int64_t t = 0; t < T; ++t)
        for (int64_t g = 0; g < G; ++g) {
            const int64_t o = t * C + g * n;
            rmsnorm_row_backward(dx.empty() ? nullptr : dx.data() + o, dw.empty() ? nullptr : dw.data() + g * n,
                                 dout.data() + o, x.data() + o, w.data() + g * n, rstd[size_t(t * G + g)], n);
        }
}

// ---- elementwise -------------------------------------------------------------------------------

void swiglu_forward(std::span<float> out, std::span<const float> gate, std::span<const float> up) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = rt::silu(gate[i]) * up[i];
}

void swiglu_backward(std::span<float> dgate, std::span<float> dup, std::span<const float> dout,
                     std::span<const float> gate, std::span<const float> up) {
    for (size_t i = 0; i < dout.size(); ++i) {
        if (!dgate.empty()) dgate[i] += dout[i] * up[i] * silu_grad(gate[i]);
        if (!dup.empty()) dup[i] += dout[i] * rt::silu(gate[i]);
    }
}

void silu_forward(std::span<float> out, std::span<const float> x) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = rt::silu(x[i]);
}

void silu_backward(std::span<float> dx, std::span<const float> dout, std::span<const float> x) {
    if (dx.empty()) return;
    for (size_t i = 0; i < dout.size(); ++i) dx[i] += dout[i] * silu_grad(x[i]);
}

void softplus_forward(std::span<float> out, std::span<const float> x) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = rt::softplus(x[i]);
}

void softplus_backward(std::span<float> dx, std::span<const float> dout, std::span<const float> x) {
    if (dx.empty()) return;
    for (size_t i = 0; i < dout.size(); ++i) dx[i] += dout[i] * softplus_grad(x[i]);
}

float softplus_grad(float x) { return x > 20.0f ? 1.0f : rt::sigmoid(x); }

void mul_forward(std::span<float> out, std::span<const float> a, std::span<const float> b) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = a[i] * b[i];
}

void mul_backward(std::span<float> da, std::span<float> db, std::span<const float> dout, std::span<const float> a,
                  std::span<const float> b) {
    for (size_t i = 0; i < dout.size(); ++i) {
        if (!da.empty()) da[i] += dout[i] * b[i];
        if (!db.empty()) db[i] += dout[i] * a[i];
    }
}

// ---- RoPE --------------------------------------------------------------------------------------

namespace {

// cos/sin of every (position, pair): (T, rope_dim / 2) each. The angle of pair i at position t is
// t * step^i built by repeated multiplication in float, exactly as rt::rope does.
void rope_table(std::vector<float>& cs, std::vector<float>& sn, int64_t T, int64_t rope_dim, float theta) {
    const int64_t pairs = rope_dim / 2;
    cs.resize(size_t(T * pairs));
    sn.resize(size_t(T * pairs));
    const float step = std::pow(theta, -2.0f / float(rope_dim));
    for (int64_t t = 0; t < T; ++t) {
        float angle = float(t);
        for (int64_t i = 0; i < pairs; ++i) {
            cs[size_t(t * pairs + i)] = std::cos(angle);
            sn[size_t(t * pairs + i)] = std::sin(angle);
            angle *= step;
        }
    }
}

// Rotates the interleaved pairs (2i, 2i + 1) of every head of x: (T, H, D) by +angle (sign 1) or
// -angle (sign -1, the inverse: the transpose of the rotation, which is also its gradient).
void rope_apply(std::span<float> x, int64_t T, int64_t H, int64_t D, int64_t rope_dim, float theta, float sign) {
    std::vector<float> cs, sn;
    rope_table(cs, sn, T, rope_dim, theta);
    const int64_t pairs = rope_dim / 2;
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h) {
            float* v = x.data() + (t * H + h) * D;
            for (int64_t i = 0; i < pairs; ++i) {
                const float c = cs[size_t(t * pairs + i)], s = sign * sn[size_t(t * pairs + i)];
                const float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
}

}  // namespace

void rope_forward(std::span<float> x, int64_t T, int64_t H, int64_t D, int64_t rope_dim, float theta) {
    rope_apply(x, T, H, D, rope_dim, theta, 1.0f);
}

void rope_backward(std::span<float> dx, int64_t T, int64_t H, int64_t D, int64_t rope_dim, float theta) {
    rope_apply(dx, T, H, D, rope_dim, theta, -1.0f);
}

// ---- conv1d ------------------------------------------------------------------------------------

// out[t, c] = bias[c] + sum_j w[c, j] * x[t - (K - 1) + j, c], inputs before t = 0 being zero; the
// terms are summed in rt::conv1d_seq's order (oldest first), so outputs agree bit for bit.
void conv1d_forward(std::span<float> out, std::span<const float> x, std::span<const float> w,
                    std::span<const float> bias, int64_t T, int64_t C, int64_t K) {
    for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
            const float* wc = w.data() + c * K;
            float acc = 0.0f;
            for (int64_t j = 0; j < K; ++j) {
                const int64_t src = t - (K - 1) + j;
                if (src >= 0) acc += x[size_t(src * C + c)] * wc[j];
            }
            out[size_t(t * C + c)] = acc + (bias.empty() ? 0.0f : bias[size_t(c)]);
        }
}

void conv1d_backward(std::span<float> dx, std::span<float> dw, std::span<float> dbias, std::span<const float> dout,
                     std::span<const float> x, std::span<const float> w, int64_t T, int64_t C, int64_t K) {
    for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
            const float d = dout[size_t(t * C + c)];
            if (!dbias.empty()) dbias[size_t(c)] += d;
            for (int64_t j = 0; j < K; ++j) {
                const int64_t src = t - (K - 1) + j;
                if (src < 0) continue;
                if (!dx.empty()) dx[size_t(src * C + c)] += d * w[size_t(c * K + j)];
                if (!dw.empty()) dw[size_t(c * K + j)] += d * x[size_t(src * C + c)];
            }
        }
}

// ---- gate mixing -------------------------------------------------------------------------------

// out = g a + (1 - g) s with g = sigmoid(alpha / tau), as the runtime mixes a routed layer's branches.
void gate_mix_forward(std::span<float> out, std::span<const float> a, std::span<const float> s, float alpha,
                      float tau) {
    const float g = rt::sigmoid(alpha / tau);
    for (size_t i = 0; i < out.size(); ++i) out[i] = g * a[i] + (1.0f - g) * s[i];
}

// dL/dalpha = sum_i dout_i (a_i - s_i) * g (1 - g) / tau.
void gate_mix_backward(std::span<float> da, std::span<float> ds, float* dalpha, std::span<const float> dout,
                       std::span<const float> a, std::span<const float> s, float alpha, float tau) {
    const float g = rt::sigmoid(alpha / tau);
    double dg = 0.0;
    for (size_t i = 0; i < dout.size(); ++i) {
        if (!da.empty()) da[i] += dout[i] * g;
        if (!ds.empty()) ds[i] += dout[i] * (1.0f - g);
        dg += double(dout[i]) * (double(a[i]) - double(s[i]));
    }
    if (dalpha) *dalpha += float(dg * double(g) * (1.0 - double(g)) / double(tau));
}

// ---- losses ------------------------------------------------------------------------------------

namespace {

// log(sum_v exp(z_v)) of one row: exponentials in float, their sum in double.
double log_sum_exp(const float* z, int64_t V) {
    float mx = z[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
    double sum = 0.0;
    for (int64_t v = 0; v < V; ++v) sum += double(std::exp(z[v] - mx));
    return double(mx) + std::log(sum);
}

bool counted_row(int32_t y, int64_t V) { return y >= 0 && y < V; }

// Rows are independent: split over the pool, per-row values summed afterwards in row order.
template <class F>
void for_rows(rt::ThreadPool* pool, int64_t T, int64_t V, F&& fn) {
    detail::for_items(pool, T, 8.0 * double(T) * double(V), [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) fn(t);
    });
}

}  // namespace

double cross_entropy_forward(std::span<const float> logits, std::span<const int32_t> targets, int64_t T, int64_t V,
                             rt::ThreadPool* pool) {
    std::vector<double> row(static_cast<size_t>(T), 0.0);
    for_rows(pool, T, V, [&](int64_t t) {
        const int32_t y = targets[size_t(t)];
        if (!counted_row(y, V)) return;
        const float* z = logits.data() + t * V;
        row[size_t(t)] = log_sum_exp(z, V) - double(z[y]);
    });
    double total = 0.0;
    int64_t counted = 0;
    for (int64_t t = 0; t < T; ++t)
        if (counted_row(targets[size_t(t)], V)) {
            total += row[size_t(t)];
            ++counted;
        }
    return counted ? total / double(counted) : 0.0;
}

double cross_entropy_forward(std::span<const float> logits, std::span<const int32_t> targets, int64_t T, int64_t V) {
    return cross_entropy_forward(logits, targets, T, V, nullptr);
}

void cross_entropy_backward(std::span<float> dlogits, std::span<const float> logits,
                            std::span<const int32_t> targets, int64_t T, int64_t V, float scale, rt::ThreadPool* pool) {
    int64_t counted = 0;
    for (int64_t t = 0; t < T; ++t) counted += counted_row(targets[size_t(t)], V);
    if (!counted) return;
    const float k = float(double(scale) / double(counted));
    for_rows(pool, T, V, [&](int64_t t) {
        const int32_t y = targets[size_t(t)];
        if (!counted_row(y, V)) return;
        const float* z = logits.data() + t * V;
        float* dz = dlogits.data() + t * V;
        const float lse = float(log_sum_exp(z, V));
        for (int64_t v = 0; v < V; ++v) dz[v] += k * std::exp(z[v] - lse);
        dz[y] -= k;
    });
}

void cross_entropy_backward(std::span<float> dlogits, std::span<const float> logits,
                            std::span<const int32_t> targets, int64_t T, int64_t V, float scale) {
    cross_entropy_backward(dlogits, logits, targets, T, V, scale, nullptr);
}

// KL(p_t || p_s) = sum_v p_t (log p_t - log p_s) per row, p = softmax(logits).
double kl_forward(std::span<const float> student_logits, std::span<const float> teacher_logits, int64_t T, int64_t V,
                  rt::ThreadPool* pool) {
    if (T <= 0) return 0.0;
    std::vector<double> row(static_cast<size_t>(T), 0.0);
    for_rows(pool, T, V, [&](int64_t t) {
        const float* zs = student_logits.data() + t * V;
        const float* zt = teacher_logits.data() + t * V;
        const double ls = log_sum_exp(zs, V), lt = log_sum_exp(zt, V);
        double kl = 0.0;
        for (int64_t v = 0; v < V; ++v) {
            const double log_pt = double(zt[v]) - lt;
            kl += std::exp(log_pt) * (log_pt - (double(zs[v]) - ls));
        }
        row[size_t(t)] = kl;
    });
    double total = 0.0;
    for (double r : row) total += r;
    return total / double(T);
}

double kl_forward(std::span<const float> student_logits, std::span<const float> teacher_logits, int64_t T,
                  int64_t V) {
    return kl_forward(student_logits, teacher_logits, T, V, nullptr);
}

// d KL / d z_s = p_s - p_t per row.
void kl_backward(std::span<float> dlogits, std::span<const float> student_logits,
                 std::span<const float> teacher_logits, int64_t T, int64_t V, float scale, rt::ThreadPool* pool) {
    if (T <= 0) return;
    const float k = float(double(scale) / double(T));
    for_rows(pool, T, V, [&](int64_t t) {
        const float* zs = student_logits.data() + t * V;
        const float* zt = teacher_logits.data() + t * V;
        float* dz = dlogits.data() + t * V;
        const float ls = float(log_sum_exp(zs, V)), lt = float(log_sum_exp(zt, V));
        for (int64_t v = 0; v < V; ++v) dz[v] += k * (std::exp(zs[v] - ls) - std::exp(zt[v] - lt));
    });
}

void kl_backward(std::span<float> dlogits, std::span<const float> student_logits,
                 std::span<const float> teacher_logits, int64_t T, int64_t V, float scale) {
    kl_backward(dlogits, student_logits, teacher_logits, T, V, scale, nullptr);
}

}  // namespace ef::train
