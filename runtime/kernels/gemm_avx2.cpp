// AVX2 GEMM (with FMA and F16C; for CPUs without AVX-512): register tiles of weight rows x
// tokens, each weight vector loaded once per tile and used for every token of it.
// F32/F16/BF16: 3 rows x 4 tokens of 8-lane f32 partial sums (16-bit activations widened to f32
// once per call and weights once per row tile, both exact). Q8_0: 2 rows x 4 tokens, one block
// per register, the sign trick for VPMADDUBSW and one f32 FMA per block with d_w * d_x.
// Internal linkage / intrinsics only.
#include <immintrin.h>

#include "quant/ggml_blocks.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/gemm_impl.h"

namespace ef::rt::kernels::gemm_avx2 {

using namespace ef::ggml;

namespace {

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

struct LoadF32 {
    static __m256 full(const void* p, int64_t j) { return _mm256_loadu_ps(static_cast<const float*>(p) + j); }
    static float one(const void* p, int64_t j) { return static_cast<const float*>(p)[j]; }
};
struct LoadF16 {
    static __m256 full(const void* p, int64_t j) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + j)));
    }
    static float one(const void* p, int64_t j) { return _cvtsh_ss(static_cast<const uint16_t*>(p)[j]); }
};
struct LoadBF16 {
    static __m256 full(const void* p, int64_t j) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + j));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    static float one(const void* p, int64_t j) {
        return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(static_cast<const uint16_t*>(p)[j]) << 16))));
    }
};

template <class L, int RM, int RN>
void tile(int64_t n, const uint8_t* w, size_t wrb, const float* a, int64_t lda, float* y, int64_t ldy) {
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int t = 0; t < RN; ++t) acc[i][t] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 wv[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) wv[i] = L::full(w + size_t(i) * wrb, j);
#pragma GCC unroll 8
        for (int t = 0; t < RN; ++t) {
            const __m256 av = _mm256_loadu_ps(a + t * lda + j);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) acc[i][t] = _mm256_fmadd_ps(wv[i], av, acc[i][t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t)
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            float s = hsum(acc[i][t]);
            for (int64_t k = j; k < n; ++k) s += L::one(w + size_t(i) * wrb, k) * a[t * lda + k];
            y[t * ldy + i] = s;
        }
}

constexpr int kRm = 3, kRn = 4;

template <class L, int RM>
void row_tiles(int64_t n, int64_t T, const uint8_t* w, size_t wrb, const float* a, int64_t lda, float* y, int64_t ldy) {
    int64_t t = 0;
    for (; t + kRn <= T; t += kRn) tile<L, RM, kRn>(n, w, wrb, a + t * lda, lda, y + t * ldy, ldy);
    switch (T - t) {
        case 1: tile<L, RM, 1>(n, w, wrb, a + t * lda, lda, y + t * ldy, ldy); break;
        case 2: tile<L, RM, 2>(n, w, wrb, a + t * lda, lda, y + t * ldy, ldy); break;
        case 3: tile<L, RM, 3>(n, w, wrb, a + t * lda, lda, y + t * ldy, ldy); break;
        default: break;
    }
}

template <class L>
void run(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const float* a, int64_t lda, float* y, int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    int64_t r = 0;
    for (; r + kRm <= rows; r += kRm) row_tiles<L, kRm>(n, T, wb + size_t(r) * wrb, wrb, a, lda, y + r, ldy);
    for (; r < rows; ++r) row_tiles<L, 1>(n, T, wb + size_t(r) * wrb, wrb, a, lda, y + r, ldy);
}

// 16-bit weights: each tile's rows widened to f32 once (exact) into scratch before meeting all
// the tokens, so the inner loop is plain loads and FMAs.
template <class L>
void run_widened(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const float* a, int64_t lda, float* y,
                 int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    auto* wf = static_cast<float*>(gemm_scratch(3, size_t(kRm * n) * sizeof(float)));
    for (int64_t r = 0; r < rows; r += kRm) {
        const int rm = int(rows - r < kRm ? rows - r : kRm);
        for (int i = 0; i < rm; ++i) {
            const uint8_t* src = wb + size_t(r + i) * wrb;
            float* dst = wf + i * n;
            int64_t j = 0;
            for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, L::full(src, j));
            for (; j < n; ++j) dst[j] = L::one(src, j);
        }
        run<LoadF32>(n, rm, T, wf, size_t(n) * sizeof(float), a, lda, y + r, ldy);
    }
}

