// A model's summary for `edgefusion inspect` and the workbench's overview: per-layer blocks,
// per-tensor dtype/shape/bytes, parameter count, bits per weight, metadata.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ef_tensors.h"
#include "core/model.h"

namespace ef {

struct TensorSummary {
    std::string name;
    std::string dtype;
    Shape shape;
    int64_t parameters = 0;
    uint64_t bytes = 0;
    int layer = -1;        // -1 for global tensors
    std::string role;      // "attn_q", "ssm_in", "router_gate", "token_embd", ...
    // EdgeFusion weights only (ef* dtypes): code bits k and effective bits with companions; 0 otherwise.
    double code_bits = 0, effective_bits = 0;
    int64_t outliers = 0;
};

struct LayerSummary {
    int index = 0;
    LayerDesc desc;
    int64_t parameters = 0;
    uint64_t bytes = 0;
    std::vector<size_t> tensors;  // indices into ModelSummary::tensors
};

struct ModelSummary {
    std::string path, format, architecture;
    ModelConfig config;
    std::vector<LayerSummary> layers;
    std::vector<TensorSummary> tensors;
    std::vector<size_t> global_tensors;
    int64_t parameters = 0;
    uint64_t bytes = 0;
    double bits_per_weight = 0;
    Metadata metadata;
    std::string vocab_model;
    size_t vocab_size = 0;
    EfModelBits ef;  // code / effective bits of the EF weights and of the whole model
};

// "blk.12.attn_q.weight" -> layer 12, role "attn_q"; "token_embd.weight" -> -1, "token_embd".
void split_tensor_name(const std::string& name, int& layer, std::string& role);

ModelSummary summarize(const Model& m);
nlohmann::json summary_to_json(const ModelSummary& s);
// Human-readable report; `tensors` lists every tensor under its layer.
std::string summary_to_text(const ModelSummary& s, bool tensors);

}  // namespace ef
