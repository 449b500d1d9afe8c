// Batched evaluation (Session::prefill, Session::eval_batch): T tokens through each layer at once.
// Every step of session.cpp's per-token layer, with matrix products (rt::matmul) in place of
// matrix-vector products and the sequence ops of ops_seq.h in place of the one-step ops. Rows
// are positions: x: (T, dim) holds position pos_ + t at row t.
#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/attention.h"
#include "runtime/matmul.h"
#include "runtime/outliers.h"
#include "runtime/ops_seq.h"
#include "runtime/session.h"
#include "runtime/session_layers.h"
#include "runtime/ssd.h"

namespace ef {

using namespace session_detail;

namespace {

// dst: (T, n) = columns [col0, col0 + n) of src: (T, stride).
std::vector<float> columns(std::span<const float> src, int64_t T, int64_t stride, int64_t col0, int64_t n) {
    std::vector<float> dst(static_cast<size_t>(T * n));
    for (int64_t t = 0; t < T; ++t)
        std::copy_n(src.begin() + t * stride + col0, n, dst.begin() + t * n);
    return dst;
}

// out: (T, dim) = attention mixer on xn: (T, dim) at positions pos .. pos + T - 1, appending their
// K/V to the cache.
Status attention_batch(const ModelConfig& c, AttnLayer& a, std::span<const float> xn, int64_t T, int64_t pos,
                       const rt::MatvecOptions& r, std::vector<float>& out) {
    const auto& ac = c.attn;
    const int64_t q_dim = ac.n_heads * ac.head_dim, kv_dim = ac.n_kv_heads * ac.head_dim;
    std::vector<float> q(static_cast<size_t>(T * q_dim)), k(static_cast<size_t>(T * kv_dim)), v(static_cast<size_t>(T * kv_dim));
    EF_TRY_STATUS(rt::project(q, a.wq, xn, T, r));
    EF_TRY_STATUS(rt::project(k, a.wk, xn, T, r));
    EF_TRY_STATUS(rt::project(v, a.wv, xn, T, r));
    if (ac.rope_dim > 0) {  // 0: no positional encoding (Jamba, Granite-4.0-H)
        rt::rope_seq(q, T, ac.n_heads, ac.head_dim, ac.rope_dim, pos, ac.rope_theta);
        rt::rope_seq(k, T, ac.n_kv_heads, ac.head_dim, ac.rope_dim, pos, ac.rope_theta);
    }
    a.k_cache.insert(a.k_cache.end(), k.begin(), k.end());
    a.v_cache.insert(a.v_cache.end(), v.begin(), v.end());
    const float scale = ac.scale != 0.0f ? ac.scale : 1.0f / std::sqrt(float(ac.head_dim));
    std::vector<float> att(static_cast<size_t>(T * q_dim));
    if (r.kernels == rt::Kernels::Reference)  // the readable double-precision op
        rt::attention_seq(att, q, a.k_cache, a.v_cache, pos, T, ac.n_heads, ac.n_kv_heads, ac.head_dim, scale, r.pool);
    else
        rt::attention_fast(att, q, a.k_cache, a.v_cache, pos, T, ac.n_heads, ac.n_kv_heads, ac.head_dim, scale, r.pool);
    out.assign(size_t(T * c.dim), 0.0f);
    return rt::project(out, a.wo, att, T, r);
}

// out: (T, dim) = Mamba-1 mixer on xn: (T, dim); the scan runs step by step.
Status mamba1_batch(const ModelConfig& c, Mamba1Layer& w, std::span<const float> xn, int64_t T, const rt::MatvecOptions& r,
                    std::vector<float>& out) {
    const auto& sc = c.ssm;
    const int64_t di = sc.d_inner, N = sc.d_state, R = sc.dt_rank;
    std::vector<float> xz(static_cast<size_t>(T * 2 * di));  // (T, [x; z])
    EF_TRY_STATUS(rt::project(xz, w.in, xn, T, r));
    const std::vector<float> x_in = columns(xz, T, 2 * di, 0, di), z = columns(xz, T, 2 * di, di, di);  // (T, di) each
    std::vector<float> x(static_cast<size_t>(T * di));
    rt::conv1d_seq(x, w.conv_state, x_in, w.conv_w, w.conv_b, T, di, sc.d_conv);
    for (float& v : x) v = rt::silu(v);
    std::vector<float> dbc(static_cast<size_t>(T * (R + 2 * N)));  // (T, [dt (R); B (N); C (N)])
    EF_TRY_STATUS(rt::project(dbc, w.x, x, T, r));
    std::vector<float> dtr = columns(dbc, T, R + 2 * N, 0, R);       // (T, R)
    std::vector<float> B = columns(dbc, T, R + 2 * N, R, N);         // (T, N)
    std::vector<float> C = columns(dbc, T, R + 2 * N, R + N, N);     // (T, N)
    if (!w.dt_norm.empty()) {
        for (int64_t t = 0; t < T; ++t) {
            const std::span<float> d(dtr.data() + t * R, size_t(R)), b(B.data() + t * N, size_t(N)), cc(C.data() + t * N, size_t(N));
            rt::rmsnorm(d, d, w.dt_norm, c.norm_eps);
            rt::rmsnorm(b, b, w.b_norm, c.norm_eps);
            rt::rmsnorm(cc, cc, w.c_norm, c.norm_eps);
        }
    }
    std::vector<float> dt(static_cast<size_t>(T * di));
    EF_TRY_STATUS(rt::project(dt, w.dt, dtr, T, r));
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < di; ++i) dt[size_t(t * di + i)] += w.dt_b[size_t(i)];
    std::vector<float> y(static_cast<size_t>(T * di));
    rt::selective_scan_seq(y, w.ssm_state, x, dt, w.A, B, C, w.D, T, di, N);
    for (size_t i = 0; i < y.size(); ++i) y[i] *= rt::silu(z[i]);
    out.assign(size_t(T * c.dim), 0.0f);
    return rt::project(out, w.out, y, T, r);
}

// out: (T, dim) = Mamba-2 mixer on xn: (T, dim); the SSD in its chunked form.
Status mamba2_batch(const ModelConfig& c, Mamba2Layer& w, std::span<const float> xn, int64_t T, int64_t chunk,
                    const rt::MatvecOptions& r, std::vector<float>& out) {
    const auto& sc = c.ssm;
    const int64_t di = sc.d_inner, N = sc.d_state, G = sc.n_groups, H = sc.n_heads;
    const int64_t conv_dim = di + 2 * G * N, width = di + conv_dim + H;
    std::vector<float> zxbcdt(static_cast<size_t>(T * width));  // (T, [z (di); x (di); B (G, N); C (G, N); dt (H)])
    EF_TRY_STATUS(rt::project(zxbcdt, w.in, xn, T, r));
    const std::vector<float> z = columns(zxbcdt, T, width, 0, di);                 // (T, di)
    const std::vector<float> xbc_in = columns(zxbcdt, T, width, di, conv_dim);     // (T, conv_dim)
    std::vector<float> dt = columns(zxbcdt, T, width, di + conv_dim, H);           // (T, H)
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h) dt[size_t(t * H + h)] += w.dt_b[size_t(h)];
    std::vector<float> xbc(static_cast<size_t>(T * conv_dim));
    rt::conv1d_seq(xbc, w.conv_state, xbc_in, w.conv_w, w.conv_b, T, conv_dim, sc.d_conv);
    for (float& v : xbc) v = rt::silu(v);
    const std::vector<float> x = columns(xbc, T, conv_dim, 0, di);            // (T, H, P)
    const std::vector<float> B = columns(xbc, T, conv_dim, di, G * N);        // (T, G, N)
    const std::vector<float> C = columns(xbc, T, conv_dim, di + G * N, G * N);  // (T, G, N)
    std::vector<float> y(static_cast<size_t>(T * di));
    if (r.kernels == rt::Kernels::Reference)  // the readable plain-loop form
        rt::ssd_chunked(y, w.ssm_state, x, dt, w.A, B, C, w.D, T, H, di / H, G, N, chunk, r.pool);
    else
        rt::ssd_chunked_fast(y, w.ssm_state, x, dt, w.A, B, C, w.D, T, H, di / H, G, N, chunk, r.pool);
    for (size_t i = 0; i < y.size(); ++i) y[i] *= rt::silu(z[i]);  // gate before the norm
    if (!w.norm.empty())
        for (int64_t t = 0; t < T; ++t) {
            const std::span<float> yt(y.data() + t * di, size_t(di));
            rt::rmsnorm_groups(yt, yt, w.norm, G, c.norm_eps);
        }
    out.assign(size_t(T * c.dim), 0.0f);
    return rt::project(out, w.out, y, T, r);
}

