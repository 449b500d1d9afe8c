// Small models for format tests, built from an architecture row's own tensor list with
// deterministic pseudo-random weights. Big matrices take the requested dtype (where the row length
// fits its blocks); norms, convolutions and SSM scalars stay F32, as llama.cpp's converters do.
// (The GGUF tests now use core/synth.h; this header is kept for tests that still include it.)
#pragma once
#include <cmath>
#include <cstdio>
#include <string>

#include "core/arch/architecture.h"
#include "core/model.h"

namespace ef::test {

struct TinyDims {
    int64_t vocab = 512, dim = 64, layers = 4, context = 128;
};

inline bool gguf_test_is_matrix(const std::string& name) {
    for (const char* part : {"token_embd.", "output.weight", "attn_q.", "attn_k.", "attn_v.", "attn_output.",
                             "ffn_gate.", "ffn_up.", "ffn_down.", "ssm_in.", "ssm_out."})
        if (name.find(part) != std::string::npos) return true;
    return false;
}

inline Vocab gguf_test_vocab(int64_t n) {
    Vocab v;
    v.model = "llama";
    v.pre = "default";
    v.tokens = {"<unk>", "<s>", "</s>"};
    v.token_types = {2, 3, 3};
    for (int i = 0; int64_t(v.tokens.size()) < n && i < 256; ++i) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", i);
        v.tokens.push_back(buf);
        v.token_types.push_back(6);
    }
    for (int64_t i = int64_t(v.tokens.size()); i < n; ++i) {
        v.tokens.push_back("\xe2\x96\x81t" + std::to_string(i));  // "▁t<i>"
        v.token_types.push_back(1);
    }
    v.scores.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) v.scores[size_t(i)] = -float(i) * 0.25f;
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
    return v;
}

// Returns an empty Model (architecture "") with `error` set when something does not fit.
inline Model gguf_test_model(const std::string& arch_name, DType dtype, const TinyDims& d, std::string* error) {
    Model m;
    const ArchitectureInfo* arch = find_architecture(arch_name);
    if (!arch) {
        *error = "no architecture row '" + arch_name + "'";
        return {};
    }
    m.architecture = std::string(arch->name);
    m.config.vocab_size = d.vocab;
    m.config.dim = d.dim;
    m.config.n_layers = d.layers;
    m.config.context_length = d.context;
    arch->complete_config(m.config);
    m.layers = arch->default_layers(m.config);
    if (Status s = validate_config(*arch, m.config, m.layers); !s) {
        *error = s.message();
        return {};
    }
    uint64_t state = 0x9E3779B97F4A7C15ull ^ std::hash<std::string>{}(arch_name);
    auto next = [&] {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return float(double(state >> 11) / double(1ull << 53)) * 2.0f - 1.0f;  // [-1, 1)
    };
    for (const TensorSpec& spec : arch->tensor_specs(m.config, m.layers)) {
        const auto n = shape_numel(spec.shape).value_or(0);
        std::vector<float> v(static_cast<size_t>(n));
        const std::string& name = spec.name;
        if (name.find("norm") != std::string::npos) {
            for (auto& x : v) x = 1.0f + 0.1f * next();
        } else if (name.find("ssm_a") != std::string::npos) {
            for (auto& x : v) x = -(1.0f + 0.5f * (next() + 1.0f));  // A = -exp(A_log) < 0
        } else if (name.find("ssm_d") != std::string::npos && name.find("ssm_dt") == std::string::npos) {
            for (auto& x : v) x = 1.0f;
        } else {
            for (auto& x : v) x = 0.08f * next();
        }
        DType t = DType::F32;
        const auto& tr = type_traits(dtype);
        if (gguf_test_is_matrix(name) && spec.shape.size() == 2 && spec.shape.back() % tr.block_size == 0) t = dtype;
        auto tensor = Tensor::from_f32(name, spec.shape, v, t);
        if (!tensor) {
            *error = tensor.message();
            return {};
        }
        m.add(std::move(tensor.value()));
    }
    m.vocab = gguf_test_vocab(d.vocab);
    m.metadata["general.name"] = MetaValue::str("tiny " + arch_name);
    return m;
}

}  // namespace ef::test
