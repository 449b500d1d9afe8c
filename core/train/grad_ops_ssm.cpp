// The state-space scans (grad_ops.h): Mamba-1's selective scan and Mamba-2's SSD, both run as
// their step recurrences from a zero state, saving every state for the backward.
//
// The Mamba-1 forward does rt::selective_scan_seq's arithmetic (same operations in the same
// order), so its outputs agree bit for bit. SSD sums over the state in 8 lanes (so the loops
// vectorize; compiled for AVX2 too) and agrees with T rt::ssd_step calls to float rounding.
// Mamba-1 is split over fixed chunks of channels, SSD over heads. The backward walks t downwards
// carrying dL/dh (the gradient reaching the state after step t from all later steps):
//   h_t = h_{t-1} a_t + B_t x_t dt'_t,  a_t = exp(dt'_t A),  dt'_t = softplus(dt_t)
//   y_t = C_t . h_t + D x_t
// so with dh += dy_t C_t at step t:  dC_t += dy_t h_t,  dD += dy_t x_t,  dx_t += dy_t D,
//   d a_t = dh . h_{t-1},  dB_t += dh x_t dt'_t,  d(x dt')_t = dh . B_t,  dh <- dh a_t,
//   ddt'_t = d a_t a_t A + d(x dt')_t x_t,  dA += d a_t a_t dt'_t,  dx_t += d(x dt')_t dt'_t,
//   ddt_t = ddt'_t sigmoid(dt_t).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/train/grad_ops.h"
#include "core/train/grad_ops_detail.h"
#include "runtime/ops.h"

