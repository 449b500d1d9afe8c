#include "runtime/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/gemm.h"
#include "runtime/thread_pool.h"

namespace ef::rt {

namespace {

// Queries per block: bounds the score rows (kQueryBlock x positions floats per thread).
constexpr int64_t kQueryBlock = 64;
// From this many queries on, V_h is transposed for the GEMM; below, P V runs as row updates.
constexpr int64_t kTransposeFrom = 8;

// x: (n) <- softmax(x) in place, float sums (the reference ops.h softmax sums in double).
void softmax_row(float* x, int64_t n) {
    float mx = x[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace

void attention_fast(std::span<float> out, std::span<const float> q, std::span<const float> k_cache,
                    std::span<const float> v_cache, int64_t n_past, int64_t T, int64_t n_heads, int64_t n_kv_heads,
                    int64_t head_dim, float scale, ThreadPool* pool) {
    if (T <= 0) return;
    const int64_t group = n_heads / n_kv_heads;
    const int64_t kv_stride = n_kv_heads * head_dim;  // floats per cached position
    const int64_t q_stride = n_heads * head_dim;      // floats per query position
    const int64_t n_total = n_past + T;               // positions the last query sees
    const kernels::GemmFn gemm = kernels::gemm_traits(DType::F32)->best;

    auto heads = [&](int64_t h0, int64_t h1) {
        std::vector<float> vt(T >= kTransposeFrom ? size_t(head_dim * n_total) : 0);  // V_h transposed: (head_dim, n_total)
        std::vector<float> p(size_t(std::min(T, kQueryBlock) * n_total));
        for (int64_t h = h0; h < h1; ++h) {
            const int64_t kvh = h / group;
            const float* k = k_cache.data() + kvh * head_dim;  // row s at k + s * kv_stride
            const float* v = v_cache.data() + kvh * head_dim;
            // Few queries (decode): P V as row updates, o += p_s * v_s, reading V in place. Many
            // queries: transpose V_h once so the product runs on the GEMM kernel.
            const bool transpose = T >= kTransposeFrom;
            if (transpose)
                for (int64_t s = 0; s < n_total; ++s)
                    for (int64_t d = 0; d < head_dim; ++d) vt[size_t(d * n_total + s)] = v[s * kv_stride + d];
            for (int64_t t0 = 0; t0 < T; t0 += kQueryBlock) {
                const int64_t tb = std::min(kQueryBlock, T - t0);
                const int64_t n_pos = n_past + t0 + tb;  // visible to the block's last query
                // p: (tb, n_pos) = Q_h[t0 : t0 + tb] K_h[0 : n_pos]^T
                gemm(head_dim, n_pos, tb, k, size_t(kv_stride) * sizeof(float), q.data() + t0 * q_stride + h * head_dim,
                     size_t(q_stride) * sizeof(float), p.data(), n_pos);
                for (int64_t i = 0; i < tb; ++i) {
                    float* row = p.data() + i * n_pos;
                    const int64_t visible = n_past + t0 + i + 1;  // causal mask
                    for (int64_t s = 0; s < visible; ++s) row[s] *= scale;
                    softmax_row(row, visible);
                    std::fill(row + visible, row + n_pos, 0.0f);
                }
                // out[t0 : t0 + tb, h, :] = p @ V_h[0 : n_pos]  (V_h^T rows are n_total long)
                if (!transpose) {
                    for (int64_t i = 0; i < tb; ++i) {
                        float* o = out.data() + (t0 + i) * q_stride + h * head_dim;
                        std::fill(o, o + head_dim, 0.0f);
                        const float* row = p.data() + i * n_pos;
                        for (int64_t s = 0; s < n_past + t0 + i + 1; ++s) {
                            const float ps = row[s];
                            const float* vs = v + s * kv_stride;
                            for (int64_t d = 0; d < head_dim; ++d) o[d] += ps * vs[d];
                        }
                    }
                    continue;
                }
                gemm(n_pos, head_dim, tb, vt.data(), size_t(n_total) * sizeof(float), p.data(),
                     size_t(n_pos) * sizeof(float), out.data() + t0 * q_stride + h * head_dim, q_stride);
            }
        }
    };
    // About 4 multiply-adds per (query, position, dim) with the transposition; below ~64K a second
    // thread costs more than it saves.
    const double work = 4.0 * double(T) * double(n_total) * double(q_stride);
    if (!pool || pool->threads() < 2 || n_heads < 2 || work < 65536.0) heads(0, n_heads);
    else pool->parallel_for(n_heads, 1, heads);
}

}  // namespace ef::rt
