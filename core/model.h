// The architecture-neutral model: config + per-layer block plan + named tensors + tokenizer data.
// Every format reads into and writes from this; every view and tool works on it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/metadata.h"
#include "core/tensor.h"
#include "core/vocab.h"

namespace ef {

enum class MixerKind : uint8_t {
    Attention,  // MHA/GQA with RoPE
    Mamba1,     // selective scan (conv1d + S6)
    Mamba2,     // SSD with grouped B/C and per-head scalar A
    Routed,     // EdgeFusion: attention branch + SSM branch mixed by a learned gate
};
enum class FfnKind : uint8_t { None, SwiGLU };

std::string_view mixer_name(MixerKind k);  // "attention", "mamba1", "mamba2", "routed"
std::string_view ffn_name(FfnKind k);      // "none", "swiglu"

struct LayerDesc {
    MixerKind mixer = MixerKind::Attention;
    MixerKind ssm_branch = MixerKind::Mamba2;  // only for Routed: the SSM beside attention
    FfnKind ffn = FfnKind::SwiGLU;
    bool operator==(const LayerDesc&) const = default;
};

struct AttentionConfig {
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0;   // GQA when < n_heads
    int64_t head_dim = 0;     // usually dim / n_heads
    int64_t rope_dim = 0;     // rotated dims per head (usually head_dim; 0 = no RoPE, e.g. Jamba)
    float rope_theta = 10000.0f;
    float scale = 0.0f;       // attention logit scale; 0 means 1/sqrt(head_dim)
    bool operator==(const AttentionConfig&) const = default;
};

struct SsmConfig {
    int64_t d_conv = 0;       // depthwise conv kernel width
    int64_t d_inner = 0;      // expanded width (expand * dim)
    int64_t d_state = 0;      // state size N
    int64_t dt_rank = 0;      // mamba1: rank of the dt projection
    int64_t n_groups = 0;     // mamba2: groups sharing B and C
    int64_t n_heads = 0;      // mamba2: heads (d_inner / head_dim)
    bool operator==(const SsmConfig&) const = default;
};

struct ModelConfig {
    int64_t vocab_size = 0;
    int64_t dim = 0;             // residual width (n_embd)
    int64_t n_layers = 0;
    int64_t context_length = 0;
    int64_t ffn_hidden = 0;      // SwiGLU hidden width
    float norm_eps = 1e-5f;      // RMSNorm epsilon
    bool tied_embeddings = false;  // output projection shares token_embd
    AttentionConfig attn;
    SsmConfig ssm;
    // Granite-style multipliers (1 = none).
    float embedding_scale = 1.0f, residual_scale = 1.0f, logit_scale = 1.0f;
    // EdgeFusion: gate g = sigmoid(alpha / router_temperature), g = attention share.
    float router_temperature = 1.0f;
    bool operator==(const ModelConfig&) const = default;
};

struct Model {
    std::string architecture;    // row name in the architecture table ("llama", "mamba2", ...)
    ModelConfig config;
    std::vector<LayerDesc> layers;  // size == config.n_layers
    std::vector<Tensor> tensors;    // canonical names (see arch/architecture.h)
    Metadata metadata;              // free-form extra keys (general.name, ...)
    Vocab vocab;
    std::string source_path;
    std::string source_format;      // "gguf", "safetensors", "hdf5", "llama2c"

    const Tensor* find(std::string_view name) const;
    Tensor* find(std::string_view name);
    void add(Tensor t) { tensors.push_back(std::move(t)); }

    int64_t parameter_count() const;
    uint64_t weight_bytes() const;
    // Bits per weight over all tensors: 8 * bytes / parameters.
    double bits_per_weight() const;
};

}  // namespace ef
