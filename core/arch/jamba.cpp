// jamba: AI21's Jamba — per layer either Mamba-1 (with Jamba's dt/B/C RMSNorms) or attention
// without positional encoding, every layer with a dense SwiGLU FFN (no MoE). LLM_ARCH_JAMBA.
// GGUF keys: jamba.{vocab_size, context_length, embedding_length, block_count, feed_forward_length,
//   attention.head_count, attention.head_count_kv (per-layer array, 0 = Mamba layer),
//   attention.layer_norm_rms_epsilon, ssm.conv_kernel, ssm.inner_size (= 2 * dim), ssm.state_size,
//   ssm.time_step_rank (= dt_rank)}. No expert_count (dense FFN everywhere). rope_dim is 0.
// HF: JambaForCausalLM with num_experts = 1; attention on layers i % attn_layer_period == offset.
#include "core/arch/blocks.h"

namespace ef {
namespace {

constexpr std::string_view kName = "jamba";
const LayerDesc kAttn{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU};
const LayerDesc kSsm{MixerKind::Mamba1, MixerKind::Mamba2, FfnKind::SwiGLU};

Status read_gguf(const Metadata& kv, ModelConfig& c, std::vector<LayerDesc>& layers) {
    arch::GgufKeys k(kv, kName);
    EF_TRY_STATUS(arch::read_common_gguf(k, c));
    int64_t experts = 0;
    EF_TRY_STATUS(k.get_int("expert_count", experts, false));
    if (experts > 1)
        return make_error("'" + k.key("expert_count") + "' = " + std::to_string(experts) + ": Jamba with mixture-of-experts layers is not supported");
    std::vector<int64_t> kv_heads;
    EF_TRY_STATUS(k.get_int_or_array("attention.head_count_kv", c.n_layers, kv_heads, true));
    layers.clear();
    for (int64_t h : kv_heads) layers.push_back(h == 0 ? kSsm : kAttn);
    c.attn.rope_dim = 0;  // Jamba's attention has no RoPE
    EF_TRY_STATUS(k.get_int("ssm.conv_kernel", c.ssm.d_conv, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.inner_size", c.ssm.d_inner, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.state_size", c.ssm.d_state, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.time_step_rank", c.ssm.dt_rank, true, 1));
    return {};
}

void write_gguf(const ModelConfig& c, const std::vector<LayerDesc>& layers, Metadata& kv) {
    arch::GgufKeyWriter w(kv, kName);
    arch::write_common_gguf(w, c);
    std::vector<int64_t> kv_heads;
    for (const auto& l : layers) kv_heads.push_back(l.mixer == MixerKind::Attention ? c.attn.n_kv_heads : 0);
    w.i32_array("attention.head_count_kv", kv_heads);
    w.u32("ssm.conv_kernel", c.ssm.d_conv);
    w.u32("ssm.inner_size", c.ssm.d_inner);
    w.u32("ssm.state_size", c.ssm.d_state);
    w.u32("ssm.time_step_rank", c.ssm.dt_rank);
}

Status read_hf_config(const nlohmann::json& j, ModelConfig& c, std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_hf_architectures(j, "JambaForCausalLM"));
    arch::JsonKeys k(j);
    c = ModelConfig{};
    EF_TRY_STATUS(k.get_int({"hidden_size"}, c.dim, true, 1));
    EF_TRY_STATUS(k.get_int({"num_hidden_layers"}, c.n_layers, true, 1));
    EF_TRY_STATUS(k.get_int({"vocab_size"}, c.vocab_size, true, 1));
    EF_TRY_STATUS(k.get_int({"intermediate_size"}, c.ffn_hidden, true, 1));
    int64_t experts = 16;  // JambaConfig's default
    EF_TRY_STATUS(k.get_int({"num_experts", "num_local_experts"}, experts, false, 1));
    if (experts != 1)
        return make_error("config.json: 'num_experts' is " + std::to_string(experts) +
                          "; only dense Jamba (num_experts = 1) is supported");
    EF_TRY_STATUS(k.get_int({"num_attention_heads"}, c.attn.n_heads, true, 1));
    c.attn.n_kv_heads = c.attn.n_heads;
    EF_TRY_STATUS(k.get_int({"num_key_value_heads"}, c.attn.n_kv_heads, false, 1));
    if (c.dim % c.attn.n_heads != 0)
        return make_error("config.json: 'hidden_size' (" + std::to_string(c.dim) + ") is not divisible by 'num_attention_heads' (" +
                          std::to_string(c.attn.n_heads) + ")");
    if (c.attn.n_heads % c.attn.n_kv_heads != 0)
        return make_error("config.json: 'num_attention_heads' (" + std::to_string(c.attn.n_heads) +
                          ") is not a multiple of 'num_key_value_heads' (" + std::to_string(c.attn.n_kv_heads) + ")");
    c.attn.head_dim = c.dim / c.attn.n_heads;
    c.attn.rope_dim = 0;
    c.context_length = 262144;
    EF_TRY_STATUS(k.get_int({"max_position_embeddings"}, c.context_length, false, 1));
    c.norm_eps = 1e-6f;
    EF_TRY_STATUS(k.get_float({"rms_norm_eps"}, c.norm_eps));
    EF_TRY_STATUS(k.get_bool({"tie_word_embeddings"}, c.tied_embeddings));
    int64_t expand = 2;
    EF_TRY_STATUS(k.get_int({"mamba_expand"}, expand, false, 1));
    c.ssm.d_inner = expand * c.dim;
    c.ssm.d_conv = 4;
    EF_TRY_STATUS(k.get_int({"mamba_d_conv"}, c.ssm.d_conv, false, 1));
    c.ssm.d_state = 16;
    EF_TRY_STATUS(k.get_int({"mamba_d_state"}, c.ssm.d_state, false, 1));
    c.ssm.dt_rank = (c.dim + 15) / 16;  // "auto"
    if (!(j.contains("mamba_dt_rank") && j["mamba_dt_rank"].is_string()))
        EF_TRY_STATUS(k.get_int({"mamba_dt_rank"}, c.ssm.dt_rank, false, 1));

    layers.clear();
    if (j.contains("layer_types") && j["layer_types"].is_array()) {  // written by us for irregular plans
        const auto& lt = j["layer_types"];
        if (int64_t(lt.size()) != c.n_layers)
            return make_error("config.json: 'layer_types' must list one entry per layer (" + std::to_string(c.n_layers) + ")");
        for (size_t i = 0; i < lt.size(); ++i) {
            const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : lt[i].dump();
            if (t == "mamba") layers.push_back(kSsm);
            else if (t == "attention") layers.push_back(kAttn);
            else return make_error("config.json: layer_types[" + std::to_string(i) + "] is '" + t + "', expected 'mamba' or 'attention'");
        }
        return {};
    }
    int64_t period = 8, offset = 4;
    EF_TRY_STATUS(k.get_int({"attn_layer_period"}, period, false, 1));
    EF_TRY_STATUS(k.get_int({"attn_layer_offset"}, offset, false, 0));
    for (int64_t i = 0; i < c.n_layers; ++i)
        layers.push_back(i >= offset && (i - offset) % period == 0 ? kAttn : kSsm);
    return {};
}

void write_hf_config(const ModelConfig& c, const std::vector<LayerDesc>& layers, nlohmann::json& j) {
    j["architectures"] = {"JambaForCausalLM"};
    j["model_type"] = "jamba";
    j["hidden_size"] = c.dim;
    j["num_hidden_layers"] = c.n_layers;
    j["vocab_size"] = c.vocab_size;
    j["intermediate_size"] = c.ffn_hidden;
    j["num_attention_heads"] = c.attn.n_heads;
    j["num_key_value_heads"] = c.attn.n_kv_heads;
    j["max_position_embeddings"] = c.context_length;
    j["rms_norm_eps"] = c.norm_eps;
    j["tie_word_embeddings"] = c.tied_embeddings;
    j["hidden_act"] = "silu";
    j["num_experts"] = 1;
    j["num_experts_per_tok"] = 1;
    j["expert_layer_period"] = 1;
    j["expert_layer_offset"] = 0;
    if (c.dim > 0 && c.ssm.d_inner % c.dim == 0) j["mamba_expand"] = c.ssm.d_inner / c.dim;
    j["mamba_d_conv"] = c.ssm.d_conv;
    j["mamba_d_state"] = c.ssm.d_state;
    j["mamba_dt_rank"] = c.ssm.dt_rank;
    j["mamba_conv_bias"] = true;
    j["mamba_proj_bias"] = false;
    // Attention layers as period/offset when the plan is periodic; otherwise also list them.
    std::vector<int64_t> idx;
    for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].mixer == MixerKind::Attention) idx.push_back(int64_t(i));
    const int64_t n = int64_t(layers.size());
    int64_t offset = idx.empty() ? n : idx[0];
    int64_t period = idx.size() >= 2 ? idx[1] - idx[0] : std::max<int64_t>(n, 1);
    bool periodic = !idx.empty() && offset < period;
    for (int64_t i = 0; periodic && i < n; ++i)
        periodic = (i >= offset && (i - offset) % period == 0) == (layers[size_t(i)].mixer == MixerKind::Attention);
    j["attn_layer_period"] = period;
    j["attn_layer_offset"] = offset;
    if (!periodic) {
        nlohmann::json types = nlohmann::json::array();
        for (const auto& l : layers) types.push_back(l.mixer == MixerKind::Attention ? "attention" : "mamba");
        j["layer_types"] = types;
    }
}

std::vector<LayerDesc> default_layers(const ModelConfig& c) {
    const int64_t n = std::max<int64_t>(c.n_layers, 0);
    return arch::periodic_plan(n, 4, std::min<int64_t>(3, std::max<int64_t>(n - 1, 0)), kAttn, kSsm);
}

void complete_config(ModelConfig& c) {
    arch::complete_attention(c, false);
    arch::complete_ffn(c);
    arch::complete_mamba1(c);
    if (c.context_length == 0) c.context_length = 4096;
}

std::vector<TensorSpec> tensor_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::plan_specs(c, layers, /*jamba_norms=*/true);
}

