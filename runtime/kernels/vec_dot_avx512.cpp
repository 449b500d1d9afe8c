// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512vl; used only when cpu_features
// says the CPU and OS support them): 16 floats or two 32-weight blocks per register.
// The k-quants keep their AVX2 kernels (the table falls back per type).
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

}  // namespace ef::rt::kernels::avx512
