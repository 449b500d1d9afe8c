#include "quant/export_llamacpp.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <thread>

#include "core/arch/architecture.h"
#include "core/ef_tensors.h"
#include "quant/ef_quantize.h"
#include "quant/ggml_importance.h"

namespace ef {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
std::string blk(size_t layer, std::string_view rest) { return "blk." + std::to_string(layer) + "." + std::string(rest); }
std::string tname(DType t) { return std::string(dtype_name(t)); }

// A hard-routed model plus the tensors that must stay F32 in it (Jamba's scaled ssm_x).
struct Routed {
    Model model;
    std::set<std::string> pinned_f32;
};

// Exactly Session's gate: g = sigmoid(alpha / T) in float (runtime/ops.cpp).
Result<float> gate_of(const Model& m, size_t layer) {
    const std::string name = blk(layer, "router_gate");
    const Tensor* t = m.find(name);
    if (!t || t->numel() != 1) return make_error("edgefusion model: '" + name + "' is missing or not one value");
    auto v = t->to_f32();
    if (!v) return make_error(v.message());
    const float x = v->at(0) / m.config.router_temperature;
    if (!std::isfinite(x)) return make_error("edgefusion model: gate '" + name + "' is not finite");
    return 1.0f / (1.0f + std::exp(-x));
}

// Weights as floats; EF blocks with their outlier correction S folded in.
Result<std::vector<float>> dense_values(const Model& m, const Tensor& t) {
    if (is_ef_dtype(t.dtype) && t.shape.size() == 2) {
        auto view = ef_outlier_view(t.name, t.rows(), t.row_length(), ef_find_companions(m, t.name));
        if (!view) return make_error(view.message());
        return ef_dequantize_matrix(t, *view);
    }
    return t.to_f32();
}

// Smallest k with 2^-k * 1e6 <= sqrt(eps * 2^-26): scaled dt/B/C up to |x| = 1e6 keep
// mean(y^2) below half an ulp of eps, so mean + eps == eps in float.
int jamba_shift(float eps) {
    const double limit = std::sqrt(double(eps) * std::ldexp(1.0, -26));
    return int(std::ceil(std::log2(1e6 / limit)));
}

Result<Routed> route(const Model& m) {
    if (m.architecture != "edgefusion") return make_error("'" + m.architecture + "' has no routed layers to resolve");
    EF_TRY_STATUS(validate_model(m, "edgefusion model"));
    const ModelConfig& c = m.config;
    if (m.layers.empty()) return make_error("edgefusion model: no layers");
    const MixerKind branch = m.layers.front().ssm_branch;
    std::vector<bool> attn(m.layers.size());
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const LayerDesc& d = m.layers[i];
        if (d.mixer != MixerKind::Routed) return make_error("edgefusion model: layer " + std::to_string(i) + " is not routed");
        if (d.ssm_branch != branch)
            return make_error("edgefusion model: layer " + std::to_string(i) + " has a " + std::string(mixer_name(d.ssm_branch)) +
                              " branch but layer 0 a " + std::string(mixer_name(branch)) +
                              "; llama.cpp's hybrids (granitehybrid, jamba) have one SSM kind");
        if (d.ffn != FfnKind::SwiGLU)
            return make_error("edgefusion model: layer " + std::to_string(i) + " has FFN '" + std::string(ffn_name(d.ffn)) +
                              "'; granitehybrid and jamba need a dense SwiGLU FFN on every layer");
        auto g = gate_of(m, i);
        if (!g) return make_error(g.message());
        attn[i] = *g >= 0.5f;  // Routing::Hard
    }
    const bool any_attn = std::find(attn.begin(), attn.end(), true) != attn.end();
    const bool all_attn = std::find(attn.begin(), attn.end(), false) == attn.end();
    const bool jamba = branch == MixerKind::Mamba1;
    // llama.cpp's hybrid memory allocates a KV cache for the attention layers and a state cache for
    // the recurrent ones; with none of either it asserts (GGML_ASSERT(buffer), ggml-backend.cpp).
    // All attention is a plain llama model; all SSM with a FFN has no llama.cpp architecture.
    if (!any_attn)
        return make_error("edgefusion model: every gate selects the SSM branch; llama.cpp's hybrids (granitehybrid, jamba) need "
                          "at least one attention layer (llama.cpp fails to allocate an empty KV cache), and its pure SSM "
                          "architectures have no FFN");
    const std::string target = all_attn ? "llama" : jamba ? "jamba" : "granitehybrid";
    if (all_attn && c.attn.rope_dim == 0)
        return make_error("edgefusion model: every gate selects attention, which makes it a llama model, but its attention "
                          "has no RoPE (rope_dim 0) and llama.cpp's llama always rotates");
    if (!all_attn && c.ssm.d_inner != 2 * c.dim)
        return make_error("edgefusion model: d_inner is " + std::to_string(c.ssm.d_inner) + " but llama.cpp's " + target +
                          " supports only d_inner = 2 * dim (" + std::to_string(2 * c.dim) + ")");

