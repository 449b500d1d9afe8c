// mamba: Mamba-1 (selective scan) blocks, no attention, no FFN — llama.cpp's LLM_ARCH_MAMBA.
// GGUF keys: mamba.{context_length, embedding_length, block_count, feed_forward_length (0),
//   attention.head_count (0), attention.layer_norm_rms_epsilon, ssm.conv_kernel, ssm.inner_size,
//   ssm.state_size, ssm.time_step_rank (= dt_rank)}. llama.cpp only supports d_inner = 2 * dim.
// HF: MambaForCausalLM (backbone.layers.N.mixer.*); A_log is stored, canonical ssm_a = -exp(A_log).
#include "core/arch/blocks.h"

namespace ef {
namespace {

constexpr std::string_view kName = "mamba";
const LayerDesc kLayer{MixerKind::Mamba1, MixerKind::Mamba2, FfnKind::None};

Status read_gguf(const Metadata& kv, ModelConfig& c, std::vector<LayerDesc>& layers) {
    arch::GgufKeys k(kv, kName);
    EF_TRY_STATUS(arch::read_common_gguf(k, c));
    if (c.attn.n_heads != 0)
        return make_error("GGUF key '" + k.key("attention.head_count") + "' must be 0 for mamba (it has no attention)");
    c.ffn_hidden = 0;
    EF_TRY_STATUS(k.get_int("ssm.conv_kernel", c.ssm.d_conv, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.inner_size", c.ssm.d_inner, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.state_size", c.ssm.d_state, true, 1));
    EF_TRY_STATUS(k.get_int("ssm.time_step_rank", c.ssm.dt_rank, true, 1));
    bool bc_rms = false;
    EF_TRY_STATUS(k.get_bool("ssm.dt_b_c_rms", bc_rms));
    if (bc_rms) return make_error("'" + k.key("ssm.dt_b_c_rms") + "' = true (Falcon-Mamba) is not supported");
    layers.assign(size_t(c.n_layers), kLayer);
    return {};
}

void write_gguf(const ModelConfig& c, const std::vector<LayerDesc>&, Metadata& kv) {
    arch::GgufKeyWriter w(kv, kName);
    arch::write_common_gguf(w, c);  // head_count 0 and feed_forward_length 0, as convert_hf_to_gguf writes
    w.u32("ssm.conv_kernel", c.ssm.d_conv);
    w.u32("ssm.inner_size", c.ssm.d_inner);
    w.u32("ssm.state_size", c.ssm.d_state);
    w.u32("ssm.time_step_rank", c.ssm.dt_rank);
}

Status read_hf_config(const nlohmann::json& j, ModelConfig& c, std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_hf_architectures(j, "MambaForCausalLM"));
    arch::JsonKeys k(j);
    c = ModelConfig{};
    EF_TRY_STATUS(k.get_int({"hidden_size", "d_model"}, c.dim, true, 1));
    EF_TRY_STATUS(k.get_int({"num_hidden_layers", "n_layer"}, c.n_layers, true, 1));
    EF_TRY_STATUS(k.get_int({"vocab_size"}, c.vocab_size, true, 1));
    c.ssm.d_conv = 4;
    EF_TRY_STATUS(k.get_int({"conv_kernel", "d_conv"}, c.ssm.d_conv, false, 1));
    c.ssm.d_state = 16;
    EF_TRY_STATUS(k.get_int({"state_size", "d_state"}, c.ssm.d_state, false, 1));
    int64_t expand = 2;
    EF_TRY_STATUS(k.get_int({"expand"}, expand, false, 1));
    c.ssm.d_inner = expand * c.dim;
    EF_TRY_STATUS(k.get_int({"intermediate_size", "d_inner"}, c.ssm.d_inner, false, 1));
    if (k.has("expand") && c.ssm.d_inner != expand * c.dim)
        return make_error("config.json: 'intermediate_size' (" + std::to_string(c.ssm.d_inner) + ") contradicts 'expand' (" +
                          std::to_string(expand) + ") * 'hidden_size' (" + std::to_string(c.dim) + ")");
    c.ssm.dt_rank = (c.dim + 15) / 16;
    // transformers writes time_step_rank "auto" meaning ceil(hidden_size / 16)
    if (!(j.contains("time_step_rank") && j["time_step_rank"].is_string()))
        EF_TRY_STATUS(k.get_int({"time_step_rank", "dt_rank"}, c.ssm.dt_rank, false, 1));
    c.norm_eps = 1e-5f;
    EF_TRY_STATUS(k.get_float({"layer_norm_epsilon", "rms_norm_eps"}, c.norm_eps));
    c.tied_embeddings = true;  // MambaConfig's default
    EF_TRY_STATUS(k.get_bool({"tie_word_embeddings"}, c.tied_embeddings));
    bool conv_bias = true, proj_bias = false;
    EF_TRY_STATUS(k.get_bool({"use_conv_bias"}, conv_bias));
    EF_TRY_STATUS(k.get_bool({"use_bias"}, proj_bias));
    if (!conv_bias || proj_bias) return make_error("config.json: only use_conv_bias = true and use_bias = false are supported");
    c.context_length = 1 << 20;  // Mamba has no positional limit; convert_hf_to_gguf writes 2**20
    EF_TRY_STATUS(k.get_int({"max_position_embeddings"}, c.context_length, false, 1));
    layers.assign(size_t(c.n_layers), kLayer);
    return {};
}

void write_hf_config(const ModelConfig& c, const std::vector<LayerDesc>&, nlohmann::json& j) {
    j["architectures"] = {"MambaForCausalLM"};
    j["model_type"] = "mamba";
    j["hidden_size"] = c.dim;
    j["num_hidden_layers"] = c.n_layers;
    j["vocab_size"] = c.vocab_size;
    j["conv_kernel"] = c.ssm.d_conv;
    j["state_size"] = c.ssm.d_state;
    j["intermediate_size"] = c.ssm.d_inner;
    if (c.dim > 0 && c.ssm.d_inner % c.dim == 0) j["expand"] = c.ssm.d_inner / c.dim;
    j["time_step_rank"] = c.ssm.dt_rank;
    j["layer_norm_epsilon"] = c.norm_eps;
    j["tie_word_embeddings"] = c.tied_embeddings;
    j["use_conv_bias"] = true;
    j["use_bias"] = false;
    j["residual_in_fp32"] = true;
    j["max_position_embeddings"] = c.context_length;
}

std::vector<LayerDesc> default_layers(const ModelConfig& c) {
    return std::vector<LayerDesc>(size_t(std::max<int64_t>(c.n_layers, 0)), kLayer);
}

void complete_config(ModelConfig& c) {
    c.attn = AttentionConfig{};
    c.ffn_hidden = 0;
    arch::complete_mamba1(c);
    if (c.context_length == 0) c.context_length = 1 << 20;
}

std::vector<TensorSpec> tensor_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::plan_specs(c, layers);
}

