// Shared building blocks of the architecture rows: tensor specs of the mixers and the FFN (with
// llama.cpp's names and shapes), the HF names of those tensors, and typed GGUF / config.json key
// access with clear errors. Every row file (arch/<name>.cpp) is assembled from these.
#pragma once
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/arch/architecture.h"

namespace ef::arch {

// ---- tensor specs (canonical shape = reversed llama.cpp ne) ------------------------------------

std::string blk(int layer, std::string_view rest);  // "blk.<layer>.<rest>"

// token_embd (vocab, dim), output_norm (dim), output (vocab, dim; optional when tied).
void add_global_specs(std::vector<TensorSpec>& s, const ModelConfig& c);
// attn_q (H*hd, dim), attn_k/v (KV*hd, dim), attn_output (dim, H*hd). No norm.
void add_attention_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer);
// Mamba-1: ssm_in (2*di, dim), ssm_conv1d (di, dconv) + bias (di), ssm_x (dtr + 2*N, di),
// ssm_dt (di, dtr) + bias (di), ssm_a (di, N), ssm_d (di), ssm_out (dim, di).
// `bcdt_norms` adds Jamba's ssm_dt_norm (dtr), ssm_b_norm (N), ssm_c_norm (N).
void add_mamba1_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer, bool bcdt_norms);
// Mamba-2: ssm_in (2*di + 2*G*N + H, dim), ssm_conv1d (di + 2*G*N, dconv) + bias, ssm_dt.bias (H),
// ssm_a (H, 1), ssm_d (H, 1), ssm_norm (G, di/G), ssm_out (dim, di).
void add_mamba2_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer);
// ffn_norm (dim), ffn_gate/ffn_up (ffn, dim), ffn_down (dim, ffn).
void add_swiglu_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer);
void add_norm_spec(std::vector<TensorSpec>& s, const std::string& name, int64_t n, int layer);

// Generic spec list for a layer plan: globals, then per layer attn_norm, the mixer (a Routed layer
// gets attention + its SSM branch + blk.N.router_gate (1)) and the FFN. `jamba_norms` selects
// Jamba's extra Mamba-1 norms.
std::vector<TensorSpec> plan_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers, bool jamba_norms = false);

// ---- HF names ----------------------------------------------------------------------------------

// How a row names things in safetensors. Layer parts are joined as
// "<layer_prefix><i>.<part>.<leaf>".
struct HfNaming {
    std::string embed = "model.embed_tokens.weight";
    std::string final_norm = "model.norm.weight";
    std::string lm_head = "lm_head.weight";
    std::string layer_prefix = "model.layers.";
    std::string attn_norm = "input_layernorm";
    std::string attn = "self_attn";
    std::string ssm = "mamba";
    std::string ffn_norm = "post_attention_layernorm";
    std::string mlp = "mlp";
    bool rope_permute = true;       // q/k stored in HF rotate-half order
    bool fused_gate_up = false;     // Granite: <mlp>.input_linear = [gate; up], <mlp>.output_linear
};
// transformers' Mamba / Mamba2 checkpoints: backbone.embeddings, backbone.layers.N.{norm, mixer.*},
// backbone.norm_f.
HfNaming mamba_backbone_naming();
// Maps every spec through `naming`; canonical names it does not know are left out.
std::vector<HfTensorMapping> hf_map_from_specs(const std::vector<TensorSpec>& specs, const ModelConfig& c,
                                               const std::vector<LayerDesc>& layers, const HfNaming& naming);

// ---- GGUF keys ---------------------------------------------------------------------------------

