// AVX-512 GEMM for the float weight types (F32, F16, BF16): 6 weight rows x 4 tokens of 16-lane
// f32 partial sums in registers. Per 16 columns each weight row is loaded once and used for 4
// tokens, each activation vector once for 6 rows; the 24 sums are reduced at the end. F16/BF16
// operands are widened to f32 (exact) into scratch: activations once per call, each 6-row weight
// tile once before it meets all the tokens.
// Internal linkage / intrinsics only (vec_dot_impl.h).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "runtime/kernels/gemm.h"
#include "runtime/kernels/gemm_impl.h"

namespace ef::rt::kernels::gemm_avx512 {

namespace {

constexpr int kRm = 6, kRn = 4;

struct LoadF32 {
    static __m512 full(const void* p, int64_t j) { return _mm512_loadu_ps(static_cast<const float*>(p) + j); }
    static __m512 part(const void* p, int64_t j, __mmask16 m) {
        return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + j);
    }
};
struct LoadF16 {
    static __m512 full(const void* p, int64_t j) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + j)));
    }
    static __m512 part(const void* p, int64_t j, __mmask16 m) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + j));
    }
};
struct LoadBF16 {
    static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
    static __m512 full(const void* p, int64_t j) {
        return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + j)));
    }
    static __m512 part(const void* p, int64_t j, __mmask16 m) {
        return widen(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + j));
    }
};

// acc[i][t] over all n columns for RM rows from w (wrb apart) and RN f32 activation rows (lda apart).
template <class L, int RM, int RN>
void tile(int64_t n, const uint8_t* w, size_t wrb, const float* a, int64_t lda, float* y, int64_t ldy) {
    __m512 acc[RM][RN];
    for (int i = 0; i < RM; ++i)
        for (int t = 0; t < RN; ++t) acc[i][t] = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 wv[RM];
        for (int i = 0; i < RM; ++i) wv[i] = L::full(w + size_t(i) * wrb, j);
        for (int t = 0; t < RN; ++t) {
            const __m512 av = _mm512_loadu_ps(a + t * lda + j);
            for (int i = 0; i < RM; ++i) acc[i][t] = _mm512_fmadd_ps(wv[i], av, acc[i][t]);
        }
    }
    if (j < n) {
        const __mmask16 m = __mmask16((1u << (n - j)) - 1);
        __m512 wv[RM];
        for (int i = 0; i < RM; ++i) wv[i] = L::part(w + size_t(i) * wrb, j, m);
        for (int t = 0; t < RN; ++t) {
            const __m512 av = _mm512_maskz_loadu_ps(m, a + t * lda + j);
            for (int i = 0; i < RM; ++i) acc[i][t] = _mm512_fmadd_ps(wv[i], av, acc[i][t]);
        }
    }
    for (int t = 0; t < RN; ++t)
        for (int i = 0; i < RM; ++i) y[t * ldy + i] = _mm512_reduce_add_ps(acc[i][t]);
}

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

// 16-bit weights: each tile's rows widened to f32 once (exact) into scratch, so the inner loop
// runs FMAs on plain loads instead of widening every weight vector once per token tile.
template <class L>
void run_widened(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const float* a, int64_t lda, float* y,
                 int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    auto* wf = static_cast<float*>(gemm_scratch(3, size_t(kRm * n) * sizeof(float)));
    const size_t frb = size_t(n) * sizeof(float);
    for (int64_t r = 0; r < rows; r += kRm) {
        const int rm = int(rows - r < kRm ? rows - r : kRm);
        for (int i = 0; i < rm; ++i) {
            const uint8_t* src = wb + size_t(r + i) * wrb;
            float* dst = wf + i * n;
            int64_t j = 0;
            for (; j + 16 <= n; j += 16) _mm512_storeu_ps(dst + j, L::full(src, j));
            if (j < n) {
                const __mmask16 m = __mmask16((1u << (n - j)) - 1);
                _mm512_mask_storeu_ps(dst + j, m, L::part(src, j, m));
            }
        }
        run<LoadF32>(n, rm, T, wf, frb, a, lda, y + r, ldy);
    }
}

// 16-bit activations widened to f32 rows of n (exact), in this thread's scratch.
template <class L>
const float* widen_acts(int64_t n, int64_t T, const void* a, size_t arb) {
    auto* out = static_cast<float*>(gemm_scratch(0, size_t(n * T) * sizeof(float)));
    for (int64_t t = 0; t < T; ++t) {
        const void* src = static_cast<const uint8_t*>(a) + size_t(t) * arb;
        float* dst = out + t * n;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) _mm512_storeu_ps(dst + j, L::full(src, j));
        if (j < n) {
            const __mmask16 m = __mmask16((1u << (n - j)) - 1);
            _mm512_mask_storeu_ps(dst + j, m, L::part(src, j, m));
        }
    }
    return out;
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

}  // namespace ef::rt::kernels::gemm_avx512
