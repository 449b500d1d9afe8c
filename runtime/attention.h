// Causal grouped-query attention on the F32 GEMM kernels (runtime/kernels/gemm.h): what decode
// and prefill run. The readable references are attention() (ops.h, one query) and
// attention_seq() (ops_seq.h, T queries), which sum in double one position at a time; on a
// 2-core machine those took a quarter of a Q8_0 decode step and most of a 512-token prefill.
//
// Per query head h (KV head h / (n_heads / n_kv_heads)) and block of queries:
//   S = Q_h K_h^T * scale        (Tb, n_pos)   K rows read in place from the cache
//   P = softmax(S with future positions masked)  per row
//   O_h = P V_h                  (Tb, head_dim) through a transposed copy of V_h
// Both products are float GEMMs (summation order differs from the references; agreement to
// ~1e-6 relative). Heads are split over the pool.
#pragma once
#include <cstdint>
#include <span>

namespace ef::rt {

class ThreadPool;  // runtime/thread_pool.h

// The contract of attention_seq (ops_seq.h): T new queries at positions n_past .. n_past + T - 1
// over a cache that already holds them; query t sees cache positions 0 .. n_past + t.
// q, out: (T, n_heads, head_dim); k_cache, v_cache: (>= n_past + T, n_kv_heads, head_dim).
void attention_fast(std::span<float> out, std::span<const float> q, std::span<const float> k_cache,
                    std::span<const float> v_cache, int64_t n_past, int64_t T, int64_t n_heads, int64_t n_kv_heads,
                    int64_t head_dim, float scale, ThreadPool* pool = nullptr);

}  // namespace ef::rt
