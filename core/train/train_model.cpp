// TrainModel: the parameters (from and back to an ef::Model), the whole-model forward over B
// sequences and its backward, and the losses (cross-entropy or KL to a teacher, plus the router L1).
// The per-branch passes live in train_attention.cpp and train_ssm.cpp.
#include "core/train/train_model.h"

#include <algorithm>
#include <cmath>

#include "core/arch/architecture.h"
#include "core/train/grad_ops.h"
#include "core/train/train_model_impl.h"

namespace ef::train {

// ---- helpers -------------------------------------------------------------------------------------------

void columns_copy(std::vector<float>& dst, std::span<const float> src, int64_t N, int64_t stride, int64_t col0, int64_t n) {
    dst.resize(size_t(N * n));
    for (int64_t r = 0; r < N; ++r)
        std::copy_n(src.begin() + r * stride + col0, n, dst.begin() + r * n);
}

void columns_add(std::span<float> dst, std::span<const float> src, int64_t N, int64_t stride, int64_t col0, int64_t n) {
    for (int64_t r = 0; r < N; ++r)
        for (int64_t i = 0; i < n; ++i) dst[size_t(r * stride + col0 + i)] += src[size_t(r * n + i)];
}

namespace {

std::string blk(size_t layer, std::string_view rest) { return "blk." + std::to_string(layer) + "." + std::string(rest); }

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

bool is_ssm_or_router(const std::string& name) {
    return name.find(".ssm_") != std::string::npos || name.find(".router_gate") != std::string::npos;
}

}  // namespace

W TrainModel::Impl::w(int idx) {
    if (idx < 0) return {};
    Param& p = params[size_t(idx)];
    return W{p.value, p.trainable ? std::span<float>(p.grad) : std::span<float>()};
}
AttnWeights TrainModel::Impl::attn_weights(const LayerParams& L) { return {w(L.q), w(L.k), w(L.v), w(L.o)}; }
FfnWeights TrainModel::Impl::ffn_weights(const LayerParams& L) { return {w(L.ffn_norm), w(L.gate), w(L.up), w(L.down)}; }
Mamba1Weights TrainModel::Impl::mamba1_weights(const LayerParams& L) {
    return {w(L.ssm_in), w(L.conv_w), w(L.conv_b), w(L.ssm_x), w(L.dt_w), w(L.dt_b), w(L.A), w(L.D), w(L.ssm_out)};
}
Mamba2Weights TrainModel::Impl::mamba2_weights(const LayerParams& L) {
    return {w(L.ssm_in), w(L.conv_w), w(L.conv_b), w(L.dt_b), w(L.A), w(L.D), w(L.ssm_norm), w(L.ssm_out)};
}

// ---- construction --------------------------------------------------------------------------------------

TrainModel::TrainModel() : impl_(std::make_unique<Impl>()) {}
TrainModel::~TrainModel() = default;
TrainModel::TrainModel(TrainModel&&) noexcept = default;
TrainModel& TrainModel::operator=(TrainModel&&) noexcept = default;
TrainModel::TrainModel(const TrainModel& o) : impl_(std::make_unique<Impl>(*o.impl_)) {}
TrainModel& TrainModel::operator=(const TrainModel& o) {
    if (this != &o) impl_ = std::make_unique<Impl>(*o.impl_);
    return *this;
}

Result<TrainModel> TrainModel::from_model(const Model& m) {
    const std::string origin = m.source_path.empty() ? "model '" + m.architecture + "'" : m.source_path;
    if (m.architecture != "llama" && m.architecture != "edgefusion")
        return make_error(origin + ": architecture '" + m.architecture +
                          "' is not supported for training (supported: llama, edgefusion)");
    EF_TRY_STATUS(validate_model(m, origin));
    const ArchitectureInfo* arch = find_architecture(m.architecture);
    if (!arch) return make_error(origin + ": unknown architecture '" + m.architecture + "'");
    const ModelConfig& c = m.config;
    for (size_t il = 0; il < m.layers.size(); ++il) {
        const LayerDesc& d = m.layers[il];
        const bool ok_mixer = d.mixer == MixerKind::Attention ||
                              (d.mixer == MixerKind::Routed && (d.ssm_branch == MixerKind::Mamba1 || d.ssm_branch == MixerKind::Mamba2));
        if (!ok_mixer)
            return make_error(origin + ": layer " + std::to_string(il) + " has a " + std::string(mixer_name(d.mixer)) +
                              " mixer, which training does not support");
    }

    TrainModel tm;
    Impl& im = *tm.impl_;
    im.architecture = m.architecture;
    im.config = c;
    im.layers = m.layers;
    im.metadata = m.metadata;
    im.vocab = m.vocab;
    im.source_path = m.source_path;
    im.source_format = m.source_format;

    // Parameters in the architecture's tensor order; tensors outside the plan are carried frozen.
    std::vector<bool> used(m.tensors.size(), false);
    auto index_of = [&](const std::string& name) -> int {
        for (size_t i = 0; i < im.params.size(); ++i)
            if (im.params[i].name == name) return int(i);
        return -1;
    };
    for (const TensorSpec& sp : arch->tensor_specs(c, m.layers)) {
        const Tensor* t = m.find(sp.name);
        if (!t) {
            if (sp.optional) continue;
            return make_error(origin + ": tensor '" + sp.name + "' is missing");
        }
        if (t->shape != sp.shape)
            return make_error(origin + ": tensor '" + sp.name + "' has shape " + shape_to_string(t->shape) + ", expected " +
                              shape_to_string(sp.shape));
        auto values = t->to_f32();
        if (!values) return make_error(origin + ": tensor '" + sp.name + "': " + values.message());
        used[size_t(t - m.tensors.data())] = true;
        im.params.push_back(Param{sp.name, sp.shape, std::move(values.value()), {}, true});
    }
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        if (used[i]) continue;
        auto values = m.tensors[i].to_f32();
        if (!values) return make_error(origin + ": tensor '" + m.tensors[i].name + "': " + values.message());
        im.params.push_back(Param{m.tensors[i].name, m.tensors[i].shape, std::move(values.value()), {}, false});
    }
    for (Param& p : im.params) p.grad.assign(p.value.size(), 0.0f);

