#include "runtime/ssd.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/gemm.h"
#include "runtime/ops.h"
#include "runtime/thread_pool.h"

namespace ef::rt {

void ssd_chunked_fast(std::span<float> y, std::span<float> S, std::span<const float> x, std::span<const float> dt,
                      std::span<const float> A, std::span<const float> B, std::span<const float> C,
                      std::span<const float> D, int64_t T, int64_t n_heads, int64_t head_dim, int64_t n_groups,
                      int64_t d_state, int64_t chunk, ThreadPool* pool) {
    const int64_t H = n_heads, P = head_dim, G = n_groups, N = d_state;
    const int64_t heads_per_group = H / G;
    const int64_t L = std::max<int64_t>(1, std::min(chunk, T));
    const size_t f = sizeof(float);
    // y[t * ldy + r] = w_row_r . a_row_t (kernels/gemm.h); plain floats for F32.
    const kernels::GemmFn gemm = kernels::gemm_traits(DType::F32)->best;
    std::vector<float> CB(size_t(G * L * L));  // (G, L, L): C_t . B_s
    std::vector<float> BT(size_t(G * N * L));  // (G, N, L): B_g transposed

    for (int64_t c0 = 0; c0 < T; c0 += L) {
        const int64_t Lc = std::min(L, T - c0);
        const float* B0 = B.data() + c0 * G * N;  // row (t, g) at B0 + (t * G + g) * N
        const float* C0 = C.data() + c0 * G * N;
        for (int64_t g = 0; g < G; ++g) {
            gemm(N, Lc, Lc, B0 + g * N, size_t(G * N) * f, C0 + g * N, size_t(G * N) * f, CB.data() + g * L * L, L);
            for (int64_t t = 0; t < Lc; ++t)
                for (int64_t n = 0; n < N; ++n) BT[size_t((g * N + n) * L + t)] = B0[(t * G + g) * N + n];
        }

        auto heads = [&](int64_t h0, int64_t h1) {
            std::vector<float> dts(static_cast<size_t>(Lc)), decay_in(dts.size()), w(dts.size());
            std::vector<double> cum(static_cast<size_t>(Lc));
            std::vector<float> XT(static_cast<size_t>(P * Lc)), M(static_cast<size_t>(Lc * Lc)), Yi(XT.size()), Ys(XT.size()), dS(static_cast<size_t>(P * N));
            for (int64_t h = h0; h < h1; ++h) {
                const int64_t g = h / heads_per_group;
                double run = 0.0;  // cumulative log-decay, summed in double like the reference
                for (int64_t t = 0; t < Lc; ++t) {
                    dts[size_t(t)] = softplus(dt[size_t((c0 + t) * H + h)]);
                    run += double(dts[size_t(t)] * A[size_t(h)]);
                    cum[size_t(t)] = run;
                    decay_in[size_t(t)] = std::exp(float(run));
                }
                const float* X0 = x.data() + c0 * H * P + h * P;  // row t at X0 + t * H * P
                for (int64_t t = 0; t < Lc; ++t)
                    for (int64_t p = 0; p < P; ++p) XT[size_t(p * Lc + t)] = X0[t * H * P + p];
                const float* cb = CB.data() + g * L * L;
                for (int64_t t = 0; t < Lc; ++t) {
                    float* m = M.data() + t * Lc;
                    for (int64_t s = 0; s <= t; ++s)
                        m[s] = cb[t * L + s] * std::exp(float(cum[size_t(t)] - cum[size_t(s)])) * dts[size_t(s)];
                    std::fill(m + t + 1, m + Lc, 0.0f);
                }
                float* Sh = S.data() + h * P * N;  // (P, N)
                // Yi: (Lc, P) = M X_h;  Ys: (Lc, P) = C_g S_h^T (the state entering the chunk)
                gemm(Lc, P, Lc, XT.data(), size_t(Lc) * f, M.data(), size_t(Lc) * f, Yi.data(), P);
                gemm(N, P, Lc, Sh, size_t(N) * f, C0 + g * N, size_t(G * N) * f, Ys.data(), P);
                for (int64_t t = 0; t < Lc; ++t) {
                    float* yt = y.data() + (c0 + t) * H * P + h * P;
                    const float* xt = X0 + t * H * P;
                    for (int64_t p = 0; p < P; ++p)
                        yt[p] = Yi[size_t(t * P + p)] + decay_in[size_t(t)] * Ys[size_t(t * P + p)] + D[size_t(h)] * xt[p];
                }
                // S_h <- exp(cum_last) S_h + (w o X_h)^T B_g
                const double last = cum[size_t(Lc - 1)];
                for (int64_t s = 0; s < Lc; ++s) w[size_t(s)] = std::exp(float(last - cum[size_t(s)])) * dts[size_t(s)];
                for (int64_t p = 0; p < P; ++p)
                    for (int64_t s = 0; s < Lc; ++s) XT[size_t(p * Lc + s)] *= w[size_t(s)];
                gemm(Lc, N, P, BT.data() + g * N * L, size_t(L) * f, XT.data(), size_t(Lc) * f, dS.data(), N);
                const float out_decay = std::exp(float(last));
                for (int64_t i = 0; i < P * N; ++i) Sh[i] = out_decay * Sh[i] + dS[size_t(i)];
            }
        };
        const double work = double(Lc) * double(Lc + 2 * N) * double(P) * double(H);
        if (!pool || pool->threads() < 2 || H < 2 || work < 65536.0) heads(0, H);
        else pool->parallel_for(H, 1, heads);
    }
}

}  // namespace ef::rt
