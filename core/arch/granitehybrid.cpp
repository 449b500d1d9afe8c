// granitehybrid: IBM Granite-4.0-H (GraniteMoeHybrid) — per layer either Mamba-2 or GQA attention,
// every layer with a dense SwiGLU FFN (expert_count 0: llama.cpp then loads ffn_gate/ffn_up/ffn_down),
// plus Granite's embedding/residual/logit multipliers. llama.cpp's LLM_ARCH_GRANITE_HYBRID.
// GGUF keys: granitehybrid.{vocab_size, context_length, embedding_length, block_count,
//   feed_forward_length, attention.head_count, attention.head_count_kv (per-layer array, 0 = SSM
//   layer), attention.layer_norm_rms_epsilon, attention.scale (when set), rope.freq_base,
//   rope.dimension_count, rope.scaling.finetuned (Granite's RoPE switch: false = NoPE, our rope_dim 0),
//   embedding_scale, residual_scale, logit_scale (logits are divided by it), ssm.conv_kernel,
//   ssm.inner_size (= 2 * dim), ssm.state_size, ssm.time_step_rank (= SSM heads), ssm.group_count}.
// HF: GraniteMoeHybridForCausalLM; "layer_types" lists "mamba"/"attention"; the FFN is
//   shared_mlp.input_linear = [gate; up] and shared_mlp.output_linear; q/k are RoPE-permuted like llama.
#include "core/arch/blocks.h"

namespace ef {
namespace {

constexpr std::string_view kName = "granitehybrid";
const LayerDesc kAttn{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU};
const LayerDesc kSsm{MixerKind::Mamba2, MixerKind::Mamba2, FfnKind::SwiGLU};

// llama.cpp treats an unset (0) multiplier as "none".
float neutral(float v) { return v == 0.0f ? 1.0f : v; }

Status read_gguf(const Metadata& kv, ModelConfig& c, std::vector<LayerDesc>& layers) {
    arch::GgufKeys k(kv, kName);
    EF_TRY_STATUS(arch::read_common_gguf(k, c));
    int64_t experts = 0;
    EF_TRY_STATUS(k.get_int("expert_count", experts, false));
    if (experts > 0)
        return make_error("'" + k.key("expert_count") + "' = " + std::to_string(experts) + ": mixture-of-experts Granite is not supported");
    std::vector<int64_t> kv_heads;
    EF_TRY_STATUS(k.get_int_or_array("attention.head_count_kv", c.n_layers, kv_heads, true));
    layers.clear();
    for (int64_t h : kv_heads) layers.push_back(h == 0 ? kSsm : kAttn);
    bool rope = true;  // llama.cpp's default for Granite
    EF_TRY_STATUS(k.get_bool("rope.scaling.finetuned", rope));
    if (!rope) c.attn.rope_dim = 0;
    EF_TRY_STATUS(k.get_float("embedding_scale", c.embedding_scale));
    EF_TRY_STATUS(k.get_float("residual_scale", c.residual_scale));
    EF_TRY_STATUS(k.get_float("logit_scale", c.logit_scale));
    c.embedding_scale = neutral(c.embedding_scale);
    c.residual_scale = neutral(c.residual_scale);
    c.logit_scale = neutral(c.logit_scale);
    EF_TRY_STATUS(k.get_int("ssm.conv_kernel", c.ssm.d_conv, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.inner_size", c.ssm.d_inner, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.state_size", c.ssm.d_state, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.time_step_rank", c.ssm.n_heads, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.group_count", c.ssm.n_groups, true, 1));
    return {};
}

void write_gguf(const ModelConfig& c, const std::vector<LayerDesc>& layers, Metadata& kv) {
    arch::GgufKeyWriter w(kv, kName);
    arch::write_common_gguf(w, c);
    std::vector<int64_t> kv_heads;
    for (const auto& l : layers) kv_heads.push_back(l.mixer == MixerKind::Attention ? c.attn.n_kv_heads : 0);
    w.i32_array("attention.head_count_kv", kv_heads);
    w.boolean("rope.scaling.finetuned", c.attn.rope_dim > 0);
    w.f32("embedding_scale", c.embedding_scale);
    w.f32("residual_scale", c.residual_scale);
    w.f32("logit_scale", c.logit_scale);
    w.u32("ssm.conv_kernel", c.ssm.d_conv);
    w.u32("ssm.inner_size", c.ssm.d_inner);
    w.u32("ssm.state_size", c.ssm.d_state);
    w.u32("ssm.time_step_rank", c.ssm.n_heads);
    w.u32("ssm.group_count", c.ssm.n_groups);
}

Status read_hf_config(const nlohmann::json& j, ModelConfig& c, std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_hf_architectures(j, "GraniteMoeHybridForCausalLM"));
    arch::JsonKeys k(j);
    c = ModelConfig{};
    EF_TRY_STATUS(k.get_int({"hidden_size"}, c.dim, true, 1));
    EF_TRY_STATUS(k.get_int({"num_hidden_layers"}, c.n_layers, true, 1));
    EF_TRY_STATUS(k.get_int({"vocab_size"}, c.vocab_size, true, 1));
    int64_t experts = 0;
    EF_TRY_STATUS(k.get_int({"num_local_experts"}, experts, false));
    if (experts > 0) return make_error("config.json: 'num_local_experts' = " + std::to_string(experts) + ": mixture-of-experts Granite is not supported");
    // Dense Granite-4.0-H runs its FFN as the "shared" MLP.
    EF_TRY_STATUS(k.get_int({"shared_intermediate_size"}, c.ffn_hidden, false, 1));
    if (c.ffn_hidden == 0) EF_TRY_STATUS(k.get_int({"intermediate_size"}, c.ffn_hidden, true, 1));
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
    std::string pos = "nope";  // convert_hf_to_gguf treats GraniteMoeHybrid hybrids as NoPE
    EF_TRY_STATUS(k.get_string("position_embedding_type", pos));
    if (pos != "rope" && pos != "nope")
        return make_error("config.json: 'position_embedding_type' is '" + pos + "', expected 'rope' or 'nope'");
    c.attn.rope_dim = pos == "rope" ? c.attn.head_dim : 0;
    EF_TRY_STATUS(k.get_float({"rope_theta"}, c.attn.rope_theta));
    c.context_length = 4096;
    EF_TRY_STATUS(k.get_int({"max_position_embeddings"}, c.context_length, false, 1));
    EF_TRY_STATUS(k.get_float({"rms_norm_eps"}, c.norm_eps));
    c.attn.scale = 1.0f;  // transformers' default attention_multiplier
    EF_TRY_STATUS(k.get_float({"attention_multiplier"}, c.attn.scale));
    // 1/sqrt(head_dim) is the default scale, which the config represents as 0.
    if (c.attn.scale == float(1.0 / std::sqrt(double(c.attn.head_dim)))) c.attn.scale = 0.0f;
    EF_TRY_STATUS(k.get_float({"embedding_multiplier"}, c.embedding_scale));
    EF_TRY_STATUS(k.get_float({"residual_multiplier"}, c.residual_scale));
    EF_TRY_STATUS(k.get_float({"logits_scaling"}, c.logit_scale));
    EF_TRY_STATUS(k.get_bool({"tie_word_embeddings"}, c.tied_embeddings));
    std::string act = "silu";
    EF_TRY_STATUS(k.get_string("hidden_act", act));
    if (act != "silu") return make_error("config.json: 'hidden_act' is '" + act + "', only 'silu' is supported");

