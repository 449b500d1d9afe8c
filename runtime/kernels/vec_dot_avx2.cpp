// AVX2 kernels (compiled with -mavx2 -mfma -mf16c; used only when cpu_features says so).
// Quantized types: 32 weights per 256-bit register, unsigned-by-signed byte products
// (maddubs) widened to int32 with the sub-block scale (madd). The k-quants sum each super-block
// exactly in int32 and scale it like the scalar kernel, so they agree with it to the bit;
// F32/F16/BF16 and Q8_0/Q4_0 accumulate in float vectors (a different summation order).
// Everything here is intrinsics or internal-linkage helpers (see vec_dot_impl.h).
#include <immintrin.h>

#include "quant/ggml_blocks.h"
#include "runtime/kernels/vec_dot_impl.h"

namespace ef::rt::kernels::avx2 {

using namespace ef::ggml;

namespace {

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

float h2f(uint16_t h) { return _cvtsh_ss(h); }

__m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 32 signed bytes times 32 signed bytes -> 8 int32 partial sums. maddubs wants its first
// operand unsigned, so move x's sign onto y (y is an activation in -127..127).
__m256i dot_i8(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// 32 unsigned bytes (< 128) times 32 signed bytes, first 16 products scaled by s0 and the
// last 16 by s1 -> 8 int32 partial sums.
__m256i dot_u8_scaled(__m256i q, __m256i y, int s0, int s1) {
    const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(int16_t(s1)), _mm_set1_epi16(int16_t(s0)));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), sc);
}

// Bytes of v shifted right by `bits` (bits of neighbouring bytes are masked off by the caller).
__m256i shr(__m256i v, int bits) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(bits)); }

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

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; ++i) s += x[i] * y[i];
    return s;
}

namespace {
__m256 load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
__m256 load_bf16(const uint16_t* p) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
float bf2f(uint16_t b) {
    const uint32_t u = uint32_t(b) << 16;
    return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(u))));
}
}  // namespace

float vec_dot_f16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_f16(x + i), load_f16(y + i), s0);
        s1 = _mm256_fmadd_ps(load_f16(x + i + 8), load_f16(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_f16(x + i + 16), load_f16(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_f16(x + i + 24), load_f16(y + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_f16(x + i), load_f16(y + i), s0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; ++i) s += h2f(x[i]) * h2f(y[i]);
    return s;
}

float vec_dot_bf16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_bf16(x + i), load_bf16(y + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16(x + i + 8), load_bf16(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_bf16(x + i + 16), load_bf16(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_bf16(x + i + 24), load_bf16(y + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_bf16(x + i), load_bf16(y + i), s0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; ++i) s += bf2f(x[i]) * bf2f(y[i]);
    return s;
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(load(x[b].qs), load(y[b].qs))), acc);
    }
    return hsum(acc);
}

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs));
        // weights 0..15 are the low nibbles, 16..31 the high ones
        const __m256i q = _mm256_sub_epi8(
            _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4)), eight);
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(q, load(y[b].qs))), acc);
    }
    return hsum(acc);
}

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m256i m3 = _mm256_set1_epi8(3);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const uint8_t* sc = x[b].scales;
        int msum = 0;
        for (int g = 0; g < 16; ++g) msum += (sc[g] >> 4) * y[b].bsums[g];
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i qv = load(x[b].qs + 32 * h);
            for (int k = 0; k < 4; ++k) {
                const int g = 8 * h + 2 * k;
                const __m256i q = _mm256_and_si256(shr(qv, 2 * k), m3);
                acc = _mm256_add_epi32(acc, dot_u8_scaled(q, load(y[b].qs + 128 * h + 32 * k), sc[g] & 0x0F, sc[g + 1] & 0x0F));
            }
        }
        s += y[b].d * (h2f(x[b].d) * float(hsum_i32(acc)) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int sc[16];
        int corr = 0;  // q = (low + 4 * high) - 4: the -4 comes off through the per-16 sums
        for (int g = 0; g < 16; ++g) {
            sc[g] = q3k_scale(x[b].scales, g);
            corr += sc[g] * y[b].bsums[g];
        }
        const __m256i hm = load(x[b].hmask);
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i qv = load(x[b].qs + 32 * h);
            for (int k = 0; k < 4; ++k) {
                const int g = 8 * h + 2 * k;
                const __m256i low = _mm256_and_si256(shr(qv, 2 * k), m3);
                const __m256i high = _mm256_and_si256(shr(hm, 4 * h + k), one);
                const __m256i q = _mm256_or_si256(low, _mm256_slli_epi16(high, 2));  // 0..7
                acc = _mm256_add_epi32(acc, dot_u8_scaled(q, load(y[b].qs + 128 * h + 32 * k), sc[g], sc[g + 1]));
            }
        }
        s += y[b].d * h2f(x[b].d) * float(hsum_i32(acc) - 4 * corr);
    }
    return s;
}