namespace ef::train {

namespace {
constexpr int64_t kScanChannels = 16;  // Mamba-1 channels per work item
}

// ---- Mamba-1 -----------------------------------------------------------------------------------

void selective_scan_forward(std::span<float> y, std::span<float> hs, std::span<const float> x,
                            std::span<const float> dt, std::span<const float> A, std::span<const float> B,
                            std::span<const float> Cm, std::span<const float> D, int64_t T, int64_t C, int64_t N,
                            rt::ThreadPool* pool) {
    const int64_t hstep = C * N;  // one saved state (C, N)
    std::fill(hs.begin(), hs.begin() + hstep, 0.0f);
    const int64_t chunks = (C + kScanChannels - 1) / kScanChannels;
    detail::for_items(pool, chunks, 20.0 * double(T) * double(hstep), [&](int64_t k0, int64_t k1) {
        for (int64_t c = k0 * kScanChannels; c < std::min(C, k1 * kScanChannels); ++c) {
            const float* Ac = A.data() + c * N;
            for (int64_t t = 0; t < T; ++t) {
                const size_t i = size_t(t * C + c);
                const float dts = rt::softplus(dt[i]);
                const float xdt = x[i] * dts;
                const float* hp = hs.data() + t * hstep + c * N;  // h_{t-1}
                float* hc = hs.data() + (t + 1) * hstep + c * N;  // h_t
                const float* Bt = B.data() + t * N;
                const float* Ct = Cm.data() + t * N;
                float acc = 0.0f;
                for (int64_t n = 0; n < N; ++n) {
                    hc[n] = hp[n] * std::exp(dts * Ac[n]) + Bt[n] * xdt;
                    acc += hc[n] * Ct[n];
                }
                y[i] = acc + x[i] * D[size_t(c)];
            }
        }
    });
}

void selective_scan_forward(std::span<float> y, std::span<float> hs, std::span<const float> x,
                            std::span<const float> dt, std::span<const float> A, std::span<const float> B,
                            std::span<const float> Cm, std::span<const float> D, int64_t T, int64_t C, int64_t N) {
    selective_scan_forward(y, hs, x, dt, A, B, Cm, D, T, C, N, nullptr);
}

// Channels are handled in fixed chunks of kScanChannels (split over the pool); B and C are shared
// by all channels, so each chunk sums dB/dC into its own (T, N) buffers, added in chunk order.
void selective_scan_backward(std::span<float> dx, std::span<float> ddt, std::span<float> dA, std::span<float> dB,
                             std::span<float> dCm, std::span<float> dD, std::span<const float> dy,
                             std::span<const float> hs, std::span<const float> x, std::span<const float> dt,
                             std::span<const float> A, std::span<const float> B, std::span<const float> Cm,
                             std::span<const float> D, int64_t T, int64_t C, int64_t N, rt::ThreadPool* pool) {
    const int64_t hstep = C * N;
    const int64_t chunks = (C + kScanChannels - 1) / kScanChannels;
    const bool want_b = !dB.empty(), want_c = !dCm.empty();
    std::vector<float> dB_k(want_b ? size_t(chunks * T * N) : 0), dC_k(want_c ? size_t(chunks * T * N) : 0);
    detail::for_items(pool, chunks, 30.0 * double(T) * double(hstep), [&](int64_t k0, int64_t k1) {
        std::vector<float> dh(static_cast<size_t>(N));  // dL/dh of one channel after step t: (N)
        for (int64_t kc = k0; kc < k1; ++kc) {
            float* dBk = want_b ? dB_k.data() + kc * T * N : nullptr;
            float* dCk = want_c ? dC_k.data() + kc * T * N : nullptr;
            for (int64_t c = kc * kScanChannels; c < std::min(C, (kc + 1) * kScanChannels); ++c) {
                const float* Ac = A.data() + c * N;
                std::fill(dh.begin(), dh.end(), 0.0f);
                double dDc = 0.0;
                for (int64_t t = T - 1; t >= 0; --t) {
                    const size_t i = size_t(t * C + c);
                    const float dts = rt::softplus(dt[i]);
                    const float xi = x[i], xdt = xi * dts, g = dy[i];
                    const float* hp = hs.data() + t * hstep + c * N;
                    const float* hc = hs.data() + (t + 1) * hstep + c * N;
                    const float* Bt = B.data() + t * N;
                    const float* Ct = Cm.data() + t * N;
                    float dxi = g * D[size_t(c)], ddts = 0.0f, dxdt = 0.0f;
                    dDc += double(g) * double(xi);
                    for (int64_t n = 0; n < N; ++n) {
                        dh[size_t(n)] += g * Ct[n];
                        if (dCk) dCk[t * N + n] += g * hc[n];
                        const float a = std::exp(dts * Ac[n]);
                        const float da = dh[size_t(n)] * hp[n] * a;  // dL/d(dt' A)
                        ddts += da * Ac[n];
                        if (!dA.empty()) dA[size_t(c * N + n)] += da * dts;
                        if (dBk) dBk[t * N + n] += dh[size_t(n)] * xdt;
                        dxdt += dh[size_t(n)] * Bt[n];
                        dh[size_t(n)] *= a;
                    }
                    dxi += dxdt * dts;
                    ddts += dxdt * xi;
                    if (!dx.empty()) dx[i] += dxi;
                    if (!ddt.empty()) ddt[i] += ddts * softplus_grad(dt[i]);
                }
                if (!dD.empty()) dD[size_t(c)] += float(dDc);
            }
        }
    });
    for (int64_t kc = 0; kc < chunks; ++kc)
        for (int64_t j = 0; j < T * N; ++j) {
            if (want_b) dB[size_t(j)] += dB_k[size_t(kc * T * N + j)];
            if (want_c) dCm[size_t(j)] += dC_k[size_t(kc * T * N + j)];
        }
}

void selective_scan_backward(std::span<float> dx, std::span<float> ddt, std::span<float> dA, std::span<float> dB,
                             std::span<float> dCm, std::span<float> dD, std::span<const float> dy,
                             std::span<const float> hs, std::span<const float> x, std::span<const float> dt,
                             std::span<const float> A, std::span<const float> B, std::span<const float> Cm,
                             std::span<const float> D, int64_t T, int64_t C, int64_t N) {
    selective_scan_backward(dx, ddt, dA, dB, dCm, dD, dy, hs, x, dt, A, B, Cm, D, T, C, N, nullptr);
}

// ---- Mamba-2 -----------------------------------------------------------------------------------

namespace {

constexpr int64_t kLanes = 8;  // the n-sums run in 8 independent lanes so they vectorize

float lane_sum(const float* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

// One head h over all T steps. Ss: (T + 1, H, P, N) as ssd_forward; the others at their (t, h) rows.
EF_TRAIN_CLONES
void ssd_head_forward(float* y, float* Ss, const float* x, const float* dt, float A, const float* B, const float* Cm,
                      float D, int64_t h, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N) {
    const int64_t g = h / (H / G);
    const int64_t sstep = H * P * N;
    std::fill(Ss + h * P * N, Ss + (h + 1) * P * N, 0.0f);
    for (int64_t t = 0; t < T; ++t) {
        const float dts = rt::softplus(dt[t * H + h]);
        const float decay = std::exp(dts * A);
        const float* Bg = B + (t * G + g) * N;
        const float* Cg = Cm + (t * G + g) * N;
        for (int64_t p = 0; p < P; ++p) {
            const int64_t i = (t * H + h) * P + p;
            const float xdt = x[i] * dts;
            const float* sp = Ss + t * sstep + (h * P + p) * N;  // S_{t-1}[h, p, :]
            float* s = Ss + (t + 1) * sstep + (h * P + p) * N;   // S_t[h, p, :]
            float lanes[kLanes] = {};
            int64_t n = 0;
            for (; n + kLanes <= N; n += kLanes)
                for (int64_t j = 0; j < kLanes; ++j) {
                    s[n + j] = sp[n + j] * decay + Bg[n + j] * xdt;
                    lanes[j] += s[n + j] * Cg[n + j];
                }
            float acc = lane_sum(lanes);
            for (; n < N; ++n) {
                s[n] = sp[n] * decay + Bg[n] * xdt;
                acc += s[n] * Cg[n];
            }
            y[i] = acc + x[i] * D;
        }
    }
}

// One head h, t downwards (see the file comment); dS: (P, N) scratch; dBh, dCh: (T, N) this head's
// shares of dB / dC (always computed); dx, ddt null when not wanted; dA, dD of the head returned.
EF_TRAIN_CLONES
void ssd_head_backward(float* dx, float* ddt, float* dBh, float* dCh, double* dA_out, double* dD_out, float* dS,
                       const float* dy, const float* Ss, const float* x, const float* dt, float A, const float* B,
                       const float* Cm, float D, int64_t h, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N) {
    const int64_t g = h / (H / G);
    const int64_t sstep = H * P * N;
    std::fill(dS, dS + P * N, 0.0f);
    double dAh = 0.0, dDh = 0.0;
    for (int64_t t = T - 1; t >= 0; --t) {
        const float dts = rt::softplus(dt[t * H + h]);
        const float decay = std::exp(dts * A);
        const float* Bg = B + (t * G + g) * N;
        const float* Cg = Cm + (t * G + g) * N;
        float* dBt = dBh + t * N;
        float* dCt = dCh + t * N;
        double ddecay = 0.0, ddts = 0.0;
        for (int64_t p = 0; p < P; ++p) {
            const int64_t i = (t * H + h) * P + p;
            const float xi = x[i], xdt = xi * dts, gy = dy[i];
            const float* sp = Ss + t * sstep + (h * P + p) * N;
            const float* s = Ss + (t + 1) * sstep + (h * P + p) * N;
            float* ds = dS + p * N;
            dDh += double(gy) * double(xi);
            // d = ds + gy C (the output's share): dL/dS_t; then dC_t += gy S_t, dB_t += d x dt',
            // d(decay) += d . S_{t-1}, d(x dt') += d . B_t, and ds <- d * decay for step t - 1.
            float l_da[kLanes] = {}, l_dx[kLanes] = {};
            int64_t n = 0;
            for (; n + kLanes <= N; n += kLanes)
                for (int64_t j = 0; j < kLanes; ++j) {
                    const float d = ds[n + j] + gy * Cg[n + j];
                    dCt[n + j] += gy * s[n + j];
                    dBt[n + j] += d * xdt;
                    l_da[j] += d * sp[n + j];
                    l_dx[j] += d * Bg[n + j];
                    ds[n + j] = d * decay;
                }
            float dda = lane_sum(l_da), dxdt = lane_sum(l_dx);
            for (; n < N; ++n) {
                const float d = ds[n] + gy * Cg[n];
                dCt[n] += gy * s[n];
                dBt[n] += d * xdt;
                dda += d * sp[n];
                dxdt += d * Bg[n];
                ds[n] = d * decay;
            }
            ddecay += double(dda);
            ddts += double(dxdt) * double(xi);
            if (dx) dx[i] += gy * D + dxdt * dts;
        }
        // decay = exp(dt' A): d(dt' A) = ddecay * decay.
        const double dz = ddecay * double(decay);
        ddts += dz * double(A);
        dAh += dz * double(dts);
        if (ddt) ddt[t * H + h] += float(ddts) * softplus_grad(dt[t * H + h]);
    }
    *dA_out = dAh;
    *dD_out = dDh;
}

}  // namespace

void ssd_forward(std::span<float> y, std::span<float> Ss, std::span<const float> x, std::span<const float> dt,
                 std::span<const float> A, std::span<const float> B, std::span<const float> Cm,
                 std::span<const float> D, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N,
                 rt::ThreadPool* pool) {
    const double flops = 4.0 * double(T) * double(H * P * N);
    detail::for_items(pool, H, flops, [&](int64_t h0, int64_t h1) {
        for (int64_t h = h0; h < h1; ++h)
            ssd_head_forward(y.data(), Ss.data(), x.data(), dt.data(), A[size_t(h)], B.data(), Cm.data(), D[size_t(h)], h,
                             T, H, P, G, N);
    });
}

// B and C are shared by the heads of a group, so each head sums dB/dC into its own (T, N) buffers,
// added into dB/dC afterwards in head order (the same sums whatever the thread count).
void ssd_backward(std::span<float> dx, std::span<float> ddt, std::span<float> dA, std::span<float> dB,
                  std::span<float> dCm, std::span<float> dD, std::span<const float> dy, std::span<const float> Ss,
                  std::span<const float> x, std::span<const float> dt, std::span<const float> A,
                  std::span<const float> B, std::span<const float> Cm, std::span<const float> D, int64_t T, int64_t H,
                  int64_t P, int64_t G, int64_t N, rt::ThreadPool* pool) {
    const int64_t hpg = H / G;
    const bool want_b = !dB.empty(), want_c = !dCm.empty();
    std::vector<float> dB_h(size_t(H * T * N)), dC_h(size_t(H * T * N));  // (H, T, N)
    std::vector<double> dA_h(static_cast<size_t>(H)), dD_h(static_cast<size_t>(H));
    const double flops = 10.0 * double(T) * double(H * P * N);
    detail::for_items(pool, H, flops, [&](int64_t h0, int64_t h1) {
        std::vector<float> dS(static_cast<size_t>(P * N));  // dL/dS_t[h]: (P, N)
        for (int64_t h = h0; h < h1; ++h)
            ssd_head_backward(dx.empty() ? nullptr : dx.data(), ddt.empty() ? nullptr : ddt.data(),
                              dB_h.data() + h * T * N, dC_h.data() + h * T * N,
                              &dA_h[size_t(h)], &dD_h[size_t(h)], dS.data(), dy.data(), Ss.data(), x.data(), dt.data(),
                              A[size_t(h)], B.data(), Cm.data(), D[size_t(h)], h, T, H, P, G, N);
    });
    for (int64_t h = 0; h < H; ++h) {
        if (!dA.empty()) dA[size_t(h)] += float(dA_h[size_t(h)]);
        if (!dD.empty()) dD[size_t(h)] += float(dD_h[size_t(h)]);
        const int64_t g = h / hpg;
        for (int64_t t = 0; t < T; ++t)
            for (int64_t n = 0; n < N; ++n) {
                const size_t dst = size_t((t * G + g) * N + n), src = size_t((h * T + t) * N + n);
                if (want_b) dB[dst] += dB_h[src];
                if (want_c) dCm[dst] += dC_h[src];
            }
    }
}

}  // namespace ef::train