    int64_t expand = 2;
    EF_TRY_STATUS(k.get_int({"mamba_expand"}, expand, false, 1));
    c.ssm.d_inner = expand * c.dim;
    EF_TRY_STATUS(k.get_int({"mamba_d_conv"}, c.ssm.d_conv, true, 1));
    EF_TRY_STATUS(k.get_int({"mamba_d_state"}, c.ssm.d_state, true, 1));
    EF_TRY_STATUS(k.get_int({"mamba_n_groups"}, c.ssm.n_groups, true, 1));
    EF_TRY_STATUS(k.get_int({"mamba_n_heads"}, c.ssm.n_heads, true, 1));
    int64_t d_head = 0;
    EF_TRY_STATUS(k.get_int({"mamba_d_head"}, d_head, false, 1));
    if (d_head > 0 && d_head * c.ssm.n_heads != c.ssm.d_inner)
        return make_error("config.json: 'mamba_n_heads' (" + std::to_string(c.ssm.n_heads) + ") * 'mamba_d_head' (" +
                          std::to_string(d_head) + ") contradicts 'mamba_expand' * 'hidden_size' (" + std::to_string(c.ssm.d_inner) + ")");

    layers.clear();
    if (j.contains("layer_types") && !j["layer_types"].is_null()) {
        const auto& lt = j["layer_types"];
        if (!lt.is_array() || int64_t(lt.size()) != c.n_layers)
            return make_error("config.json: 'layer_types' must list one entry per layer (" + std::to_string(c.n_layers) + ")");
        for (size_t i = 0; i < lt.size(); ++i) {
            const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : lt[i].dump();
            if (t == "mamba") layers.push_back(kSsm);
            else if (t == "attention") layers.push_back(kAttn);
            else return make_error("config.json: layer_types[" + std::to_string(i) + "] is '" + t + "', expected 'mamba' or 'attention'");
        }
    } else if (j.contains("attn_layer_indices") && j["attn_layer_indices"].is_array()) {
        layers.assign(size_t(c.n_layers), kSsm);
        for (const auto& v : j["attn_layer_indices"]) {
            if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.n_layers)
                return make_error("config.json: 'attn_layer_indices' entry " + v.dump() + " is not a layer index");
            layers[size_t(v.get<int64_t>())] = kAttn;
        }
    } else {
        return make_error("config.json: missing 'layer_types' (which layers are mamba and which attention)");
    }
    return {};
}