    Routed r;
    Model& out = r.model;
    out.architecture = target;
    out.config = c;
    out.config.router_temperature = 1.0f;
    if (all_attn) {
        out.config.ssm = SsmConfig{};
    } else if (jamba) {
        if (any_attn && c.attn.rope_dim != 0)
            return make_error("edgefusion model: its attention uses RoPE (rope_dim " + std::to_string(c.attn.rope_dim) +
                              ") but jamba (llama.cpp's Mamba-1 hybrid) has no positional encoding; with Mamba-1 branches only a "
                              "NoPE model (rope_dim 0) or one whose gates all select attention (-> llama) can be exported");
        if (any_attn && c.attn.scale != 0.0f)
            return make_error("edgefusion model: a custom attention scale cannot be expressed in jamba");
        if (any_attn && c.attn.n_heads * c.attn.head_dim != c.dim)
            return make_error("edgefusion model: jamba needs n_heads * head_dim == dim");
        out.config.attn.rope_dim = 0;
        out.config.attn.scale = 0.0f;
    } else {
        if (any_attn && c.attn.rope_dim != 0 && c.attn.rope_dim != c.attn.head_dim)
            return make_error("edgefusion model: partial RoPE (rope_dim " + std::to_string(c.attn.rope_dim) + " of head_dim " +
                              std::to_string(c.attn.head_dim) + ") cannot be expressed in granitehybrid");
        if (!any_attn && c.attn.rope_dim != 0) out.config.attn.rope_dim = c.attn.head_dim;
    }
    for (size_t i = 0; i < attn.size(); ++i)
        out.layers.push_back(LayerDesc{attn[i] ? MixerKind::Attention : branch, MixerKind::Mamba2, FfnKind::SwiGLU});

    const ArchitectureInfo* arch = find_architecture(target);
    if (!arch) return make_error("the architecture table has no '" + target + "' row");
    EF_TRY_STATUS(validate_config(*arch, out.config, out.layers));

    const float eps = c.norm_eps;
    if (jamba && !all_attn && !(eps >= 1e-10f))
        return make_error("edgefusion model: norm epsilon " + std::to_string(eps) + " is too small to express the Mamba-1 branch as jamba");
    const int k = jamba_shift(eps);
    const float w_norm = std::ldexp(std::sqrt(eps), k);  // sqrt(eps) / s, s = 2^-k
    for (const TensorSpec& sp : arch->tensor_specs(out.config, out.layers)) {
        if (ends_with(sp.name, "ssm_dt_norm.weight") || ends_with(sp.name, "ssm_b_norm.weight") || ends_with(sp.name, "ssm_c_norm.weight")) {
            auto t = Tensor::from_f32(sp.name, sp.shape, std::vector<float>(size_t(sp.shape.at(0)), w_norm));
            if (!t) return make_error(t.message());
            out.add(std::move(t.value()));
            continue;
        }
        const Tensor* src = m.find(sp.name);
        if (!src) {
            if (sp.optional) continue;
            return make_error("edgefusion model: tensor '" + sp.name + "' is missing");
        }
        if (jamba && ends_with(sp.name, "ssm_x.weight")) {
            auto v = dense_values(m, *src);  // x: (dt_rank + 2N, d_inner)
            if (!v) return make_error(v.message());
            for (float& x : *v) x = std::ldexp(x, -k);  // exact: a power of two
            auto t = Tensor::from_f32(sp.name, sp.shape, *v);
            if (!t) return make_error(t.message());
            out.add(std::move(t.value()));
            r.pinned_f32.insert(sp.name);
            continue;
        }
        out.add(*src);
        // EF outlier companions travel with their weight (the types are kept here).
        for (std::string_view suffix : {kEfRowptrSuffix, kEfColsSuffix, kEfValsSuffix, kEfScaleSuffix})
            if (const Tensor* comp = m.find(sp.name + std::string(suffix))) out.add(*comp);
    }
    for (const auto& [key, value] : m.metadata)
        if (key.rfind("edgefusion.", 0) != 0) out.metadata[key] = value;  // the row writes the new keys
    out.vocab = m.vocab;
    out.source_path = m.source_path;
    out.source_format = m.source_format;
    EF_TRY_STATUS(validate_model(out, "hard-routed " + target + " export"));
    return r;
}

