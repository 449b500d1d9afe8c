// Synthetic models: a complete, valid model of any architecture row, with seeded random weights
// and a SentencePiece-style vocab that llama.cpp accepts. Used by tests (every format, every row),
// by benchmarks and by "New model" in the workbench.
//
// Weights are reproducible bit for bit on every machine for a given seed: the generator is
// splitmix64 with per-tensor streams (seeded from the tensor name), and normals are drawn with
// integer-exact arithmetic (no libm), so only the dtype conversion touches the values afterwards.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"

namespace ef {

struct SynthOptions {
    std::string arch = "llama";   // a row name (see core/arch/architecture.h)
    int64_t dim = 64;
    int64_t n_layers = 2;
    int64_t vocab = 512;          // at least 260: <unk>, <s>, </s>, 256 byte tokens and one piece
    DType type = DType::F32;      // for the 2-D weight matrices (norms, 1-D tensors, conv1d stay F32)
    std::optional<DType> embedding_type;  // token_embd / output; default `type`
    uint64_t seed = 0;
    bool tied_embeddings = false;

    // Overrides; unset fields take the row's defaults (complete_config).
    std::optional<int64_t> n_heads, n_kv_heads, head_dim, rope_dim, ffn_hidden, context_length;
    std::optional<int64_t> d_inner, d_state, d_conv, dt_rank, ssm_heads, ssm_groups;
    std::optional<int> ssm_version;         // routed rows (edgefusion): 1 = Mamba-1 branch, 2 = Mamba-2
    std::optional<float> router_temperature;
    std::optional<std::vector<LayerDesc>> layers;  // custom layer plan instead of default_layers
};

Result<Model> synth_model(const SynthOptions& opts, Progress& progress = Progress::none());

// The vocab synth_model uses: <unk> (type 2), <s>, </s> (3), <0x00>..<0xFF> (6), then "▁"-pieces.
Result<Vocab> synth_vocab(int64_t n_tokens);

}  // namespace ef
