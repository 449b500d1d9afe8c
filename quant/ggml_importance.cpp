// ggml's importance-weighted quantizers: what ggml_quantize_chunk runs when it is given an imatrix.
//
// Each weight's error counts in proportion to its column's importance q times sqrt(sigma2 + x^2)
// (sigma2: the mean square of the row, or of the super-block for the k-quants), except in q6_K,
// which weights by q alone. Per (sub-)block a scale (and for the asymmetric types a min) is
// searched to minimise the weighted squared error; the k-quants then quantize their sub-block
// scales against one f16 super-block scale with a second, sub-block-weight-weighted search.
//
// Byte equality with ggml needs its exact f32 arithmetic: the same accumulation order, the same
// association in products (`w * x * l` is (w * x) * l, and `w * d * d` differs from `w * (d * d)`),
// the same narrowing of intermediate levels to int8/uint8, and no fused multiply-add (this file is
// built with -ffp-contract=off).
#include "quant/ggml_importance.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "quant/ggml_blocks.h"
#include "quant/ggml_pack.h"
#include "quant/half.h"

namespace ef::ggml {
namespace {

using namespace pack;

// The asymmetric fits of every weighted path scan the same grid of level ranges.
constexpr float kRangeMin = -0.9f, kRangeStep = 0.05f;
constexpr int kRangeSteps = 36;

// Symmetric fit of n values to levels -nmax .. nmax - 1 (stored biased, L = level + nmax) under
// weights w: starts at the scale mapping the signed extreme to -nmax, tries 18 nearby scales and
// keeps the best weighted least-squares one. Returns the scale (value = scale * (L - nmax)).
float fit_symmetric(int n, int nmax, const float* x, const float* w, int8_t* L) {
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
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = level(iscale, i);
            sumlx += w[i] * x[i] * l;
            suml2 += w[i] * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + level(iscale, i));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Asymmetric fit of n (<= 32) values to levels 0 .. nmax: value = scale * L - the_min, the_min >= 0.
// From the min/max fit, tries kRangeSteps + 1 level ranges, solves the weighted least-squares
// (scale, min) for each and keeps the one of lowest weighted squared error.
float fit_asymmetric(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min) {
    uint8_t Laux[32];
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max <= min) {
        std::fill(L, L + n, uint8_t(0));
        *the_min = -min;
        return 0.0f;
    }
    auto level = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax); };

    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = uint8_t(level(iscale, i));
        const float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= kRangeSteps; ++is) {
        iscale = (kRangeMin + kRangeStep * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = level(iscale, i);
            Laux[i] = uint8_t(l);
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = this_scale * Laux[i] + this_min - x[i];
            error += w[i] * (diff * diff);
        }
        if (error < best_error) {
            std::copy(Laux, Laux + n, L);
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

// Fit of n non-negative values (sub-block scales or mins) to levels 0 .. nmax under weights w:
// picks the best of 9 scales around nmax / max by weighted error, then up to 5 rounds of moving
// single levels while that improves the least-squares fit. Levels live in uint8 as in ggml (a
// negative input would wrap there; the sums use the unwrapped level where ggml does).
float fit_positive(int n, int nmax, const float* x, uint8_t* L, const float* w) {
    float max = 0;
    for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
    if (max < kGroupMaxEps) {
        std::fill(L, L + n, uint8_t(0));
        return 0.0f;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; ++i) L[i] = uint8_t(nearest_int(iscale * x[i]));
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale * L[i];
        best_mse += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * is + nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
            const float diff = x[i] - scale_is * l;
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = std::min(nmax, nearest_int(iscale * x[i]));
        L[i] = uint8_t(l);
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float slx = sumlx - w[i] * x[i] * L[i];
            float sl2 = suml2 - w[i] * L[i] * L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
            if (new_l == L[i]) continue;
            slx += w[i] * x[i] * new_l;
            sl2 += w[i] * new_l * new_l;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = uint8_t(new_l);
                sumlx = slx;
                suml2 = sl2;
                ++n_changed;
            }
        }
        if (n_changed == 0) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

float sum_of_squares(const float* x, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
    return s;
}

// Error weights of a group: importance * sqrt(sigma2 + x^2).
void group_weights(const float* x, const float* importance, float sigma2, int n, float* w) {
    for (int i = 0; i < n; ++i) w[i] = importance[i] * std::sqrt(sigma2 + x[i] * x[i]);
}

float sum(const float* w, int n) {
    float s = 0;
    for (int i = 0; i < n; ++i) s += w[i];
    return s;
}

// ---- legacy 32-weight blocks; sigma2 is the mean square of the whole row

void row_q4_0(const float* x, block_q4_0* y, int64_t n, const float* q) {
    const float sigma2 = sum_of_squares(x, n) / float(n);
    float w[QK4_0];
    int8_t L[QK4_0];
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const float* xb = x + b * QK4_0;
        group_weights(xb, q + b * QK4_0, sigma2, QK4_0, w);
        y[b].d = f32_to_f16(fit_symmetric(QK4_0, 8, xb, w, L));
        for (int j = 0; j < QK4_0 / 2; ++j) y[b].qs[j] = uint8_t(L[j] | L[j + 16] << 4);
    }
}