// out: (T, n) = rmsnorm of each row of x: (T, n).
void rmsnorm_rows(std::vector<float>& out, std::span<const float> x, std::span<const float> w, int64_t T, float eps) {
    const size_t n = w.size();
    out.resize(size_t(T) * n);
    for (int64_t t = 0; t < T; ++t)
        rt::rmsnorm(std::span<float>(out.data() + size_t(t) * n, n), x.subspan(size_t(t) * n, n), w, eps);
}

}  // namespace

Status Session::run_layer_batch(size_t il, std::vector<float>& x, int64_t T) {
    const ModelConfig& c = model_->config;
    Layer& L = layers_[il];
    const rt::MatvecOptions r{opts_.rounding, opts_.kernels, pool_.get()};
    std::vector<float> xn;
    rmsnorm_rows(xn, x, L.attn_norm, T, c.norm_eps);

    const bool run_attn = L.runs_attention(opts_.routing), run_ssm = L.runs_ssm(opts_.routing);
    std::vector<float> attn_out, ssm_out;
    auto t0 = Clock::now();
    if (run_attn) {
        EF_TRY_STATUS(attention_batch(c, L.attn, xn, T, pos_, r, attn_out));
        if (timings_) timings_->attention_s += seconds_since(t0);
    }
    if (run_ssm) {
        t0 = Clock::now();
        if (L.ssm_kind == MixerKind::Mamba1) EF_TRY_STATUS(mamba1_batch(c, L.m1, xn, T, r, ssm_out));
        else EF_TRY_STATUS(mamba2_batch(c, L.m2, xn, T, opts_.ssd_chunk, r, ssm_out));
        if (timings_) (L.ssm_kind == MixerKind::Mamba1 ? timings_->mamba1_s : timings_->mamba2_s) += seconds_since(t0);
    }
    for (size_t i = 0; i < x.size(); ++i) {
        float mix;
        if (run_attn && run_ssm) mix = L.gate * attn_out[i] + (1.0f - L.gate) * ssm_out[i];
        else mix = run_attn ? attn_out[i] : ssm_out[i];
        x[i] += mix * c.residual_scale;
    }

    if (L.desc.ffn == FfnKind::SwiGLU) {
        t0 = Clock::now();
        rmsnorm_rows(xn, x, L.ffn.norm, T, c.norm_eps);
        std::vector<float> g(static_cast<size_t>(T * c.ffn_hidden)), u(g.size()), f(x.size());
        EF_TRY_STATUS(rt::project(g, L.ffn.gate, xn, T, r));
        EF_TRY_STATUS(rt::project(u, L.ffn.up, xn, T, r));
        rt::swiglu(g, g, u);
        EF_TRY_STATUS(rt::project(f, L.ffn.down, g, T, r));
        for (size_t i = 0; i < x.size(); ++i) x[i] += f[i] * c.residual_scale;
        if (timings_) timings_->ffn_s += seconds_since(t0);
    }
    return {};
}

