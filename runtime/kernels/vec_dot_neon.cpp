// NEON kernels for aarch64 (baseline ARMv8.0 Advanced SIMD: no dot-product or FP16-arithmetic
// extension needed). Floats: four float32x4 accumulators (F16 widened with vcvt_f32_f16, BF16 by
// a 16-bit shift). Quantized types: int8 x int8 -> int16 products (vmull/vmlal, two per lane),
// pairwise widened to int32 and scaled per sub-block with vmla; the k-quants sum each
// super-block exactly in int32 and scale it with the scalar kernel's own float expression, so
// they agree with it to the bit.
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
float bf2f(uint16_t b) {
    const uint32_t u = uint32_t(b) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
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

namespace {
float32x4_t load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
float32x4_t load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
}  // namespace

float vec_dot_f16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, load_f16(x + i), load_f16(y + i));
        s1 = vfmaq_f32(s1, load_f16(x + i + 4), load_f16(y + i + 4));
        s2 = vfmaq_f32(s2, load_f16(x + i + 8), load_f16(y + i + 8));
        s3 = vfmaq_f32(s3, load_f16(x + i + 12), load_f16(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, load_f16(x + i), load_f16(y + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; ++i) s += h2f(x[i]) * h2f(y[i]);
    return s;
}

float vec_dot_bf16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, load_bf16(x + i), load_bf16(y + i));
        s1 = vfmaq_f32(s1, load_bf16(x + i + 4), load_bf16(y + i + 4));
        s2 = vfmaq_f32(s2, load_bf16(x + i + 8), load_bf16(y + i + 8));
        s3 = vfmaq_f32(s3, load_bf16(x + i + 12), load_bf16(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, load_bf16(x + i), load_bf16(y + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; ++i) s += bf2f(x[i]) * bf2f(y[i]);
    return s;
}

// ---- k-quants: 16 weights (one int8x16) at a time ----

namespace {

// 16 weights q (|q| <= 63) times 16 activations (|y| <= 127) -> 4 int32 partial sums
// (two products per int16 lane: at most 2 * 63 * 127, no overflow).
int32x4_t dot16(int8x16_t q, const int8_t* y) {
    const int8x16_t v = vld1q_s8(y);
    int16x8_t p = vmull_s8(vget_low_s8(q), vget_low_s8(v));
    p = vmlal_s8(p, vget_high_s8(q), vget_high_s8(v));
    return vpaddlq_s16(p);
}

int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }
// Bytes of v shifted right by a run-time count (vshlq with a negative count).
uint8x16_t shr(uint8x16_t v, int bits) { return vshlq_u8(v, vdupq_n_s8(int8_t(-bits))); }
// 0xFF where bit `bit` of the byte is set, else 0.
uint8x16_t bit_set(uint8x16_t v, int bit) { return vtstq_u8(v, vdupq_n_u8(uint8_t(1u << bit))); }

// The same decoders as the scalar kernels (each ISA file keeps its own copy; see vec_dot_impl.h).
void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

int q3k_scale(const uint8_t* s, int j) {
    const int low = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | high << 4) - 32;
}