void row_q4_1(const float* x, block_q4_1* y, int64_t n, const float* q) {
    const float sigma2 = sum_of_squares(x, n) / float(n);
    float w[QK4_1];
    uint8_t L[QK4_1];
    for (int64_t b = 0; b < n / QK4_1; ++b) {
        const float* xb = x + b * QK4_1;
        group_weights(xb, q + b * QK4_1, sigma2, QK4_1, w);
        float min;
        y[b].d = f32_to_f16(fit_asymmetric(QK4_1, 15, xb, w, L, &min));
        y[b].m = f32_to_f16(-min);
        for (int j = 0; j < QK4_1 / 2; ++j) y[b].qs[j] = uint8_t(L[j] | L[j + 16] << 4);
    }
}

void row_q5_0(const float* x, block_q5_0* y, int64_t n, const float* q) {
    const float sigma2 = sum_of_squares(x, n) / float(n);
    float w[QK5_0];
    int8_t L[QK5_0];
    for (int64_t b = 0; b < n / QK5_0; ++b) {
        const float* xb = x + b * QK5_0;
        group_weights(xb, q + b * QK5_0, sigma2, QK5_0, w);
        y[b].d = f32_to_f16(fit_symmetric(QK5_0, 16, xb, w, L));
        uint8_t levels[QK5_0];
        for (int j = 0; j < QK5_0; ++j) levels[j] = uint8_t(L[j]);
        pack_5bit(levels, y[b].qs, y[b].qh);
    }
}

void row_q5_1(const float* x, block_q5_1* y, int64_t n, const float* q) {
    const float sigma2 = sum_of_squares(x, n) / float(n);
    float w[QK5_1];
    uint8_t L[QK5_1];
    for (int64_t b = 0; b < n / QK5_1; ++b) {
        const float* xb = x + b * QK5_1;
        group_weights(xb, q + b * QK5_1, sigma2, QK5_1, w);
        float min;
        y[b].d = f32_to_f16(fit_asymmetric(QK5_1, 31, xb, w, L, &min));
        y[b].m = f32_to_f16(-min);
        pack_5bit(L, y[b].qs, y[b].qh);
    }
}

// ---- k-quants, one 256-weight super-block at a time; q: its 256 importance weights

void block_q2_K_weighted(const float* x, block_q2_K& y, const float* q) {
    const float sigma2 = sum_of_squares(x, QK_K) / QK_K;
    uint8_t L[QK_K], Ls[QK_K / 16], Lm[QK_K / 16];
    float w[16], sw[QK_K / 16], scales[QK_K / 16], mins[QK_K / 16];
    for (int j = 0; j < QK_K / 16; ++j) {
        group_weights(x + 16 * j, q + 16 * j, sigma2, 16, w);
        sw[j] = sum(w, 16);
        scales[j] = fit_asymmetric(16, 3, x + 16 * j, w, L + 16 * j, &mins[j]);
    }
    y.d = f32_to_f16(fit_positive(QK_K / 16, 15, scales, Ls, sw));
    y.dmin = f32_to_f16(fit_positive(QK_K / 16, 15, mins, Lm, sw));
    const float dm = f16_to_f32(y.d), mm = f16_to_f32(y.dmin);
    for (int j = 0; j < QK_K / 16; ++j) y.scales[j] = uint8_t(Ls[j] | Lm[j] << 4);
    // Re-pick the levels against the rounded scales; zero-scale sub-blocks keep the fit's levels.
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = dm * (y.scales[j] & 0xF);
        if (d == 0.0f) continue;
        const float m = mm * (y.scales[j] >> 4);
        for (int i = 0; i < 16; ++i) L[16 * j + i] = uint8_t(std::clamp(nearest_int((x[16 * j + i] + m) / d), 0, 3));
    }
    pack_2bit(L, y.qs);
}

