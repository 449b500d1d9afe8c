// attention_forward / attention_backward (grad_ops.h): causal grouped-query attention of T
// positions from an empty cache. Per query head h (KV head kvh = h / (H / KVH)), as matrices:
//   Z = scale Q_h K_kvh^T (T, T), masked to s <= t;  P = softmax rows of Z;  O_h = P V_kvh (T, D)
// and backward
//   dP = dO_h V^T;  dZ = P o (dP - rowsum(P o dP)) * scale;  dQ_h += dZ K;  dK += dZ^T Q_h;  dV += P^T dO_h.
// The products run on the blocked kernel (detail::gemm) in blocks of 64 query rows, each only
// over the key positions the block can see. The softmax is rt::softmax (max-subtracted, summed in
// double), so outputs equal rt::attention_seq's to float rounding (that one sums in double).
// Work is split over query heads. dK and dV of a KV head gather from its query heads: each head
// sums into its own (T, D) buffers, added afterwards in head order, so results do not depend on
// the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/train/grad_ops.h"
#include "core/train/grad_ops_detail.h"
#include "runtime/ops.h"

namespace ef::train {

namespace {

constexpr int64_t kRows = 64;  // query rows per product block

// out: (D, T) = the KV head's rows of kv: (T, KVH, D), transposed.
void pack_transposed(std::vector<float>& out, const float* kv, int64_t T, int64_t kvs, int64_t D) {
    out.resize(size_t(D * T));
    for (int64_t s = 0; s < T; ++s)
        for (int64_t i = 0; i < D; ++i) out[size_t(i * T + s)] = kv[s * kvs + i];
}

}  // namespace

void attention_forward(std::span<float> out, std::span<float> probs, std::span<const float> q,
                       std::span<const float> k, std::span<const float> v, int64_t T, int64_t H, int64_t KVH,
                       int64_t D, float scale, rt::ThreadPool* pool) {
    const int64_t group = H / KVH;
    const int64_t qs = H * D, kvs = KVH * D;  // one position of q / of k and v
    const double flops = 2.0 * double(T) * double(T + 1) * double(H) * double(D);
    detail::for_items(pool, H, flops, [&](int64_t h0, int64_t h1) {
        std::vector<float> Kt;  // (D, T)
        for (int64_t h = h0; h < h1; ++h) {
            const int64_t kvh = h / group;
            float* P = probs.data() + h * T * T;  // (T, T)
            pack_transposed(Kt, k.data() + kvh * D, T, kvs, D);
            // Z rows t0.. over the keys 0 .. t0 + nt - 1 the block can see.
            for (int64_t t0 = 0; t0 < T; t0 += kRows) {
                const int64_t nt = std::min(kRows, T - t0);
                detail::gemm(P + t0 * T, T, q.data() + t0 * qs + h * D, qs, 1, Kt.data(), T, nt, t0 + nt, D, false);
            }
            for (int64_t t = 0; t < T; ++t) {
                float* p = P + t * T;
                for (int64_t s = 0; s <= t; ++s) p[s] *= scale;
                std::fill(p + t + 1, p + T, 0.0f);  // the causal mask; also what the products below read
                rt::softmax(std::span<float>(p, size_t(t + 1)));
            }
            for (int64_t t0 = 0; t0 < T; t0 += kRows) {
                const int64_t nt = std::min(kRows, T - t0);
                detail::gemm(out.data() + t0 * qs + h * D, qs, P + t0 * T, T, 1, v.data() + kvh * D, kvs, nt, D, t0 + nt,
                             false);
            }
        }
    });
}

void attention_backward(std::span<float> dq, std::span<float> dk, std::span<float> dv, std::span<const float> dout,
                        std::span<const float> q, std::span<const float> k, std::span<const float> v,
                        std::span<const float> probs, int64_t T, int64_t H, int64_t KVH, int64_t D, float scale,
                        rt::ThreadPool* pool) {
    const int64_t group = H / KVH;
    const int64_t qs = H * D, kvs = KVH * D;
    const bool want_k = !dk.empty(), want_v = !dv.empty();
    std::vector<float> dk_h(want_k ? size_t(H * T * D) : 0), dv_h(want_v ? size_t(H * T * D) : 0);  // (H, T, D)
    const double flops = 4.0 * double(T) * double(T + 1) * double(H) * double(D);
    detail::for_items(pool, H, flops, [&](int64_t h0, int64_t h1) {
        std::vector<float> Vt, dZ(static_cast<size_t>(T * T));  // (D, T), (T, T)
        for (int64_t h = h0; h < h1; ++h) {
            const int64_t kvh = h / group;
            const float* P = probs.data() + h * T * T;
            const float* dO = dout.data() + h * D;  // row t at dO + t * qs
            if (!dq.empty() || want_k) {
                // dP = dO V^T over the visible keys, then dZ in place.
                pack_transposed(Vt, v.data() + kvh * D, T, kvs, D);
                for (int64_t t0 = 0; t0 < T; t0 += kRows) {
                    const int64_t nt = std::min(kRows, T - t0);
                    detail::gemm(dZ.data() + t0 * T, T, dO + t0 * qs, qs, 1, Vt.data(), T, nt, t0 + nt, D, false);
                }
                for (int64_t t = 0; t < T; ++t) {
                    const float* p = P + t * T;
                    float* z = dZ.data() + t * T;
                    double pdp = 0.0;
                    for (int64_t s = 0; s <= t; ++s) pdp += double(p[s]) * double(z[s]);
                    for (int64_t s = 0; s <= t; ++s) z[s] = scale * p[s] * (z[s] - float(pdp));
                    std::fill(z + t + 1, z + T, 0.0f);
                }
                if (!dq.empty())  // dQ_h += dZ K over the visible keys
                    for (int64_t t0 = 0; t0 < T; t0 += kRows) {
                        const int64_t nt = std::min(kRows, T - t0);
                        detail::gemm(dq.data() + t0 * qs + h * D, qs, dZ.data() + t0 * T, T, 1, k.data() + kvh * D, kvs,
                                     nt, D, t0 + nt, true);
                    }
                if (want_k)  // dK[s] += sum_{t >= s} dZ[t, s] Q_h[t]
                    for (int64_t s0 = 0; s0 < T; s0 += kRows) {
                        const int64_t ns = std::min(kRows, T - s0);
                        detail::gemm(dk_h.data() + (h * T + s0) * D, D, dZ.data() + s0 * T + s0, 1, T,
                                     q.data() + s0 * qs + h * D, qs, ns, D, T - s0, true);
                    }
            }
            if (want_v)  // dV[s] += sum_{t >= s} P[t, s] dO[t]
                for (int64_t s0 = 0; s0 < T; s0 += kRows) {
                    const int64_t ns = std::min(kRows, T - s0);
                    detail::gemm(dv_h.data() + (h * T + s0) * D, D, P + s0 * T + s0, 1, T, dO + s0 * qs, qs, ns, D,
                                 T - s0, true);
                }
        }
    });
    // Gather the per-head parts into the KV heads, in head order.
    for (int64_t h = 0; h < H; ++h) {
        const int64_t kvh = h / group;
        for (int64_t s = 0; s < T; ++s)
            for (int64_t i = 0; i < D; ++i) {
                const size_t dst = size_t(s * kvs + kvh * D + i), src = size_t((h * T + s) * D + i);
                if (want_k) dk[dst] += dk_h[src];
                if (want_v) dv[dst] += dv_h[src];
            }
    }
}

}  // namespace ef::train
