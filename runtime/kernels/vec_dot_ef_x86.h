// Internal: the 256-bit EdgeFusion vec_dot (AVX2), included by vec_dot_avx2.cpp and by
// vec_dot_avx512.cpp (which uses it for B = 32 blocks). Anonymous namespace: each ISA file gets
// its own copy compiled with its own flags (see vec_dot_impl.h).
// Per 32 weights: the codes of both planes are shifted and masked out of the strided bytes into
// one byte each, made signed (c = u - 2^(K-1), fits int8 for every K), multiplied with the Q8_0
// activations by maddubs (|c| against q with c's sign moved onto q) and widened to int32; the
// lanes are scaled by d * d_a in a float vector (affine adds m * d_a * sum q).
#pragma once
#include <immintrin.h>

#include "quant/ggml_blocks.h"
#include "runtime/kernels/vec_dot_ef_common.h"

namespace ef::rt::kernels {
namespace {
namespace ef256 {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Values 32g .. 32g + 31 of a strided plane of W-bit fields over B values (S = B*W/8 bytes:
// value v is field v / S of byte v % S), one per byte.
template <int B, int W>
__m256i plane32(const uint8_t* plane, int g) {
    constexpr int S = B * W / 8;
    if constexpr (S >= 32) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plane + (32 * g) % S));
        if constexpr (W == 8) return v;
        else {
            const __m256i sh = _mm256_srl_epi16(v, _mm_cvtsi32_si128(W * ((32 * g) / S)));
            return _mm256_and_si256(sh, _mm256_set1_epi8(char((1 << W) - 1)));
        }
    } else {
        // S < 32: the S bytes repeat across the register, copy i (4-byte lanes l with 4l / S == i)
        // shifted to field 32g / S + i.
        __m256i v;
        if constexpr (S == 16) {
            v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plane)));
        } else if constexpr (S == 8) {
            long long t;
            __builtin_memcpy(&t, plane, 8);
            v = _mm256_set1_epi64x(t);
        } else {
            int t;
            __builtin_memcpy(&t, plane, 4);
            v = _mm256_set1_epi32(t);
        }
        const __m256i lane = _mm256_setr_epi32(0, W * (4 / S), W * (8 / S), W * (12 / S), W * (16 / S), W * (20 / S),
                                               W * (24 / S), W * (28 / S));
        const __m256i sh = _mm256_add_epi32(lane, _mm256_set1_epi32(W * ((32 * g) / S)));
        return _mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi8(char((1 << W) - 1)));
    }
}

// Signed codes c = u - 2^(K-1) of values 32g .. 32g + 31 of a block's planes.
template <int K, int B>
__m256i codes32(const uint8_t* lop, const uint8_t* hip, int g) {
    constexpr int lo = efk::lo_bits(K), hi = K - lo;
    __m256i u = plane32<B, lo>(lop, g);
    if constexpr (hi > 0) u = _mm256_or_si256(u, _mm256_slli_epi16(plane32<B, hi>(hip, g), lo));
    return _mm256_sub_epi8(u, _mm256_set1_epi8(char(1 << (K - 1))));
}

template <int K, int B, bool A>
struct EfDot {
    static float run(int64_t n, const void* w, const void* a) {
        constexpr int lo = efk::lo_bits(K);
        const auto* x = static_cast<const uint8_t*>(w);
        const auto* y = static_cast<const ggml::block_q8_0*>(a);
        const __m256i ones16 = _mm256_set1_epi16(1);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / B; ++b, x += efk::block_bytes(K, B, A)) {
            const float d = h2f(*reinterpret_cast<const uint16_t*>(x));
            const float m = A ? h2f(*reinterpret_cast<const uint16_t*>(x + 2)) : 0.0f;
            const uint8_t* lop = x + efk::header_bytes(A);
            const uint8_t* hip = lop + B * lo / 8;
            for (int g = 0; g < B / 32; ++g, ++y) {
                const __m256i c = codes32<K, B>(lop, hip, g);
                const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y->qs));
                const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(c, c), _mm256_sign_epi8(q, c));
                __m256i isum = _mm256_madd_epi16(p16, ones16);  // sum c q, 8 lanes
                const float da = h2f(y->d);
                if constexpr (A) {
                    const __m256i qsum = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), ones16);
                    isum = _mm256_add_epi32(isum, _mm256_slli_epi32(qsum, K - 1));  // sum u q
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(m * da), _mm256_cvtepi32_ps(qsum), acc);
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * da), _mm256_cvtepi32_ps(isum), acc);
            }
        }
        return hsum(acc);
    }
};

}  // namespace ef256
}  // namespace
}  // namespace ef::rt::kernels