// values: (rows, cols) -> a tensor of type `to` (quantized types through ggml's quantizers).
Result<Tensor> convert(const std::string& name, const Shape& shape, const std::vector<float>& v, DType to,
                       const std::vector<float>* importance, int threads) {
    if (!type_traits(to).quantized) return Tensor::from_f32(name, shape, v, to);
    const int64_t cols = shape.empty() ? 1 : shape.back();
    const int64_t rows = cols > 0 ? int64_t(v.size()) / cols : 0;
    if (importance && int64_t(importance->size()) != cols)
        return make_error(name + ": importance has " + std::to_string(importance->size()) + " values, the rows have " +
                          std::to_string(cols));
    const auto bytes = dtype_bytes(to, int64_t(v.size()));
    if (!bytes || rows <= 0) return make_error(name + ": cannot store " + shape_to_string(shape) + " as " + tname(to));
    std::vector<std::byte> buf(*bytes);
    const uint64_t row_bytes = *bytes / uint64_t(rows);
    const int n = int(std::max<int64_t>(1, std::min<int64_t>(threads, rows)));
    std::vector<std::string> errors(static_cast<size_t>(n));
    auto work = [&](int t) {
        const int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
        if (r1 <= r0) return;
        auto q = ggml::quantize_rows(to, v.data() + r0 * cols, buf.data() + uint64_t(r0) * row_bytes, r1 - r0, cols,
                                     importance ? importance->data() : nullptr);
        if (!q) errors[size_t(t)] = q.message();
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < n; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
    for (const auto& e : errors)
        if (!e.empty()) return make_error(name + ": " + e);
    return Tensor::from_bytes(name, to, shape, std::move(buf));
}

}  // namespace

bool is_llamacpp_weight_type(DType t) {
    switch (t) {
        case DType::F32: case DType::F16: case DType::BF16:
        case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
        case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
            return true;
        default:
            return false;
    }
}

bool llamacpp_quantizable(const Tensor& t) {
    return t.shape.size() == 2 && ends_with(t.name, "weight") && t.name.find("_norm.weight") == std::string::npos &&
           t.name.find("ssm_conv1d") == std::string::npos;
}

DType ggml_type_for_row(DType wanted, int64_t row_length) {
    const int64_t bs = type_traits(wanted).block_size;
    if (bs <= 1 || (row_length > 0 && row_length % bs == 0)) return wanted;
    DType fallback = DType::F16;
    switch (wanted) {
        case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: fallback = DType::Q4_0; break;
        case DType::Q5_K: fallback = DType::Q5_0; break;
        case DType::Q6_K: fallback = DType::Q8_0; break;
        default: break;
    }
    if (fallback != DType::F16 && row_length % type_traits(fallback).block_size == 0) return fallback;
    return DType::F16;
}

DType nearest_ggml_type(const EfLayout& l, int64_t row_length) {
    if (row_length <= 0 || row_length % 32 != 0) return DType::F16;
    std::vector<DType> family;
    switch (l.bits) {
        case 2: family = {DType::Q2_K}; break;
        case 3: family = {DType::Q3_K}; break;
        case 4: family = {DType::Q4_K, DType::Q4_0, DType::Q4_1}; break;
        case 5: family = {DType::Q5_K, DType::Q5_0, DType::Q5_1}; break;
        case 6: family = {DType::Q6_K}; break;
        default: family = {DType::Q8_0}; break;
    }
    const double ef_bits = l.bits + 8.0 * l.header_bytes() / l.block;
    std::optional<DType> best;
    double best_d = 0;
    for (DType t : family) {  // k-quant first, so it wins ties
        const auto& tr = type_traits(t);
        if (row_length % tr.block_size != 0) continue;
        const double d = std::fabs(8.0 * double(tr.type_size) / double(tr.block_size) - ef_bits);
        if (!best || d < best_d) best = t, best_d = d;
    }
    if (best) return *best;
    return l.bits == 6 ? DType::Q8_0 : DType::Q4_0;  // 2, 3 bits: no 32-block type below 4.5 bits
}

