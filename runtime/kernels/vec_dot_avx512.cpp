// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512vl; used only when cpu_features
// says the CPU and OS support them): 16 floats, two 32-weight blocks or 64 k-quant weights per
// register. The k-quants sum each super-block exactly in int32 (maddubs, then madd by the
// per-lane sub-block scale, picked with vpermw from the block's decoded scales) and scale it
// like the scalar kernel, so they agree with it to the bit.
// Everything here is intrinsics or internal-linkage helpers (see vec_dot_impl.h).
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "quant/ggml_blocks.h"
#include "runtime/kernels/vec_dot_impl.h"

namespace ef::rt::kernels::avx512 {

using namespace ef::ggml;

namespace {

float h2f(uint16_t h) { return _cvtsh_ss(h); }
float bf2f(uint16_t b) { return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(b) << 16)))); }

__m512 load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
__m512 load_bf16(const uint16_t* p) {
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

// Two blocks' 32 signed bytes each -> 16 int32 partial sums (lanes 0-7 first block).
__m512i dot_i8(__m512i x, __m512i y) {
    const __mmask64 neg = _mm512_movepi8_mask(x);
    const __m512i sy = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);  // y with x's sign
    return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(x), sy), _mm512_set1_epi16(1));
}

__m512i two(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
__m512 two_scales(float d0, float d1) {
    const __m256d lo = _mm256_castps_pd(_mm256_set1_ps(d0)), hi = _mm256_castps_pd(_mm256_set1_ps(d1));
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1));
}
__m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
    if (i < n) {  // masked tail
        const __mmask16 m = __mmask16((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float vec_dot_f16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load_f16(x + i), load_f16(y + i), s0);
        s1 = _mm512_fmadd_ps(load_f16(x + i + 16), load_f16(y + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(load_f16(x + i), load_f16(y + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; ++i) s += h2f(x[i]) * h2f(y[i]);
    return s;
}

float vec_dot_bf16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load_bf16(x + i), load_bf16(y + i), s0);
        s1 = _mm512_fmadd_ps(load_bf16(x + i + 16), load_bf16(y + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(load_bf16(x + i), load_bf16(y + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; ++i) s += bf2f(x[i]) * bf2f(y[i]);
    return s;
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    const int64_t nb = n / QK8_0;
    __m512 acc = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const __m512i p = dot_i8(two(load256(x[b].qs), load256(x[b + 1].qs)), two(load256(y[b].qs), load256(y[b + 1].qs)));
        const __m512 d = two_scales(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
    }
    if (b < nb) {  // odd block count: the second half multiplies zeros
        const __m512i p = dot_i8(two(load256(x[b].qs), _mm256_setzero_si256()), two(load256(y[b].qs), _mm256_setzero_si256()));
        acc = _mm512_fmadd_ps(two_scales(h2f(x[b].d) * h2f(y[b].d), 0.0f), _mm512_cvtepi32_ps(p), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

namespace {
__m256i unpack_q4_0(const uint8_t* qs) {  // weights 0..15: low nibbles, 16..31: high, minus 8
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    return _mm256_sub_epi8(_mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4)),
                           _mm256_set1_epi8(8));
}
}  // namespace

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    const int64_t nb = n / QK4_0;
    __m512 acc = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const __m512i p = dot_i8(two(unpack_q4_0(x[b].qs), unpack_q4_0(x[b + 1].qs)), two(load256(y[b].qs), load256(y[b + 1].qs)));
        const __m512 d = two_scales(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
    }
    if (b < nb) {
        const __m512i p = dot_i8(two(unpack_q4_0(x[b].qs), _mm256_setzero_si256()), two(load256(y[b].qs), _mm256_setzero_si256()));
        acc = _mm512_fmadd_ps(two_scales(h2f(x[b].d) * h2f(y[b].d), 0.0f), _mm512_cvtepi32_ps(p), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

// ---- k-quants: 64 weights per register ----

namespace {

// vpermw indices picking one int16 scale per 16-bit lane of a 64-weight chunk c: per-16 scales
// (Q2_K, Q3_K, Q6_K: lane i -> scale 4c + i / 8) and per-32 scales (Q4_K, Q5_K: 2c + i / 16).
struct ScaleIdx {
    alignas(64) int16_t v[4][32];
};
constexpr ScaleIdx make_scale_idx(int lanes_per_scale, int scales_per_chunk) {
    ScaleIdx t{};
    for (int c = 0; c < 4; ++c)
        for (int i = 0; i < 32; ++i) t.v[c][i] = int16_t(scales_per_chunk * c + i / lanes_per_scale);
    return t;
}
constexpr ScaleIdx kIdx16 = make_scale_idx(8, 4);
constexpr ScaleIdx kIdx32 = make_scale_idx(16, 2);

__m512i idx(const ScaleIdx& t, int c) { return _mm512_load_si512(t.v[c]); }
__m512i load512(const void* p) { return _mm512_loadu_si512(p); }
// The same 32 bytes in both halves (2- and 4-bit fields of consecutive weights share bytes).
__m512i bcast256(const void* p) { return _mm512_broadcast_i64x4(load256(p)); }
// Per-half constants: `lo` in the lower 256 bits, `hi` in the upper.
__m512i halves16(int lo, int hi) { return two(_mm256_set1_epi16(int16_t(lo)), _mm256_set1_epi16(int16_t(hi))); }
__m512i halves8(int lo, int hi) { return two(_mm256_set1_epi8(char(lo)), _mm256_set1_epi8(char(hi))); }
// Int16 scales (lanes 0..15) in a 512-bit register for vpermw.
__m512i widen(__m256i v) { return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0); }

// 64 unsigned bytes (< 64) times 64 signed activations, pair sums scaled per 16-bit lane by sc
// -> 16 int32 partial sums (exact: |pair| <= 2 * 63 * 127 fits int16).
__m512i dot_u8_scaled(__m512i q, const int8_t* y, __m512i sc) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(q, load512(y)), sc);
}

int hsum256_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// sum_g a[g] * bsums[g] over 16 int16 pairs (exact in int32).
int dot_bsums(__m256i a, const int16_t* bsums) { return hsum256_i32(_mm256_madd_epi16(a, load256(bsums))); }

// Q3_K: the 16 signed 6-bit scales as int16: low 4 bits from bytes 0..7 (low nibbles for
// sub-blocks 0..7, high ones for 8..15), top 2 bits from bytes 8..11 (byte 8 + j % 4, bits 2 * (j / 4)).
__m256i q3k_scales(const uint8_t* s) {
    uint64_t lo8;
    uint32_t hi4;
    __builtin_memcpy(&lo8, s, 8);
    __builtin_memcpy(&hi4, s + 8, 4);
    const __m128i l = _mm_cvtsi64_si128(static_cast<long long>(lo8));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(l, m4), _mm_and_si128(_mm_srli_epi16(l, 4), m4));
    // 32-bit lane j / 4 shifted by 2 * (j / 4): byte j % 4's two bits land in bits 0-1.
    const __m128i high = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(int(hi4)), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32)));
}

}  // namespace

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m512i m3 = _mm512_set1_epi8(3);
    // A 64-weight chunk is weights 32k.. of one 32-byte run (k = 2p, 2p + 1): shifts 4p, 4p + 2.
    const __m512i sh[2] = {halves16(0, 2), halves16(4, 6)};
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].scales)));
        const int msum = dot_bsums(_mm256_srli_epi16(sc, 4), y[b].bsums);
        const __m512i sv = widen(_mm256_and_si256(sc, _mm256_set1_epi16(0x0F)));
        __m512i acc = _mm512_setzero_si512();
        for (int h = 0; h < 2; ++h) {
            const __m512i qv = bcast256(x[b].qs + 32 * h);
            for (int p = 0; p < 2; ++p) {
                const int c = 2 * h + p;
                const __m512i q = _mm512_and_si512(_mm512_srlv_epi16(qv, sh[p]), m3);
                acc = _mm512_add_epi32(acc, dot_u8_scaled(q, y[b].qs + 64 * c, _mm512_permutexvar_epi16(idx(kIdx16, c), sv)));
            }
        }
        s += y[b].d * (h2f(x[b].d) * float(_mm512_reduce_add_epi32(acc)) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    const __m512i sh[2] = {halves16(0, 2), halves16(4, 6)};
    // The high bit of weight 64c + 32k' + l is bit 2c + k' of hmask[l].
    const __m512i hbit[4] = {halves8(1, 2), halves8(4, 8), halves8(16, 32), halves8(64, 128)};
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const __m256i sc = q3k_scales(x[b].scales);
        const int corr = dot_bsums(sc, y[b].bsums);  // q = (low + 4 * high) - 4: the -4 via the sums
        const __m512i sv = widen(sc);
        const __m512i hm = bcast256(x[b].hmask);
        __m512i acc = _mm512_setzero_si512();
        for (int h = 0; h < 2; ++h) {
            const __m512i qv = bcast256(x[b].qs + 32 * h);
            for (int p = 0; p < 2; ++p) {
                const int c = 2 * h + p;
                const __m512i low = _mm512_and_si512(_mm512_srlv_epi16(qv, sh[p]), m3);
                const __m512i q = _mm512_mask_add_epi8(low, _mm512_test_epi8_mask(hm, hbit[c]), low, four);  // 0..7
                acc = _mm512_add_epi32(acc, dot_u8_scaled(q, y[b].qs + 64 * c, _mm512_permutexvar_epi16(idx(kIdx16, c), sv)));
            }
        }
        s += y[b].d * h2f(x[b].d) * float(_mm512_reduce_add_epi32(acc) - 4 * corr);
    }
    return s;
}