void block_q3_K_weighted(const float* x, block_q3_K& y, const float* q) {
    const float sigma2 = 2 * sum_of_squares(x, QK_K) / QK_K;
    int8_t L[QK_K], Ls[QK_K / 16];
    float w[16], sw[QK_K / 16], scales[QK_K / 16];
    for (int j = 0; j < QK_K / 16; ++j) {
        group_weights(x + 16 * j, q + 16 * j, sigma2, 16, w);
        sw[j] = sum(w, 16);
        scales[j] = fit_symmetric(16, 4, x + 16 * j, w, L + 16 * j);
    }
    // The sixteen scales become 6-bit levels (biased by 32) of one f16 scale: low nibbles in
    // bytes 0-7, top 2 bits in bytes 8-11 at bits 2 * (j / 4) of byte 8 + j % 4.
    std::memset(y.scales, 0, sizeof y.scales);
    const float d_block = fit_symmetric(QK_K / 16, 32, scales, sw, Ls);
    for (int j = 0; j < QK_K / 16; ++j) {
        const int l = Ls[j];
        if (j < 8) y.scales[j] = uint8_t(l & 0xF);
        else y.scales[j - 8] |= uint8_t((l & 0xF) << 4);
        y.scales[8 + j % 4] |= uint8_t((l >> 4) << (2 * (j / 4)));
    }
    y.d = f32_to_f16(d_block);
    for (int j = 0; j < QK_K / 16; ++j) {
        const int low = j < 8 ? (y.scales[j] & 0xF) : (y.scales[j - 8] >> 4);
        const int sc = (low | ((y.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
        const float d = f16_to_f32(y.d) * sc;
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

// Q4_K and Q5_K: 8 sub-blocks of 32 with an asymmetric fit each; their scales and mins become
// 6-bit levels of the f16 d and dmin. Fills L (256 levels, 0 .. nmax).
template <class Block>
void scale_min_k_weighted(const float* x, Block& y, const float* q, int nmax, bool clamp_levels, uint8_t* L) {
    const float sigma2 = 2 * sum_of_squares(x, QK_K) / QK_K;
    uint8_t Ls[QK_K / 32], Lm[QK_K / 32];
    float w[32], sw[QK_K / 32], scales[QK_K / 32], mins[QK_K / 32];
    for (int j = 0; j < QK_K / 32; ++j) {
        group_weights(x + 32 * j, q + 32 * j, sigma2, 32, w);
        sw[j] = sum(w, 32);
        scales[j] = fit_asymmetric(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j]);
    }
    const float d_block = fit_positive(QK_K / 32, 63, scales, Ls, sw);
    const float m_block = fit_positive(QK_K / 32, 63, mins, Lm, sw);
    // 12 bytes: bytes 0-3 scales 0-3, bytes 4-7 mins 0-3; bytes 8-11 the low nibbles of scale/min
    // 4-7, whose top bits go to the top 2 bits of bytes 0-3 (scales) and 4-7 (mins). ggml stores
    // whole bytes here, so an out-of-range level (only q5_K clamps them) spills as it does there.
    for (int j = 0; j < QK_K / 32; ++j) {
        const uint8_t ls = clamp_levels ? std::min<uint8_t>(63, Ls[j]) : Ls[j];
        const uint8_t lm = clamp_levels ? std::min<uint8_t>(63, Lm[j]) : Lm[j];
        set_scale_min_k4(j, y.scales, ls, lm);
    }
    y.d = f32_to_f16(d_block);
    y.dmin = f32_to_f16(m_block);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, y.scales, &sc, &m);
        const float d = f16_to_f32(y.d) * sc;
        if (d == 0.0f) continue;
        const float dm = f16_to_f32(y.dmin) * m;
        for (int i = 0; i < 32; ++i) L[32 * j + i] = uint8_t(std::clamp(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
    }
}

void block_q4_K_weighted(const float* x, block_q4_K& y, const float* q) {
    uint8_t L[QK_K];
    scale_min_k_weighted(x, y, q, 15, false, L);
    for (int j = 0; j < QK_K; j += 64)
        for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = uint8_t(L[j + l] | L[j + l + 32] << 4);
}

void block_q5_K_weighted(const float* x, block_q5_K& y, const float* q) {
    uint8_t L[QK_K];
    scale_min_k_weighted(x, y, q, 31, true, L);
    // Bit 4 of level e goes to qh[e % 32], bit e / 32; the low nibbles pack as in q4_K.
    std::memset(y.qh, 0, sizeof y.qh);
    for (int e = 0; e < QK_K; ++e)
        if (L[e] > 15) {
            y.qh[e % 32] |= uint8_t(1 << (e / 32));
            L[e] = uint8_t(L[e] - 16);
        }
    for (int j = 0; j < QK_K; j += 64)
        for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = uint8_t(L[j + l] | L[j + l + 32] << 4);
}

// q6_K weights each sub-block's fit by the importance alone (no sigma2 term).
void block_q6_K_weighted(const float* x, block_q6_K& y, const float* q) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int j = 0; j < QK_K / 16; ++j) scales[j] = fit_symmetric(16, 32, x + 16 * j, q + 16 * j, L + 16 * j);
    encode_q6_K(x, scales, L, y);
}

// Applies a super-block quantizer to every super-block of a row (q: the row's importance).
template <class Block, void (*Fn)(const float*, Block&, const float*)>
void row_k(const float* x, Block* y, int64_t n, const float* q) {
    for (int64_t b = 0; b < n / QK_K; ++b) Fn(x + b * QK_K, y[b], q + b * QK_K);
}

using WeightedRowFn = void (*)(const float* x, void* y, int64_t n, const float* importance);

template <class Block, void (*Fn)(const float*, Block*, int64_t, const float*)>
void erase_row(const float* x, void* y, int64_t n, const float* q) {
    Fn(x, static_cast<Block*>(y), n, q);
}

// The weighted row quantizer of a type; null where ggml ignores the weights (q8_0).
WeightedRowFn weighted_row_fn(DType t) {
    switch (t) {
    case DType::Q4_0: return erase_row<block_q4_0, row_q4_0>;
    case DType::Q4_1: return erase_row<block_q4_1, row_q4_1>;
    case DType::Q5_0: return erase_row<block_q5_0, row_q5_0>;
    case DType::Q5_1: return erase_row<block_q5_1, row_q5_1>;
    case DType::Q2_K: return erase_row<block_q2_K, row_k<block_q2_K, block_q2_K_weighted>>;
    case DType::Q3_K: return erase_row<block_q3_K, row_k<block_q3_K, block_q3_K_weighted>>;
    case DType::Q4_K: return erase_row<block_q4_K, row_k<block_q4_K, block_q4_K_weighted>>;
    case DType::Q5_K: return erase_row<block_q5_K, row_k<block_q5_K, block_q5_K_weighted>>;
    case DType::Q6_K: return erase_row<block_q6_K, row_k<block_q6_K, block_q6_K_weighted>>;
    default: return nullptr;
    }
}

}  // namespace

bool supports_quantize_rows(DType t) {
    switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return true;
    default: return false;
    }
}

