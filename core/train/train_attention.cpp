// The attention branch and the SwiGLU FFN of a TrainModel layer, forward and backward, as the
// runtime composes them (runtime/session_batch.cpp: attention_batch and the FFN of run_layer_batch).
#include <cmath>

#include "core/train/grad_ops.h"
#include "core/train/train_model_impl.h"

namespace ef::train {

namespace {
float attention_scale(const AttentionConfig& ac) {
    return ac.scale != 0.0f ? ac.scale : 1.0f / std::sqrt(float(ac.head_dim));
}
}  // namespace

void attention_branch_forward(const ModelConfig& c, const AttnWeights& w, std::span<const float> xn, Shape2 s,
                              AttnActs& a, std::vector<float>& out, rt::ThreadPool* pool) {
    const auto& ac = c.attn;
    const int64_t N = s.N(), T = s.T, C = c.dim, H = ac.n_heads, KVH = ac.n_kv_heads, D = ac.head_dim;
    const int64_t qd = H * D, kvd = KVH * D;
    a.q.resize(size_t(N * qd));
    a.k.resize(size_t(N * kvd));
    a.v.resize(size_t(N * kvd));
    matmul_forward(a.q, xn, w.q.v, N, C, qd, pool);
    matmul_forward(a.k, xn, w.k.v, N, C, kvd, pool);
    matmul_forward(a.v, xn, w.v.v, N, C, kvd, pool);
    a.probs.resize(size_t(s.B * H * T * T));
    a.att.resize(size_t(N * qd));
    const float scale = attention_scale(ac);
    for (int64_t b = 0; b < s.B; ++b) {
        if (ac.rope_dim > 0) {  // every sequence starts at position 0
            rope_forward(seq(a.q, b, T, qd), T, H, D, ac.rope_dim, ac.rope_theta);
            rope_forward(seq(a.k, b, T, kvd), T, KVH, D, ac.rope_dim, ac.rope_theta);
        }
        attention_forward(seq(a.att, b, T, qd), seq(a.probs, b, T, H * T), seq(a.q, b, T, qd), seq(a.k, b, T, kvd),
                          seq(a.v, b, T, kvd), T, H, KVH, D, scale, pool);
    }
    out.resize(size_t(N * C));
    matmul_forward(out, a.att, w.o.v, N, qd, C, pool);
}

void attention_branch_backward(const ModelConfig& c, const AttnWeights& w, std::span<const float> xn, Shape2 s,
                               const AttnActs& a, std::span<const float> dout, std::span<float> dxn, rt::ThreadPool* pool) {
    const auto& ac = c.attn;
    const int64_t N = s.N(), T = s.T, C = c.dim, H = ac.n_heads, KVH = ac.n_kv_heads, D = ac.head_dim;
    const int64_t qd = H * D, kvd = KVH * D;
    std::vector<float> datt, dq, dk, dv;
    zeros(datt, size_t(N * qd));
    matmul_backward(datt, w.o.g, dout, a.att, w.o.v, N, qd, C, pool);
    zeros(dq, size_t(N * qd));
    zeros(dk, size_t(N * kvd));
    zeros(dv, size_t(N * kvd));
    const float scale = attention_scale(ac);
    for (int64_t b = 0; b < s.B; ++b) {
        attention_backward(seq(dq, b, T, qd), seq(dk, b, T, kvd), seq(dv, b, T, kvd), seq(datt, b, T, qd),
                           seq(a.q, b, T, qd), seq(a.k, b, T, kvd), seq(a.v, b, T, kvd), seq(a.probs, b, T, H * T), T, H,
                           KVH, D, scale, pool);
        if (ac.rope_dim > 0) {  // gradients w.r.t. q, k before their rotation
            rope_backward(seq(dq, b, T, qd), T, H, D, ac.rope_dim, ac.rope_theta);
            rope_backward(seq(dk, b, T, kvd), T, KVH, D, ac.rope_dim, ac.rope_theta);
        }
    }
    matmul_backward(dxn, w.q.g, dq, xn, w.q.v, N, C, qd, pool);
    matmul_backward(dxn, w.k.g, dk, xn, w.k.v, N, C, kvd, pool);
    matmul_backward(dxn, w.v.g, dv, xn, w.v.v, N, C, kvd, pool);
}

void ffn_forward(const ModelConfig& c, const FfnWeights& w, std::span<const float> x_mid, Shape2 s, FfnActs& a,
                 std::span<float> x_out, rt::ThreadPool* pool) {
    const int64_t N = s.N(), C = c.dim, F = c.ffn_hidden;
    a.xn.resize(size_t(N * C));
    a.rstd.resize(size_t(N));
    rmsnorm_forward(a.xn, a.rstd, x_mid, w.norm.v, N, C, c.norm_eps);
    a.g.resize(size_t(N * F));
    a.u.resize(size_t(N * F));
    a.h.resize(size_t(N * F));
    matmul_forward(a.g, a.xn, w.gate.v, N, C, F, pool);
    matmul_forward(a.u, a.xn, w.up.v, N, C, F, pool);
    swiglu_forward(a.h, a.g, a.u);
    std::vector<float> f(size_t(N * C));
    matmul_forward(f, a.h, w.down.v, N, F, C, pool);
    for (size_t i = 0; i < f.size(); ++i) x_out[i] = x_mid[i] + f[i] * c.residual_scale;
}

void ffn_backward(const ModelConfig& c, const FfnWeights& w, std::span<const float> x_mid, Shape2 s, const FfnActs& a,
                  std::span<float> dx, rt::ThreadPool* pool) {
    const int64_t N = s.N(), C = c.dim, F = c.ffn_hidden;
    std::vector<float> df(dx.begin(), dx.end());
    for (float& v : df) v *= c.residual_scale;
    std::vector<float> dh, dg, du, dxn;
    zeros(dh, size_t(N * F));
    matmul_backward(dh, w.down.g, df, a.h, w.down.v, N, F, C, pool);
    zeros(dg, size_t(N * F));
    zeros(du, size_t(N * F));
    swiglu_backward(dg, du, dh, a.g, a.u);
    zeros(dxn, size_t(N * C));
    matmul_backward(dxn, w.gate.g, dg, a.xn, w.gate.v, N, C, F, pool);
    matmul_backward(dxn, w.up.g, du, a.xn, w.up.v, N, C, F, pool);
    rmsnorm_backward(dx, w.norm.g, dxn, x_mid, w.norm.v, a.rstd, N, C);  // dx: the residual path plus the norm's
}

}  // namespace ef::train