namespace {

// Q4_K / Q5_K: the 8 6-bit scales (bytes 0..7) and mins (bytes 8..15) from the 12 packed bytes.
__m128i k4_scales_mins(const uint8_t* q) {
    uint32_t u[3];
    __builtin_memcpy(u, q, 12);
    const uint32_t sc_lo = u[0] & 0x3f3f3f3f, m_lo = u[1] & 0x3f3f3f3f;
    const uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | ((u[0] >> 6) & 0x03030303) << 4;
    const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 6) & 0x03030303) << 4;
    return _mm_setr_epi32(int(sc_lo), int(sc_hi), int(m_lo), int(m_hi));
}

// sum_j m[j] * (bsums[2j] + bsums[2j + 1]) from the mins in bytes 8..15 of scm.
int k4_msum(__m128i scm, const int16_t* bsums) {
    return dot_bsums(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm, scm)), bsums);
}

}  // namespace

float vec_dot_q4_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i sh = halves16(0, 4);  // 32 bytes: low nibbles are sub-block 2j, high ones 2j + 1
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const __m128i scm = k4_scales_mins(x[b].scales);
        const int msum = k4_msum(scm, y[b].bsums);
        const __m512i sv = widen(_mm256_cvtepu8_epi16(scm));  // lanes 0..7: the scales
        __m512i acc = _mm512_setzero_si512();
        for (int j = 0; j < 4; ++j) {
            const __m512i q = _mm512_and_si512(_mm512_srlv_epi16(bcast256(x[b].qs + 32 * j), sh), m4);
            acc = _mm512_add_epi32(acc, dot_u8_scaled(q, y[b].qs + 64 * j, _mm512_permutexvar_epi16(idx(kIdx32, j), sv)));
        }
        s += y[b].d * (h2f(x[b].d) * float(_mm512_reduce_add_epi32(acc)) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q5_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m512i m4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
    const __m512i sh = halves16(0, 4);
    // The fifth bit of weight 64j + 32k' + l is bit 2j + k' of qh[l].
    const __m512i hbit[4] = {halves8(1, 2), halves8(4, 8), halves8(16, 32), halves8(64, 128)};
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const __m128i scm = k4_scales_mins(x[b].scales);
        const int msum = k4_msum(scm, y[b].bsums);
        const __m512i sv = widen(_mm256_cvtepu8_epi16(scm));
        const __m512i qh = bcast256(x[b].qh);
        __m512i acc = _mm512_setzero_si512();
        for (int j = 0; j < 4; ++j) {
            const __m512i lo4 = _mm512_and_si512(_mm512_srlv_epi16(bcast256(x[b].qs + 32 * j), sh), m4);
            const __m512i q = _mm512_mask_add_epi8(lo4, _mm512_test_epi8_mask(qh, hbit[j]), lo4, sixteen);  // 0..31
            acc = _mm512_add_epi32(acc, dot_u8_scaled(q, y[b].qs + 64 * j, _mm512_permutexvar_epi16(idx(kIdx32, j), sv)));
        }
        s += y[b].d * (h2f(x[b].d) * float(_mm512_reduce_add_epi32(acc)) - h2f(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
    // Weights 128h + 0..63 are the low nibbles of ql[64h..64h+63] with qh bits 0-1 (first 32)
    // and 2-3 (next 32); weights 128h + 64..127 the high nibbles with bits 4-5 and 6-7.
    const __m512i sh_lo = halves16(0, 2), sh_hi = halves16(4, 6);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].scales)));
        const int corr = dot_bsums(sc, y[b].bsums);  // q = (low | high << 4) - 32: the -32 via the sums
        const __m512i sv = widen(sc);
        __m512i acc = _mm512_setzero_si512();
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = load512(x[b].ql + 64 * h);
            const __m512i qh = bcast256(x[b].qh + 32 * h);
            const __m512i q0 = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                               _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_lo), m3), 4));
            const __m512i q1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                               _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_hi), m3), 4));
            acc = _mm512_add_epi32(acc, dot_u8_scaled(q0, y[b].qs + 128 * h, _mm512_permutexvar_epi16(idx(kIdx16, 2 * h), sv)));
            acc = _mm512_add_epi32(acc, dot_u8_scaled(q1, y[b].qs + 128 * h + 64, _mm512_permutexvar_epi16(idx(kIdx16, 2 * h + 1), sv)));
        }
        s += y[b].d * h2f(x[b].d) * float(_mm512_reduce_add_epi32(acc) - 32 * corr);
    }
    return s;
}

}  // namespace ef::rt::kernels::avx512

