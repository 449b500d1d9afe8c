// ggml's k-quants: 256-weight super-blocks split into sub-blocks of 16 or 32 weights, each with its
// own small integer scale (and min) that is itself quantized against one f16 super-block scale.
//
// The quantizers are ggml's reference ones (no importance matrix): per sub-block they search for
// the scale (and min) minimising a weighted squared or absolute error, quantize those scales to
// 4/6/8 bits, then re-pick each weight's level with the rounded scales. The byte-exact match with
// ggml depends on doing every f32 operation in the same order, so the search loops below keep
// ggml's expression shapes (e.g. `w * x * l` is (w * x) * l) even where they could be simplified.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ggml_blocks.h"
#include "quant/ggml_pack.h"
#include "quant/half.h"

namespace ef::ggml {
namespace {

using namespace pack;

// Symmetric quantization of n values to [-nmax, nmax - 1] (stored as L + nmax), weighting each
// element by x^2; tries 19 scales around -nmax / max and keeps the best least-squares fit.
// Returns the scale (value = scale * (L - nmax)).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < kGroupMaxEps) {
        std::fill(L, L + n, int8_t(0));
        return 0.0f;
    }
    auto level = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };

    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = level(iscale, i);
        L[i] = int8_t(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = level(iscale, i);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + level(iscale, i));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Symmetric 3-bit-style quantization to [-nmax, nmax - 1] (stored as L + nmax), x^2-weighted, then
// up to 5 rounds of coordinate descent moving single elements to a better level.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < kGroupMaxEps) {  // note: levels stay 0 here, not nmax (ggml does the same)
        std::fill(L, L + n, int8_t(0));
        return 0.0f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = int8_t(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (!(slx > 0)) continue;  // written so NaN skips, as in ggml
            float sl2 = suml2 - w * L[i] * L[i];
            const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == L[i]) continue;
            slx += w * x[i] * new_l;
            sl2 += w * new_l * new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = int8_t(new_l);
                sumlx = slx;
                suml2 = sl2;
                ++n_changed;
            }
        }
        if (n_changed == 0) break;
    }
    for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Asymmetric quantization to [0, nmax]: value = scale * L - the_min (the_min >= 0). Starts from
// the min/max fit, then tries nstep + 1 wider/narrower level ranges, solving the weighted
// least-squares (scale, min) for each, and keeps the lowest weighted error (|diff| if use_mad).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        std::fill(L, L + n, uint8_t(0));
        *the_min = -min;
        return 0.0f;
    }
    auto error_term = [use_mad](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };

    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = uint8_t(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
        best_error += weights[i] * error_term(scale * L[i] + min - x[i]);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = uint8_t(l);
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0;
        for (int i = 0; i < n; ++i) cur_error += weights[i] * error_term(this_scale * Laux[i] + this_min - x[i]);
        if (cur_error < best_error) {
            std::copy(Laux, Laux + n, L);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

// Q3_K's sixteen 6-bit scales (biased by 32): low nibbles in bytes 0-7 (scales 0-7 low half,
// 8-15 high half), top 2 bits in bytes 8-11, scale j at bits 2 * (j / 4) of byte 8 + j % 4.
int q3k_scale(const uint8_t* scales, int j) {
    const int low = j < 8 ? (scales[j] & 0x0F) : (scales[j - 8] >> 4);
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | high << 4) - 32;
}

int unpack_2bit(const uint8_t* qs, int e) { return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

// 4-bit fields of Q4_K/Q5_K: in each 64-weight chunk, byte l holds weight l (low) and l+32 (high).
int unpack_4bit(const uint8_t* qs, int e) {
    const uint8_t byte = qs[(e / 64) * 32 + e % 32];
    return (e % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
}

// Shared by Q4_K and Q5_K: 8 sub-blocks of 32 with an asymmetric [0, nmax] fit each; the scales
// and mins become 6-bit multiples of the f16 d and dmin. Fills L (256 levels).
template <class Block>
void quantize_scale_min_k(const float* x, Block& y, int nmax, float rmin, float rdelta, int nstep, uint8_t* L) {
    float scales[QK_K / 32], mins[QK_K / 32];
    float weights[32];
    uint8_t Laux[32];
    float max_scale = 0, max_min = 0;  // scales and mins are both >= 0 here
    for (int j = 0; j < QK_K / 32; ++j) {
        const float* xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
        scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
        // ggml narrows to uint8 before clamping to 63.
        const uint8_t ls = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
        const uint8_t lm = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
        set_scale_min_k4(j, y.scales, ls, lm);
    }
    y.d = f32_to_f16(max_scale / 63.f);
    y.dmin = f32_to_f16(max_min / 63.f);

    // Re-pick the levels against the rounded scales; sub-blocks with a zero scale keep the search's.
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, y.scales, &sc, &m);
        const float d = f16_to_f32(y.d) * sc;
        if (d == 0.0f) continue;
        const float dm = f16_to_f32(y.dmin) * m;
        for (int i = 0; i < 32; ++i) L[32 * j + i] = uint8_t(std::clamp(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
    }
}

}  // namespace

// ---- Q2_K: 16 sub-blocks of 16; 4-bit scale and min each; x = d * sc * q - dmin * m, q in 0..3

void quantize_q2_K(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q2_K*>(dst);
    const float q4scale = 15.f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* x = src + b * QK_K;
        block_q2_K& y = blocks[b];
        uint8_t L[QK_K], Laux[16];
        float weights[16], scales[QK_K / 16], mins[QK_K / 16];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) y.scales[j] = uint8_t(nearest_int(iscale * scales[j]));
            y.d = f32_to_f16(max_scale / q4scale);
        } else {
            std::fill(y.scales, y.scales + QK_K / 16, uint8_t(0));
            y.d = f32_to_f16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) y.scales[j] |= uint8_t(nearest_int(iscale * mins[j]) << 4);
            y.dmin = f32_to_f16(max_min / q4scale);
        } else {
            y.dmin = f32_to_f16(0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = f16_to_f32(y.d) * (y.scales[j] & 0xF);
            if (d == 0.0f) continue;
            const float dm = f16_to_f32(y.dmin) * (y.scales[j] >> 4);
            for (int i = 0; i < 16; ++i) L[16 * j + i] = uint8_t(std::clamp(nearest_int((x[16 * j + i] + dm) / d), 0, 3));
        }
        pack_2bit(L, y.qs);
    }
}

