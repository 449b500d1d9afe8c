// Internal to core/train/grad_ops*.cpp: splitting an op's independent work items over the pool,
// and the blocked product kernel shared by matmul and attention.
#pragma once
#include <cstdint>

#include "runtime/thread_pool.h"

// Hot loops are also compiled for x86-64-v3 (AVX2/FMA) and the variant is picked at load time
// (GCC/Clang target_clones); one binary still runs on every x86-64 CPU.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__)
#define EF_TRAIN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define EF_TRAIN_CLONES
#endif

namespace ef::train::detail {

// Runs fn(begin, end) over the items [0, n): on the pool, one item per claim, when there is one and
// the job holds at least about 2^17 flops (below that a second thread costs more than it saves);
// otherwise on the calling thread. Every item runs the same code whichever thread takes it, so
// results do not depend on the thread count.
template <class F>
void for_items(rt::ThreadPool* pool, int64_t n, double flops, F&& fn) {
    if (!pool || pool->threads() < 2 || n < 2 || flops < 131072.0) {
        fn(int64_t(0), n);
        return;
    }
    pool->parallel_for(n, 1, fn, rt::ThreadPool::Split::Always);
}

// Y (+)= S Z on one block: Y: (M, N) with row stride ldy; Z: (K, N) with row stride ldz (rows
// contiguous); S(m, k) = S[m * sm + k * sk] (any strides). Each Y element is one float sum over
// k in order, started from 0 and then stored (add = false) or added (add = true), whatever the
// block shape. Compiled for AVX2/FMA as well on x86-64 and chosen at load time. One thread.
void gemm(float* Y, int64_t ldy, const float* S, int64_t sm, int64_t sk, const float* Z, int64_t ldz, int64_t M,
          int64_t N, int64_t K, bool add);

}  // namespace ef::train::detail