Result<uint64_t> quantize_rows(DType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                               const float* importance) {
    if (!supports_quantize_rows(t))
        return Error{"quantize_rows: type " + std::string(dtype_name(t)) + " is not a ggml type it can produce"};
    const TypeTraits& tr = type_traits(t);
    if (nrows < 0 || n_per_row <= 0 || n_per_row % tr.block_size != 0)
        return Error{"quantize_rows: a row of " + std::to_string(n_per_row) + " weights is not a whole number of " +
                     std::string(tr.name) + " blocks (" + std::to_string(tr.block_size) + " weights each)"};
    const uint64_t row_bytes = uint64_t(n_per_row / tr.block_size) * uint64_t(tr.type_size);
    const WeightedRowFn weighted = importance ? weighted_row_fn(t) : nullptr;
    if (!weighted) {
        // Like ggml: no weights, or a type that ignores them, is the reference quantizer over all rows.
        tr.from_float_ref(src, dst, nrows * n_per_row);
    } else {
        auto* out = static_cast<uint8_t*>(dst);
        for (int64_t r = 0; r < nrows; ++r) weighted(src + r * n_per_row, out + uint64_t(r) * row_bytes, n_per_row, importance);
    }
    return uint64_t(nrows) * row_bytes;
}

}  // namespace ef::ggml
