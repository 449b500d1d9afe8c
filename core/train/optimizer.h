// AdamW with decoupled weight decay and bias correction, the cosine learning-rate schedule with
// linear warmup, and global-norm gradient clipping. The optimizer sees parameters as spans
// (value, grad), so it neither owns nor depends on the model class; its state (the two moments
// per parameter and the step count) is plain vectors a checkpoint stores and restores.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ef::train {

// One parameter as the optimizer sees it. Frozen parameters are not passed at all.
struct ParamView {
    std::span<float> value;
    std::span<const float> grad;  // same length as value
    bool decay = true;            // weight decay applies (matrices; not norms, biases or gates)
};

struct AdamWOptions {
    float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
    float weight_decay = 0.0f;
};

// Learning rate at `step` (0-based): linear warmup over `warmup` steps to max_lr, then a half
// cosine from max_lr down to min_lr at step `total`; min_lr after that.
struct CosineSchedule {
    float max_lr = 1e-3f, min_lr = 1e-4f;
    int64_t warmup = 0, total = 1;
    float lr(int64_t step) const;
};

// sqrt(sum of squares) over every gradient element, in double.
double global_grad_norm(std::span<const ParamView> params);
// The factor that brings the global norm down to max_norm (1 if it is below, or max_norm <= 0).
float clip_scale(double norm, float max_norm);

class AdamW {
public:
    explicit AdamW(AdamWOptions opt = {}) : opt_(opt) {}
    const AdamWOptions& options() const { return opt_; }
    void set_options(const AdamWOptions& o) { opt_ = o; }

    // One update of every parameter with learning rate lr; each gradient is used as grad_scale * g
    // (clipping and the 1 / accumulation-steps average fold into it). The first call sizes the
    // moments from `params`; later calls must pass the same parameters in the same order.
    Status step(std::span<const ParamView> params, float lr, float grad_scale = 1.0f);

    int64_t steps_done() const { return t_; }
    // The moments, one vector per parameter in the order step() saw them (for checkpoints).
    const std::vector<std::vector<float>>& m() const { return m_; }
    const std::vector<std::vector<float>>& v() const { return v_; }
    // Restores a saved state; sizes are checked against `params` at the next step().
    void restore(int64_t t, std::vector<std::vector<float>> m, std::vector<std::vector<float>> v);

private:
    AdamWOptions opt_;
    int64_t t_ = 0;
    std::vector<std::vector<float>> m_, v_;
};

}  // namespace ef::train
