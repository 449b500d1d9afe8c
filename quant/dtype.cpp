#include "quant/dtype.h"

#include <array>
#include <cctype>
#include <cstring>
#include <limits>

#include "quant/ef_format.h"
#include "quant/ggml_blocks.h"
#include "quant/half.h"

namespace ef {
namespace {

void f32_to_float(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void f32_from_float(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void f64_to_float(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const double*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
}
void f16_to_float(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void f16_from_float(const float* src, void* dst, int64_t n) {
    auto* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}
void bf16_to_float(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void bf16_from_float(const float* src, void* dst, int64_t n) {
    auto* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}
template <class T>
void int_to_float(const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const T*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
}

// ggml_type ids are fixed by the GGUF format.
constexpr std::array<TypeTraits, size_t(DType::EF_FIRST)> kTraits = {{
    {DType::F32, "f32", 0, 1, 4, false, f32_to_float, f32_from_float},
    {DType::F16, "f16", 1, 1, 2, false, f16_to_float, f16_from_float},
    {DType::BF16, "bf16", 30, 1, 2, false, bf16_to_float, bf16_from_float},
    {DType::F64, "f64", 28, 1, 8, false, f64_to_float, nullptr},
    {DType::I8, "i8", 24, 1, 1, false, int_to_float<int8_t>, nullptr},
    {DType::I16, "i16", 25, 1, 2, false, int_to_float<int16_t>, nullptr},
    {DType::I32, "i32", 26, 1, 4, false, int_to_float<int32_t>, nullptr},
    {DType::I64, "i64", 27, 1, 8, false, int_to_float<int64_t>, nullptr},
    {DType::Q4_0, "q4_0", 2, ggml::QK4_0, sizeof(ggml::block_q4_0), true, ggml::dequantize_q4_0, ggml::quantize_q4_0},
    {DType::Q4_1, "q4_1", 3, ggml::QK4_1, sizeof(ggml::block_q4_1), true, ggml::dequantize_q4_1, ggml::quantize_q4_1},
    {DType::Q5_0, "q5_0", 6, ggml::QK5_0, sizeof(ggml::block_q5_0), true, ggml::dequantize_q5_0, ggml::quantize_q5_0},
    {DType::Q5_1, "q5_1", 7, ggml::QK5_1, sizeof(ggml::block_q5_1), true, ggml::dequantize_q5_1, ggml::quantize_q5_1},
    {DType::Q8_0, "q8_0", 8, ggml::QK8_0, sizeof(ggml::block_q8_0), true, ggml::dequantize_q8_0, ggml::quantize_q8_0},
    {DType::Q2_K, "q2_K", 10, ggml::QK_K, sizeof(ggml::block_q2_K), true, ggml::dequantize_q2_K, ggml::quantize_q2_K},
    {DType::Q3_K, "q3_K", 11, ggml::QK_K, sizeof(ggml::block_q3_K), true, ggml::dequantize_q3_K, ggml::quantize_q3_K},
    {DType::Q4_K, "q4_K", 12, ggml::QK_K, sizeof(ggml::block_q4_K), true, ggml::dequantize_q4_K, ggml::quantize_q4_K},
    {DType::Q5_K, "q5_K", 13, ggml::QK_K, sizeof(ggml::block_q5_K), true, ggml::dequantize_q5_K, ggml::quantize_q5_K},
    {DType::Q6_K, "q6_K", 14, ggml::QK_K, sizeof(ggml::block_q6_K), true, ggml::dequantize_q6_K, ggml::quantize_q6_K},
    {DType::Q8_K, "q8_K", 15, ggml::QK_K, sizeof(ggml::block_q8_K), true, ggml::dequantize_q8_K, ggml::quantize_q8_K},
}};

static_assert([] {
    for (size_t i = 0; i < kTraits.size(); ++i)
        if (size_t(kTraits[i].type) != i) return false;
    return true;
}(), "kTraits rows must be in DType order");

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

}  // namespace

// ggml's rows live here, the EdgeFusion rows in quant/ef_format.cpp.
const TypeTraits& type_traits(DType t) {
    if (size_t(t) < kTraits.size()) return kTraits[size_t(t)];
    return ef_type_traits(int(t) - int(DType::EF_FIRST));
}

std::optional<DType> dtype_from_ggml_id(uint32_t id) {
    for (int t = 0; t < int(DType::Count); ++t)
        if (type_traits(DType(t)).ggml_id == id) return DType(t);
    return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
    for (int t = 0; t < int(DType::Count); ++t)
        if (iequal(type_traits(DType(t)).name, name)) return DType(t);
    return std::nullopt;
}

std::optional<uint64_t> dtype_bytes(DType t, int64_t n) {
    const auto& tr = type_traits(t);
    if (n < 0 || n % tr.block_size != 0) return std::nullopt;
    const uint64_t blocks = uint64_t(n / tr.block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / uint64_t(tr.type_size)) return std::nullopt;
    return blocks * uint64_t(tr.type_size);
}

}  // namespace ef
