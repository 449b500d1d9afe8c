// edgefusion: our architecture. Every layer is MixerKind::Routed — an attention branch and an SSM
// branch (Mamba-2 by default, Mamba-1 when ssm.version = 1) read the same normalised input and are
// mixed by a learned per-layer gate:
//   h = rmsnorm(x) * attn_norm
//   g = sigmoid(alpha / router_temperature)            (alpha = blk.N.router_gate, g = attention share)
//   x = x + g * attention(h) + (1 - g) * ssm(h)
//   x = x + swiglu(rmsnorm(x) * ffn_norm)
// GGUF keys (names mirror llama's and mamba/mamba2's):
//   edgefusion.{vocab_size, context_length, embedding_length, block_count, feed_forward_length,
//   attention.head_count, attention.head_count_kv, attention.key_length / value_length (when the
//   head size is not dim / heads), attention.layer_norm_rms_epsilon, attention.scale (optional),
//   rope.dimension_count (0 or absent head size = RoPE on the whole head), rope.freq_base,
//   ssm.version (1 or 2; default 2), ssm.conv_kernel, ssm.inner_size, ssm.state_size,
//   ssm.time_step_rank (Mamba-1: dt rank; Mamba-2: number of SSM heads), ssm.group_count (Mamba-2),
//   router.temperature}.
// Tensors per layer: attn_norm (dim); attn_q/k/v/output as llama; the SSM tensors of mamba
//   (version 1, without Jamba's norms) or mamba2 (version 2) with the same names and shapes;
//   router_gate (1) F32; ffn_norm + ffn_gate/ffn_up/ffn_down as llama.
// HF: EdgeFusionForCausalLM, model_type "edgefusion"; tensors model.layers.N.{input_layernorm,
//   self_attn.{q,k,v,o}_proj (q/k rotate-half order like Llama), mamba.* (names as Jamba/Granite),
//   router.gate_logit (1), post_attention_layernorm, mlp.{gate,up,down}_proj}. config.json keys:
//   hidden_size, num_hidden_layers, vocab_size, intermediate_size, num_attention_heads,
//   num_key_value_heads, head_dim, rotary_dim, rope_theta, max_position_embeddings, rms_norm_eps,
//   attention_multiplier (optional), tie_word_embeddings, ssm_version, ssm_d_inner, ssm_d_state,
//   ssm_d_conv, ssm_dt_rank (v1), ssm_n_heads and ssm_n_groups (v2), router_temperature.
#include "core/arch/blocks.h"