// ---- EdgeFusion blocks ------------------------------------------------------------------------------
// B >= 64: 64 weights (two Q8_0 activation blocks) per step, the same plan as the 256-bit kernel
// (vec_dot_ef_x86.h): codes shifted and masked out of the strided planes, made signed, multiplied
// with maddubs (|c| against q negated where c < 0), each half scaled by its own d * d_a.
// B = 32 blocks use the 256-bit kernel compiled here.
#include "runtime/kernels/vec_dot_ef_x86.h"

namespace ef::rt::kernels::avx512 {
namespace {

// Values 64p .. 64p + 63 of a strided plane of W-bit fields over B values (S = B*W/8 bytes).
template <int B, int W>
__m512i plane64(const uint8_t* plane, int p) {
    constexpr int S = B * W / 8;
    const __m512i mask = _mm512_set1_epi8(char((1 << W) - 1));
    if constexpr (S >= 64) {
        const __m512i v = _mm512_loadu_si512(plane + (64 * p) % S);
        if constexpr (W == 8) return v;
        else return _mm512_and_si512(_mm512_srl_epi16(v, _mm_cvtsi32_si128(W * ((64 * p) / S))), mask);
    } else {
        __m512i v;
        if constexpr (S == 32) {
            v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(plane)));
        } else if constexpr (S == 16) {
            v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plane)));
        } else if constexpr (S == 8) {
            long long t;
            __builtin_memcpy(&t, plane, 8);
            v = _mm512_set1_epi64(t);
        } else {
            int t;
            __builtin_memcpy(&t, plane, 4);
            v = _mm512_set1_epi32(t);
        }
        // Lane l holds copy 4l / S: shift W * (64p / S + 4l / S).
        const __m512i lane = _mm512_setr_epi32(0, W * (4 / S), W * (8 / S), W * (12 / S), W * (16 / S), W * (20 / S),
                                               W * (24 / S), W * (28 / S), W * (32 / S), W * (36 / S), W * (40 / S),
                                               W * (44 / S), W * (48 / S), W * (52 / S), W * (56 / S), W * (60 / S));
        const __m512i sh = _mm512_add_epi32(lane, _mm512_set1_epi32(W * ((64 * p) / S)));
        return _mm512_and_si512(_mm512_srlv_epi32(v, sh), mask);
    }
}