template <class L>
const float* widen_acts(int64_t n, int64_t T, const void* a, size_t arb) {
    auto* out = static_cast<float*>(gemm_scratch(0, size_t(n * T) * sizeof(float)));
    for (int64_t t = 0; t < T; ++t) {
        const void* src = static_cast<const uint8_t*>(a) + size_t(t) * arb;
        float* dst = out + t * n;
        int64_t j = 0;
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, L::full(src, j));
        for (; j < n; ++j) dst[j] = L::one(src, j);
    }
    return out;
}

// ---- Q8_0 ----

template <int RM, int RN>
void tile_q8_0(int64_t nb, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* y, int64_t ldy) {
    __m256 acc[RM][RN];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i)
#pragma GCC unroll 8
        for (int t = 0; t < RN; ++t) acc[i][t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
        __m256i wq[RM], wabs[RM];
        float dw[RM];
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) {
            const block_q8_0& blk = reinterpret_cast<const block_q8_0*>(w + size_t(i) * wrb)[b];
            wq[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
            wabs[i] = _mm256_abs_epi8(wq[i]);
            dw[i] = _cvtsh_ss(blk.d);
        }
#pragma GCC unroll 8
        for (int t = 0; t < RN; ++t) {
            const block_q8_0& xb = reinterpret_cast<const block_q8_0*>(a + size_t(t) * arb)[b];
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
            const float dx = _cvtsh_ss(xb.d);
#pragma GCC unroll 8
            for (int i = 0; i < RM; ++i) {
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[i], _mm256_sign_epi8(xq, wq[i])), ones);
                acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[i] * dx), acc[i][t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t)
#pragma GCC unroll 8
        for (int i = 0; i < RM; ++i) y[t * ldy + i] = hsum(acc[i][t]);
}

constexpr int kQm = 2, kQn = 4;

template <int RM>
void q8_row_tiles(int64_t nb, int64_t T, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* y, int64_t ldy) {
    int64_t t = 0;
    for (; t + kQn <= T; t += kQn) tile_q8_0<RM, kQn>(nb, w, wrb, a + size_t(t) * arb, arb, y + t * ldy, ldy);
    switch (T - t) {
        case 1: tile_q8_0<RM, 1>(nb, w, wrb, a + size_t(t) * arb, arb, y + t * ldy, ldy); break;
        case 2: tile_q8_0<RM, 2>(nb, w, wrb, a + size_t(t) * arb, arb, y + t * ldy, ldy); break;
        case 3: tile_q8_0<RM, 3>(nb, w, wrb, a + size_t(t) * arb, arb, y + t * ldy, ldy); break;
        default: break;
    }
}

}  // namespace

void gemm_f32(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    run<LoadF32>(n, rows, T, w, wrb, static_cast<const float*>(a), int64_t(arb / sizeof(float)), y, ldy);
}

void gemm_f16(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    run_widened<LoadF16>(n, rows, T, w, wrb, widen_acts<LoadF16>(n, T, a, arb), n, y, ldy);
}

void gemm_bf16(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    run_widened<LoadBF16>(n, rows, T, w, wrb, widen_acts<LoadBF16>(n, T, a, arb), n, y, ldy);
}

void gemm_q8_0(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    const int64_t nb = n / QK8_0;
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    int64_t r = 0;
    for (; r + kQm <= rows; r += kQm) q8_row_tiles<kQm>(nb, T, wb + size_t(r) * wrb, wrb, ab, arb, y + r, ldy);
    for (; r < rows; ++r) q8_row_tiles<1>(nb, T, wb + size_t(r) * wrb, wrb, ab, arb, y + r, ldy);
}

}  // namespace ef::rt::kernels::gemm_avx2
