// Hybridize a pretrained dense transformer (llama) into an EdgeFusion model: every layer keeps its
// attention and MLP (and norms, embeddings: the dense tensors are shared, dtype unchanged) and gains
// a Mamba-2 SSM branch plus a router gate g = sigmoid(alpha / tau). The SSM branch starts from the
// attention it sits beside, as attention-to-SSM distillation work does (the linear-attention view:
// x ~ V, B ~ K, C ~ Q, out_proj ~ O; the grouped norm's weights at V's per-channel scale), so
// distillation starts close to something useful (stories260K at g = 0.5: KL to the dense model
// about 0.7 nats against about 4 from random projections; test_train_model).
#pragma once
#include <cstdint>

#include "core/model.h"
#include "core/result.h"

namespace ef::train {

struct HybridizeOptions {
    float gate_init = 0.5f;           // initial attention share g of every layer, in (0, 1)
    float router_temperature = 1.0f;  // tau; alpha = tau * logit(gate_init)
    // SSM shape; 0 = derived from the attention so the projections can be copied:
    int64_t d_inner = 0;    // n_heads * head_dim
    int64_t ssm_heads = 0;  // n_heads (SSM head size = d_inner / ssm_heads)
    int64_t n_groups = 0;   // n_kv_heads (B/C groups mirror the KV heads)
    int64_t d_state = 0;    // head_dim
    int64_t d_conv = 4;
    // Initial step sizes softplus(dt_bias) spread log-uniformly over the heads, and decay rates
    // -A spread linearly: per-step decay exp(dt * A) then covers fast and slow memories.
    float dt_min = 0.001f, dt_max = 0.1f;
    float a_min = 1.0f, a_max = 16.0f;
    bool init_from_attention = true;  // false (or shapes that do not match): seeded random projections
    uint64_t seed = 0;
};

// dense: architecture "llama". Returns an "edgefusion" model with Mamba-2 branches (new tensors F32).
// Errors: another architecture (names it), impossible SSM shapes, bad gate_init / temperature.
Result<Model> hybridize(const Model& dense, const HybridizeOptions& opts = {});

}  // namespace ef::train