Result<Model> edgefusion_hard_routed(const Model& m) {
    auto r = route(m);
    if (!r) return r.error();
    return std::move(r->model);
}

Result<Model> export_for_llamacpp(const Model& m, const LlamacppExportOptions& o, Progress& progress) {
    const ArchitectureInfo* arch = find_architecture(m.architecture);
    if (!arch) return make_error("llama.cpp export: unknown architecture '" + m.architecture + "'");
    if (o.default_type && !is_llamacpp_weight_type(*o.default_type))
        return make_error("llama.cpp export: '" + tname(*o.default_type) + "' is not a ggml type llama.cpp loads weights in "
                          "(f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K .. q6_K)");
    for (const auto& [name, t] : o.tensor_types)
        if (!is_llamacpp_weight_type(t))
            return make_error("llama.cpp export: tensor '" + name + "': '" + tname(t) + "' is not a ggml type llama.cpp loads weights in");

    Routed routed;
    if (arch->traits.routed) {
        if (o.soft_routing)
            return make_error("llama.cpp export: soft routing cannot be expressed (llama.cpp's hybrids run one mixer per layer); "
                              "export with hard gates");
        auto r = route(m);
        if (!r) return make_error("llama.cpp export: " + r.message());
        routed = std::move(r.value());
    } else {
        routed.model = m;
    }
    const Model& base = routed.model;
    for (const auto& [name, t] : o.tensor_types)
        if (!base.find(name) && !m.find(name))
            return make_error("llama.cpp export: --tensor-type names '" + name + "', which the model does not have");

    Model out = base;
    out.tensors.clear();
    out.metadata.erase("general.file_type");  // would describe the source's types
    const int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    const size_t n = base.tensors.size();
    for (size_t i = 0; i < n; ++i) {
        if (progress.cancelled()) return make_error("llama.cpp export: cancelled");
        const Tensor& t = base.tensors[i];
        progress.report(double(i) / double(std::max<size_t>(n, 1)), t.name);
        if (ef_companion_base(t.name)) continue;  // folded into the weight
        const auto explicit_type = o.tensor_types.find(t.name);
        DType want;
        if (!llamacpp_quantizable(t)) {
            if (explicit_type != o.tensor_types.end() && explicit_type->second != DType::F32)
                return make_error("llama.cpp export: '" + t.name + "' is not a quantizable weight (norms, ssm_conv1d, ssm_a/d and "
                                  "1-D tensors stay F32)");
            want = DType::F32;
        } else if (routed.pinned_f32.count(t.name)) {
            if (explicit_type != o.tensor_types.end() && explicit_type->second != DType::F32)
                return make_error("llama.cpp export: '" + t.name + "' must stay F32 in a jamba export of an edgefusion model "
                                  "(it carries the 2^-k scale that makes Jamba's dt/B/C norms exact)");
            want = DType::F32;
        } else if (explicit_type != o.tensor_types.end()) {
            want = ggml_type_for_row(explicit_type->second, t.row_length());
        } else if (o.default_type) {
            want = ggml_type_for_row(*o.default_type, t.row_length());
        } else if (auto l = ef_layout(t.dtype)) {
            want = nearest_ggml_type(*l, t.row_length());
        } else {
            want = is_llamacpp_weight_type(t.dtype) ? t.dtype : DType::F32;
        }
        if (want == t.dtype) {
            out.add(t);
            continue;
        }
        auto v = dense_values(base, t);
        if (!v) return make_error("llama.cpp export: " + v.message());
        const std::vector<float>* imp = o.importance ? o.importance(t.name) : nullptr;
        auto conv = convert(t.name, t.shape, *v, want, imp, threads);
        if (!conv) return make_error("llama.cpp export: " + conv.message());
        out.add(std::move(conv.value()));
    }
    EF_TRY_STATUS(validate_model(out, "llama.cpp export"));
    progress.report(1.0, "done");
    return out;
}

}  // namespace ef