    im.embd = index_of("token_embd.weight");
    im.out_norm = index_of("output_norm.weight");
    im.output = index_of("output.weight");
    for (size_t il = 0; il < m.layers.size(); ++il) {
        LayerParams L;
        L.desc = m.layers[il];
        L.has_attn = true;  // llama's attention or the routed layer's branch
        L.has_ssm = L.desc.mixer == MixerKind::Routed;
        L.ssm_kind = L.desc.ssm_branch;
        L.attn_norm = index_of(blk(il, "attn_norm.weight"));
        L.q = index_of(blk(il, "attn_q.weight"));
        L.k = index_of(blk(il, "attn_k.weight"));
        L.v = index_of(blk(il, "attn_v.weight"));
        L.o = index_of(blk(il, "attn_output.weight"));
        if (L.has_ssm) {
            L.ssm_in = index_of(blk(il, "ssm_in.weight"));
            L.conv_w = index_of(blk(il, "ssm_conv1d.weight"));
            L.conv_b = index_of(blk(il, "ssm_conv1d.bias"));
            L.dt_b = index_of(blk(il, "ssm_dt.bias"));
            L.A = index_of(blk(il, "ssm_a"));
            L.D = index_of(blk(il, "ssm_d"));
            L.ssm_out = index_of(blk(il, "ssm_out.weight"));
            if (L.ssm_kind == MixerKind::Mamba1) {
                L.ssm_x = index_of(blk(il, "ssm_x.weight"));
                L.dt_w = index_of(blk(il, "ssm_dt.weight"));
            } else {
                L.ssm_norm = index_of(blk(il, "ssm_norm.weight"));
            }
            L.router = index_of(blk(il, "router_gate"));
        }
        if (L.desc.ffn == FfnKind::SwiGLU) {
            L.ffn_norm = index_of(blk(il, "ffn_norm.weight"));
            L.gate = index_of(blk(il, "ffn_gate.weight"));
            L.up = index_of(blk(il, "ffn_up.weight"));
            L.down = index_of(blk(il, "ffn_down.weight"));
        }
        im.lp.push_back(L);
    }
    if (im.embd < 0 || im.out_norm < 0) return make_error(origin + ": token_embd.weight or output_norm.weight is missing");
    return tm;
}