void write_hf_config(const ModelConfig& c, const std::vector<LayerDesc>& layers, nlohmann::json& j) {
    j["architectures"] = {"GraniteMoeHybridForCausalLM"};
    j["model_type"] = "granitemoehybrid";
    j["hidden_size"] = c.dim;
    j["num_hidden_layers"] = c.n_layers;
    j["vocab_size"] = c.vocab_size;
    j["intermediate_size"] = c.ffn_hidden;
    j["shared_intermediate_size"] = c.ffn_hidden;
    j["num_local_experts"] = 0;
    j["num_experts_per_tok"] = 0;
    j["num_attention_heads"] = c.attn.n_heads;
    j["num_key_value_heads"] = c.attn.n_kv_heads;
    j["position_embedding_type"] = c.attn.rope_dim > 0 ? "rope" : "nope";
    j["rope_theta"] = c.attn.rope_theta;
    j["max_position_embeddings"] = c.context_length;
    j["rms_norm_eps"] = c.norm_eps;
    j["attention_multiplier"] =
        c.attn.scale != 0.0f ? double(c.attn.scale) : (c.attn.head_dim > 0 ? 1.0 / std::sqrt(double(c.attn.head_dim)) : 1.0);
    j["embedding_multiplier"] = c.embedding_scale;
    j["residual_multiplier"] = c.residual_scale;
    j["logits_scaling"] = c.logit_scale;
    j["tie_word_embeddings"] = c.tied_embeddings;
    j["hidden_act"] = "silu";
    j["attention_bias"] = false;
    if (c.dim > 0 && c.ssm.d_inner % c.dim == 0) j["mamba_expand"] = c.ssm.d_inner / c.dim;
    j["mamba_d_conv"] = c.ssm.d_conv;
    j["mamba_d_state"] = c.ssm.d_state;
    j["mamba_n_groups"] = c.ssm.n_groups;
    j["mamba_n_heads"] = c.ssm.n_heads;
    if (c.ssm.n_heads > 0) j["mamba_d_head"] = c.ssm.d_inner / c.ssm.n_heads;
    j["mamba_conv_bias"] = true;
    j["mamba_proj_bias"] = false;
    nlohmann::json types = nlohmann::json::array();
    for (const auto& l : layers) types.push_back(l.mixer == MixerKind::Attention ? "attention" : "mamba");
    j["layer_types"] = types;
}

std::vector<LayerDesc> default_layers(const ModelConfig& c) {
    // Attention every 4th layer, the last of each group (at least one of each kind from 2 layers).
    const int64_t n = std::max<int64_t>(c.n_layers, 0);
    return arch::periodic_plan(n, 4, std::min<int64_t>(3, std::max<int64_t>(n - 1, 0)), kAttn, kSsm);
}

void complete_config(ModelConfig& c) {
    const bool rope = c.attn.rope_dim > 0;  // Granite-4.0-H itself is NoPE
    arch::complete_attention(c, rope);
    arch::complete_ffn(c);
    arch::complete_mamba2(c);
    if (c.context_length == 0) c.context_length = 4096;
}

std::vector<TensorSpec> tensor_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::plan_specs(c, layers);
}

std::vector<HfTensorMapping> hf_tensor_map(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    arch::HfNaming n;
    n.mlp = "shared_mlp";
    n.fused_gate_up = true;
    return arch::hf_map_from_specs(tensor_specs(c, layers), c, layers, n);
}

Status check_config(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_plan(kName, layers, {MixerKind::Attention, MixerKind::Mamba2}, FfnKind::SwiGLU));
    EF_TRY_STATUS(arch::check_no_router(kName, c));
    EF_TRY_STATUS(arch::require(c.ssm.d_inner == 2 * c.dim, "granitehybrid: llama.cpp supports only d_inner = 2 * dim (got d_inner " +
                                                                std::to_string(c.ssm.d_inner) + ", dim " + std::to_string(c.dim) + ")"));
    EF_TRY_STATUS(arch::require(c.attn.rope_dim == 0 || c.attn.rope_dim == c.attn.head_dim,
                                "granitehybrid: rope_dim must be 0 (NoPE) or head_dim"));
    return {};
}

}  // namespace

extern const ArchitectureInfo kGraniteHybridArch{
    kName,
    "Granite-4.0-H hybrid: per-layer Mamba-2 or attention, dense SwiGLU FFN, Granite multipliers",
    ArchTraits{true, true, false, true},
    {"GraniteMoeHybridForCausalLM"},
    read_gguf, write_gguf, read_hf_config, write_hf_config, default_layers, complete_config,
    tensor_specs, hf_tensor_map, check_config,
};

}  // namespace ef
