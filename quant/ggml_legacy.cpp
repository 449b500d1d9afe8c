// ggml's "legacy" 32-weight block types: q4_0, q4_1, q5_0, q5_1, q8_0.
//
// These are the plain reference quantizers (no importance matrix). Their bytes must match ggml's
// exactly, so every float operation below is written in the order ggml performs it: scales are
// computed in f32 and only the stored scale is rounded to f16; the inverse scale used to pick the
// quants is the unrounded one. Symmetric types take the signed value of largest magnitude and map
// it to the most negative level; asymmetric types map [min, max] onto [0, 2^bits - 1].
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>

#include "quant/ggml_blocks.h"
#include "quant/ggml_pack.h"
#include "quant/half.h"

namespace ef::ggml {
namespace {

using pack::pack_5bit;

// float -> int truncation with x86's cvttss2si result (INT32_MIN) for NaN and out-of-range
// values instead of undefined behaviour, so non-finite weights still give ggml's bytes.
int trunc_to_int(float v) {
    if (!(v >= -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
    return int(v);
}
// ggml stores these through an int8/uint8 cast: keep the low byte.
int trunc_to_i8(float v) { return int(int8_t(trunc_to_int(v) & 0xff)); }
int trunc_to_u8(float v) { return trunc_to_int(v) & 0xff; }

// The element of largest magnitude, with its sign (the first one wins ties).
float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

void min_max(const float* x, int n, float* min, float* max) {
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < n; ++j) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

int unpack_5bit(const uint8_t* qs, const uint8_t* qh, int j) {
    const uint32_t high = uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
    const int low = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
    return low | int((high >> j) & 1) << 4;
}

}  // namespace

// ---- q4_0: 4-bit, symmetric; x = d * (q - 8)

void quantize_q4_0(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q4_0*>(dst);
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const float* x = src + b * QK4_0;
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        block_q4_0& y = blocks[b];
        y.d = f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            // Truncation after adding 8.5 rounds half up; ggml truncates to int8 first.
            const int q0 = std::min(15, trunc_to_i8(x[j] * id + 8.5f));
            const int q1 = std::min(15, trunc_to_i8(x[j + QK4_0 / 2] * id + 8.5f));
            y.qs[j] = uint8_t(q0 | q1 << 4);
        }
    }
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q4_0*>(src);
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const block_q4_0& x = blocks[b];
        const float d = f16_to_f32(x.d);
        float* y = dst + b * QK4_0;
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = float((x.qs[j] & 0x0F) - 8) * d;
            y[j + QK4_0 / 2] = float((x.qs[j] >> 4) - 8) * d;
        }
    }
}

// ---- q4_1: 4-bit with offset; x = d * q + m

void quantize_q4_1(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q4_1*>(dst);
    for (int64_t b = 0; b < n / QK4_1; ++b) {
        const float* x = src + b * QK4_1;
        float min, max;
        min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        block_q4_1& y = blocks[b];
        y.d = f32_to_f16(d);
        y.m = f32_to_f16(min);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const int q0 = std::min(15, trunc_to_i8((x[j] - min) * id + 0.5f));
            const int q1 = std::min(15, trunc_to_i8((x[j + QK4_1 / 2] - min) * id + 0.5f));
            y.qs[j] = uint8_t(q0 | q1 << 4);
        }
    }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q4_1*>(src);
    for (int64_t b = 0; b < n / QK4_1; ++b) {
        const block_q4_1& x = blocks[b];
        const float d = f16_to_f32(x.d), m = f16_to_f32(x.m);
        float* y = dst + b * QK4_1;
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[j] = float(x.qs[j] & 0x0F) * d + m;
            y[j + QK4_1 / 2] = float(x.qs[j] >> 4) * d + m;
        }
    }
}

// ---- q5_0: 5-bit, symmetric; x = d * (q - 16)

void quantize_q5_0(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q5_0*>(dst);
    for (int64_t b = 0; b < n / QK5_0; ++b) {
        const float* x = src + b * QK5_0;
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        block_q5_0& y = blocks[b];
        y.d = f32_to_f16(d);
        uint8_t q[QK5_0];
        for (int j = 0; j < QK5_0; ++j) q[j] = uint8_t(std::min(31, trunc_to_i8(x[j] * id + 16.5f)));
        pack_5bit(q, y.qs, y.qh);
    }
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q5_0*>(src);
    for (int64_t b = 0; b < n / QK5_0; ++b) {
        const block_q5_0& x = blocks[b];
        const float d = f16_to_f32(x.d);
        for (int j = 0; j < QK5_0; ++j) dst[b * QK5_0 + j] = float(unpack_5bit(x.qs, x.qh, j) - 16) * d;
    }
}

// ---- q5_1: 5-bit with offset; x = d * q + m

void quantize_q5_1(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q5_1*>(dst);
    for (int64_t b = 0; b < n / QK5_1; ++b) {
        const float* x = src + b * QK5_1;
        float min, max;
        min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        block_q5_1& y = blocks[b];
        y.d = f32_to_f16(d);
        y.m = f32_to_f16(min);
        uint8_t q[QK5_1];
        // No clamp here (ggml has none): (x - min) * id stays within [0, 31.5).
        for (int j = 0; j < QK5_1; ++j) q[j] = uint8_t(trunc_to_u8((x[j] - min) * id + 0.5f));
        pack_5bit(q, y.qs, y.qh);
    }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q5_1*>(src);
    for (int64_t b = 0; b < n / QK5_1; ++b) {
        const block_q5_1& x = blocks[b];
        const float d = f16_to_f32(x.d), m = f16_to_f32(x.m);
        for (int j = 0; j < QK5_1; ++j) dst[b * QK5_1 + j] = float(unpack_5bit(x.qs, x.qh, j)) * d + m;
    }
}

// ---- q8_0: 8-bit, symmetric around 0; x = d * q, q in [-127, 127]

void quantize_q8_0(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q8_0*>(dst);
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const float* x = src + b * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);  // NaN-propagating, as ggml
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        block_q8_0& y = blocks[b];
        y.d = f32_to_f16(d);
        for (int j = 0; j < QK8_0; ++j) y.qs[j] = int8_t(trunc_to_i8(std::round(x[j] * id)));  // half away from zero
    }
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q8_0*>(src);
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const block_q8_0& x = blocks[b];
        const float d = f16_to_f32(x.d);
        for (int j = 0; j < QK8_0; ++j) dst[b * QK8_0 + j] = float(x.qs[j]) * d;
    }
}

}  // namespace ef::ggml
