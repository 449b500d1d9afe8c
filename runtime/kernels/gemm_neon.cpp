// NEON GEMM (aarch64): register tiles of weight rows x tokens, each weight vector loaded once per
// tile and used for every token of it. F32: 4 rows x 4 tokens of 4-lane sums. Q8_0: 2 rows x 4
// tokens, block products in int16 pairs widened into int32 (exact), one f32 multiply-add per
// block with d_w * d_x. Internal linkage / intrinsics only.
#include <arm_neon.h>

#include "quant/ggml_blocks.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/gemm_impl.h"

namespace ef::rt::kernels::gemm_neon {

using namespace ef::ggml;

namespace {

template <int RM, int RN>
void tile_f32(int64_t n, const uint8_t* w, size_t wrb, const float* a, int64_t lda, float* y, int64_t ldy) {
    float32x4_t acc[RM][RN];
    for (int i = 0; i < RM; ++i)
        for (int t = 0; t < RN; ++t) acc[i][t] = vdupq_n_f32(0.0f);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        float32x4_t wv[RM];
        for (int i = 0; i < RM; ++i) wv[i] = vld1q_f32(reinterpret_cast<const float*>(w + size_t(i) * wrb) + j);
        for (int t = 0; t < RN; ++t) {
            const float32x4_t av = vld1q_f32(a + t * lda + j);
            for (int i = 0; i < RM; ++i) acc[i][t] = vfmaq_f32(acc[i][t], wv[i], av);
        }
    }
    for (int t = 0; t < RN; ++t)
        for (int i = 0; i < RM; ++i) {
            float s = vaddvq_f32(acc[i][t]);
            const float* wr = reinterpret_cast<const float*>(w + size_t(i) * wrb);
            for (int64_t k = j; k < n; ++k) s += wr[k] * a[t * lda + k];
            y[t * ldy + i] = s;
        }
}

int32_t dot_block(int8x16_t w0, int8x16_t w1, const int8_t* x) {
    const int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
    s = vpadalq_s16(s, vmull_high_s8(w0, x0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
    s = vpadalq_s16(s, vmull_high_s8(w1, x1));
    return vaddvq_s32(s);
}

float h2f(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }

template <int RM, int RN>
void tile_q8_0(int64_t nb, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* y, int64_t ldy) {
    float acc[RM][RN] = {};
    for (int64_t b = 0; b < nb; ++b) {
        int8x16_t w0[RM], w1[RM];
        float dw[RM];
        for (int i = 0; i < RM; ++i) {
            const block_q8_0& blk = reinterpret_cast<const block_q8_0*>(w + size_t(i) * wrb)[b];
            w0[i] = vld1q_s8(blk.qs);
            w1[i] = vld1q_s8(blk.qs + 16);
            dw[i] = h2f(blk.d);
        }
        for (int t = 0; t < RN; ++t) {
            const block_q8_0& xb = reinterpret_cast<const block_q8_0*>(a + size_t(t) * arb)[b];
            const float dx = h2f(xb.d);
            for (int i = 0; i < RM; ++i) acc[i][t] += dw[i] * dx * float(dot_block(w0[i], w1[i], xb.qs));
        }
    }
    for (int t = 0; t < RN; ++t)
        for (int i = 0; i < RM; ++i) y[t * ldy + i] = acc[i][t];
}

// Full RM x RN tiles, then the leftover tokens one at a time and the leftover rows singly.
template <int RM, int RN, class Tile1, class TileM>
void sweep(int64_t rows, int64_t T, TileM full, Tile1 single) {
    int64_t r = 0;
    for (; r + RM <= rows; r += RM) {
        int64_t t = 0;
        for (; t + RN <= T; t += RN) full(r, t, true);
        for (; t < T; ++t) full(r, t, false);
    }
    for (; r < rows; ++r)
        for (int64_t t = 0; t < T; ++t) single(r, t);
}

}  // namespace

void gemm_f32(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* af = static_cast<const float*>(a);
    const int64_t lda = int64_t(arb / sizeof(float));
    sweep<4, 4>(
        rows, T,
        [&](int64_t r, int64_t t, bool whole) {
            if (whole) tile_f32<4, 4>(n, wb + size_t(r) * wrb, wrb, af + t * lda, lda, y + t * ldy + r, ldy);
            else tile_f32<4, 1>(n, wb + size_t(r) * wrb, wrb, af + t * lda, lda, y + t * ldy + r, ldy);
        },
        [&](int64_t r, int64_t t) { tile_f32<1, 1>(n, wb + size_t(r) * wrb, wrb, af + t * lda, lda, y + t * ldy + r, ldy); });
}

void gemm_q8_0(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    const int64_t nb = n / QK8_0;
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    sweep<2, 4>(
        rows, T,
        [&](int64_t r, int64_t t, bool whole) {
            if (whole) tile_q8_0<2, 4>(nb, wb + size_t(r) * wrb, wrb, ab + size_t(t) * arb, arb, y + t * ldy + r, ldy);
            else tile_q8_0<2, 1>(nb, wb + size_t(r) * wrb, wrb, ab + size_t(t) * arb, arb, y + t * ldy + r, ldy);
        },
        [&](int64_t r, int64_t t) { tile_q8_0<1, 1>(nb, wb + size_t(r) * wrb, wrb, ab + size_t(t) * arb, arb, y + t * ldy + r, ldy); });
}

}  // namespace ef::rt::kernels::gemm_neon
