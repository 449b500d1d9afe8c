// AVX-512 VNNI GEMM for Q8_0 and Q4_0 weights against Q8_0 activations (compiled with
// -mavx512vnni; used only when cpu_features reports it). Internal linkage / intrinsics only.
//
// The weights are repacked per call, 16 rows at a time, so that one ZMM holds the same 4 weight
// bytes of 16 rows: VPDPBUSD then multiplies it with 4 activation bytes broadcast from memory
// and accumulates 16 rows' dot products in the 16 int32 lanes - 8 instructions per block for 16
// rows, no horizontal sums. VPDPBUSD multiplies unsigned by signed bytes, so the packed weights
// are stored as w + 128 (u8) and each activation block's 128 * sum(x) is subtracted (the int32
// sums stay exact). Per block: int32 -> f32, times d_w * d_x, added into the f32 sums.
//
// Packed panel, per block: 8 x 64 bytes of weights (dword k of lane r = bytes 4k..4k+3 of row r),
// then the 16 rows' scales as f32. Activation side: (d_x as f32, -128 * sum x) per token block.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "quant/ggml_blocks.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/gemm_impl.h"

namespace ef::rt::kernels::gemm_avx512vnni {

using namespace ef::ggml;

namespace {

constexpr int kLanes = 16;       // weight rows per panel
constexpr int kRn = 8;           // tokens per register tile
constexpr int kBlockVecs = 9;    // 8 weight vectors + 1 scale vector per packed block

struct ActMeta {
    float d;
    int32_t corr;  // -128 * sum of the block's 32 quants
};

int32_t load_i32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// (T, nb) activation block metadata in scratch.
const ActMeta* act_meta(int64_t nb, int64_t T, const uint8_t* a, size_t arb) {
    auto* meta = static_cast<ActMeta*>(gemm_scratch(1, size_t(T * nb) * sizeof(ActMeta)));
    const __m256i bias = _mm256_set1_epi8(char(0x80));
    for (int64_t t = 0; t < T; ++t) {
        const auto* x = reinterpret_cast<const block_q8_0*>(a + size_t(t) * arb);
        for (int64_t b = 0; b < nb; ++b) {
            // sum of (x + 128) via SAD against zero, then minus 32 * 128.
            const __m256i q = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)), bias);
            const __m256i s = _mm256_sad_epu8(q, _mm256_setzero_si256());
            const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            const int32_t sum = int32_t(_mm_cvtsi128_si32(s2) + _mm_extract_epi32(s2, 2)) - 32 * 128;
            meta[t * nb + b] = ActMeta{_cvtsh_ss(x[b].d), -128 * sum};
        }
    }
    return meta;
}

// Q8_0 rows [0, nr) of the panel (nr <= 16): gather dword k of every row.
void pack_q8_0(int64_t nb, int nr, const uint8_t* w, size_t wrb, __m512i* out) {
    const __mmask16 valid = __mmask16((1u << nr) - 1);
    const __m512i rowoff = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(int(wrb)));
    const __m512i bias = _mm512_set1_epi8(char(0x80));
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w + size_t(b) * sizeof(block_q8_0);
        __m512i* o = out + b * kBlockVecs;
        for (int k = 0; k < 8; ++k) {
            const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, rowoff, blk + 2 + 4 * k, 1);
            _mm512_store_si512(o + k, _mm512_xor_si512(g, bias));
        }
        const __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, rowoff, blk, 1);
        _mm512_store_ps(reinterpret_cast<float*>(o + 8), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
    }
}

// Q4_0 rows: nibbles expanded to w + 128 = nibble + 120 into a 16 x 32 byte buffer, then gathered.
void pack_q4_0(int64_t nb, int nr, const uint8_t* w, size_t wrb, __m512i* out) {
    alignas(64) uint8_t tmp[kLanes][32];
    alignas(64) uint16_t ds[kLanes];
    std::memset(tmp, 0, sizeof tmp);
    std::memset(ds, 0, sizeof ds);
    const __m512i rowoff = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(32));
    const __m128i m4 = _mm_set1_epi8(0x0F), off = _mm_set1_epi8(120);
    for (int64_t b = 0; b < nb; ++b) {
        for (int r = 0; r < nr; ++r) {
            const auto* blk = reinterpret_cast<const block_q4_0*>(w + size_t(r) * wrb) + b;
            const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs));
            _mm_store_si128(reinterpret_cast<__m128i*>(tmp[r]), _mm_add_epi8(_mm_and_si128(raw, m4), off));
            _mm_store_si128(reinterpret_cast<__m128i*>(tmp[r] + 16), _mm_add_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), off));
            ds[r] = blk->d;
        }
        __m512i* o = out + b * kBlockVecs;
        for (int k = 0; k < 8; ++k) _mm512_store_si512(o + k, _mm512_i32gather_epi32(rowoff, &tmp[0][4 * k], 1));
        _mm512_store_ps(reinterpret_cast<float*>(o + 8), _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ds))));
    }
}

