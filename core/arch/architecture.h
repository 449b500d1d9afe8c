// The architecture table. One row per architecture (name, traits, config keys, tensor names for
// each format); each row lives in its own file arch/<name>.cpp, built from the shared blocks in
// arch/blocks.h. Nothing else in the code base switches on the architecture: code asks the row.
//
// Canonical tensor names are llama.cpp's GGUF names ("token_embd.weight", "blk.3.attn_q.weight",
// "blk.3.ssm_in.weight"), and canonical shapes are the reversed GGUF ne (see core/tensor.h), so
// GGUF reads and writes are 1:1. Other formats map names and layouts through the row.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"

namespace ef {

struct TensorSpec {
    std::string name;      // canonical name
    Shape shape;           // canonical shape
    int layer = -1;        // -1 for global tensors
    bool optional = false; // may be absent (e.g. output.weight when embeddings are tied)
    bool is_matrix_weight() const { return shape.size() == 2; }
};

// How a canonical tensor is stored in a HuggingFace safetensors checkpoint.
enum class HfTransform : uint8_t {
    None,
    RopePermuteQ,  // HF stores q/k in rotate-half order; canonical (GGUF/llama2.c) interleaves pairs
    RopePermuteK,
    NegExpOfLog,   // HF stores A_log; canonical stores A = -exp(A_log)
    // HF fuses two canonical tensors row-wise (Granite's shared_mlp.input_linear = [gate; up]):
    // the canonical tensor is the first / second half of the HF tensor's rows; hf_shape is the
    // fused shape. Writers concatenate the two halves back in that order.
    FusedRowsFirstHalf,
    FusedRowsSecondHalf,
};

struct HfTensorMapping {
    std::string canonical;
    std::string hf_name;
    Shape hf_shape;        // same elements in the same order as the canonical shape (size-1 dims
                           // or a reshape, e.g. mamba2 ssm_norm (d_inner) vs (groups, d_inner/groups)),
                           // except for the FusedRows transforms
    HfTransform transform = HfTransform::None;
};

struct ArchTraits {
    bool attention = false;   // some layer has an attention mixer or branch
    bool ssm = false;         // some layer has an SSM mixer or branch
    bool routed = false;      // layers carry learned gates (EdgeFusion)
    bool fixed_hybrid = false;// per-layer fixed choice of attention or SSM
};

struct ArchitectureInfo {
    std::string_view name;         // also GGUF general.architecture and the key prefix
    std::string_view description;
    ArchTraits traits;
    std::vector<std::string_view> hf_architectures;  // config.json "architectures" entries

    // GGUF "<name>.*" keys <-> config and layer plan.
    Status (*read_gguf)(const Metadata& kv, ModelConfig& cfg, std::vector<LayerDesc>& layers);
    void (*write_gguf)(const ModelConfig& cfg, const std::vector<LayerDesc>& layers, Metadata& kv);
    // HF config.json <-> config and layer plan.
    Status (*read_hf_config)(const nlohmann::json& j, ModelConfig& cfg, std::vector<LayerDesc>& layers);
    void (*write_hf_config)(const ModelConfig& cfg, const std::vector<LayerDesc>& layers, nlohmann::json& j);
    // Default layer plan for synthetic models with n layers (e.g. every 4th layer attention).
    std::vector<LayerDesc> (*default_layers)(const ModelConfig& cfg);
    // Fills config fields derived from the basic ones (head_dim, d_inner, dt_rank...) for synth.
    void (*complete_config)(ModelConfig& cfg);
    // Every tensor the architecture expects, with canonical names and shapes.
    std::vector<TensorSpec> (*tensor_specs)(const ModelConfig& cfg, const std::vector<LayerDesc>& layers);
    // Safetensors names and layouts for the canonical tensors.
    std::vector<HfTensorMapping> (*hf_tensor_map)(const ModelConfig& cfg, const std::vector<LayerDesc>& layers);
    // Row-specific config rules (which mixers a layer may use, what llama.cpp requires);
    // called by validate_config after the generic checks. May be null.
    Status (*check_config)(const ModelConfig& cfg, const std::vector<LayerDesc>& layers) = nullptr;
};

// All rows, in a fixed order.
const std::vector<const ArchitectureInfo*>& architectures();
const ArchitectureInfo* find_architecture(std::string_view name);
const ArchitectureInfo* find_architecture_by_hf(std::string_view hf_architecture);

// Config sanity (divisibility, positive sizes, layer plan length) with a clear message.
Status validate_config(const ArchitectureInfo& arch, const ModelConfig& cfg, const std::vector<LayerDesc>& layers);
// Config + every required tensor present with the expected shape, no NaN-free guarantees.
// `origin` (a file path) starts every message.
Status validate_model(const Model& m, std::string_view origin);

}  // namespace ef
