// The architecture table and the checks every loaded or synthesized model goes through.
#include <cmath>
#include <map>
#include <set>

#include "core/arch/blocks.h"
#include "quant/ef_format.h"

namespace ef {

extern const ArchitectureInfo kLlamaArch, kMambaArch, kMamba2Arch, kGraniteHybridArch, kJambaArch, kEdgeFusionArch;

const std::vector<const ArchitectureInfo*>& architectures() {
    static const std::vector<const ArchitectureInfo*> table{&kLlamaArch,         &kMambaArch, &kMamba2Arch,
                                                            &kGraniteHybridArch, &kJambaArch, &kEdgeFusionArch};
    return table;
}

const ArchitectureInfo* find_architecture(std::string_view name) {
    for (const auto* a : architectures())
        if (a->name == name) return a;
    return nullptr;
}

const ArchitectureInfo* find_architecture_by_hf(std::string_view hf_architecture) {
    for (const auto* a : architectures())
        for (auto h : a->hf_architectures)
            if (h == hf_architecture) return a;
    return nullptr;
}

namespace {

// Sizes beyond this are a corrupt or hostile header, not a model; keeps every shape product in int64.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxParams = int64_t(1) << 40;

Status check_size(std::string_view arch, const char* what, int64_t v, int64_t lo = 1, int64_t hi = kMaxDim) {
    if (v < lo || v > hi)
        return make_error(std::string(arch) + ": " + what + " = " + std::to_string(v) + " is out of range [" + std::to_string(lo) +
                          ", " + std::to_string(hi) + "]");
    return {};
}

Status check_float(std::string_view arch, const char* what, float v, bool allow_zero = false) {
    if (!std::isfinite(v) || v < 0.0f || (!allow_zero && v == 0.0f))
        return make_error(std::string(arch) + ": " + what + " = " + std::to_string(v) + " must be a finite number > 0" +
                          (allow_zero ? " (or 0)" : ""));
    return {};
}

Status divisible(std::string_view arch, const char* a, int64_t x, const char* b, int64_t y) {
    if (y <= 0 || x % y != 0)
        return make_error(std::string(arch) + ": " + a + " (" + std::to_string(x) + ") is not divisible by " + b + " (" +
                          std::to_string(y) + ")");
    return {};
}

}  // namespace

Status validate_config(const ArchitectureInfo& arch, const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    const std::string_view n = arch.name;
    EF_TRY_STATUS(check_size(n, "vocab_size", c.vocab_size));
    EF_TRY_STATUS(check_size(n, "dim", c.dim));
    EF_TRY_STATUS(check_size(n, "n_layers", c.n_layers, 1, 65536));
    EF_TRY_STATUS(check_size(n, "context_length", c.context_length, 1, int64_t(1) << 32));
    if (int64_t(layers.size()) != c.n_layers)
        return make_error(std::string(n) + ": the layer plan has " + std::to_string(layers.size()) + " layers but n_layers is " +
                          std::to_string(c.n_layers));
    // Row rules first: "this row has no mamba1 layers" says more than the sizes mamba1 would need.
    if (arch.check_config) EF_TRY_STATUS(arch.check_config(c, layers));
    EF_TRY_STATUS(check_float(n, "norm_eps", c.norm_eps));
    EF_TRY_STATUS(check_float(n, "embedding_scale", c.embedding_scale));
    EF_TRY_STATUS(check_float(n, "residual_scale", c.residual_scale));
    EF_TRY_STATUS(check_float(n, "logit_scale", c.logit_scale));

    bool attn = false, mamba1 = false, mamba2 = false, routed = false, ffn = false;
    for (const auto& l : layers) {
        attn |= l.mixer == MixerKind::Attention || l.mixer == MixerKind::Routed;
        routed |= l.mixer == MixerKind::Routed;
        const MixerKind ssm = l.mixer == MixerKind::Routed ? l.ssm_branch : l.mixer;
        mamba1 |= ssm == MixerKind::Mamba1;
        mamba2 |= ssm == MixerKind::Mamba2;
        ffn |= l.ffn == FfnKind::SwiGLU;
    }
    if (ffn) EF_TRY_STATUS(check_size(n, "ffn_hidden", c.ffn_hidden));
    if (attn) {
        const auto& a = c.attn;
        EF_TRY_STATUS(check_size(n, "n_heads", a.n_heads));
        EF_TRY_STATUS(check_size(n, "n_kv_heads", a.n_kv_heads));
        EF_TRY_STATUS(check_size(n, "head_dim", a.head_dim));
        EF_TRY_STATUS(divisible(n, "n_heads", a.n_heads, "n_kv_heads", a.n_kv_heads));
        EF_TRY_STATUS(check_size(n, "n_heads * head_dim", a.n_heads * a.head_dim));
        EF_TRY_STATUS(check_size(n, "rope_dim", a.rope_dim, 0, a.head_dim));
        if (a.rope_dim % 2 != 0) return make_error(std::string(n) + ": rope_dim (" + std::to_string(a.rope_dim) + ") must be even");
        EF_TRY_STATUS(check_float(n, "rope_theta", a.rope_theta));
        EF_TRY_STATUS(check_float(n, "attention scale", a.scale, true));
    }
    if (mamba1 || mamba2) {
        const auto& s = c.ssm;
        EF_TRY_STATUS(check_size(n, "ssm d_conv", s.d_conv, 1, 1024));
        EF_TRY_STATUS(check_size(n, "ssm d_inner", s.d_inner));
        EF_TRY_STATUS(check_size(n, "ssm d_state", s.d_state));
    }
    if (mamba1) EF_TRY_STATUS(check_size(n, "ssm dt_rank", c.ssm.dt_rank));
    if (mamba2) {
        const auto& s = c.ssm;
        EF_TRY_STATUS(check_size(n, "ssm n_heads", s.n_heads));
        EF_TRY_STATUS(check_size(n, "ssm n_groups", s.n_groups));
        EF_TRY_STATUS(divisible(n, "ssm d_inner", s.d_inner, "ssm n_heads", s.n_heads));
        EF_TRY_STATUS(divisible(n, "ssm d_inner", s.d_inner, "ssm n_groups", s.n_groups));
        EF_TRY_STATUS(divisible(n, "ssm n_heads", s.n_heads, "ssm n_groups", s.n_groups));
    }
    if (routed) EF_TRY_STATUS(check_float(n, "router_temperature", c.router_temperature));

    // Every size is bounded above, so each shape product fits in int64; the sum is checked.
    int64_t params = 0;
    for (const auto& s : arch.tensor_specs(c, layers)) {
        const auto numel = shape_numel(s.shape);
        if (!numel || *numel <= 0)
            return make_error(std::string(n) + ": tensor " + s.name + " has an invalid shape " + shape_to_string(s.shape));
        params += *numel;
        if (params > kMaxParams)
            return make_error(std::string(n) + ": the config describes more than 2^40 parameters; refusing an absurd model");
    }
    return {};
}

Status validate_model(const Model& m, std::string_view origin) {
    const std::string o = std::string(origin) + ": ";
    const ArchitectureInfo* arch = find_architecture(m.architecture);
    if (!arch) return make_error(o + "unknown architecture '" + m.architecture + "'");
    if (Status s = validate_config(*arch, m.config, m.layers); !s) return make_error(o + s.message());

    std::map<std::string, const TensorSpec*> specs;
    const auto list = arch->tensor_specs(m.config, m.layers);
    for (const auto& s : list) specs[s.name] = &s;

    std::set<std::string> seen;
    std::vector<std::string> unknown;
    for (const auto& t : m.tensors) {
        if (!seen.insert(t.name).second) return make_error(o + "tensor " + t.name + " appears twice");
        auto it = specs.find(t.name);
        if (it == specs.end()) {
            // EdgeFusion outlier companions (quant/ef_format.h) ride along with a known weight.
            std::string base;
            if (ef_companion_base(t.name, &base) && specs.count(base)) {
                if (Status s = validate_tensor_layout(t.name, t.dtype, t.shape, t.data.size()); !s)
                    return make_error(o + s.message());
                continue;
            }
            unknown.push_back(t.name);
            continue;
        }
        if (t.shape != it->second->shape)
            return make_error(o + "tensor " + t.name + " has shape " + shape_to_string(t.shape) + ", " + std::string(arch->name) +
                              " expects " + shape_to_string(it->second->shape));
        if (Status s = validate_tensor_layout(t.name, t.dtype, t.shape, t.data.size()); !s) return make_error(o + s.message());
    }
    std::vector<std::string> missing;
    for (const auto& s : list)
        if (!s.optional && !seen.count(s.name)) missing.push_back(s.name);
    auto join = [](const std::vector<std::string>& v) {
        std::string r;
        for (size_t i = 0; i < v.size() && i < 8; ++i) r += (i ? ", " : "") + v[i];
        if (v.size() > 8) r += " and " + std::to_string(v.size() - 8) + " more";
        return r;
    };
    if (!missing.empty()) {
        std::string hint;
        if (missing.size() == 1 && missing[0] == "output.weight") hint = " (or mark the embeddings as tied)";
        return make_error(o + std::to_string(missing.size()) + " tensor(s) required by " + std::string(arch->name) +
                          " are missing: " + join(missing) + hint);
    }
    if (!unknown.empty())
        return make_error(o + std::to_string(unknown.size()) + " tensor(s) unknown to " + std::string(arch->name) +
                          " for this config: " + join(unknown));
    return {};
}

}  // namespace ef