void dequantize_q2_K(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q2_K*>(src);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const block_q2_K& x = blocks[b];
        const float d = f16_to_f32(x.d), dmin = f16_to_f32(x.dmin);
        float* y = dst + b * QK_K;
        for (int e = 0; e < QK_K; ++e) {
            const uint8_t sc = x.scales[e / 16];
            const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
            y[e] = dl * unpack_2bit(x.qs, e) - ml;
        }
    }
}

// ---- Q3_K: 16 sub-blocks of 16; signed 6-bit scales; x = d * sc * q, q in -4..3 (2 low bits + hmask)

void quantize_q3_K(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q3_K*>(dst);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* x = src + b * QK_K;
        block_q3_K& y = blocks[b];
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, amax = 0;  // the signed scale of largest magnitude
        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > amax) { amax = std::fabs(scales[j]); max_scale = scales[j]; }
        }
        std::memset(y.scales, 0, sizeof y.scales);
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                const int l = std::clamp(int(int8_t(nearest_int(iscale * scales[j]))), -32, 31) + 32;
                if (j < 8) y.scales[j] = uint8_t(l & 0xF);
                else y.scales[j - 8] |= uint8_t((l & 0xF) << 4);
                y.scales[j % 4 + 8] |= uint8_t((l >> 4) << (2 * (j / 4)));
            }
            y.d = f32_to_f16(1 / iscale);
        } else {
            y.d = f32_to_f16(0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = f16_to_f32(y.d) * q3k_scale(y.scales, j);
            if (d == 0.0f) continue;
            for (int i = 0; i < 16; ++i) L[16 * j + i] = int8_t(std::clamp(nearest_int(x[16 * j + i] / d), -4, 3) + 4);
        }
        // Bit 2 of level e goes to hmask[e % 32], bit e / 32; the low 2 bits to qs.
        std::memset(y.hmask, 0, sizeof y.hmask);
        uint8_t low[QK_K];
        for (int e = 0; e < QK_K; ++e) {
            int l = L[e];
            if (l > 3) {
                y.hmask[e % 32] |= uint8_t(1 << (e / 32));
                l -= 4;
            }
            low[e] = uint8_t(l);
        }
        pack_2bit(low, y.qs);
    }
}

void dequantize_q3_K(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q3_K*>(src);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const block_q3_K& x = blocks[b];
        const float d_all = f16_to_f32(x.d);
        float* y = dst + b * QK_K;
        for (int e = 0; e < QK_K; ++e) {
            const float dl = d_all * q3k_scale(x.scales, e / 16);
            const bool high = x.hmask[e % 32] & (1 << (e / 32));
            y[e] = dl * (unpack_2bit(x.qs, e) - (high ? 0 : 4));
        }
    }
}

