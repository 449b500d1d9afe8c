#include "runtime/session.h"

#include <chrono>
#include <cmath>
#include <string>

#include "core/arch/architecture.h"
#include "runtime/attention.h"
#include "runtime/session_layers.h"

namespace ef {

using rt::ActRounding;
using namespace session_detail;

namespace {

std::string blk(size_t il, const char* rest) { return "blk." + std::to_string(il) + "." + rest; }

}  // namespace

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

namespace {

// Looks up weights by canonical name with messages naming the model file.
struct Fetch {
    const Model& m;
    std::string origin;
    rt::ProjectionObserver* observer = nullptr;  // set on every weight (SessionOptions::observer)
    Result<const Tensor*> matrix(const std::string& name) const {
        const Tensor* t = m.find(name);
        if (!t) return make_error(origin + ": tensor '" + name + "' is missing");
        if (!type_traits(t->dtype).to_float)
            return make_error(origin + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t->dtype)) + ", which cannot be read as float");
        return t;
    }
    // A weight matrix with its outlier companions (runtime/outliers.h), when it has any.
    Result<rt::Weight> weight(const std::string& name) const {
        auto t = matrix(name);
        if (!t) return t.error();
        auto w = rt::find_weight(m, name);
        if (!w) return make_error(origin + ": " + w.error().message);
        w->observer = observer;
        return w;
    }
    Result<std::vector<float>> vec(const std::string& name, int64_t expect) const {
        auto t = matrix(name);
        if (!t) return t.error();
        if ((*t)->numel() != expect)
            return make_error(origin + ": tensor '" + name + "' has " + std::to_string((*t)->numel()) + " values, expected " + std::to_string(expect));
        auto v = (*t)->to_f32();
        if (!v) return v.error();
        // Any 2-D weight may be in an EdgeFusion type (Mamba-2's grouped ssm_norm is): add its outliers.
        auto w = weight(name);
        if (!w) return w.error();
        sparse_outliers_add_dense(v->data(), w->outliers);
        return v;
    }
};

#define EF_ASSIGN(lhs, expr)                      \
    do {                                          \
        auto ef_r_ = (expr);                      \
        if (!ef_r_) return ef_r_.error();         \
        lhs = std::move(ef_r_.value());           \
    } while (0)

}  // namespace

