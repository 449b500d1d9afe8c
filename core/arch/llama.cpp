// llama: the plain decoder (RMSNorm, GQA attention with RoPE, SwiGLU FFN), as llama.cpp's LLM_ARCH_LLAMA.
// GGUF keys: llama.{vocab_size, context_length, embedding_length, block_count, feed_forward_length,
//   attention.head_count, attention.head_count_kv, attention.layer_norm_rms_epsilon, rope.freq_base,
//   rope.dimension_count (must equal the head size), attention.key_length/value_length when the head
//   size is not embedding_length / head_count}.
// HF: LlamaForCausalLM; q/k are stored in rotate-half order (convert_hf_to_gguf permutes them).
#include "core/arch/blocks.h"

namespace ef {
namespace {

constexpr std::string_view kName = "llama";

Status read_gguf(const Metadata& kv, ModelConfig& c, std::vector<LayerDesc>& layers) {
    arch::GgufKeys k(kv, kName);
    EF_TRY_STATUS(arch::read_common_gguf(k, c));
    int64_t experts = 0;
    EF_TRY_STATUS(k.get_int("expert_count", experts, false));
    if (experts > 0) return make_error("'" + k.key("expert_count") + "' = " + std::to_string(experts) + ": mixture-of-experts llama is not supported");
    if (c.attn.n_heads <= 0) return make_error("missing or zero GGUF key '" + k.key("attention.head_count") + "'");
    if (c.ffn_hidden <= 0) return make_error("missing or zero GGUF key '" + k.key("feed_forward_length") + "'");
    layers.assign(size_t(c.n_layers), LayerDesc{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU});
    return {};
}

void write_gguf(const ModelConfig& c, const std::vector<LayerDesc>&, Metadata& kv) {
    arch::GgufKeyWriter w(kv, kName);
    arch::write_common_gguf(w, c);
}

Status read_hf_config(const nlohmann::json& j, ModelConfig& c, std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_hf_architectures(j, "LlamaForCausalLM"));
    arch::JsonKeys k(j);
    c = ModelConfig{};
    EF_TRY_STATUS(k.get_int({"hidden_size"}, c.dim, true, 1));
    EF_TRY_STATUS(k.get_int({"num_hidden_layers"}, c.n_layers, true, 1));
    EF_TRY_STATUS(k.get_int({"vocab_size"}, c.vocab_size, true, 1));
    EF_TRY_STATUS(k.get_int({"intermediate_size"}, c.ffn_hidden, true, 1));
    EF_TRY_STATUS(k.get_int({"num_attention_heads"}, c.attn.n_heads, true, 1));
    c.attn.n_kv_heads = c.attn.n_heads;
    EF_TRY_STATUS(k.get_int({"num_key_value_heads"}, c.attn.n_kv_heads, false, 1));
    c.context_length = 2048;
    EF_TRY_STATUS(k.get_int({"max_position_embeddings"}, c.context_length, false, 1));
    c.norm_eps = 1e-6f;  // LlamaConfig's default
    EF_TRY_STATUS(k.get_float({"rms_norm_eps"}, c.norm_eps));
    EF_TRY_STATUS(k.get_float({"rope_theta"}, c.attn.rope_theta));
    if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
        arch::JsonKeys rp(j["rope_parameters"]);
        EF_TRY_STATUS(rp.get_float({"rope_theta"}, c.attn.rope_theta));
        std::string type = "default";
        EF_TRY_STATUS(rp.get_string("rope_type", type));
        if (type != "default") return make_error("config.json: rope_parameters.rope_type '" + type + "' is not supported (only plain RoPE)");
    }
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
        return make_error("config.json: 'rope_scaling' " + j["rope_scaling"].dump() + " is not supported (only plain RoPE)");
    EF_TRY_STATUS(k.get_bool({"tie_word_embeddings"}, c.tied_embeddings));
    std::string act = "silu";
    EF_TRY_STATUS(k.get_string("hidden_act", act));
    if (act != "silu") return make_error("config.json: 'hidden_act' is '" + act + "', only 'silu' (SwiGLU) is supported");
    if (c.dim % c.attn.n_heads != 0 && !k.has("head_dim"))
        return make_error("config.json: 'hidden_size' (" + std::to_string(c.dim) + ") is not divisible by 'num_attention_heads' (" +
                          std::to_string(c.attn.n_heads) + ")");
    c.attn.head_dim = c.dim / c.attn.n_heads;
    EF_TRY_STATUS(k.get_int({"head_dim"}, c.attn.head_dim, false, 1));
    if (c.attn.n_heads % c.attn.n_kv_heads != 0)
        return make_error("config.json: 'num_attention_heads' (" + std::to_string(c.attn.n_heads) +
                          ") is not a multiple of 'num_key_value_heads' (" + std::to_string(c.attn.n_kv_heads) + ")");
    c.attn.rope_dim = c.attn.head_dim;
    layers.assign(size_t(c.n_layers), LayerDesc{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU});
    return {};
}