Status Session::forward_batch(std::span<const int32_t> tokens, int64_t head_rows, std::vector<float>& out) {
    const ModelConfig& c = model_->config;
    const int64_t T = int64_t(tokens.size()), dim = c.dim;
    auto t0 = Clock::now();
    std::vector<float> x(static_cast<size_t>(T * dim));  // (T, dim)
    for (int64_t t = 0; t < T; ++t)
        EF_TRY_STATUS(rt::weight_row(std::span<float>(x.data() + t * dim, size_t(dim)), embed_, tokens[size_t(t)]));
    for (float& v : x) v *= c.embedding_scale;
    if (timings_) {
        timings_->embed_s += seconds_since(t0);
        timings_->layer_s.resize(layers_.size(), 0.0);
    }
    for (size_t il = 0; il < layers_.size(); ++il) {
        t0 = Clock::now();
        EF_TRY_STATUS(run_layer_batch(il, x, T));
        if (timings_) timings_->layer_s[il] += seconds_since(t0);
    }
    hidden_.assign(x.end() - dim, x.end());
    pos_ += T;
    if (timings_) {
        timings_->evals += T;
        ++timings_->batches;
    }
    if (head_rows == 0) return {};

    // The head over the last head_rows positions (the vocabulary projection is the biggest
    // matrix of small models, so prefill projects only the last position).
    t0 = Clock::now();
    const rt::MatvecOptions r{opts_.rounding, opts_.kernels, pool_.get()};
    const int64_t rows = std::min(head_rows, T);
    std::vector<float> xn;
    rmsnorm_rows(xn, std::span<const float>(x).subspan(size_t((T - rows) * dim)), output_norm_, rows, c.norm_eps);
    const size_t base = out.size();
    out.resize(base + size_t(rows * c.vocab_size));
    const std::span<float> logits(out.data() + base, size_t(rows * c.vocab_size));
    EF_TRY_STATUS(rt::project(logits, output_, xn, rows, r));
    const float inv = 1.0f / c.logit_scale;  // Granite divides logits by logit_scale
    for (float& v : logits) v *= inv;
    if (timings_) timings_->output_s += seconds_since(t0);
    return {};
}

Result<std::vector<float>> Session::eval_batch(std::span<const int32_t> tokens, bool all_logits) {
    const ModelConfig& c = model_->config;
    if (tokens.empty()) return make_error("no tokens to evaluate");
    // Everything the batches could trip over is checked first, so a bad request changes nothing.
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
            return make_error("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                              " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
    const int64_t T = int64_t(tokens.size());
    if (T > opts_.max_positions - pos_)
        return make_error(std::to_string(T) + " tokens do not fit the context: at position " + std::to_string(pos_) +
                          " of " + std::to_string(opts_.max_positions) + " there is room for " +
                          std::to_string(opts_.max_positions - pos_));
    const int64_t ub = std::max<int64_t>(1, opts_.ubatch);
    std::vector<float> out;
    if (all_logits) out.reserve(size_t(T * c.vocab_size));
    for (int64_t b = 0; b < T; b += ub) {
        const int64_t n = std::min(ub, T - b);
        // Logits of every position, or (prefill) of the very last one only: none for inner batches.
        const int64_t head_rows = all_logits ? n : (b + n == T ? 1 : 0);
        EF_TRY_STATUS(forward_batch(tokens.subspan(size_t(b), size_t(n)), head_rows, out));
    }
    return out;
}

Result<std::vector<float>> Session::prefill(std::span<const int32_t> tokens) {
    if (tokens.empty()) return make_error("prefill: no tokens");
    return eval_batch(tokens, false);
}

}  // namespace ef