Result<Session> Session::create(const Model& m, const SessionOptions& options) {
    const std::string origin = m.source_path.empty() ? "model '" + m.architecture + "'" : m.source_path;
    if (Status s = validate_model(m, origin); !s) return s.error();
    const ModelConfig& c = m.config;
    Fetch f{m, origin, options.observer};

    Session s;
    s.model_ = &m;
    s.opts_ = options;
    if (s.opts_.max_positions <= 0) s.opts_.max_positions = c.context_length;
    if (s.opts_.threads > 1) s.pool_ = std::make_unique<rt::ThreadPool>(s.opts_.threads);
    EF_ASSIGN(s.embed_, f.weight("token_embd.weight"));
    if (m.find("output.weight")) EF_ASSIGN(s.output_, f.weight("output.weight"));
    else s.output_ = s.embed_;  // tied embeddings
    EF_ASSIGN(s.output_norm_, f.vec("output_norm.weight", c.dim));

    const auto& sc = c.ssm;
    for (size_t il = 0; il < m.layers.size(); ++il) {
        Layer L;
        L.desc = m.layers[il];
        const MixerKind mix = L.desc.mixer;
        L.has_attn = mix == MixerKind::Attention || mix == MixerKind::Routed;
        L.has_ssm = mix != MixerKind::Attention;
        L.ssm_kind = mix == MixerKind::Routed ? L.desc.ssm_branch : mix;
        L.gate = mix == MixerKind::Attention ? 1.0f : 0.0f;
        EF_ASSIGN(L.attn_norm, f.vec(blk(il, "attn_norm.weight"), c.dim));
        if (L.has_attn) {
            EF_ASSIGN(L.attn.wq, f.weight(blk(il, "attn_q.weight")));
            EF_ASSIGN(L.attn.wk, f.weight(blk(il, "attn_k.weight")));
            EF_ASSIGN(L.attn.wv, f.weight(blk(il, "attn_v.weight")));
            EF_ASSIGN(L.attn.wo, f.weight(blk(il, "attn_output.weight")));
        }
        if (L.has_ssm && L.ssm_kind == MixerKind::Mamba1) {
            auto& w = L.m1;
            EF_ASSIGN(w.in, f.weight(blk(il, "ssm_in.weight")));
            EF_ASSIGN(w.x, f.weight(blk(il, "ssm_x.weight")));
            EF_ASSIGN(w.dt, f.weight(blk(il, "ssm_dt.weight")));
            EF_ASSIGN(w.out, f.weight(blk(il, "ssm_out.weight")));
            EF_ASSIGN(w.conv_w, f.vec(blk(il, "ssm_conv1d.weight"), sc.d_inner * sc.d_conv));
            EF_ASSIGN(w.conv_b, f.vec(blk(il, "ssm_conv1d.bias"), sc.d_inner));
            EF_ASSIGN(w.dt_b, f.vec(blk(il, "ssm_dt.bias"), sc.d_inner));
            EF_ASSIGN(w.A, f.vec(blk(il, "ssm_a"), sc.d_inner * sc.d_state));
            EF_ASSIGN(w.D, f.vec(blk(il, "ssm_d"), sc.d_inner));
            // Jamba's dt/B/C RMSNorms: used when the file has them (all three), like llama.cpp.
            if (m.find(blk(il, "ssm_dt_norm.weight")) && m.find(blk(il, "ssm_b_norm.weight")) && m.find(blk(il, "ssm_c_norm.weight"))) {
                EF_ASSIGN(w.dt_norm, f.vec(blk(il, "ssm_dt_norm.weight"), sc.dt_rank));
                EF_ASSIGN(w.b_norm, f.vec(blk(il, "ssm_b_norm.weight"), sc.d_state));
                EF_ASSIGN(w.c_norm, f.vec(blk(il, "ssm_c_norm.weight"), sc.d_state));
            }
        } else if (L.has_ssm) {
            auto& w = L.m2;
            const int64_t conv_dim = sc.d_inner + 2 * sc.n_groups * sc.d_state;
            EF_ASSIGN(w.in, f.weight(blk(il, "ssm_in.weight")));
            EF_ASSIGN(w.out, f.weight(blk(il, "ssm_out.weight")));
            EF_ASSIGN(w.conv_w, f.vec(blk(il, "ssm_conv1d.weight"), conv_dim * sc.d_conv));
            EF_ASSIGN(w.conv_b, f.vec(blk(il, "ssm_conv1d.bias"), conv_dim));
            EF_ASSIGN(w.dt_b, f.vec(blk(il, "ssm_dt.bias"), sc.n_heads));
            EF_ASSIGN(w.A, f.vec(blk(il, "ssm_a"), sc.n_heads));
            EF_ASSIGN(w.D, f.vec(blk(il, "ssm_d"), sc.n_heads));
            if (m.find(blk(il, "ssm_norm.weight"))) EF_ASSIGN(w.norm, f.vec(blk(il, "ssm_norm.weight"), sc.d_inner));
        }
        if (mix == MixerKind::Routed) {
            std::vector<float> alpha;
            EF_ASSIGN(alpha, f.vec(blk(il, "router_gate"), 1));
            L.gate = rt::sigmoid(alpha[0] / c.router_temperature);
        }
        if (L.desc.ffn == FfnKind::SwiGLU) {
            EF_ASSIGN(L.ffn.norm, f.vec(blk(il, "ffn_norm.weight"), c.dim));
            EF_ASSIGN(L.ffn.gate, f.weight(blk(il, "ffn_gate.weight")));
            EF_ASSIGN(L.ffn.up, f.weight(blk(il, "ffn_up.weight")));
            EF_ASSIGN(L.ffn.down, f.weight(blk(il, "ffn_down.weight")));
        }
        s.gates_.push_back(L.gate);
        s.layers_.push_back(std::move(L));
    }
    s.reset();
    return s;
}