std::vector<HfTensorMapping> hf_tensor_map(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    arch::HfNaming n;
    n.final_norm = "model.final_layernorm.weight";
    n.ffn_norm = "pre_ff_layernorm";
    n.mlp = "feed_forward";
    n.rope_permute = false;  // no RoPE, convert_hf_to_gguf copies q/k as they are
    return arch::hf_map_from_specs(tensor_specs(c, layers), c, layers, n);
}

Status check_config(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_plan(kName, layers, {MixerKind::Attention, MixerKind::Mamba1}, FfnKind::SwiGLU));
    EF_TRY_STATUS(arch::check_no_granite_scales(kName, c));
    EF_TRY_STATUS(arch::check_no_router(kName, c));
    EF_TRY_STATUS(arch::require(c.ssm.d_inner == 2 * c.dim, "jamba: llama.cpp supports only d_inner = 2 * dim (got d_inner " +
                                                                std::to_string(c.ssm.d_inner) + ", dim " + std::to_string(c.dim) + ")"));
    EF_TRY_STATUS(arch::require(c.attn.rope_dim == 0, "jamba: attention has no RoPE, rope_dim must be 0"));
    EF_TRY_STATUS(arch::require(c.attn.scale == 0.0f, "jamba: a custom attention scale is not supported"));
    const bool any_attn = std::any_of(layers.begin(), layers.end(), [](const LayerDesc& l) { return l.mixer == MixerKind::Attention; });
    EF_TRY_STATUS(arch::require(!any_attn || (c.attn.head_dim > 0 && c.dim % c.attn.head_dim == 0 && c.attn.n_heads == c.dim / c.attn.head_dim),
                                "jamba: n_heads * head_dim must equal dim (llama.cpp's attn_q is (dim, dim))"));
    return {};
}

}  // namespace

extern const ArchitectureInfo kJambaArch{
    kName,
    "Jamba hybrid: per-layer Mamba-1 or attention (no RoPE), dense SwiGLU FFN",
    ArchTraits{true, true, false, true},
    {"JambaForCausalLM"},
    read_gguf, write_gguf, read_hf_config, write_hf_config, default_layers, complete_config,
    tensor_specs, hf_tensor_map, check_config,
};

}  // namespace ef
