// Mamba-2's chunked SSD on the F32 GEMM kernels: what batched evaluation runs. The readable
// reference is ssd_chunked() in ops_seq.h (same chunking, same formulas, plain loops); its
// inner products were scalar reductions and took half of a Mamba-2 prefill.
//
// Per chunk of L positions, group g and head h (of g), with cum_t the cumulative log-decay:
//   CB   = C_g B_g^T                                   (L, L)   GEMM, shared by g's heads
//   M    = CB o exp(cum_t - cum_s) o dt'_s, s <= t       (L, L)   the masked decay matrix
//   Y    = M X_h + diag(exp(cum)) C_g S_h^T + D_h X_h      (L, P)   two GEMMs
//   S_h <- exp(cum_last) S_h + (w o X_h)^T B_g              (P, N)   GEMM, w_s = exp(cum_last - cum_s) dt'_s
// Float sums in GEMM order: agrees with ssd_chunked / ssd_step to ~1e-6 relative.
#pragma once
#include <cstdint>
#include <span>

namespace ef::rt {

class ThreadPool;  // runtime/thread_pool.h

// Arguments and shapes as ssd_chunked (ops_seq.h): y, x: (T, n_heads, head_dim); dt: (T, n_heads);
// S: (n_heads, head_dim, d_state) in/out; A, D: (n_heads); B, C: (T, n_groups, d_state).
void ssd_chunked_fast(std::span<float> y, std::span<float> S, std::span<const float> x, std::span<const float> dt,
                      std::span<const float> A, std::span<const float> B, std::span<const float> C,
                      std::span<const float> D, int64_t T, int64_t n_heads, int64_t head_dim, int64_t n_groups,
                      int64_t d_state, int64_t chunk, ThreadPool* pool = nullptr);

}  // namespace ef::rt
