// mamba2: Mamba-2 (SSD) blocks, no attention, no FFN — llama.cpp's LLM_ARCH_MAMBA2.
// GGUF keys: mamba2.{context_length, embedding_length, block_count, feed_forward_length (0),
//   attention.head_count (0), attention.layer_norm_rms_epsilon, ssm.conv_kernel, ssm.inner_size,
//   ssm.state_size, ssm.time_step_rank (= number of SSM heads), ssm.group_count}.
// Tensors per layer: ssm_in (2*di + 2*G*N + H, dim), ssm_conv1d (di + 2*G*N, K) + bias,
//   ssm_dt.bias (H), ssm_a (H, 1), ssm_d (H, 1), ssm_norm (G, di/G), ssm_out (dim, di).
// HF: Mamba2ForCausalLM (backbone.layers.N.mixer.*: dt_bias, A_log (H), D (H), norm.weight (di)).
#include "core/arch/blocks.h"

namespace ef {
namespace {

constexpr std::string_view kName = "mamba2";
const LayerDesc kLayer{MixerKind::Mamba2, MixerKind::Mamba2, FfnKind::None};

Status read_gguf(const Metadata& kv, ModelConfig& c, std::vector<LayerDesc>& layers) {
    arch::GgufKeys k(kv, kName);
    EF_TRY_STATUS(arch::read_common_gguf(k, c));
    if (c.attn.n_heads != 0)
        return make_error("GGUF key '" + k.key("attention.head_count") + "' must be 0 for mamba2 (it has no attention)");
    c.ffn_hidden = 0;
    EF_TRY_STATUS(k.get_int("ssm.conv_kernel", c.ssm.d_conv, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.inner_size", c.ssm.d_inner, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.state_size", c.ssm.d_state, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.time_step_rank", c.ssm.n_heads, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.group_count", c.ssm.n_groups, true, 1));
    layers.assign(size_t(c.n_layers), kLayer);
    return {};
}

void write_gguf(const ModelConfig& c, const std::vector<LayerDesc>&, Metadata& kv) {
    arch::GgufKeyWriter w(kv, kName);
    arch::write_common_gguf(w, c);
    w.u32("ssm.conv_kernel", c.ssm.d_conv);
    w.u32("ssm.inner_size", c.ssm.d_inner);
    w.u32("ssm.state_size", c.ssm.d_state);
    w.u32("ssm.time_step_rank", c.ssm.n_heads);
    w.u32("ssm.group_count", c.ssm.n_groups);
}

Status read_hf_config(const nlohmann::json& j, ModelConfig& c, std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_hf_architectures(j, "Mamba2ForCausalLM"));
    arch::JsonKeys k(j);
    c = ModelConfig{};
    EF_TRY_STATUS(k.get_int({"hidden_size", "d_model"}, c.dim, true, 1));
    EF_TRY_STATUS(k.get_int({"num_hidden_layers", "n_layer"}, c.n_layers, true, 1));
    EF_TRY_STATUS(k.get_int({"vocab_size"}, c.vocab_size, true, 1));
    c.ssm.d_conv = 4;
    EF_TRY_STATUS(k.get_int({"conv_kernel", "d_conv"}, c.ssm.d_conv, false, 1));
    c.ssm.d_state = 128;
    EF_TRY_STATUS(k.get_int({"state_size", "d_state"}, c.ssm.d_state, false, 1));
    int64_t expand = 2;
    EF_TRY_STATUS(k.get_int({"expand"}, expand, false, 1));
    c.ssm.d_inner = expand * c.dim;
    c.ssm.n_groups = 1;
    EF_TRY_STATUS(k.get_int({"n_groups"}, c.ssm.n_groups, false, 1));
    int64_t head_dim = 64;
    EF_TRY_STATUS(k.get_int({"head_dim"}, head_dim, false, 1));
    if (c.ssm.d_inner % head_dim != 0)
        return make_error("config.json: expand * hidden_size (" + std::to_string(c.ssm.d_inner) +
                          ") is not divisible by 'head_dim' (" + std::to_string(head_dim) + ")");
    c.ssm.n_heads = c.ssm.d_inner / head_dim;
    int64_t heads = c.ssm.n_heads;
    EF_TRY_STATUS(k.get_int({"num_heads"}, heads, false, 1));
    if (heads != c.ssm.n_heads)
        return make_error("config.json: 'num_heads' (" + std::to_string(heads) + ") * 'head_dim' (" + std::to_string(head_dim) +
                          ") contradicts 'expand' * 'hidden_size' (" + std::to_string(c.ssm.d_inner) + ")");
    c.norm_eps = 1e-5f;
    EF_TRY_STATUS(k.get_float({"layer_norm_epsilon", "rms_norm_eps"}, c.norm_eps));
    EF_TRY_STATUS(k.get_bool({"tie_word_embeddings"}, c.tied_embeddings));
    bool conv_bias = true, proj_bias = false;
    EF_TRY_STATUS(k.get_bool({"use_conv_bias"}, conv_bias));
    EF_TRY_STATUS(k.get_bool({"use_bias"}, proj_bias));
    if (!conv_bias || proj_bias) return make_error("config.json: only use_conv_bias = true and use_bias = false are supported");
    c.context_length = 1 << 20;
    EF_TRY_STATUS(k.get_int({"max_position_embeddings"}, c.context_length, false, 1));
    layers.assign(size_t(c.n_layers), kLayer);
    return {};
}

void write_hf_config(const ModelConfig& c, const std::vector<LayerDesc>&, nlohmann::json& j) {
    j["architectures"] = {"Mamba2ForCausalLM"};
    j["model_type"] = "mamba2";
    j["hidden_size"] = c.dim;
    j["num_hidden_layers"] = c.n_layers;
    j["vocab_size"] = c.vocab_size;
    j["conv_kernel"] = c.ssm.d_conv;
    j["state_size"] = c.ssm.d_state;
    if (c.dim > 0 && c.ssm.d_inner % c.dim == 0) j["expand"] = c.ssm.d_inner / c.dim;
    j["n_groups"] = c.ssm.n_groups;
    j["num_heads"] = c.ssm.n_heads;
    if (c.ssm.n_heads > 0) j["head_dim"] = c.ssm.d_inner / c.ssm.n_heads;
    j["layer_norm_epsilon"] = c.norm_eps;
    j["tie_word_embeddings"] = c.tied_embeddings;
    j["use_conv_bias"] = true;
    j["use_bias"] = false;
    j["norm_before_gate"] = false;
    j["rms_norm"] = true;
    j["max_position_embeddings"] = c.context_length;
}

std::vector<LayerDesc> default_layers(const ModelConfig& c) {
    return std::vector<LayerDesc>(size_t(std::max<int64_t>(c.n_layers, 0)), kLayer);
}

void complete_config(ModelConfig& c) {
    c.attn = AttentionConfig{};
    c.ffn_hidden = 0;
    arch::complete_mamba2(c);
    if (c.context_length == 0) c.context_length = 1 << 20;
}

std::vector<TensorSpec> tensor_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::plan_specs(c, layers);
}

std::vector<HfTensorMapping> hf_tensor_map(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::hf_map_from_specs(tensor_specs(c, layers), c, layers, arch::mamba_backbone_naming());
}

Status check_config(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_plan(kName, layers, {MixerKind::Mamba2}, FfnKind::None));
    EF_TRY_STATUS(arch::check_no_granite_scales(kName, c));
    EF_TRY_STATUS(arch::check_no_router(kName, c));
    EF_TRY_STATUS(arch::require(c.attn.n_heads == 0, "mamba2: has no attention, n_heads must be 0"));
    return {};
}

}  // namespace

extern const ArchitectureInfo kMamba2Arch{
    kName,
    "Mamba-2: SSD blocks with grouped B/C and a scalar A per head, no attention, no FFN",
    ArchTraits{false, true, false, false},
    {"Mamba2ForCausalLM"},
    read_gguf, write_gguf, read_hf_config, write_hf_config, default_layers, complete_config,
    tensor_specs, hf_tensor_map, check_config,
};

}  // namespace ef