// sum_g a[g] * bsums[g] over 16 groups.
int dot_bsums(int16x8_t a0, int16x8_t a1, const int16_t* bsums) {
    const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
    int32x4_t s = vmull_s16(vget_low_s16(a0), vget_low_s16(b0));
    s = vmlal_s16(s, vget_high_s16(a0), vget_high_s16(b0));
    s = vmlal_s16(s, vget_low_s16(a1), vget_low_s16(b1));
    s = vmlal_s16(s, vget_high_s16(a1), vget_high_s16(b1));
    return vaddvq_s32(s);
}

}  // namespace

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const uint8x16_t m3 = vdupq_n_u8(3);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const uint8_t* sc = x[b].scales;
        const uint8x16_t mins = vshrq_n_u8(vld1q_u8(sc), 4);
        const int msum = dot_bsums(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins))),
                                   vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(mins))), y[b].bsums);
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; ++h) {  // 128 weights: 32 bytes, four 2-bit fields each
            const uint8x16_t q0 = vld1q_u8(x[b].qs + 32 * h), q1 = vld1q_u8(x[b].qs + 32 * h + 16);
            for (int k = 0; k < 4; ++k) {
                const int g = 8 * h + 2 * k;
                const int8_t* yq = y[b].qs + 128 * h + 32 * k;
                acc = vmlaq_n_s32(acc, dot16(s8(vandq_u8(shr(q0, 2 * k), m3)), yq), sc[g] & 0x0F);
                acc = vmlaq_n_s32(acc, dot16(s8(vandq_u8(shr(q1, 2 * k), m3)), yq + 16), sc[g + 1] & 0x0F);
            }
        }
        const int isum = vaddvq_s32(acc);
        s += y[b].d * (h2f(x[b].d) * float(isum) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const uint8x16_t m3 = vdupq_n_u8(3), four = vdupq_n_u8(4);
    const int8x16_t minus4 = vdupq_n_s8(-4);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int sc[16];
        for (int g = 0; g < 16; ++g) sc[g] = q3k_scale(x[b].scales, g);
        const uint8x16_t hm0 = vld1q_u8(x[b].hmask), hm1 = vld1q_u8(x[b].hmask + 16);
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; ++h) {
            const uint8x16_t q0 = vld1q_u8(x[b].qs + 32 * h), q1 = vld1q_u8(x[b].qs + 32 * h + 16);
            for (int k = 0; k < 4; ++k) {
                const int g = 8 * h + 2 * k;
                const int8_t* yq = y[b].qs + 128 * h + 32 * k;
                // q = low 2 bits + 4 * (high bit 4h + k of hmask[l]) - 4, in -4..3
                const uint8x16_t l0 = vorrq_u8(vandq_u8(shr(q0, 2 * k), m3), vandq_u8(bit_set(hm0, 4 * h + k), four));
                const uint8x16_t l1 = vorrq_u8(vandq_u8(shr(q1, 2 * k), m3), vandq_u8(bit_set(hm1, 4 * h + k), four));
                acc = vmlaq_n_s32(acc, dot16(vaddq_s8(s8(l0), minus4), yq), sc[g]);
                acc = vmlaq_n_s32(acc, dot16(vaddq_s8(s8(l1), minus4), yq + 16), sc[g + 1]);
            }
        }
        const int isum = vaddvq_s32(acc);
        s += y[b].d * h2f(x[b].d) * float(isum);
    }
    return s;
}

