#include "core/train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ef::train {

float CosineSchedule::lr(int64_t step) const {
    if (step < warmup) return max_lr * float(step + 1) / float(warmup);
    if (step >= total || total <= warmup) return min_lr;
    const double progress = double(step - warmup) / double(total - warmup);  // [0, 1)
    const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    return float(min_lr + coeff * (double(max_lr) - min_lr));
}

double global_grad_norm(std::span<const ParamView> params) {
    double sum = 0;
    for (const ParamView& p : params)
        for (float g : p.grad) sum += double(g) * g;
    return std::sqrt(sum);
}

float clip_scale(double norm, float max_norm) {
    if (max_norm <= 0 || !(norm > max_norm)) return 1.0f;
    return float(max_norm / norm);
}

Status AdamW::step(std::span<const ParamView> params, float lr, float grad_scale) {
    if (m_.empty() && v_.empty() && t_ == 0) {
        m_.resize(params.size());
        v_.resize(params.size());
        for (size_t i = 0; i < params.size(); ++i) {
            m_[i].assign(params[i].value.size(), 0.0f);
            v_[i].assign(params[i].value.size(), 0.0f);
        }
    }
    if (m_.size() != params.size() || v_.size() != params.size())
        return make_error("AdamW: optimizer state holds " + std::to_string(m_.size()) + " parameters, the model passes " +
                          std::to_string(params.size()));
    for (size_t i = 0; i < params.size(); ++i) {
        const ParamView& p = params[i];
        if (p.grad.size() != p.value.size() || m_[i].size() != p.value.size() || v_[i].size() != p.value.size())
            return make_error("AdamW: parameter " + std::to_string(i) + " has " + std::to_string(p.value.size()) +
                              " values but its gradient or saved moments have another size");
    }
    ++t_;
    const float b1 = opt_.beta1, b2 = opt_.beta2;
    const double c1 = 1.0 - std::pow(double(b1), double(t_));  // bias corrections
    const double c2 = 1.0 - std::pow(double(b2), double(t_));
    for (size_t i = 0; i < params.size(); ++i) {
        const ParamView& p = params[i];
        float* m = m_[i].data();
        float* v = v_[i].data();
        const float wd = p.decay ? opt_.weight_decay : 0.0f;
        for (size_t j = 0; j < p.value.size(); ++j) {
            const float g = p.grad[j] * grad_scale;
            m[j] = b1 * m[j] + (1 - b1) * g;
            v[j] = b2 * v[j] + (1 - b2) * g * g;
            const float mhat = float(m[j] / c1), vhat = float(v[j] / c2);
            // Decoupled decay: shrinks the weight itself, not through the adaptive gradient.
            p.value[j] -= lr * (mhat / (std::sqrt(vhat) + opt_.eps) + wd * p.value[j]);
        }
    }
    return Status::success();
}

void AdamW::restore(int64_t t, std::vector<std::vector<float>> m, std::vector<std::vector<float>> v) {
    t_ = t;
    m_ = std::move(m);
    v_ = std::move(v);
}

}  // namespace ef::train
