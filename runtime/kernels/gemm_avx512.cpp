// AVX-512 GEMM for the float weight types (F32, F16, BF16), outer-product orientation: a panel of
// 48 weight rows is widened to f32 (exact) and transposed once per call into scratch, k-major
// (per column k: the 48 rows' values, 3 ZMM). A register tile is 3 x 8 accumulators: per column
// k, 3 panel vectors are loaded and each of 8 tokens' activation is broadcast once and meets all
// 3 of them (24 FMAs per 3 loads + 8 broadcasts). Each ZMM lane then holds one output's whole sum,
// so there is no horizontal reduction: the tile stores 16 outputs per instruction.
//
// Numerics: every output is a plain f32 FMA chain over k of the f16/bf16-rounded operands, in
// column order (the tiled kernels only reorder the sum; test_gemm bounds the difference).
// The panel (48 x n x 4 bytes) stays in L2 while all tokens pass by; the activations need only a
// few bytes per cycle, so matmul hands whole prefills to one call.
// Internal linkage / intrinsics only (vec_dot_impl.h). GCC keeps the small fixed-size arrays in
// registers only when the loops over them are fully unrolled: hence the unroll pragmas.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "runtime/kernels/gemm.h"
#include "runtime/kernels/gemm_impl.h"

namespace ef::rt::kernels::gemm_avx512 {

namespace {

constexpr int kVecs = 3;  // panel = kVecs x 16 weight rows
constexpr int kRn = 8;    // tokens per register tile

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

// In place: r[i] lane c -> r[c] lane i (16 x 16 floats). Unpack pairs of rows, then 4 x 4
// blocks within 128-bit lanes, then the 128-bit lanes themselves.
__attribute__((always_inline)) inline void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    // u[4g + j], 128-bit lane L: column 4L + j of rows 4g..4g+3.
    __m512 u[16];
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44), v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
        r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + j] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + j] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

// Rows [0, nr) of w (nr <= 16 * nv) into panel columns [16 v0, 16 v0 + 16): p[k * 16 nv + 16 v0 + i]
// = w[i][k] widened; rows past nr are zero.
template <class L>
void pack16(int64_t n, int nr, const uint8_t* w, size_t wrb, float* p, int nv, int v0) {
    const int64_t stride = 16 * nv;
    float* out = p + 16 * v0;
    for (int64_t k0 = 0; k0 < n; k0 += 16) {
        const int kn = int(n - k0 < 16 ? n - k0 : 16);
        const __mmask16 m = __mmask16((1u << kn) - 1);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i)
            r[i] = i < nr ? (kn == 16 ? L::full(w + size_t(i) * wrb, k0) : L::part(w + size_t(i) * wrb, k0, m)) : _mm512_setzero_ps();
        transpose16(r);
        for (int c = 0; c < kn; ++c) _mm512_store_ps(out + (k0 + c) * stride, r[c]);
    }
}