void Session::reset() {
    const auto& sc = model_->config.ssm;
    pos_ = 0;
    hidden_.clear();
    for (auto& L : layers_) {
        L.attn.k_cache.clear();
        L.attn.v_cache.clear();
        if (L.has_ssm && L.ssm_kind == MixerKind::Mamba1) {
            L.m1.conv_state.assign(size_t(sc.d_inner * (sc.d_conv - 1)), 0.0f);
            L.m1.ssm_state.assign(size_t(sc.d_inner * sc.d_state), 0.0f);
        } else if (L.has_ssm) {
            const int64_t conv_dim = sc.d_inner + 2 * sc.n_groups * sc.d_state;
            L.m2.conv_state.assign(size_t(conv_dim * (sc.d_conv - 1)), 0.0f);
            L.m2.ssm_state.assign(size_t(sc.d_inner * sc.d_state), 0.0f);
        }
    }
}

namespace {

// out: (dim) = attention mixer on xn: (dim), appending this position's K/V to the cache.
Status run_attention(const ModelConfig& c, AttnLayer& a, std::span<const float> xn, int64_t pos, const rt::MatvecOptions& r,
                     std::vector<float>& out) {
    const auto& ac = c.attn;
    const int64_t q_dim = ac.n_heads * ac.head_dim, kv_dim = ac.n_kv_heads * ac.head_dim;
    std::vector<float> q(static_cast<size_t>(q_dim)), k(static_cast<size_t>(kv_dim)), v(static_cast<size_t>(kv_dim));
    EF_TRY_STATUS(rt::project(q, a.wq, xn, r));
    EF_TRY_STATUS(rt::project(k, a.wk, xn, r));
    EF_TRY_STATUS(rt::project(v, a.wv, xn, r));
    if (ac.rope_dim > 0) {  // 0: no positional encoding (Jamba, Granite-4.0-H)
        rt::rope(q, ac.n_heads, ac.head_dim, ac.rope_dim, pos, ac.rope_theta);
        rt::rope(k, ac.n_kv_heads, ac.head_dim, ac.rope_dim, pos, ac.rope_theta);
    }
    a.k_cache.insert(a.k_cache.end(), k.begin(), k.end());
    a.v_cache.insert(a.v_cache.end(), v.begin(), v.end());
    const float scale = ac.scale != 0.0f ? ac.scale : 1.0f / std::sqrt(float(ac.head_dim));
    std::vector<float> att(static_cast<size_t>(q_dim));
    if (r.kernels == rt::Kernels::Reference)  // the readable double-precision op
        rt::attention(att, q, a.k_cache, a.v_cache, pos + 1, ac.n_heads, ac.n_kv_heads, ac.head_dim, scale);
    else
        rt::attention_fast(att, q, a.k_cache, a.v_cache, pos, 1, ac.n_heads, ac.n_kv_heads, ac.head_dim, scale, r.pool);
    out.assign(size_t(c.dim), 0.0f);
    return rt::project(out, a.wo, att, r);
}

// out: (dim) = Mamba-1 mixer on xn: (dim).
Status run_mamba1(const ModelConfig& c, Mamba1Layer& w, std::span<const float> xn, const rt::MatvecOptions& r, std::vector<float>& out) {
    const auto& sc = c.ssm;
    const int64_t di = sc.d_inner, N = sc.d_state, R = sc.dt_rank;
    std::vector<float> xz(static_cast<size_t>(2 * di));  // [x; z]
    EF_TRY_STATUS(rt::project(xz, w.in, xn, r));
    std::span<const float> x_in(xz.data(), size_t(di)), z(xz.data() + di, size_t(di));
    std::vector<float> x(static_cast<size_t>(di));
    rt::conv1d_step(x, w.conv_state, x_in, w.conv_w, w.conv_b, di, sc.d_conv);
    for (float& v : x) v = rt::silu(v);
    std::vector<float> dbc(static_cast<size_t>(R + 2 * N));  // [dt (R); B (N); C (N)]
    EF_TRY_STATUS(rt::project(dbc, w.x, x, r));
    std::span<float> dtr(dbc.data(), size_t(R)), B(dbc.data() + R, size_t(N)), C(dbc.data() + R + N, size_t(N));
    if (!w.dt_norm.empty()) {
        rt::rmsnorm(dtr, dtr, w.dt_norm, c.norm_eps);
        rt::rmsnorm(B, B, w.b_norm, c.norm_eps);
        rt::rmsnorm(C, C, w.c_norm, c.norm_eps);
    }
    std::vector<float> dt(static_cast<size_t>(di));
    EF_TRY_STATUS(rt::project(dt, w.dt, dtr, r));
    for (int64_t i = 0; i < di; ++i) dt[size_t(i)] += w.dt_b[size_t(i)];
    std::vector<float> y(static_cast<size_t>(di));
    rt::selective_scan_step(y, w.ssm_state, x, dt, w.A, B, C, w.D, di, N);
    for (int64_t i = 0; i < di; ++i) y[size_t(i)] *= rt::silu(z[size_t(i)]);
    out.assign(size_t(c.dim), 0.0f);
    return rt::project(out, w.out, y, r);
}

// out: (dim) = Mamba-2 mixer on xn: (dim).
Status run_mamba2(const ModelConfig& c, Mamba2Layer& w, std::span<const float> xn, const rt::MatvecOptions& r, std::vector<float>& out) {
    const auto& sc = c.ssm;
    const int64_t di = sc.d_inner, N = sc.d_state, G = sc.n_groups, H = sc.n_heads;
    const int64_t conv_dim = di + 2 * G * N;
    std::vector<float> zxbcdt(static_cast<size_t>(di + conv_dim + H));  // [z (di); x (di); B (G, N); C (G, N); dt (H)]
    EF_TRY_STATUS(rt::project(zxbcdt, w.in, xn, r));
    std::span<const float> z(zxbcdt.data(), size_t(di));
    std::span<const float> xbc_in(zxbcdt.data() + di, size_t(conv_dim));
    std::vector<float> dt(zxbcdt.begin() + di + conv_dim, zxbcdt.end());
    for (int64_t h = 0; h < H; ++h) dt[size_t(h)] += w.dt_b[size_t(h)];
    std::vector<float> xbc(static_cast<size_t>(conv_dim));
    rt::conv1d_step(xbc, w.conv_state, xbc_in, w.conv_w, w.conv_b, conv_dim, sc.d_conv);
    for (float& v : xbc) v = rt::silu(v);
    std::span<const float> x(xbc.data(), size_t(di)), B(xbc.data() + di, size_t(G * N)), C(xbc.data() + di + G * N, size_t(G * N));
    std::vector<float> y(static_cast<size_t>(di));
    rt::ssd_step(y, w.ssm_state, x, dt, w.A, B, C, w.D, H, di / H, G, N);
    for (int64_t i = 0; i < di; ++i) y[size_t(i)] *= rt::silu(z[size_t(i)]);  // gate before the norm
    if (!w.norm.empty()) rt::rmsnorm_groups(y, y, w.norm, G, c.norm_eps);
    out.assign(size_t(c.dim), 0.0f);
    return rt::project(out, w.out, y, r);
}

}  // namespace

