// The training configuration (YAML, parsed with yaml-cpp): what `edgefusion train --config` reads.
// Sections and keys (every key optional unless noted; defaults below):
//   model:        arch (edgefusion | llama), dim, layers, heads, kv_heads, head_dim, ffn_hidden, context,
//                 vocab_size (from scratch: the BPE vocabulary trained on the text), tokenizer (a
//                 llama2.c tokenizer .bin for a llama2.c base model), rope_theta, norm_eps, tied_embeddings,
//                 base (a pretrained dense model to hybridize; the CLI's --base-model overrides it),
//                 ssm: {version (1 | 2), d_inner, d_state, heads, head_dim, groups, conv, dt_rank}
//   data:         train_text (required; relative paths are relative to the config file), val_fraction,
//                 seq_len, batch, grad_accum
//   training:     steps, lr, min_lr, warmup, weight_decay, clip, beta1, beta2, seed, threads, log_every,
//                 checkpoint_every, eval_every, eval_batches, freeze_base
//   router:       lambda, entropy, tau_start, tau_end, anneal (none | linear | cosine), init_gate
//   distill:      enabled (KL to the base model's logits instead of the LM loss; needs a base model)
//   quantization: format (none | ef | q8_0 | q4_0 | q4_K | q5_K | q6_K), bits, block (EF)
// Unknown keys, wrong types and impossible shapes are errors naming the key, the file and the line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace ef::train {

struct ModelSection {
    std::string arch = "edgefusion";
    int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn_hidden = 0, context = 0;
    int64_t vocab_size = 0;
    std::string tokenizer, base;
    float rope_theta = 10000.0f, norm_eps = 1e-5f;
    bool tied_embeddings = false;
    int ssm_version = 2;
    int64_t d_inner = 0, d_state = 0, ssm_heads = 0, ssm_head_dim = 0, ssm_groups = 0, d_conv = 4, dt_rank = 0;
};

struct DataSection {
    std::string train_text;  // resolved against the config file's folder
    double val_fraction = 0.1;
    int64_t seq_len = 64, batch = 8, grad_accum = 1;
};

struct TrainingSection {
    int64_t steps = 1000;
    float lr = 1e-3f, min_lr = 1e-4f;
    int64_t warmup = 100;
    float weight_decay = 0.1f, clip = 1.0f, beta1 = 0.9f, beta2 = 0.95f;
    uint64_t seed = 1;
    int threads = 1;
    int64_t log_every = 10, checkpoint_every = 0, eval_every = 0, eval_batches = 4;  // 0: never
    bool freeze_base = false;
};

enum class Anneal : uint8_t { None, Linear, Cosine };

struct RouterSection {
    float lambda = 0.0f;
    float entropy = 0.0f;  // weight of sum_l H(g_l) in bits: hardens gates toward their nearer side
    float tau_start = 1.0f, tau_end = 1.0f;
    Anneal anneal = Anneal::None;
    float init_gate = 0.5f;  // attention share g every layer starts at
    // Router temperature at `step` of `total` (tau_start -> tau_end by the anneal rule).
    float tau(int64_t step, int64_t total) const;
};

struct DistillSection {
    bool enabled = false;
};

struct QuantSection {
    std::string format = "none";  // none | ef | a ggml type name
    int bits = 4, block = 128;
};

struct TrainConfig {
    std::string path;  // the YAML file
    std::string text;  // its text (stored in checkpoints)
    ModelSection model;
    DataSection data;
    TrainingSection training;
    RouterSection router;
    DistillSection distill;
    QuantSection quant;
};

// Parses and checks keys and value types (not shapes). `path` names the file in messages.
Result<TrainConfig> parse_train_config(const std::string& yaml_text, const std::string& path);
Result<TrainConfig> load_train_config(const std::string& path);

// The model config and layer plan a from-scratch config describes (without allocating weights):
// arch defaults completed, every shape rule checked. Errors name the config file and the keys.
struct ModelShape {
    std::string arch;
    ModelConfig config;
    std::vector<LayerDesc> layers;
    int64_t parameter_count = 0;
};
Result<ModelShape> resolve_model_shape(const TrainConfig& c);
// Checks the data, training, router and quantization values (ranges, warmup <= steps, ...).
Status check_training_values(const TrainConfig& c);

// Memory of one training process: float32 params, grads and two AdamW moments for the trainable
// ones, plus the activations one forward/backward keeps.
struct MemoryEstimate {
    int64_t params = 0, trainable = 0;
    uint64_t param_bytes = 0, grad_bytes = 0, adam_bytes = 0, activation_bytes = 0;
    uint64_t total() const { return param_bytes + grad_bytes + adam_bytes + activation_bytes; }
};
// Activations of one (B, T) forward/backward of a model of this shape (same accounting as
// TrainModel::activation_bytes, without building the model).
uint64_t estimate_activation_bytes(const ModelConfig& c, const std::vector<LayerDesc>& layers, int64_t B, int64_t T);
std::string format_bytes(uint64_t bytes);  // "1.23 GiB"

}  // namespace ef::train