Result<Model> TrainModel::to_model() const {
    const Impl& im = *impl_;
    Model m;
    m.architecture = im.architecture;
    m.config = im.config;
    m.layers = im.layers;
    m.metadata = im.metadata;
    m.vocab = im.vocab;
    m.source_path = im.source_path;
    m.source_format = im.source_format;
    for (const Param& p : im.params) {
        auto t = Tensor::from_f32(p.name, p.shape, p.value, DType::F32);
        if (!t) return make_error("to_model: tensor '" + p.name + "': " + t.message());
        m.add(std::move(t.value()));
    }
    return m;
}

const ModelConfig& TrainModel::config() const { return impl_->config; }
const std::string& TrainModel::architecture() const { return impl_->architecture; }
std::vector<Param>& TrainModel::params() { return impl_->params; }
const std::vector<Param>& TrainModel::params() const { return impl_->params; }

Param* TrainModel::find(std::string_view name) {
    for (Param& p : impl_->params)
        if (p.name == name) return &p;
    return nullptr;
}
const Param* TrainModel::find(std::string_view name) const {
    for (const Param& p : impl_->params)
        if (p.name == name) return &p;
    return nullptr;
}

void TrainModel::zero_grad() {
    for (Param& p : impl_->params) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

std::vector<float> TrainModel::gates() const {
    std::vector<float> g;
    for (const LayerParams& L : impl_->lp)
        if (L.router >= 0) g.push_back(sigmoid(impl_->params[size_t(L.router)].value[0] / impl_->config.router_temperature));
    return g;
}

float TrainModel::router_temperature() const { return impl_->config.router_temperature; }
void TrainModel::set_router_temperature(float tau) {
    if (tau > 0.0f) impl_->config.router_temperature = tau;
}
bool TrainModel::routed() const {
    return std::any_of(impl_->lp.begin(), impl_->lp.end(), [](const LayerParams& L) { return L.router >= 0; });
}

void TrainModel::freeze_base() {
    for (Param& p : impl_->params) {
        p.trainable = is_ssm_or_router(p.name);
        if (!p.trainable) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
    }
}

void TrainModel::unfreeze_all() {
    for (Param& p : impl_->params) p.trainable = true;
}

int64_t TrainModel::parameter_count() const {
    int64_t n = 0;
    for (const Param& p : impl_->params) n += int64_t(p.value.size());
    return n;
}
int64_t TrainModel::trainable_count() const {
    int64_t n = 0;
    for (const Param& p : impl_->params)
        if (p.trainable) n += int64_t(p.value.size());
    return n;
}

uint64_t TrainModel::activation_bytes(int64_t B, int64_t T) const {
    const ModelConfig& c = impl_->config;
    const uint64_t N = uint64_t(B * T), C = uint64_t(c.dim), F = uint64_t(c.ffn_hidden), V = uint64_t(c.vocab_size);
    const uint64_t H = uint64_t(c.attn.n_heads), qd = H * uint64_t(c.attn.head_dim), kvd = uint64_t(c.attn.n_kv_heads * c.attn.head_dim);
    const auto& sc = c.ssm;
    const uint64_t di = uint64_t(sc.d_inner), Ns = uint64_t(sc.d_state);
    uint64_t floats = N * (3 * C + V + 1) + N * V;  // x_final, xf, rstd, logits and their gradient
    for (const LayerParams& L : impl_->lp) {
        floats += N * (5 * C + 2) + N * 3 * F;                                  // residuals, norms, FFN
        floats += N * (2 * qd + 2 * kvd) + uint64_t(B) * H * uint64_t(T * T);  // attention
        if (!L.has_ssm) continue;
        if (L.ssm_kind == MixerKind::Mamba1)
            floats += N * (9 * di + uint64_t(sc.dt_rank) + 2 * Ns) + uint64_t(B * (T + 1)) * di * Ns;
        else {
            const uint64_t G = uint64_t(sc.n_groups), conv_dim = di + 2 * G * Ns;
            floats += N * (6 * di + 2 * conv_dim + 2 * G * Ns + uint64_t(sc.n_heads) + G) + uint64_t(B * (T + 1)) * di * Ns;
        }
    }
    return floats * sizeof(float);
}

// ---- forward / backward --------------------------------------------------------------------------------

Status TrainModel::Impl::forward(std::span<const int32_t> in, Shape2 s, rt::ThreadPool* pool) {
    const ModelConfig& c = config;
    const int64_t N = s.N(), C = c.dim, V = c.vocab_size;
    for (size_t i = 0; i < in.size(); ++i)
        if (in[i] < 0 || in[i] >= V)
            return make_error("token id " + std::to_string(in[i]) + " at index " + std::to_string(i) +
                              " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
    shape = s;
    inputs.assign(in.begin(), in.end());
    std::vector<float> x(size_t(N * C));
    embedding_forward(x, inputs, params[size_t(embd)].value, C);
    for (float& v : x) v *= c.embedding_scale;
    acts.resize(lp.size());
    for (size_t il = 0; il < lp.size(); ++il) {
        const LayerParams& L = lp[il];
        LayerActs& a = acts[il];
        a.x_in = x;
        a.xn.resize(size_t(N * C));
        a.rstd.resize(size_t(N));
        rmsnorm_forward(a.xn, a.rstd, a.x_in, w(L.attn_norm).v, N, C, c.norm_eps);
        attention_branch_forward(c, attn_weights(L), a.xn, s, a.attn, a.a_out, pool);
        std::vector<float> mix;
        if (L.has_ssm) {
            if (L.ssm_kind == MixerKind::Mamba1)
                mamba1_branch_forward(c, mamba1_weights(L), a.xn, s, a.m1, a.s_out, pool);
            else
                mamba2_branch_forward(c, mamba2_weights(L), a.xn, s, a.m2, a.s_out, pool);
            mix.resize(size_t(N * C));
            gate_mix_forward(mix, a.a_out, a.s_out, params[size_t(L.router)].value[0], c.router_temperature);
        }
        const std::vector<float>& m = L.has_ssm ? mix : a.a_out;
        a.x_mid.resize(size_t(N * C));
        for (size_t i = 0; i < x.size(); ++i) a.x_mid[i] = a.x_in[i] + m[i] * c.residual_scale;
        if (L.desc.ffn == FfnKind::SwiGLU)
            ffn_forward(c, ffn_weights(L), a.x_mid, s, a.ffn, x, pool);
        else
            x = a.x_mid;
    }
    x_final = std::move(x);
    xf.resize(size_t(N * C));
    rstd_f.resize(size_t(N));
    rmsnorm_forward(xf, rstd_f, x_final, params[size_t(out_norm)].value, N, C, c.norm_eps);
    logits.resize(size_t(N * V));
    matmul_forward(logits, xf, params[size_t(output >= 0 ? output : embd)].value, N, C, V, pool);
    const float inv = 1.0f / c.logit_scale;  // as the runtime (Granite divides by logit_scale)
    if (inv != 1.0f)
        for (float& v : logits) v *= inv;
    return {};
}

void TrainModel::Impl::backward(std::vector<float>& dlogits, std::span<const float> router_dgate, rt::ThreadPool* pool) {
    const ModelConfig& c = config;
    const Shape2 s = shape;
    const int64_t N = s.N(), C = c.dim, V = c.vocab_size;
    const float inv = 1.0f / c.logit_scale;
    if (inv != 1.0f)
        for (float& v : dlogits) v *= inv;
    std::vector<float> dxf, dx;
    zeros(dxf, size_t(N * C));
    const W head = w(output >= 0 ? output : embd);
    matmul_backward(dxf, head.g, dlogits, xf, head.v, N, C, V, pool);
    zeros(dx, size_t(N * C));
    rmsnorm_backward(dx, w(out_norm).g, dxf, x_final, w(out_norm).v, rstd_f, N, C);

    for (size_t il = lp.size(); il-- > 0;) {
        const LayerParams& L = lp[il];
        const LayerActs& a = acts[il];
        if (L.desc.ffn == FfnKind::SwiGLU)
            ffn_backward(c, ffn_weights(L), a.x_mid, s, a.ffn, dx, pool);
        std::vector<float> dmix(dx.begin(), dx.end());  // dx is now d(x_mid); the residual passes it on
        for (float& v : dmix) v *= c.residual_scale;
        std::vector<float> dxn, da, ds;
        zeros(dxn, size_t(N * C));
        if (L.has_ssm) {
            zeros(da, size_t(N * C));
            zeros(ds, size_t(N * C));
            const float alpha = params[size_t(L.router)].value[0], tau = c.router_temperature;
            float dalpha = 0.0f;
            gate_mix_backward(da, ds, &dalpha, dmix, a.a_out, a.s_out, alpha, tau);
            if (il < router_dgate.size()) {  // the router loss: d/dalpha of lambda * g = lambda * g (1 - g) / tau
                const float g = sigmoid(alpha / tau);
                dalpha += router_dgate[il] * g * (1.0f - g) / tau;
            }
            if (params[size_t(L.router)].trainable) params[size_t(L.router)].grad[0] += dalpha;
            if (L.ssm_kind == MixerKind::Mamba1)
                mamba1_branch_backward(c, mamba1_weights(L), a.xn, s, a.m1, ds, dxn, pool);
            else
                mamba2_branch_backward(c, mamba2_weights(L), a.xn, s, a.m2, ds, dxn, pool);
        } else {
            da.swap(dmix);
        }
        attention_branch_backward(c, attn_weights(L), a.xn, s, a.attn, da, dxn, pool);
        rmsnorm_backward(dx, w(L.attn_norm).g, dxn, a.x_in, w(L.attn_norm).v, a.rstd, N, C);
    }
    for (float& v : dx) v *= c.embedding_scale;
    const W e = w(embd);
    if (!e.g.empty()) embedding_backward(e.g, dx, inputs, C);
}

// ---- public passes -------------------------------------------------------------------------------------

namespace {

Status check_batch(std::span<const int32_t> tokens, int64_t B, int64_t T, const LossSpec& loss, int64_t V) {
    if (B <= 0 || T <= 0) return make_error("training batch: B and T must be positive (got B=" + std::to_string(B) + ", T=" + std::to_string(T) + ")");
    if (int64_t(tokens.size()) != B * (T + 1))
        return make_error("training batch: expected B*(T+1) = " + std::to_string(B * (T + 1)) + " tokens, got " +
                          std::to_string(tokens.size()));
    if (!loss.teacher_logits.empty() && int64_t(loss.teacher_logits.size()) != B * T * V)
        return make_error("training batch: teacher logits hold " + std::to_string(loss.teacher_logits.size()) +
                          " values, expected B*T*V = " + std::to_string(B * T * V));
    return {};
}

}  // namespace

// H(g) = -g log2 g - (1 - g) log2 (1 - g) and dH/dg = log2((1 - g) / g); g is kept 1e-6 away
// from 0 and 1 so a saturated gate gives a finite (large) slope rather than infinity.
static double gate_entropy_bits(float gf) {
    const double g = std::clamp(double(gf), 1e-6, 1.0 - 1e-6);
    return -(g * std::log2(g) + (1.0 - g) * std::log2(1.0 - g));
}
static float gate_entropy_slope(float gf) {
    const double g = std::clamp(double(gf), 1e-6, 1.0 - 1e-6);
    return float(std::log2((1.0 - g) / g));
}

static Result<StepResult> run_step(TrainModel::Impl& im, std::span<const int32_t> tokens, int64_t B, int64_t T,
                                   const LossSpec& loss, rt::ThreadPool* pool, bool backward, std::span<const float> gates) {
    const int64_t V = im.config.vocab_size, N = B * T;
    EF_TRY_STATUS(check_batch(tokens, B, T, loss, V));
    std::vector<int32_t> inputs(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
            inputs[size_t(b * T + t)] = tokens[size_t(b * (T + 1) + t)];
            targets[size_t(b * T + t)] = tokens[size_t(b * (T + 1) + t + 1)];
        }
    for (size_t i = 0; i < targets.size(); ++i)
        if (targets[i] >= V)
            return make_error("token id " + std::to_string(targets[i]) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
    EF_TRY_STATUS(im.forward(inputs, Shape2{B, T}, pool));

    StepResult r;
    r.positions = N;
    const bool teacher = !loss.teacher_logits.empty();
    r.task_loss = teacher ? kl_forward(im.logits, loss.teacher_logits, N, V, pool)
                          : cross_entropy_forward(im.logits, targets, N, V, pool);
    for (float g : gates) r.router_loss += double(loss.lambda) * g + double(loss.entropy) * gate_entropy_bits(g);
    r.loss = r.task_loss + r.router_loss;
    if (!backward) return r;

    std::vector<float> dlogits;
    zeros(dlogits, size_t(N * V));
    if (teacher) kl_backward(dlogits, im.logits, loss.teacher_logits, N, V, 1.0f, pool);
    else cross_entropy_backward(dlogits, im.logits, targets, N, V, 1.0f, pool);
    std::vector<float> dgate;  // d(router loss)/d g_l per layer (0 for layers without a gate)
    if (loss.lambda != 0.0f || loss.entropy != 0.0f) {
        dgate.assign(im.lp.size(), 0.0f);
        size_t k = 0;  // `gates` holds one g per routed layer, in layer order
        for (size_t il = 0; il < im.lp.size(); ++il)
            if (im.lp[il].router >= 0) dgate[il] = loss.lambda + loss.entropy * gate_entropy_slope(gates[k++]);
    }
    im.backward(dlogits, dgate, pool);
    return r;
}

Result<StepResult> TrainModel::forward_backward(std::span<const int32_t> tokens, int64_t B, int64_t T, const LossSpec& loss,
                                                rt::ThreadPool* pool) {
    return run_step(*impl_, tokens, B, T, loss, pool, true, gates());
}

Result<StepResult> TrainModel::forward_loss(std::span<const int32_t> tokens, int64_t B, int64_t T, const LossSpec& loss,
                                            rt::ThreadPool* pool) {
    return run_step(*impl_, tokens, B, T, loss, pool, false, gates());
}

Result<std::vector<float>> TrainModel::forward_logits(std::span<const int32_t> tokens, rt::ThreadPool* pool) {
    if (tokens.empty()) return make_error("forward_logits: no tokens");
    EF_TRY_STATUS(impl_->forward(tokens, Shape2{1, int64_t(tokens.size())}, pool));
    return impl_->logits;
}

}  // namespace ef::train