// Y[t][16 v + lane] for RN tokens (activation rows a + t * lda) against an NV-vector panel; the
// last vector stores only the lanes in `last`.
template <int NV, int RN>
void tile(int64_t n, const float* p, const float* a, int64_t lda, float* y, int64_t ldy, __mmask16 last) {
    __m512 acc[RN][NV];
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_setzero_ps();
    const float* ar[RN];
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) ar[t] = a + t * lda;
    for (int64_t k = 0; k < n; ++k, p += 16 * NV) {
        __m512 wv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_ps(p + 16 * v);
#pragma GCC unroll 8
        for (int t = 0; t < RN; ++t) {
            const __m512 b = _mm512_set1_ps(ar[t][k]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_fmadd_ps(wv[v], b, acc[t][v]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
#pragma GCC unroll 4
        for (int v = 0; v + 1 < NV; ++v) _mm512_storeu_ps(y + t * ldy + 16 * v, acc[t][v]);
        _mm512_mask_storeu_ps(y + t * ldy + 16 * (NV - 1), last, acc[t][NV - 1]);
    }
}

template <int NV>
void panel_tokens(int64_t n, int64_t T, const float* p, const float* a, int64_t lda, float* y, int64_t ldy, __mmask16 last) {
    int64_t t = 0;
    for (; t + kRn <= T; t += kRn) tile<NV, kRn>(n, p, a + t * lda, lda, y + t * ldy, ldy, last);
    const float* at = a + t * lda;
    float* yt = y + t * ldy;
    switch (T - t) {
        case 1: tile<NV, 1>(n, p, at, lda, yt, ldy, last); break;
        case 2: tile<NV, 2>(n, p, at, lda, yt, ldy, last); break;
        case 3: tile<NV, 3>(n, p, at, lda, yt, ldy, last); break;
        case 4: tile<NV, 4>(n, p, at, lda, yt, ldy, last); break;
        case 5: tile<NV, 5>(n, p, at, lda, yt, ldy, last); break;
        case 6: tile<NV, 6>(n, p, at, lda, yt, ldy, last); break;
        case 7: tile<NV, 7>(n, p, at, lda, yt, ldy, last); break;
        default: break;
    }
}

// All rows: panels of 48 (the last one narrower), each packed once and run against every token.
template <class L>
void run(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const float* a, int64_t lda, float* y, int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    auto* panel = static_cast<float*>(gemm_scratch(3, size_t(n) * 16 * kVecs * sizeof(float)));
    for (int64_t r0 = 0; r0 < rows; r0 += 16 * kVecs) {
        const int nr = int(rows - r0 < 16 * kVecs ? rows - r0 : 16 * kVecs);
        const int nv = (nr + 15) / 16;
        for (int v = 0; v < nv; ++v) {
            const int vr = nr - 16 * v < 16 ? nr - 16 * v : 16;
            pack16<L>(n, vr, wb + size_t(r0 + 16 * v) * wrb, wrb, panel, nv, v);
        }
        const int tail = nr - 16 * (nv - 1);
        const __mmask16 last = __mmask16(tail == 16 ? 0xFFFFu : (1u << tail) - 1);
        switch (nv) {
            case 1: panel_tokens<1>(n, T, panel, a, lda, y + r0, ldy, last); break;
            case 2: panel_tokens<2>(n, T, panel, a, lda, y + r0, ldy, last); break;
            default: panel_tokens<3>(n, T, panel, a, lda, y + r0, ldy, last); break;
        }
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
    run<LoadF16>(n, rows, T, w, wrb, widen_acts<LoadF16>(n, T, a, arb), n, y, ldy);
}

void gemm_bf16(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    run<LoadBF16>(n, rows, T, w, wrb, widen_acts<LoadBF16>(n, T, a, arb), n, y, ldy);
}

void gemm_f16_f32act(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y,
                     int64_t ldy) {
    run<LoadF16>(n, rows, T, w, wrb, static_cast<const float*>(a), int64_t(arb / sizeof(float)), y, ldy);
}

void gemm_bf16_f32act(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y,
                      int64_t ldy) {
    run<LoadBF16>(n, rows, T, w, wrb, static_cast<const float*>(a), int64_t(arb / sizeof(float)), y, ldy);
}

// x rounded to the act type (round-to-nearest-even, as quant/half.h) and widened back to f32.
void round_act_f32(bool bf16, const float* x, float* out, int64_t n) {
    int64_t j = 0;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), hi = _mm512_set1_epi32(int(0xffff0000u));
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x400000);
    auto one_vec = [&](__m512 v) {
        if (!bf16) return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m512i u = _mm512_castps_si512(v);
        const __m512i rounded = _mm512_and_si512(
            _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one))), hi);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absmask), inf);
        return _mm512_castsi512_ps(_mm512_mask_or_epi32(rounded, nan, _mm512_and_si512(u, hi), quiet));
    };
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(out + j, one_vec(_mm512_loadu_ps(x + j)));
    if (j < n) {
        const __mmask16 m = __mmask16((1u << (n - j)) - 1);
        _mm512_mask_storeu_ps(out + j, m, one_vec(_mm512_maskz_loadu_ps(m, x + j)));
    }
}

}  // namespace ef::rt::kernels::gemm_avx512
