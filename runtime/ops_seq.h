// Sequence operators for batched evaluation (prefill): the ops of ops.h over T consecutive
// positions at once. Plain scalar loops like ops.h; each one leaves the same state behind as T
// calls of its one-step twin, and gives the same outputs (bit for bit for attention, conv1d and
// the Mamba-1 scan, which do the same arithmetic in the same order; to float rounding for the
// chunked SSD, which regroups the recurrence). Rows are positions: x: (T, C) holds position t's
// C values at x[t * C ..].
#pragma once
#include <cstdint>
#include <span>

namespace ef::rt {

class ThreadPool;  // runtime/thread_pool.h

// Rotary embedding of T positions pos0 .. pos0 + T - 1: x: (T, n_heads, head_dim) in place,
// row t as rope(x[t], ..., pos0 + t, ...).
void rope_seq(std::span<float> x, int64_t T, int64_t n_heads, int64_t head_dim, int64_t rope_dim, int64_t pos0, float theta);

// Causal grouped-query attention of T new queries at positions n_past .. n_past + T - 1 over a
// KV cache that already holds them: query t sees cache positions 0 .. n_past + t.
// q, out: (T, n_heads, head_dim); k_cache, v_cache: (n_past + T, n_kv_heads, head_dim).
// Row t equals attention() (ops.h) with n_pos = n_past + t + 1. Queries are split over the pool.
void attention_seq(std::span<float> out, std::span<const float> q, std::span<const float> k_cache,
                   std::span<const float> v_cache, int64_t n_past, int64_t T, int64_t n_heads, int64_t n_kv_heads,
                   int64_t head_dim, float scale, ThreadPool* pool = nullptr);

// Causal depthwise conv1d over T steps, continuing from `state` (channels, k - 1: the previous
// k - 1 inputs per channel, oldest first) and leaving it holding the last k - 1 inputs.
// x, out: (T, channels); w: (channels, k); bias: (channels) or empty. As T conv1d_step calls.
void conv1d_seq(std::span<float> out, std::span<float> state, std::span<const float> x, std::span<const float> w,
                std::span<const float> bias, int64_t T, int64_t channels, int64_t k);

// Mamba-1 selective scan over T steps (sequentially, per channel), as T selective_scan_step calls.
// y, x, dt: (T, channels); h: (channels, d_state) in/out; A: (channels, d_state);
// B, C: (T, d_state); D: (channels).
void selective_scan_seq(std::span<float> y, std::span<float> h, std::span<const float> x, std::span<const float> dt,
                        std::span<const float> A, std::span<const float> B, std::span<const float> C,
                        std::span<const float> D, int64_t T, int64_t channels, int64_t d_state);

// Mamba-2 SSD over T steps in its chunked ("state space dual") form. The T steps are cut into
// chunks of `chunk` positions. Per head h (group g) and chunk, with dt'_t = softplus(dt[t, h]) and
// the cumulative log-decay cum_t = sum_{s <= t} dt'_s * A[h] within the chunk:
//   intra:  y_t += sum_{s <= t} (C_t . B_s) * exp(cum_t - cum_s) * dt'_s * x_s
//           i.e. Y = ((C B^T) o Lmask) @ (dt' o X), a lower-triangular (chunk, chunk) matrix
//           (C B^T shared by the heads of a group) times (chunk, head_dim)
//   state:  y_t += exp(cum_t) * C_t . S[h]          (the state entering the chunk)
//   skip:   y_t += D[h] * x_t
//   next:   S[h] <- exp(cum_last) * S[h] + sum_s exp(cum_last - cum_s) * dt'_s * x_s B_s^T
// which unrolls ssd_step's recurrence; every exponent is <= 0, so nothing overflows.
// y, x: (T, n_heads, head_dim); dt: (T, n_heads); S: (n_heads, head_dim, d_state) in/out;
// A, D: (n_heads); B, C: (T, n_groups, d_state). Heads are split over the pool.
void ssd_chunked(std::span<float> y, std::span<float> S, std::span<const float> x, std::span<const float> dt,
                 std::span<const float> A, std::span<const float> B, std::span<const float> C, std::span<const float> D,
                 int64_t T, int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state, int64_t chunk,
                 ThreadPool* pool = nullptr);

}  // namespace ef::rt