Status Session::run_layer(size_t il, std::vector<float>& x) {
    const ModelConfig& c = model_->config;
    Layer& L = layers_[il];
    const rt::MatvecOptions r{opts_.rounding, opts_.kernels, pool_.get()};
    std::vector<float> xn(x.size());
    rt::rmsnorm(xn, x, L.attn_norm, c.norm_eps);

    // Which branches run: a routed layer runs one of them (hard) or both (soft).
    const bool routed = L.desc.mixer == MixerKind::Routed;
    const bool soft = routed && opts_.routing == Routing::Soft;
    const bool run_attn = L.has_attn && (!routed || soft || L.gate >= 0.5f);
    const bool run_ssm = L.has_ssm && (!routed || soft || L.gate < 0.5f);
    std::vector<float> attn_out, ssm_out;
    auto t0 = Clock::now();
    if (run_attn) {
        EF_TRY_STATUS(run_attention(c, L.attn, xn, pos_, r, attn_out));
        if (timings_) timings_->attention_s += seconds_since(t0);
    }
    if (run_ssm) {
        t0 = Clock::now();
        if (L.ssm_kind == MixerKind::Mamba1) EF_TRY_STATUS(run_mamba1(c, L.m1, xn, r, ssm_out));
        else EF_TRY_STATUS(run_mamba2(c, L.m2, xn, r, ssm_out));
        if (timings_) (L.ssm_kind == MixerKind::Mamba1 ? timings_->mamba1_s : timings_->mamba2_s) += seconds_since(t0);
    }
    std::vector<float> mix(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        if (run_attn && run_ssm) mix[i] = L.gate * attn_out[i] + (1.0f - L.gate) * ssm_out[i];
        else mix[i] = run_attn ? attn_out[i] : ssm_out[i];
        x[i] += mix[i] * c.residual_scale;
    }

    if (L.desc.ffn == FfnKind::SwiGLU) {
        t0 = Clock::now();
        rt::rmsnorm(xn, x, L.ffn.norm, c.norm_eps);
        std::vector<float> g(static_cast<size_t>(c.ffn_hidden)), u(static_cast<size_t>(c.ffn_hidden)), f(x.size());
        EF_TRY_STATUS(rt::project(g, L.ffn.gate, xn, r));
        EF_TRY_STATUS(rt::project(u, L.ffn.up, xn, r));
        rt::swiglu(g, g, u);
        EF_TRY_STATUS(rt::project(f, L.ffn.down, g, r));
        for (size_t i = 0; i < x.size(); ++i) x[i] += f[i] * c.residual_scale;
        if (timings_) timings_->ffn_s += seconds_since(t0);
    }
    return {};
}

