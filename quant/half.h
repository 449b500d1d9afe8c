// IEEE half and bfloat16 conversions (round-to-nearest-even), no hardware intrinsics so the scalar
// reference is the same on every target.
#pragma once
#include <cstdint>
#include <cstring>

namespace ef {

inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t bits_from_f32(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return f32_from_bits(sign);
        // subnormal: normalise
        int e = -1;
        do { ++e; mant <<= 1; } while ((mant & 0x400) == 0);
        mant &= 0x3ff;
        return f32_from_bits(sign | uint32_t(127 - 15 - e) << 23 | mant << 13);
    }
    // Inf, or NaN with its payload kept and the quiet bit set (ggml's conversion quiets NaNs too).
    if (exp == 31) return f32_from_bits(sign | 0x7f800000u | mant << 13 | (mant ? 0x400000u : 0u));
    return f32_from_bits(sign | (exp + 127 - 15) << 23 | mant << 13);
}

inline uint16_t f32_to_f16(float f) {
    const uint32_t x = bits_from_f32(f);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t absx = x & 0x7fffffff;
    if (absx > 0x7f800000u) return uint16_t(sign | 0x7e00);              // NaN
    if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00);             // overflow -> inf
    if (absx < 0x38800000u) {                                            // subnormal or zero
        if (absx < 0x33000000u) return uint16_t(sign);
        const uint32_t e = absx >> 23;
        const uint32_t m = (absx & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // value / 2^-24 = m >> (126 - e)
        uint32_t out = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (out & 1))) ++out;
        return uint16_t(sign | out);
    }
    uint32_t out = ((absx >> 13) - (112u << 10));
    const uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (out & 1))) ++out;
    return uint16_t(sign | out);
}

inline float bf16_to_f32(uint16_t b) { return f32_from_bits(uint32_t(b) << 16); }

inline uint16_t f32_to_bf16(float f) {
    uint32_t x = bits_from_f32(f);
    if ((x & 0x7fffffff) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN
    x += 0x7fff + ((x >> 16) & 1);
    return uint16_t(x >> 16);
}

}  // namespace ef