namespace {

// Q4_K / Q5_K super-block: 8 sub-blocks of 32, weights 64j.. the low nibbles of qs[32j..32j+31]
// and 64j + 32.. the high ones, plus (Q5_K) bit 2j / 2j + 1 of qh[l] as the fifth bit.
template <bool kFifth>
void k4_block(const uint8_t* qs, const uint8_t* qh, const uint8_t* scales, const block_q8_K& y, int& isum, int& msum) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F), sixteen = vdupq_n_u8(16);
    uint8x16_t h0 = vdupq_n_u8(0), h1 = h0;
    if constexpr (kFifth) {
        h0 = vld1q_u8(qh);
        h1 = vld1q_u8(qh + 16);
    }
    int32x4_t acc = vdupq_n_s32(0);
    msum = 0;
    for (int j = 0; j < 4; ++j) {
        int sc_lo, m_lo, sc_hi, m_hi;
        scale_min_k4(2 * j, scales, sc_lo, m_lo);
        scale_min_k4(2 * j + 1, scales, sc_hi, m_hi);
        msum += m_lo * (y.bsums[4 * j] + y.bsums[4 * j + 1]) + m_hi * (y.bsums[4 * j + 2] + y.bsums[4 * j + 3]);
        const uint8x16_t q0 = vld1q_u8(qs + 32 * j), q1 = vld1q_u8(qs + 32 * j + 16);
        uint8x16_t lo0 = vandq_u8(q0, m4), lo1 = vandq_u8(q1, m4), hi0 = vshrq_n_u8(q0, 4), hi1 = vshrq_n_u8(q1, 4);
        if constexpr (kFifth) {
            lo0 = vorrq_u8(lo0, vandq_u8(bit_set(h0, 2 * j), sixteen));
            lo1 = vorrq_u8(lo1, vandq_u8(bit_set(h1, 2 * j), sixteen));
            hi0 = vorrq_u8(hi0, vandq_u8(bit_set(h0, 2 * j + 1), sixteen));
            hi1 = vorrq_u8(hi1, vandq_u8(bit_set(h1, 2 * j + 1), sixteen));
        }
        const int8_t* yq = y.qs + 64 * j;
        acc = vmlaq_n_s32(acc, vaddq_s32(dot16(s8(lo0), yq), dot16(s8(lo1), yq + 16)), sc_lo);
        acc = vmlaq_n_s32(acc, vaddq_s32(dot16(s8(hi0), yq + 32), dot16(s8(hi1), yq + 48)), sc_hi);
    }
    isum = vaddvq_s32(acc);
}

}  // namespace

float vec_dot_q4_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int isum, msum;
        k4_block<false>(x[b].qs, nullptr, x[b].scales, y[b], isum, msum);
        s += y[b].d * (h2f(x[b].d) * float(isum) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q5_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int isum, msum;
        k4_block<true>(x[b].qs, x[b].qh, x[b].scales, y[b], isum, msum);
        s += y[b].d * (h2f(x[b].d) * float(isum) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
    const int8x16_t minus32 = vdupq_n_s8(-32);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const int8_t* sc = x[b].scales;
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; ++h) {  // 128 weights: quarter t uses ql[64h + 32 (t & 1) + l] and qh bits 2t
            const uint8_t* ql = x[b].ql + 64 * h;
            const uint8_t* qh = x[b].qh + 32 * h;
            for (int half = 0; half < 2; ++half) {  // l in 0..15, then 16..31
                const uint8x16_t la = vld1q_u8(ql + 16 * half), lb = vld1q_u8(ql + 32 + 16 * half);
                const uint8x16_t hb = vld1q_u8(qh + 16 * half);
                const uint8x16_t q[4] = {
                    vorrq_u8(vandq_u8(la, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)),
                    vorrq_u8(vandq_u8(lb, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4)),
                    vorrq_u8(vshrq_n_u8(la, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4)),
                    vorrq_u8(vshrq_n_u8(lb, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)),
                };
                for (int t = 0; t < 4; ++t) {
                    const int g = 8 * h + 2 * t + half;
                    acc = vmlaq_n_s32(acc, dot16(vaddq_s8(s8(q[t]), minus32), y[b].qs + 128 * h + 32 * t + 16 * half), sc[g]);
                }
            }
        }
        const int isum = vaddvq_s32(acc);
        s += y[b].d * h2f(x[b].d) * float(isum);
    }
    return s;
}

}  // namespace ef::rt::kernels::neon

// ---- EdgeFusion blocks ------------------------------------------------------------------------------
// Per 32 weights (one Q8_0 activation block), two 16-byte halves: codes shifted (vshl by a negative
// per-byte count) and masked out of the strided planes, made signed (c = u - 2^(K-1)), multiplied
// with the activations in int16 and widened to int32 (dot32), scaled by d * d_a in float
// (affine adds m * d_a * sum q).
#include "runtime/kernels/vec_dot_ef_common.h"

