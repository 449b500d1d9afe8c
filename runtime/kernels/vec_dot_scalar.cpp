// Scalar kernels: the integer dot products of ggml's CPU backend written as plain loops, one
// (sub-)block at a time. Integer parts are exact; block results are scaled and summed in float
// (the float types sum in double). Every SIMD kernel is tested against these.
#include "quant/ggml_blocks.h"
#include "quant/half.h"
#include "runtime/kernels/vec_dot_impl.h"

namespace ef::rt::kernels::scalar {

using namespace ef::ggml;

namespace {

// Q4_K / Q5_K: 6-bit scale and min of sub-block j (of 8), packed in 12 bytes.
void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Q3_K: signed 6-bit scale of sub-block j (of 16).
int q3k_scale(const uint8_t* s, int j) {
    const int low = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | high << 4) - 32;
}

// 2-bit field of weight e in a 256-block (Q2_K, Q3_K): byte (e / 128) * 32 + e % 32.
int bits2(const uint8_t* qs, int e) { return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }
// 4-bit field of weight e (Q4_K, Q5_K): in each 64 chunk byte l holds l (low) and l + 32 (high).
int bits4(const uint8_t* qs, int e) {
    const uint8_t b = qs[(e / 64) * 32 + e % 32];
    return (e % 64) < 32 ? (b & 0x0F) : (b >> 4);
}

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(y[i]);
    return float(s);
}

float vec_dot_f16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(f16_to_f32(x[i])) * double(f16_to_f32(y[i]));
    return float(s);
}

float vec_dot_bf16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(bf16_to_f32(x[i])) * double(bf16_to_f32(y[i]));
    return float(s);
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        int isum = 0;
        for (int j = 0; j < QK8_0; ++j) isum += x[b].qs[j] * y[b].qs[j];
        s += f16_to_f32(x[b].d) * f16_to_f32(y[b].d) * float(isum);
    }
    return s;
}

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        int isum = 0;
        for (int j = 0; j < QK4_0 / 2; ++j) {  // byte j: weight j (low nibble), j + 16 (high)
            isum += ((x[b].qs[j] & 0x0F) - 8) * y[b].qs[j];
            isum += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
        }
        s += f16_to_f32(x[b].d) * f16_to_f32(y[b].d) * float(isum);
    }
    return s;
}

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int isum = 0, msum = 0;  // x = d * sc * q - dmin * m per 16
        for (int g = 0; g < 16; ++g) {
            int gs = 0;
            for (int i = 0; i < 16; ++i) gs += bits2(x[b].qs, 16 * g + i) * y[b].qs[16 * g + i];
            isum += (x[b].scales[g] & 0x0F) * gs;
            msum += (x[b].scales[g] >> 4) * y[b].bsums[g];
        }
        s += y[b].d * (f16_to_f32(x[b].d) * float(isum) - f16_to_f32(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int isum = 0;
        for (int g = 0; g < 16; ++g) {
            int gs = 0;
            for (int i = 0; i < 16; ++i) {
                const int e = 16 * g + i;
                const bool high = x[b].hmask[e % 32] & (1 << (e / 32));
                gs += (bits2(x[b].qs, e) - (high ? 0 : 4)) * y[b].qs[e];
            }
            isum += q3k_scale(x[b].scales, g) * gs;
        }
        s += y[b].d * f16_to_f32(x[b].d) * float(isum);
    }
    return s;
}

float vec_dot_q4_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            int sc = 0, m = 0;
            scale_min_k4(j, x[b].scales, sc, m);
            int gs = 0;
            for (int i = 0; i < 32; ++i) gs += bits4(x[b].qs, 32 * j + i) * y[b].qs[32 * j + i];
            isum += sc * gs;
            msum += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        s += y[b].d * (f16_to_f32(x[b].d) * float(isum) - f16_to_f32(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q5_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            int sc = 0, m = 0;
            scale_min_k4(j, x[b].scales, sc, m);
            int gs = 0;
            for (int i = 0; i < 32; ++i) {
                const int e = 32 * j + i;
                const int q = bits4(x[b].qs, e) + 16 * ((x[b].qh[e % 32] >> (e / 32)) & 1);
                gs += q * y[b].qs[e];
            }
            isum += sc * gs;
            msum += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        s += y[b].d * (f16_to_f32(x[b].d) * float(isum) - f16_to_f32(x[b].dmin) * float(msum));
    }
    return s;
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
        int isum = 0;
        for (int g = 0; g < 16; ++g) {
            int gs = 0;
            for (int i = 0; i < 16; ++i) {
                const int e = 16 * g + i;
                const int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
                const uint8_t lowbyte = x[b].ql[64 * h + l + (quarter & 1) * 32];
                const int low = quarter < 2 ? (lowbyte & 0x0F) : (lowbyte >> 4);
                const int high = (x[b].qh[32 * h + l] >> (2 * quarter)) & 3;
                gs += ((low | high << 4) - 32) * y[b].qs[e];
            }
            isum += x[b].scales[g] * gs;
        }
        s += y[b].d * f16_to_f32(x[b].d) * float(isum);
    }
    return s;
}

}  // namespace ef::rt::kernels::scalar

// ---- EdgeFusion blocks (quant/ef_format.h) ---------------------------------------------------------
// Per 32 weights (one Q8_0 activation block): exact integer sums isum = sum (u - 2^(K-1)) q and
// qsum = sum q, then symmetric: d * d_a * isum; affine (w = d u + m): d_a * (d * (isum + 2^(K-1) qsum)
// + m * qsum). The SIMD kernels take the same integer sums and scale them in float vectors.
#include "runtime/kernels/vec_dot_ef_common.h"

namespace ef::rt::kernels::scalar {
namespace {

// Value v of a strided plane of `width`-bit fields over B values: byte v % S, field v / S, S = B*width/8.
template <int B>
int plane_field(const uint8_t* plane, int width, int v) {
    const int stride = B * width / 8;
    return (plane[v % stride] >> (width * (v / stride))) & ((1 << width) - 1);
}

template <int K, int B, bool A>
struct EfDot {
    static float run(int64_t n, const void* w, const void* a) {
        constexpr int lo = efk::lo_bits(K), hi = K - lo, off = 1 << (K - 1);
        const auto* x = static_cast<const uint8_t*>(w);
        const auto* y = static_cast<const ggml::block_q8_0*>(a);
        float s = 0;
        for (int64_t b = 0; b < n / B; ++b, x += efk::block_bytes(K, B, A)) {
            uint16_t dh = 0, mh = 0;
            __builtin_memcpy(&dh, x, 2);
            if (A) __builtin_memcpy(&mh, x + 2, 2);
            const float d = f16_to_f32(dh), m = f16_to_f32(mh);
            const uint8_t* lop = x + efk::header_bytes(A);
            const uint8_t* hip = lop + B * lo / 8;
            for (int g = 0; g < B / 32; ++g, ++y) {
                int isum = 0, qsum = 0;
                for (int i = 0; i < 32; ++i) {
                    int u = plane_field<B>(lop, lo, 32 * g + i);
                    if (hi) u |= plane_field<B>(hip, hi, 32 * g + i) << lo;
                    isum += (u - off) * y->qs[i];
                    qsum += y->qs[i];
                }
                const float da = f16_to_f32(y->d);
                if (A) s += da * (d * float(isum + off * qsum) + m * float(qsum));
                else s += d * da * float(isum);
            }
        }
        return s;
    }
};

}  // namespace

EfVecDot vec_dot_ef(int index) { return efk::pick<EfDot>(index); }

}  // namespace ef::rt::kernels::scalar
