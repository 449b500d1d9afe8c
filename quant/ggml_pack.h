// Internal to quant/: the bit packing and rounding steps shared by ggml's plain quantizers
// (ggml_legacy.cpp, ggml_kquants.cpp) and the importance-weighted ones (ggml_importance.cpp), so
// both produce the same bytes by construction. All of quant/ compiles with -ffp-contract=off, which
// keeps the float steps in encode_q6_K in ggml's order wherever this header is included.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "quant/ggml_blocks.h"
#include "quant/half.h"

namespace ef::ggml::pack {

constexpr float kGroupMaxEps = 1e-15f;  // below this a group counts as all zero

// Round to nearest, ties to even (|x| < 2^22): adding 1.5 * 2^23 puts the integer in the low
// mantissa bits. The same bit trick as ggml, so even out-of-range values give ggml's level.
inline int nearest_int(float x) {
    const float shifted = x + 12582912.0f;
    int32_t bits;
    std::memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

// 32 five-bit levels (q5_0/q5_1): low nibbles of j and j + 16 share qs[j]; bit 4 of level j is bit
// j of qh (a little-endian 32-bit mask).
inline void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh) {
    uint32_t high = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = uint8_t((L[j] & 0x0F) | (L[j + 16] & 0x0F) << 4);
        high |= uint32_t((L[j] >> 4) & 1) << j;
        high |= uint32_t((L[j + 16] >> 4) & 1) << (j + 16);
    }
    for (int b = 0; b < 4; ++b) qh[b] = uint8_t(high >> (8 * b));
}

// 2-bit fields of q2_K/q3_K: in each 128-weight half, byte l holds weights l, l+32, l+64, l+96.
inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = uint8_t(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

// q4_K/q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes: bytes 0-3 hold scales
// 0-3, bytes 4-7 mins 0-3 (low 6 bits each); bytes 8-11 hold the low nibbles of scale/min 4-7,
// whose top 2 bits go into the spare top bits of bytes 0-3 (scales) and 4-7 (mins). Whole bytes
// are stored, so an out-of-range level spills as it does in ggml.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = uint8_t((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *min = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}
inline void set_scale_min_k4(int j, uint8_t* q, uint8_t scale, uint8_t min) {
    if (j < 4) {
        q[j] = scale;
        q[j + 4] = min;
    } else {
        q[j + 4] = uint8_t((scale & 0x0F) | ((min & 0x0F) << 4));
        q[j - 4] |= uint8_t((scale >> 4) << 6);
        q[j] |= uint8_t((min >> 4) << 6);
    }
}

// The rest of a q6_K block once each 16-weight sub-block has its fitted scale: 8-bit sub-block
// scales against one f16 d, every weight's level re-picked with the rounded scales, and the
// 4 + 2-bit packing (per 128-weight half: ql byte l holds weights l (low) and l+64 (high), byte
// l+32 holds l+32 and l+96; qh byte l holds the top 2 bits of l, l+32, l+64, l+96).
// x: (256) weights; scales: (16) fits; L: (256) scratch levels (already holding the fits' levels).
inline void encode_q6_K(const float* x, const float* scales, int8_t* L, block_q6_K& y) {
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < QK_K / 16; ++j)
        if (std::fabs(scales[j]) > max_abs_scale) {
            max_abs_scale = std::fabs(scales[j]);
            max_scale = scales[j];
        }
    if (max_abs_scale < kGroupMaxEps) {
        std::memset(&y, 0, sizeof y);
        return;
    }
    const float iscale = -128.f / max_scale;
    y.d = f32_to_f16(1 / iscale);
    for (int j = 0; j < QK_K / 16; ++j) y.scales[j] = int8_t(std::min(127, nearest_int(iscale * scales[j])));
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = f16_to_f32(y.d) * y.scales[j];
        if (d == 0.0f) continue;
        for (int i = 0; i < 16; ++i) L[16 * j + i] = int8_t(std::clamp(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
    for (int h = 0; h < 2; ++h) {
        const int8_t* Lh = L + 128 * h;
        uint8_t* ql = y.ql + 64 * h;
        uint8_t* qh = y.qh + 32 * h;
        for (int l = 0; l < 32; ++l) {
            ql[l] = uint8_t((Lh[l] & 0xF) | (Lh[l + 64] & 0xF) << 4);
            ql[l + 32] = uint8_t((Lh[l + 32] & 0xF) | (Lh[l + 96] & 0xF) << 4);
            qh[l] = uint8_t((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
        }
    }
}

}  // namespace ef::ggml::pack