template <int K, int B, bool A>
struct EfDot512 {
    static float run(int64_t n, const void* w, const void* a) {
        if constexpr (B == 32) {
            return ef256::EfDot<K, B, A>::run(n, w, a);
        } else {
            constexpr int lo = efk::lo_bits(K), hi = K - lo;
            const auto* x = static_cast<const uint8_t*>(w);
            const auto* y = static_cast<const block_q8_0*>(a);
            const __m512i ones16 = _mm512_set1_epi16(1);
            const __m512i off = _mm512_set1_epi8(char(1 << (K - 1)));
            __m512 acc = _mm512_setzero_ps();
            for (int64_t b = 0; b < n / B; ++b, x += efk::block_bytes(K, B, A)) {
                const float d = h2f(*reinterpret_cast<const uint16_t*>(x));
                const float m = A ? h2f(*reinterpret_cast<const uint16_t*>(x + 2)) : 0.0f;
                const uint8_t* lop = x + efk::header_bytes(A);
                const uint8_t* hip = lop + B * lo / 8;
                for (int p = 0; p < B / 64; ++p, y += 2) {
                    __m512i u = plane64<B, lo>(lop, p);
                    if constexpr (hi > 0) u = _mm512_or_si512(u, _mm512_slli_epi16(plane64<B, hi>(hip, p), lo));
                    const __m512i c = _mm512_sub_epi8(u, off);
                    const __m512i q = _mm512_inserti64x4(
                        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[0].qs))),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[1].qs)), 1);
                    const __mmask64 neg = _mm512_movepi8_mask(c);
                    const __m512i qs = _mm512_mask_sub_epi8(q, neg, _mm512_setzero_si512(), q);
                    __m512i isum = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(c), qs), ones16);
                    const float da0 = h2f(y[0].d), da1 = h2f(y[1].d);
                    if constexpr (A) {
                        const __m512i qsum = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_set1_epi8(1), q), ones16);
                        isum = _mm512_add_epi32(isum, _mm512_slli_epi32(qsum, K - 1));
                        const __m512 ms = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(m * da0), _mm512_set1_ps(m * da1));
                        acc = _mm512_fmadd_ps(ms, _mm512_cvtepi32_ps(qsum), acc);
                    }
                    const __m512 ds = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d * da0), _mm512_set1_ps(d * da1));
                    acc = _mm512_fmadd_ps(ds, _mm512_cvtepi32_ps(isum), acc);
                }
            }
            return _mm512_reduce_add_ps(acc);
        }
    }
};

}  // namespace

EfVecDot vec_dot_ef(int index) { return efk::pick<EfDot512>(index); }

}  // namespace ef::rt::kernels::avx512