// RN tokens against one packed panel; y gets lanes [0, nr).
template <int RN>
void tile(int64_t nb, const __m512i* panel, const uint8_t* a, size_t arb, const ActMeta* meta, int nr, float* y, int64_t ldy) {
    __m512 acc[RN];
    for (int t = 0; t < RN; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const __m512i* p = panel + b * kBlockVecs;
        const __m512i w0 = _mm512_load_si512(p + 0), w1 = _mm512_load_si512(p + 1), w2 = _mm512_load_si512(p + 2),
                      w3 = _mm512_load_si512(p + 3), w4 = _mm512_load_si512(p + 4), w5 = _mm512_load_si512(p + 5),
                      w6 = _mm512_load_si512(p + 6), w7 = _mm512_load_si512(p + 7);
        const __m512 dw = _mm512_load_ps(reinterpret_cast<const float*>(p + 8));
        for (int t = 0; t < RN; ++t) {
            const int8_t* q = reinterpret_cast<const block_q8_0*>(a + size_t(t) * arb)[b].qs;
            const ActMeta m = meta[t * nb + b];
            __m512i s = _mm512_set1_epi32(m.corr);
            s = _mm512_dpbusd_epi32(s, w0, _mm512_set1_epi32(load_i32(q + 0)));
            s = _mm512_dpbusd_epi32(s, w1, _mm512_set1_epi32(load_i32(q + 4)));
            s = _mm512_dpbusd_epi32(s, w2, _mm512_set1_epi32(load_i32(q + 8)));
            s = _mm512_dpbusd_epi32(s, w3, _mm512_set1_epi32(load_i32(q + 12)));
            s = _mm512_dpbusd_epi32(s, w4, _mm512_set1_epi32(load_i32(q + 16)));
            s = _mm512_dpbusd_epi32(s, w5, _mm512_set1_epi32(load_i32(q + 20)));
            s = _mm512_dpbusd_epi32(s, w6, _mm512_set1_epi32(load_i32(q + 24)));
            s = _mm512_dpbusd_epi32(s, w7, _mm512_set1_epi32(load_i32(q + 28)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(m.d)), acc[t]);
        }
    }
    const __mmask16 valid = __mmask16((1u << nr) - 1);
    for (int t = 0; t < RN; ++t) _mm512_mask_storeu_ps(y + t * ldy, valid, acc[t]);
}

using PackFn = void (*)(int64_t nb, int nr, const uint8_t* w, size_t wrb, __m512i* out);

void run(PackFn pack, int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a,
         size_t arb, float* y, int64_t ldy) {
    const int64_t nb = n / QK8_0;
    const auto* ab = static_cast<const uint8_t*>(a);
    const ActMeta* meta = act_meta(nb, T, ab, arb);
    auto* panel = static_cast<__m512i*>(gemm_scratch(2, size_t(nb * kBlockVecs) * sizeof(__m512i)));
    for (int64_t r0 = 0; r0 < rows; r0 += kLanes) {
        const int nr = int(rows - r0 < kLanes ? rows - r0 : kLanes);
        pack(nb, nr, static_cast<const uint8_t*>(w) + size_t(r0) * wrb, wrb, panel);
        int64_t t = 0;
        for (; t + kRn <= T; t += kRn) tile<kRn>(nb, panel, ab + size_t(t) * arb, arb, meta + t * nb, nr, y + t * ldy + r0, ldy);
        const uint8_t* at = ab + size_t(t) * arb;
        const ActMeta* mt = meta + t * nb;
        float* yt = y + t * ldy + r0;
        switch (T - t) {
            case 1: tile<1>(nb, panel, at, arb, mt, nr, yt, ldy); break;
            case 2: tile<2>(nb, panel, at, arb, mt, nr, yt, ldy); break;
            case 3: tile<3>(nb, panel, at, arb, mt, nr, yt, ldy); break;
            case 4: tile<4>(nb, panel, at, arb, mt, nr, yt, ldy); break;
            case 5: tile<5>(nb, panel, at, arb, mt, nr, yt, ldy); break;
            case 6: tile<6>(nb, panel, at, arb, mt, nr, yt, ldy); break;
            case 7: tile<7>(nb, panel, at, arb, mt, nr, yt, ldy); break;
            default: break;
        }
    }
}

}  // namespace

void gemm_q8_0(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    run(pack_q8_0, n, rows, T, w, wrb, a, arb, y, ldy);
}

void gemm_q4_0(int64_t n, int64_t rows, int64_t T, const void* w, size_t wrb, const void* a, size_t arb, float* y, int64_t ldy) {
    run(pack_q4_0, n, rows, T, w, wrb, a, arb, y, ldy);
}

}  // namespace ef::rt::kernels::gemm_avx512vnni
