// matmul_forward / matmul_backward (grad_ops.h): the training step's main cost.
//
// All three products are one blocked kernel, "Y (+)= S Z": Y: (M, N) row-major, Z: (K, N) with its
// rows contiguous, and S(m, k) a scalar read with arbitrary strides. A 4 x 16 tile of Y is kept in
// registers while k runs; each k broadcasts 4 scalars of S and multiplies them into 16 contiguous
// values of Z (elementwise, so the compiler vectorizes it without reassociating any sum):
//   forward  out (T, OC) = x (T, C) @ W^T:   S = x,           Z = W^T (a packed panel of W)
//   dx       (T, C)     += dout (T, OC) @ W: S = dout,        Z = W
//   dW       (OC, C)    += dout^T @ x:       S = dout^T,      Z = x
// Every element is one sum over k in order, started from 0, whatever the tile shape, so results
// do not depend on the thread count. The output is cut into 64 x 64 blocks handed to the pool.
//
// On x86-64 (GCC/Clang) the kernel is also compiled for x86-64-v3 (AVX2/FMA) and picked at load
// time (target_clones); one binary still runs on every x86-64 CPU.
#include <algorithm>
#include <vector>

#include "core/train/grad_ops.h"
#include "core/train/grad_ops_detail.h"

namespace ef::train {

namespace {

constexpr int64_t kNR = 16;     // tile width (columns of Y held in registers)
constexpr int64_t kBlock = 64;  // the blocks of Y handed to threads: kBlock x kBlock

// One MR x NR tile: Y[m, n] (+)= sum_k S[m * sm + k * sk] * Z[k * ldz + n], m < MR, n < nr <= kNR.
template <int MR, bool Full>
inline __attribute__((always_inline)) void tile(float* Y, int64_t ldy, const float* S, int64_t sm, int64_t sk,
                                                const float* Z, int64_t ldz, int64_t K, int64_t nr, bool add) {
    float acc[MR][kNR] = {};
    for (int64_t k = 0; k < K; ++k) {
        const float* z = Z + k * ldz;
        for (int r = 0; r < MR; ++r) {
            const float s = S[r * sm + k * sk];
            if constexpr (Full) {
                for (int64_t j = 0; j < kNR; ++j) acc[r][j] += s * z[j];
            } else {
                for (int64_t j = 0; j < nr; ++j) acc[r][j] += s * z[j];
            }
        }
    }
    for (int r = 0; r < MR; ++r) {
        float* y = Y + r * ldy;
        if (add)
            for (int64_t j = 0; j < nr; ++j) y[j] += acc[r][j];
        else
            for (int64_t j = 0; j < nr; ++j) y[j] = acc[r][j];
    }
}

// Y: (M, N) block (+)= S Z over K (see the file comment).
EF_TRAIN_CLONES
void gemm_block(float* Y, int64_t ldy, const float* S, int64_t sm, int64_t sk, const float* Z, int64_t ldz, int64_t M,
                int64_t N, int64_t K, bool add) {
    for (int64_t n0 = 0; n0 < N; n0 += kNR) {
        const int64_t nr = std::min(kNR, N - n0);
        int64_t m0 = 0;
        if (nr == kNR) {
            for (; m0 + 4 <= M; m0 += 4)
                tile<4, true>(Y + m0 * ldy + n0, ldy, S + m0 * sm, sm, sk, Z + n0, ldz, K, nr, add);
            for (; m0 < M; ++m0) tile<1, true>(Y + m0 * ldy + n0, ldy, S + m0 * sm, sm, sk, Z + n0, ldz, K, nr, add);
        } else {
            for (; m0 + 4 <= M; m0 += 4)
                tile<4, false>(Y + m0 * ldy + n0, ldy, S + m0 * sm, sm, sk, Z + n0, ldz, K, nr, add);
            for (; m0 < M; ++m0) tile<1, false>(Y + m0 * ldy + n0, ldy, S + m0 * sm, sm, sk, Z + n0, ldz, K, nr, add);
        }
    }
}

int64_t blocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

}  // namespace

void detail::gemm(float* Y, int64_t ldy, const float* S, int64_t sm, int64_t sk, const float* Z, int64_t ldz,
                  int64_t M, int64_t N, int64_t K, bool add) {
    gemm_block(Y, ldy, S, sm, sk, Z, ldz, M, N, K, add);
}

void matmul_forward(std::span<float> out, std::span<const float> x, std::span<const float> W, int64_t T, int64_t C,
                    int64_t OC, rt::ThreadPool* pool) {
    // Blocks of out: (row block of T) x (column block of OC). Each packs its kBlock rows of W
    // transposed, Wt: (C, kBlock), so the kernel reads them contiguously.
    const int64_t bt = blocks(T), bo = blocks(OC);
    detail::for_items(pool, bt * bo, 2.0 * double(T) * double(C) * double(OC), [&](int64_t b0, int64_t b1) {
        std::vector<float> Wt;
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t t0 = (b / bo) * kBlock, o0 = (b % bo) * kBlock;
            const int64_t nt = std::min(kBlock, T - t0), no = std::min(kBlock, OC - o0);
            Wt.resize(size_t(C * no));
            for (int64_t o = 0; o < no; ++o) {
                const float* w = W.data() + (o0 + o) * C;
                for (int64_t c = 0; c < C; ++c) Wt[size_t(c * no + o)] = w[c];
            }
            // out[t0.., o0..] = x[t0.., :] @ Wt: S(m = t, k = c) = x[t * C + c].
            gemm_block(out.data() + t0 * OC + o0, OC, x.data() + t0 * C, C, 1, Wt.data(), no, nt, no, C, false);
        }
    });
}

void matmul_backward(std::span<float> dx, std::span<float> dW, std::span<const float> dout, std::span<const float> x,
                     std::span<const float> W, int64_t T, int64_t C, int64_t OC, rt::ThreadPool* pool) {
    const double flops = 2.0 * double(T) * double(C) * double(OC);
    const int64_t bc = blocks(C);
    if (!dx.empty()) {
        // dx[t, c] += sum_o dout[t, o] W[o, c]: S(m = t, k = o) = dout[t * OC + o], Z = W (OC, C).
        const int64_t bt = blocks(T);
        detail::for_items(pool, bt * bc, flops, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
                const int64_t t0 = (b / bc) * kBlock, c0 = (b % bc) * kBlock;
                const int64_t nt = std::min(kBlock, T - t0), nc = std::min(kBlock, C - c0);
                gemm_block(dx.data() + t0 * C + c0, C, dout.data() + t0 * OC, OC, 1, W.data() + c0, C, nt, nc, OC,
                           true);
            }
        });
    }
    if (!dW.empty()) {
        // dW[o, c] += sum_t dout[t, o] x[t, c]: S(m = o, k = t) = dout[t * OC + o], Z = x (T, C).
        const int64_t bo = blocks(OC);
        detail::for_items(pool, bo * bc, flops, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
                const int64_t o0 = (b / bc) * kBlock, c0 = (b % bc) * kBlock;
                const int64_t no = std::min(kBlock, OC - o0), nc = std::min(kBlock, C - c0);
                gemm_block(dW.data() + o0 * C + c0, C, dout.data() + o0, 1, OC, x.data() + c0, C, no, nc, T, true);
            }
        });
    }
}

}  // namespace ef::train
