#include "runtime/kernels/kernel_check.h"

#include <cmath>
#include <cstring>

#include "quant/ef_format.h"
#include "quant/ggml_blocks.h"
#include "quant/half.h"
#include "runtime/ops.h"

namespace ef::rt::kernels {
namespace {

// The ggml types, then a representative 12 of the 48 EdgeFusion block types: every (bits, affine)
// pair once, the block sizes rotating so each of 32..256 occurs three times (all 48 are checked in
// tests/unit/test_ef_runtime.cpp; these ride along in every kernel and GEMM test and the selftest).
std::vector<DType> make_types() {
    std::vector<DType> t = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                            DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q3_K, DType::Q2_K};
    for (int kb = 0; kb < 6; ++kb)
        for (int a = 0; a < 2; ++a) t.push_back(*ef_dtype(kEfBits[kb], kEfBlocks[(kb + 1 + 2 * a) % 4], a == 1));
    return t;
}

uint16_t random_f16(std::mt19937& rng, float lo, float hi) {
    return f32_to_f16(std::uniform_real_distribution<float>(lo, hi)(rng));
}

}  // namespace

std::span<const DType> kernel_types() {
    static const std::vector<DType> types = make_types();
    return types;
}

bool is_kquant(DType t) { return type_traits(t).block_size == ggml::QK_K && !is_ef_dtype(t); }

std::vector<float> random_floats(std::mt19937& rng, int64_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = nd(rng);
    return v;
}

std::vector<std::byte> random_row(std::mt19937& rng, DType t, int64_t n, bool raw_bytes) {
    const TypeTraits& tt = type_traits(t);
    std::vector<std::byte> out(static_cast<size_t>(n / tt.block_size * tt.type_size));
    const std::vector<float> f = random_floats(rng, n, 0.5f);
    if (!tt.quantized || !raw_bytes) {
        if (t == DType::F32) std::memcpy(out.data(), f.data(), out.size());
        else tt.from_float_ref(f.data(), out.data(), n);
        return out;
    }
    for (auto& b : out) b = std::byte(rng() & 0xff);
    const int64_t nb = n / tt.block_size;
    for (int64_t b = 0; b < nb; ++b) {
        void* p = out.data() + b * tt.type_size;
        switch (t) {
            case DType::Q8_0: static_cast<ggml::block_q8_0*>(p)->d = random_f16(rng, -0.01f, 0.01f); break;
            case DType::Q4_0: static_cast<ggml::block_q4_0*>(p)->d = random_f16(rng, -0.1f, 0.1f); break;
            case DType::Q2_K: {
                auto* q = static_cast<ggml::block_q2_K*>(p);
                q->d = random_f16(rng, -0.05f, 0.05f);
                q->dmin = random_f16(rng, -0.05f, 0.05f);
                break;
            }
            case DType::Q3_K: static_cast<ggml::block_q3_K*>(p)->d = random_f16(rng, -0.05f, 0.05f); break;
            case DType::Q4_K: {
                auto* q = static_cast<ggml::block_q4_K*>(p);
                q->d = random_f16(rng, -0.01f, 0.01f);
                q->dmin = random_f16(rng, -0.01f, 0.01f);
                break;
            }
            case DType::Q5_K: {
                auto* q = static_cast<ggml::block_q5_K*>(p);
                q->d = random_f16(rng, -0.01f, 0.01f);
                q->dmin = random_f16(rng, -0.01f, 0.01f);
                break;
            }
            case DType::Q6_K: static_cast<ggml::block_q6_K*>(p)->d = random_f16(rng, -0.002f, 0.002f); break;
            default:
                if (const auto l = ef_layout(t)) {
                    // d keeps |w| below ~0.2; affine offsets m in [-0.2, 0.2].
                    const float dmax = 0.2f / float(1 << (l->bits - 1));
                    const uint16_t d = random_f16(rng, -dmax, dmax), m = random_f16(rng, -0.2f, 0.2f);
                    std::memcpy(p, &d, 2);
                    if (l->affine) std::memcpy(static_cast<uint8_t*>(p) + 2, &m, 2);
                }
                break;
        }
    }
    return out;
}

ReferenceDot reference_dot(DType t, std::span<const std::byte> row, std::span<const float> x) {
    const int64_t n = int64_t(x.size());
    std::vector<float> w(static_cast<size_t>(n));
    type_traits(t).to_float(row.data(), w.data(), n);
    const std::vector<float> xr = round_activations(t, x);
    ReferenceDot r;
    for (int64_t j = 0; j < n; ++j) {
        r.dot += double(w[size_t(j)]) * double(xr[size_t(j)]);
        r.absdot += std::fabs(double(w[size_t(j)]) * double(xr[size_t(j)]));
    }
    return r;
}

}  // namespace ef::rt::kernels