// Reads "<arch>.<suffix>" keys with llama.cpp's types; messages name the key and the problem.
class GgufKeys {
public:
    GgufKeys(const Metadata& kv, std::string_view arch) : kv_(kv), arch_(arch) {}
    std::string key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }
    bool has(std::string_view suffix) const { return kv_.count(key(suffix)) != 0; }

    // Integer scalar >= min_value. Missing: error when required, else `out` is kept.
    Status get_int(std::string_view suffix, int64_t& out, bool required = true, int64_t min_value = 0) const;
    Status get_float(std::string_view suffix, float& out, bool required = false) const;
    Status get_bool(std::string_view suffix, bool& out, bool required = false) const;
    // Scalar (repeated n times) or array of exactly n integers (llama.cpp's get_key_or_arr).
    Status get_int_or_array(std::string_view suffix, int64_t n, std::vector<int64_t>& out, bool required = true) const;
    // An integer that may be stored per layer but must be the same on every layer (values equal
    // to `ignore` are skipped, e.g. 0 for SSM layers in head_count_kv).
    Status get_uniform_int(std::string_view suffix, int64_t n_layers, int64_t& out, bool required = true,
                           std::optional<int64_t> ignore = std::nullopt) const;

private:
    const Metadata& kv_;
    std::string arch_;
};

// Writes "<arch>.<suffix>" keys with the GGUF types llama.cpp's loader expects (u32, f32, bool).
class GgufKeyWriter {
public:
    GgufKeyWriter(Metadata& kv, std::string_view arch) : kv_(kv), arch_(arch) {}
    void u32(std::string_view suffix, int64_t v);
    void f32(std::string_view suffix, float v);
    void boolean(std::string_view suffix, bool v);
    void i32_array(std::string_view suffix, const std::vector<int64_t>& v);  // as convert_hf_to_gguf writes

private:
    Metadata& kv_;
    std::string arch_;
};

// Common keys every row with attention writes / reads: context_length, embedding_length,
// block_count, feed_forward_length, attention.head_count[_kv], layer_norm_rms_epsilon, rope.*.
Status read_common_gguf(const GgufKeys& k, ModelConfig& c);
void write_common_gguf(GgufKeyWriter& w, const ModelConfig& c);

// ---- config.json -------------------------------------------------------------------------------

// Reads HF config.json fields; the first present of several alias names wins, and two present
// aliases with different values are a contradiction.
class JsonKeys {
public:
    explicit JsonKeys(const nlohmann::json& j) : j_(j) {}
    Status get_int(std::initializer_list<std::string_view> names, int64_t& out, bool required = true,
                   int64_t min_value = 0) const;
    Status get_float(std::initializer_list<std::string_view> names, float& out, bool required = false) const;
    Status get_bool(std::initializer_list<std::string_view> names, bool& out, bool required = false) const;
    Status get_string(std::string_view name, std::string& out, bool required = false) const;
    bool has(std::string_view name) const { return j_.is_object() && j_.contains(std::string(name)); }
    const nlohmann::json& json() const { return j_; }

private:
    const nlohmann::json& j_;
};

// config.json "architectures" must list `hf_arch` when present.
Status check_hf_architectures(const nlohmann::json& j, std::string_view hf_arch);

// ---- config helpers ----------------------------------------------------------------------------

// Fills attention fields left 0: n_heads (head size 64, halved until it divides dim), n_kv_heads,
// head_dim, rope_dim (= head_dim when `rope`), and ffn_hidden (~8/3 dim, rounded).
void complete_attention(ModelConfig& c, bool rope);
void complete_ffn(ModelConfig& c);
void complete_mamba1(ModelConfig& c);  // d_inner 2*dim, d_conv 4, d_state 16, dt_rank ceil(dim/16)
void complete_mamba2(ModelConfig& c);  // d_inner 2*dim, d_conv 4, d_state 128 (16 when small), heads of 64, 1 group

// Error helpers for check_config.
Status require(bool ok, const std::string& message);
// Every layer's mixer must be one of `allowed` and its FFN `ffn`.
Status check_plan(std::string_view arch, const std::vector<LayerDesc>& layers, std::initializer_list<MixerKind> allowed,
                  FfnKind ffn);
// Granite multipliers and router temperature must keep their neutral value on rows without them.
Status check_no_granite_scales(std::string_view arch, const ModelConfig& c);
Status check_no_router(std::string_view arch, const ModelConfig& c);

// Hybrid layer plan: attention on layers where (i % period) == offset.
std::vector<LayerDesc> periodic_plan(int64_t n, int64_t period, int64_t offset, LayerDesc attn, LayerDesc ssm);

}  // namespace ef::arch
