#include "core/model.h"

namespace ef {

std::string_view mixer_name(MixerKind k) {
    switch (k) {
        case MixerKind::Attention: return "attention";
        case MixerKind::Mamba1: return "mamba1";
        case MixerKind::Mamba2: return "mamba2";
        case MixerKind::Routed: return "routed";
    }
    return "?";
}

std::string_view ffn_name(FfnKind k) { return k == FfnKind::SwiGLU ? "swiglu" : "none"; }

const Tensor* Model::find(std::string_view name) const {
    for (const auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

Tensor* Model::find(std::string_view name) {
    for (auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

int64_t Model::parameter_count() const {
    int64_t n = 0;
    for (const auto& t : tensors) n += t.numel();
    return n;
}

uint64_t Model::weight_bytes() const {
    uint64_t n = 0;
    for (const auto& t : tensors) n += t.nbytes();
    return n;
}

double Model::bits_per_weight() const {
    const int64_t n = parameter_count();
    return n > 0 ? 8.0 * double(weight_bytes()) / double(n) : 0.0;
}

}  // namespace ef