float vec_dot_q4_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int sc[8], m[8];
        int msum = 0;
        for (int j = 0; j < 8; ++j) {
            scale_min_k4(j, x[b].scales, sc[j], m[j]);
            msum += m[j] * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {  // 64 weights: low nibbles, then high nibbles
            const __m256i qv = load(x[b].qs + 32 * j);
            const __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
            acc = _mm256_add_epi32(acc, dot_u8_scaled(lo, load(y[b].qs + 64 * j), sc[2 * j], sc[2 * j]));
            acc = _mm256_add_epi32(acc, dot_u8_scaled(hi, load(y[b].qs + 64 * j + 32), sc[2 * j + 1], sc[2 * j + 1]));
        }
        s += y[b].d * (h2f(x[b].d) * float(hsum_i32(acc)) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q5_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int sc[8], m[8];
        int msum = 0;
        for (int j = 0; j < 8; ++j) {
            scale_min_k4(j, x[b].scales, sc[j], m[j]);
            msum += m[j] * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        const __m256i qh = load(x[b].qh);  // bit e / 32 of byte e % 32: the fifth bit of weight e
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i qv = load(x[b].qs + 32 * j);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(shr(qh, 2 * j), one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(shr(qh, 2 * j + 1), one), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(qv, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4), h1);
            acc = _mm256_add_epi32(acc, dot_u8_scaled(lo, load(y[b].qs + 64 * j), sc[2 * j], sc[2 * j]));
            acc = _mm256_add_epi32(acc, dot_u8_scaled(hi, load(y[b].qs + 64 * j + 32), sc[2 * j + 1], sc[2 * j + 1]));
        }
        s += y[b].d * (h2f(x[b].d) * float(hsum_i32(acc)) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const int8_t* sc = x[b].scales;
        int corr = 0;  // q = (low | high << 4) - 32: the -32 comes off through the per-16 sums
        for (int g = 0; g < 16; ++g) corr += sc[g] * y[b].bsums[g];
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {  // 128 weights: four runs of 32
            const __m256i ql0 = load(x[b].ql + 64 * h), ql1 = load(x[b].ql + 64 * h + 32);
            const __m256i qh = load(x[b].qh + 32 * h);
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)),
            };
            for (int k = 0; k < 4; ++k) {
                const int g = 8 * h + 2 * k;
                acc = _mm256_add_epi32(acc, dot_u8_scaled(q[k], load(y[b].qs + 128 * h + 32 * k), sc[g], sc[g + 1]));
            }
        }
        s += y[b].d * h2f(x[b].d) * float(hsum_i32(acc) - 32 * corr);
    }
    return s;
}

}  // namespace ef::rt::kernels::avx2

// ---- EdgeFusion blocks: vec_dot_ef_x86.h --------------------------------------------------------
#include "runtime/kernels/vec_dot_ef_x86.h"

namespace ef::rt::kernels::avx2 {
EfVecDot vec_dot_ef(int index) { return efk::pick<ef256::EfDot>(index); }
}  // namespace ef::rt::kernels::avx2