// ---- Q4_K: 8 sub-blocks of 32; 6-bit scale and min each; x = d * sc * q - dmin * m, q in 0..15

void quantize_q4_K(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q4_K*>(dst);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        block_q4_K& y = blocks[b];
        uint8_t L[QK_K];
        quantize_scale_min_k(src + b * QK_K, y, 15, -1.f, 0.1f, 20, L);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = uint8_t(L[j + l] | L[j + l + 32] << 4);
    }
}

void dequantize_q4_K(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q4_K*>(src);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const block_q4_K& x = blocks[b];
        const float d = f16_to_f32(x.d), dmin = f16_to_f32(x.dmin);
        float* y = dst + b * QK_K;
        for (int e = 0; e < QK_K; ++e) {
            uint8_t sc, m;
            get_scale_min_k4(e / 32, x.scales, &sc, &m);
            const float dl = d * sc, ml = dmin * m;
            y[e] = dl * unpack_4bit(x.qs, e) - ml;
        }
    }
}

// ---- Q5_K: as Q4_K with a fifth bit per weight in qh; q in 0..31

void quantize_q5_K(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q5_K*>(dst);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        block_q5_K& y = blocks[b];
        uint8_t L[QK_K];
        quantize_scale_min_k(src + b * QK_K, y, 31, -0.5f, 0.1f, 15, L);
        // Bit 4 of level e goes to qh[e % 32], bit e / 32; the low nibbles pack as in Q4_K.
        std::memset(y.qh, 0, sizeof y.qh);
        for (int e = 0; e < QK_K; ++e)
            if (L[e] > 15) {
                y.qh[e % 32] |= uint8_t(1 << (e / 32));
                L[e] = uint8_t(L[e] - 16);
            }
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = uint8_t(L[j + l] | L[j + l + 32] << 4);
    }
}

void dequantize_q5_K(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q5_K*>(src);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const block_q5_K& x = blocks[b];
        const float d = f16_to_f32(x.d), dmin = f16_to_f32(x.dmin);
        float* y = dst + b * QK_K;
        for (int e = 0; e < QK_K; ++e) {
            uint8_t sc, m;
            get_scale_min_k4(e / 32, x.scales, &sc, &m);
            const float dl = d * sc, ml = dmin * m;
            const int high = (x.qh[e % 32] >> (e / 32)) & 1;
            y[e] = dl * (unpack_4bit(x.qs, e) + 16 * high) - ml;
        }
    }
}

// ---- Q6_K: 16 sub-blocks of 16; signed 8-bit scales; x = d * sc * q, q in -32..31

void quantize_q6_K(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q6_K*>(dst);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* x = src + b * QK_K;
        block_q6_K& y = blocks[b];
        int8_t L[QK_K];
        float scales[QK_K / 16];
        for (int j = 0; j < QK_K / 16; ++j) scales[j] = make_qx_quants(16, 32, x + 16 * j, L + 16 * j);
        encode_q6_K(x, scales, L, y);
    }
}

void dequantize_q6_K(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q6_K*>(src);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const block_q6_K& x = blocks[b];
        const float d = f16_to_f32(x.d);
        float* y = dst + b * QK_K;
        for (int e = 0; e < QK_K; ++e) {
            const int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
            const uint8_t lowbyte = x.ql[64 * h + l + (quarter & 1) * 32];
            const int low = quarter < 2 ? (lowbyte & 0xF) : (lowbyte >> 4);
            const int high = (x.qh[32 * h + l] >> (2 * quarter)) & 3;
            y[e] = d * x.scales[e / 16] * (int8_t(low | high << 4) - 32);
        }
    }
}

// ---- Q8_K: f32 scale, 256 int8 quants and their sums per 16 (used for dot products)

void quantize_q8_K(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q8_K*>(dst);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const float* x = src + b * QK_K;
        block_q8_K& y = blocks[b];
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
        }
        if (amax == 0.0f) {
            // ggml leaves bsums untouched here; zero is their true value.
            std::memset(&y, 0, sizeof y);
            continue;
        }
        const float iscale = -127.f / max;  // 127, not 128: ggml's choice for its SIMD dot products
        for (int j = 0; j < QK_K; ++j) y.qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += y.qs[16 * j + i];
            y.bsums[j] = int16_t(sum);
        }
        y.d = 1 / iscale;
    }
}

void dequantize_q8_K(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q8_K*>(src);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        const block_q8_K& x = blocks[b];
        for (int j = 0; j < QK_K; ++j) dst[b * QK_K + j] = x.d * x.qs[j];
    }
}

}  // namespace ef::ggml