namespace ef {
namespace {

constexpr std::string_view kName = "edgefusion";

LayerDesc routed(MixerKind branch) { return LayerDesc{MixerKind::Routed, branch, FfnKind::SwiGLU}; }

MixerKind branch_of(const std::vector<LayerDesc>& layers) {
    return layers.empty() ? MixerKind::Mamba2 : layers.front().ssm_branch;
}

Status read_gguf(const Metadata& kv, ModelConfig& c, std::vector<LayerDesc>& layers) {
    arch::GgufKeys k(kv, kName);
    EF_TRY_STATUS(arch::read_common_gguf(k, c));
    if (c.attn.n_heads <= 0) return make_error("missing or zero GGUF key '" + k.key("attention.head_count") + "'");
    if (c.ffn_hidden <= 0) return make_error("missing or zero GGUF key '" + k.key("feed_forward_length") + "'");
    int64_t version = 2;
    EF_TRY_STATUS(k.get_int("ssm.version", version, false, 1));
    if (version != 1 && version != 2)
        return make_error("GGUF key '" + k.key("ssm.version") + "' = " + std::to_string(version) + ", expected 1 or 2");
    EF_TRY_STATUS(k.get_int("ssm.conv_kernel", c.ssm.d_conv, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.inner_size", c.ssm.d_inner, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.state_size", c.ssm.d_state, true, 1));
    if (version == 1) {
        EF_TRY_STATUS(k.get_int("ssm.time_step_rank", c.ssm.dt_rank, true, 1));
    } else {
        EF_TRY_STATUS(k.get_int("ssm.time_step_rank", c.ssm.n_heads, true, 1));
        EF_TRY_STATUS(k.get_int("ssm.group_count", c.ssm.n_groups, true, 1));
    }
    EF_TRY_STATUS(k.get_float("router.temperature", c.router_temperature, true));
    layers.assign(size_t(c.n_layers), routed(version == 1 ? MixerKind::Mamba1 : MixerKind::Mamba2));
    return {};
}

void write_gguf(const ModelConfig& c, const std::vector<LayerDesc>& layers, Metadata& kv) {
    arch::GgufKeyWriter w(kv, kName);
    arch::write_common_gguf(w, c);
    const bool v1 = branch_of(layers) == MixerKind::Mamba1;
    w.u32("ssm.version", v1 ? 1 : 2);
    w.u32("ssm.conv_kernel", c.ssm.d_conv);
    w.u32("ssm.inner_size", c.ssm.d_inner);
    w.u32("ssm.state_size", c.ssm.d_state);
    w.u32("ssm.time_step_rank", v1 ? c.ssm.dt_rank : c.ssm.n_heads);
    if (!v1) w.u32("ssm.group_count", c.ssm.n_groups);
    w.f32("router.temperature", c.router_temperature);
}

Status read_hf_config(const nlohmann::json& j, ModelConfig& c, std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_hf_architectures(j, "EdgeFusionForCausalLM"));
    arch::JsonKeys k(j);
    c = ModelConfig{};
    EF_TRY_STATUS(k.get_int({"hidden_size"}, c.dim, true, 1));
    EF_TRY_STATUS(k.get_int({"num_hidden_layers"}, c.n_layers, true, 1));
    EF_TRY_STATUS(k.get_int({"vocab_size"}, c.vocab_size, true, 1));
    EF_TRY_STATUS(k.get_int({"intermediate_size"}, c.ffn_hidden, true, 1));
    EF_TRY_STATUS(k.get_int({"num_attention_heads"}, c.attn.n_heads, true, 1));
    c.attn.n_kv_heads = c.attn.n_heads;
    EF_TRY_STATUS(k.get_int({"num_key_value_heads"}, c.attn.n_kv_heads, false, 1));
    if (c.dim % c.attn.n_heads != 0 && !k.has("head_dim"))
        return make_error("config.json: 'hidden_size' (" + std::to_string(c.dim) + ") is not divisible by 'num_attention_heads' (" +
                          std::to_string(c.attn.n_heads) + ")");
    c.attn.head_dim = c.dim / c.attn.n_heads;
    EF_TRY_STATUS(k.get_int({"head_dim"}, c.attn.head_dim, false, 1));
    if (c.attn.n_heads % c.attn.n_kv_heads != 0)
        return make_error("config.json: 'num_attention_heads' (" + std::to_string(c.attn.n_heads) +
                          ") is not a multiple of 'num_key_value_heads' (" + std::to_string(c.attn.n_kv_heads) + ")");
    c.attn.rope_dim = c.attn.head_dim;
    EF_TRY_STATUS(k.get_int({"rotary_dim"}, c.attn.rope_dim, false, 0));
    EF_TRY_STATUS(k.get_float({"rope_theta"}, c.attn.rope_theta));
    EF_TRY_STATUS(k.get_float({"attention_multiplier"}, c.attn.scale));
    EF_TRY_STATUS(k.get_int({"max_position_embeddings"}, c.context_length, true, 1));
    EF_TRY_STATUS(k.get_float({"rms_norm_eps"}, c.norm_eps));
    EF_TRY_STATUS(k.get_bool({"tie_word_embeddings"}, c.tied_embeddings));
    int64_t version = 2;
    EF_TRY_STATUS(k.get_int({"ssm_version"}, version, false, 1));
    if (version != 1 && version != 2)
        return make_error("config.json: 'ssm_version' is " + std::to_string(version) + ", expected 1 or 2");
    EF_TRY_STATUS(k.get_int({"ssm_d_inner"}, c.ssm.d_inner, true, 1));
    EF_TRY_STATUS(k.get_int({"ssm_d_state"}, c.ssm.d_state, true, 1));
    EF_TRY_STATUS(k.get_int({"ssm_d_conv"}, c.ssm.d_conv, true, 1));
    if (version == 1) {
        EF_TRY_STATUS(k.get_int({"ssm_dt_rank"}, c.ssm.dt_rank, true, 1));
    } else {
        EF_TRY_STATUS(k.get_int({"ssm_n_heads"}, c.ssm.n_heads, true, 1));
        EF_TRY_STATUS(k.get_int({"ssm_n_groups"}, c.ssm.n_groups, true, 1));
    }
    EF_TRY_STATUS(k.get_float({"router_temperature"}, c.router_temperature));
    layers.assign(size_t(c.n_layers), routed(version == 1 ? MixerKind::Mamba1 : MixerKind::Mamba2));
    return {};
}

void write_hf_config(const ModelConfig& c, const std::vector<LayerDesc>& layers, nlohmann::json& j) {
    const bool v1 = branch_of(layers) == MixerKind::Mamba1;
    j["architectures"] = {"EdgeFusionForCausalLM"};
    j["model_type"] = "edgefusion";
    j["hidden_size"] = c.dim;
    j["num_hidden_layers"] = c.n_layers;
    j["vocab_size"] = c.vocab_size;
    j["intermediate_size"] = c.ffn_hidden;
    j["num_attention_heads"] = c.attn.n_heads;
    j["num_key_value_heads"] = c.attn.n_kv_heads;
    j["head_dim"] = c.attn.head_dim;
    j["rotary_dim"] = c.attn.rope_dim;
    j["rope_theta"] = c.attn.rope_theta;
    if (c.attn.scale != 0.0f) j["attention_multiplier"] = c.attn.scale;
    j["max_position_embeddings"] = c.context_length;
    j["rms_norm_eps"] = c.norm_eps;
    j["tie_word_embeddings"] = c.tied_embeddings;
    j["hidden_act"] = "silu";
    j["ssm_version"] = v1 ? 1 : 2;
    j["ssm_d_inner"] = c.ssm.d_inner;
    j["ssm_d_state"] = c.ssm.d_state;
    j["ssm_d_conv"] = c.ssm.d_conv;
    if (v1) {
        j["ssm_dt_rank"] = c.ssm.dt_rank;
    } else {
        j["ssm_n_heads"] = c.ssm.n_heads;
        j["ssm_n_groups"] = c.ssm.n_groups;
    }
    j["router_temperature"] = c.router_temperature;
}

// The SSM branch follows the config: a dt_rank without SSM heads means Mamba-1.
bool wants_mamba1(const ModelConfig& c) { return c.ssm.dt_rank > 0 && c.ssm.n_heads == 0; }

std::vector<LayerDesc> default_layers(const ModelConfig& c) {
    return std::vector<LayerDesc>(size_t(std::max<int64_t>(c.n_layers, 0)),
                                  routed(wants_mamba1(c) ? MixerKind::Mamba1 : MixerKind::Mamba2));
}

void complete_config(ModelConfig& c) {
    arch::complete_attention(c, true);
    arch::complete_ffn(c);
    if (wants_mamba1(c)) arch::complete_mamba1(c);
    else arch::complete_mamba2(c);
    if (c.context_length == 0) c.context_length = 4096;
}

std::vector<TensorSpec> tensor_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::plan_specs(c, layers);
}