namespace ef::rt::kernels::neon {
namespace {

// Values v0 .. v0 + 15 (v0 a multiple of 16) of a strided plane of W-bit fields over B values
// (S = B*W/8 bytes: value v is field v / S of byte v % S).
template <int B, int W>
uint8x16_t plane16(const uint8_t* plane, int v0) {
    constexpr int S = B * W / 8;
    uint8x16_t v;
    int8x16_t sh;  // negative: right shifts
    if constexpr (S >= 16) {
        v = vld1q_u8(plane + v0 % S);
        if constexpr (W == 8) return v;
        sh = vdupq_n_s8(int8_t(-W * (v0 / S)));
    } else {
        // S in {4, 8}: the S bytes repeat, copy i (bytes j with j / S == i) at field v0 / S + i.
        if constexpr (S == 8) {
            v = vcombine_u8(vld1_u8(plane), vld1_u8(plane));
        } else {
            uint32_t t;
            __builtin_memcpy(&t, plane, 4);
            v = vreinterpretq_u8_u32(vdupq_n_u32(t));
        }
        static constexpr int8_t kShift[16] = {0, 0, 0, 0, -W * (4 / S), -W * (4 / S), -W * (4 / S), -W * (4 / S),
                                              -W * (8 / S), -W * (8 / S), -W * (8 / S), -W * (8 / S),
                                              -W * (12 / S), -W * (12 / S), -W * (12 / S), -W * (12 / S)};
        sh = vaddq_s8(vld1q_s8(kShift), vdupq_n_s8(int8_t(-W * (v0 / S))));
    }
    return vandq_u8(vshlq_u8(v, sh), vdupq_n_u8(uint8_t((1 << W) - 1)));
}

template <int K, int B>
int8x16_t codes16(const uint8_t* lop, const uint8_t* hip, int v0) {
    constexpr int lo = efk::lo_bits(K), hi = K - lo;
    uint8x16_t u = plane16<B, lo>(lop, v0);
    if constexpr (hi > 0) u = vorrq_u8(u, vshlq_n_u8(plane16<B, hi>(hip, v0), lo));
    return vreinterpretq_s8_u8(vsubq_u8(u, vdupq_n_u8(uint8_t(1 << (K - 1)))));
}

template <int K, int B, bool A>
struct EfDot {
    static float run(int64_t n, const void* w, const void* a) {
        constexpr int lo = efk::lo_bits(K);
        const auto* x = static_cast<const uint8_t*>(w);
        const auto* y = static_cast<const block_q8_0*>(a);
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (int64_t b = 0; b < n / B; ++b, x += efk::block_bytes(K, B, A)) {
            uint16_t dh = 0, mh = 0;
            __builtin_memcpy(&dh, x, 2);
            if (A) __builtin_memcpy(&mh, x + 2, 2);
            const float d = h2f(dh), m = h2f(mh);
            const uint8_t* lop = x + efk::header_bytes(A);
            const uint8_t* hip = lop + B * lo / 8;
            for (int g = 0; g < B / 32; ++g, ++y) {
                const int8x16_t c0 = codes16<K, B>(lop, hip, 32 * g), c1 = codes16<K, B>(lop, hip, 32 * g + 16);
                const int8x16_t q0 = vld1q_s8(y->qs), q1 = vld1q_s8(y->qs + 16);
                int32x4_t isum = dot32(c0, c1, q0, q1);  // sum c q, 4 lanes
                const float da = h2f(y->d);
                if constexpr (A) {
                    const int32x4_t qsum = vpaddlq_s16(vaddq_s16(vpaddlq_s8(q0), vpaddlq_s8(q1)));
                    isum = vaddq_s32(isum, vshlq_n_s32(qsum, K - 1));  // sum u q
                    acc = vmlaq_n_f32(acc, vcvtq_f32_s32(qsum), m * da);
                }
                acc = vmlaq_n_f32(acc, vcvtq_f32_s32(isum), d * da);
            }
        }
        return vaddvq_f32(acc);
    }
};

}  // namespace

EfVecDot vec_dot_ef(int index) { return efk::pick<EfDot>(index); }

}  // namespace ef::rt::kernels::neon
