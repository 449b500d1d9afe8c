// A trainable float32 copy of a model (llm.c style): every tensor as a Param holding its values and
// its gradient, a forward over B sequences that saves what the backward needs, and a hand-written
// backward. Supports "llama" (dense: attention + SwiGLU per layer) and "edgefusion" (routed: per
// layer an attention branch and an SSM branch, Mamba-2 or Mamba-1, mixed by g = sigmoid(alpha/tau),
// then SwiGLU). The forward reproduces the runtime's composition (runtime/session_batch.cpp), so a
// model trained here and written back with to_model() runs in the runtime with the same logits.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace ef::rt {
class ThreadPool;  // runtime/thread_pool.h
}

namespace ef::train {

struct Param {
    std::string name;            // the model's tensor name ("blk.0.attn_q.weight"; router alphas: "blk.N.router_gate")
    std::vector<int64_t> shape;  // as the Tensor's shape (outermost-first)
    std::vector<float> value, grad;
    bool trainable = true;       // false: the optimizer skips it and backward leaves grad at zero
};

struct LossSpec {
    float lambda = 0;                       // router L1: loss += lambda * sum_l g_l (edgefusion only)
    float entropy = 0;                      // loss += entropy * sum_l H(g_l), H in bits: pushes each gate to its nearer hard value
    std::span<const float> teacher_logits;  // (B*T, V): empty -> LM cross-entropy on tokens shifted by one
};

struct StepResult {
    double loss = 0, task_loss = 0, router_loss = 0;  // loss = task_loss + router_loss
    int64_t positions = 0;                            // B * T rows that were scored
};

class TrainModel {
public:
    TrainModel();
    ~TrainModel();
    TrainModel(TrainModel&&) noexcept;
    TrainModel& operator=(TrainModel&&) noexcept;
    TrainModel(const TrainModel&);
    TrainModel& operator=(const TrainModel&);

    // Dequantizes every tensor to F32. Errors: unsupported architecture (names it), missing or
    // mis-shaped tensors (names them).
    static Result<TrainModel> from_model(const Model& m);
    // Same architecture, config, layer plan, tensor names, vocabulary and metadata; F32 tensors; the
    // router alphas are written under the model's own gate tensor name.
    Result<Model> to_model() const;

    const ModelConfig& config() const;
    const std::string& architecture() const;
    std::vector<Param>& params();
    const std::vector<Param>& params() const;
    Param* find(std::string_view name);
    const Param* find(std::string_view name) const;
    void zero_grad();

    // tokens: (B, T + 1) rows; inputs are [0, T), targets [1, T + 1) (a negative target: row not
    // scored). Accumulates grads (+=) into trainable params only (frozen grads stay as they are);
    // returns the losses. teacher_logits, when given, are (B*T, V) for the inputs (row b*T + t).
    // task loss is the mean over the B*T rows (CE or KL); router loss = sum_l lambda * g_l + entropy * H(g_l).
    // Results do not depend on the pool's thread count. Errors: bad sizes, token ids outside the vocabulary.
    Result<StepResult> forward_backward(std::span<const int32_t> tokens, int64_t B, int64_t T, const LossSpec& loss,
                                        rt::ThreadPool* pool);
    // Loss only (no backward, grads untouched): for evaluation and finite-difference checks.
    Result<StepResult> forward_loss(std::span<const int32_t> tokens, int64_t B, int64_t T, const LossSpec& loss,
                                    rt::ThreadPool* pool);
    // Logits (T, V) of one sequence (no grads) — tests compare with the runtime.
    Result<std::vector<float>> forward_logits(std::span<const int32_t> tokens, rt::ThreadPool* pool);

    std::vector<float> gates() const;  // per layer g = sigmoid(alpha / tau) (empty for a dense model)
    float router_temperature() const;
    void set_router_temperature(float tau);
    bool routed() const;               // edgefusion (has gates)

    // Freeze everything except router gates and SSM-branch tensors (--freeze-base).
    void freeze_base();
    void unfreeze_all();

    int64_t parameter_count() const;                        // all params (trainable or not)
    int64_t trainable_count() const;
    uint64_t activation_bytes(int64_t B, int64_t T) const;  // saved activations of one forward_backward

    struct Impl;  // layer plan, param indices, scratch (train_model.cpp)

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace ef::train