std::vector<HfTensorMapping> hf_tensor_map(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::hf_map_from_specs(tensor_specs(c, layers), c, layers, arch::mamba_backbone_naming());
}

Status check_config(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_plan(kName, layers, {MixerKind::Mamba1}, FfnKind::None));
    EF_TRY_STATUS(arch::check_no_granite_scales(kName, c));
    EF_TRY_STATUS(arch::check_no_router(kName, c));
    EF_TRY_STATUS(arch::require(c.attn.n_heads == 0, "mamba: has no attention, n_heads must be 0"));
    EF_TRY_STATUS(arch::require(c.ssm.d_inner == 2 * c.dim, "mamba: llama.cpp supports only d_inner = 2 * dim (got d_inner " +
                                                                std::to_string(c.ssm.d_inner) + ", dim " + std::to_string(c.dim) + ")"));
    return {};
}

}  // namespace

extern const ArchitectureInfo kMambaArch{
    kName,
    "Mamba-1: selective-scan SSM blocks (conv1d + S6), no attention, no FFN",
    ArchTraits{false, true, false, false},
    {"MambaForCausalLM"},
    read_gguf, write_gguf, read_hf_config, write_hf_config, default_layers, complete_config,
    tensor_specs, hf_tensor_map, check_config,
};

}  // namespace ef