void write_hf_config(const ModelConfig& c, const std::vector<LayerDesc>&, nlohmann::json& j) {
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    j["hidden_size"] = c.dim;
    j["num_hidden_layers"] = c.n_layers;
    j["vocab_size"] = c.vocab_size;
    j["intermediate_size"] = c.ffn_hidden;
    j["num_attention_heads"] = c.attn.n_heads;
    j["num_key_value_heads"] = c.attn.n_kv_heads;
    j["head_dim"] = c.attn.head_dim;
    j["max_position_embeddings"] = c.context_length;
    j["rms_norm_eps"] = c.norm_eps;
    j["rope_theta"] = c.attn.rope_theta;
    j["tie_word_embeddings"] = c.tied_embeddings;
    j["hidden_act"] = "silu";
    j["attention_bias"] = false;
    j["mlp_bias"] = false;
}

std::vector<LayerDesc> default_layers(const ModelConfig& c) {
    return std::vector<LayerDesc>(size_t(std::max<int64_t>(c.n_layers, 0)),
                                  LayerDesc{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU});
}

void complete_config(ModelConfig& c) {
    arch::complete_attention(c, true);
    arch::complete_ffn(c);
    if (c.context_length == 0) c.context_length = 2048;
}

std::vector<TensorSpec> tensor_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::plan_specs(c, layers);
}

std::vector<HfTensorMapping> hf_tensor_map(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    return arch::hf_map_from_specs(tensor_specs(c, layers), c, layers, arch::HfNaming{});
}

Status check_config(const ModelConfig& c, const std::vector<LayerDesc>& layers) {
    EF_TRY_STATUS(arch::check_plan(kName, layers, {MixerKind::Attention}, FfnKind::SwiGLU));
    EF_TRY_STATUS(arch::check_no_granite_scales(kName, c));
    EF_TRY_STATUS(arch::check_no_router(kName, c));
    // llama.cpp rejects "invalid n_rot" for llama unless RoPE covers the whole head.
    EF_TRY_STATUS(arch::require(c.attn.rope_dim == c.attn.head_dim,
                                "llama: rope_dim (" + std::to_string(c.attn.rope_dim) + ") must equal head_dim (" +
                                    std::to_string(c.attn.head_dim) + ")"));
    EF_TRY_STATUS(arch::require(c.attn.scale == 0.0f, "llama: a custom attention scale is not supported (must be 0 = 1/sqrt(head_dim))"));
    return {};
}

}  // namespace

extern const ArchitectureInfo kLlamaArch{
    kName,
    "Llama decoder: RMSNorm, grouped-query attention with RoPE, SwiGLU FFN",
    ArchTraits{true, false, false, false},
    {"LlamaForCausalLM"},
    read_gguf, write_gguf, read_hf_config, write_hf_config, default_layers, complete_config,
    tensor_specs, hf_tensor_map, check_config,
};

}  // namespace ef
