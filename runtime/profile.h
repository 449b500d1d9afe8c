// Measuring a model the way an edge engineer does: speed (llama-bench's pp/tg tests), memory
// (peak RSS, weights, KV cache, SSM state), work (FLOPs per token on the routed path) and where
// the time goes (per layer, per op kind).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "runtime/session.h"

namespace ef {

struct SpeedStats {
    int n_tokens = 0;
    std::vector<double> samples;  // tokens/s per repetition
    double mean = 0.0, stddev = 0.0;  // sample standard deviation (n - 1), 0 for one sample
};
// mean and sample std of xs.
SpeedStats speed_stats(int n_tokens, std::vector<double> xs);

// Prefill test (llama-bench's ppN): reset, feed n tokens, `reps` times after one warm-up run.
// Decode test (tgN): reset, then n single-token evals from an empty context. Tokens are seeded
// random ids (like llama-bench's), so any model can be measured without a tokenizer.
Result<SpeedStats> bench_prefill(Session& s, int n, int reps, uint64_t seed = 1, Progress& progress = Progress::none());
Result<SpeedStats> bench_decode(Session& s, int n, int reps, uint64_t seed = 2, Progress& progress = Progress::none());

// Peak resident set size of this process (VmHWM in /proc/self/status), 0 when unknown.
uint64_t peak_rss_bytes();
// Current resident set size (VmRSS), 0 when unknown.
uint64_t current_rss_bytes();

// Which mixers a layer runs under the session's routing: a routed layer runs attention when its
// gate is >= 0.5 and the SSM branch otherwise (both with soft routing).
struct LayerPath {
    bool attention = false;
    MixerKind ssm = MixerKind::Attention;  // Attention: no SSM on the path; else Mamba1/Mamba2
    bool ffn = false;
};
std::vector<LayerPath> layer_paths(const Session& s, Routing routing);

// Bytes the session keeps per sequence: F32 K and V for n_ctx positions on attention layers on the
// path; conv window + SSM state for SSM layers on the path.
uint64_t kv_cache_bytes(const Model& m, const std::vector<LayerPath>& path, int64_t n_ctx);
uint64_t ssm_state_bytes(const Model& m, const std::vector<LayerPath>& path);

// Weight bytes one decode step reads: every tensor on the path once, except token_embd, of which
// only one row is looked up (unless it is tied as the output head, then it is read whole). Routed
// layers count only the branch they run (the other branch's matrices stay unread).
uint64_t decode_weight_bytes(const Model& m, const std::vector<LayerPath>& path);

// Floating-point operations for one token at context length n_past + 1: 2 * rows * cols for every
// weight matrix on the path (output head included, embedding lookup excluded), attention scores and
// weighted sum 4 * n_heads * head_dim * (n_past + 1), and the SSM scan's elementwise work
// (Mamba-1: ~6 per (d_inner, d_state) cell; Mamba-2: ~6 per (heads, head_dim, d_state) cell) plus
// the depthwise conv (2 * channels * d_conv).
double flops_per_token(const Model& m, const std::vector<LayerPath>& path, int64_t n_past);

}  // namespace ef