Result<std::vector<float>> Session::eval(int32_t token) {
    const ModelConfig& c = model_->config;
    if (token < 0 || token >= c.vocab_size)
        return make_error("token id " + std::to_string(token) + " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
    if (pos_ >= opts_.max_positions)
        return make_error("context is full: position " + std::to_string(pos_) + " of " + std::to_string(opts_.max_positions));
    auto t0 = Clock::now();
    std::vector<float> x(static_cast<size_t>(c.dim));
    EF_TRY_STATUS(rt::weight_row(x, embed_, token));
    for (float& v : x) v *= c.embedding_scale;
    if (timings_) {
        timings_->embed_s += seconds_since(t0);
        timings_->layer_s.resize(layers_.size(), 0.0);
    }
    for (size_t il = 0; il < layers_.size(); ++il) {
        t0 = Clock::now();
        EF_TRY_STATUS(run_layer(il, x));
        if (timings_) timings_->layer_s[il] += seconds_since(t0);
    }
    hidden_ = x;
    t0 = Clock::now();
    rt::rmsnorm(x, x, output_norm_, c.norm_eps);
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    EF_TRY_STATUS(rt::project(logits, output_, x, rt::MatvecOptions{opts_.rounding, opts_.kernels, pool_.get()}));
    if (timings_) {
        timings_->output_s += seconds_since(t0);
        ++timings_->evals;
    }
    const float inv = 1.0f / c.logit_scale;  // Granite divides logits by logit_scale
    for (float& v : logits) v *= inv;
    ++pos_;
    return logits;
}

int32_t argmax(std::span<const float> v) {
    if (v.empty()) return -1;
    size_t best = 0;
    for (size_t i = 1; i < v.size(); ++i)
        if (v[i] > v[best]) best = i;
    return int32_t(best);
}

Result<std::vector<int32_t>> greedy_generate(Session& s, std::span<const int32_t> prompt, int n) {
    std::vector<float> logits;
    EF_ASSIGN(logits, s.prefill(prompt));
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
        out.push_back(argmax(logits));
        if (i + 1 < n) EF_ASSIGN(logits, s.eval(out.back()));
    }
    return out;
}

#undef EF_ASSIGN

}  // namespace ef