std::vector<HfTensorMapping> hf_tensor_map(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::hf_map_from_specs(tensor_specs(c, layers), c, layers, arch::HfNaming{});
}

Status check_config(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_plan(kName, layers, {MixerKind::Routed}, FfnKind::SwiGLU));
    EF_TRY_STATUS(arch::check_no_granite_scales(kName, c));
    const MixerKind b = branch_of(layers);
    for (size_t i = 0; i < layers.size(); ++i) {
        if (layers[i].ssm_branch != MixerKind::Mamba1 && layers[i].ssm_branch != MixerKind::Mamba2)
            return make_error("edgefusion: layer " + std::to_string(i) + "'s SSM branch must be mamba1 or mamba2");
        if (layers[i].ssm_branch != b)
            return make_error("edgefusion: layer " + std::to_string(i) + " uses " + std::string(mixer_name(layers[i].ssm_branch)) +
                              " but layer 0 uses " + std::string(mixer_name(b)) + "; ssm.version is one value for the whole model");
    }
    return {};
}

}  // namespace

extern const ArchitectureInfo kEdgeFusionArch{
    kName,
    "EdgeFusion: every layer mixes attention and an SSM (Mamba-2 or Mamba-1) with a learned gate",
    ArchTraits{true, true, true, false},
    {"EdgeFusionForCausalLM"},
    read_gguf, write_gguf, read_hf_config, write_hf_config, default_layers, complete_config,
    tensor_specs, hf_tensor_map, check_config,
};

}  // namespace ef
