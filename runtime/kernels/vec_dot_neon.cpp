// NEON kernels for aarch64 (baseline Advanced SIMD, no dot-product extension needed): F32 and
// the 32-weight blocks; other types use the scalar kernels there.
// Everything here is intrinsics or internal-linkage helpers (see vec_dot_impl.h).
#include <arm_neon.h>

#include "quant/ggml_blocks.h"
#include "runtime/kernels/vec_dot_impl.h"

namespace ef::rt::kernels::neon {

using namespace ef::ggml;

namespace {

float h2f(uint16_t h) {
    __fp16 v;
    __builtin_memcpy(&v, &h, 2);
    return float(v);
}

// 32 signed bytes by 32 signed bytes -> 4 int32 partial sums. Two products per int16 lane
// stay below 2^15 (|q| <= 128, |y| <= 127).
int32x4_t dot32(int8x16_t x0, int8x16_t x1, int8x16_t y0, int8x16_t y1) {
    int16x8_t p0 = vmull_s8(vget_low_s8(x0), vget_low_s8(y0));
    p0 = vmlal_s8(p0, vget_high_s8(x0), vget_high_s8(y0));
    int16x8_t p1 = vmull_s8(vget_low_s8(x1), vget_low_s8(y1));
    p1 = vmlal_s8(p1, vget_high_s8(x1), vget_high_s8(y1));
    return vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1));
}

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
        s1 = vfmaq_f32(s1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; ++i) s += x[i] * y[i];
    return s;
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const int32x4_t p = dot32(vld1q_s8(x[b].qs), vld1q_s8(x[b].qs + 16), vld1q_s8(y[b].qs), vld1q_s8(y[b].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x[b].d) * h2f(y[b].d));
    }
    return vaddvq_f32(acc);
}

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const uint8x16_t raw = vld1q_u8(x[b].qs);  // weights 0..15 low nibbles, 16..31 high
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, m4)), eight);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight);
        const int32x4_t p = dot32(lo, hi, vld1q_s8(y[b].qs), vld1q_s8(y[b].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x[b].d) * h2f(y[b].d));
    }
    return vaddvq_f32(acc);
}

}  // namespace ef::rt::kernels::neon
