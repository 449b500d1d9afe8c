// Element types of tensors: plain floats and integers, and ggml's fixed-layout quantized blocks.
// One traits row per type (like ggml's type_traits): the layout facts plus the scalar reference
// conversions. Kernels elsewhere are checked against these references.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace ef {

enum class DType : uint8_t {
    F32, F16, BF16, F64, I8, I16, I32, I64,
    Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
    Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
    // The 48 EdgeFusion block types ef{k}[a]_b{B} (quant/ef_format.h), index order of notes/ef_format.md.
    EF_FIRST,
    EF_LAST = EF_FIRST + 47,
    Count
};

// Converts n elements (n a multiple of block_size) from the packed form to float.
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
// Packs n floats (n a multiple of block_size); the plain reference quantizer (no importance weights).
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);

struct TypeTraits {
    DType type;
    std::string_view name;      // as ggml names it: "f32", "q8_0", "q4_K"; ours: "ef3_b128"
    uint32_t ggml_id;           // GGUF / ggml_type enum value
    int64_t block_size;         // elements per block (1 for plain types)
    int64_t type_size;          // bytes per block
    bool quantized;
    ToFloatFn to_float;         // null for integer types
    FromFloatFn from_float_ref; // null where there is no reference quantizer
};

const TypeTraits& type_traits(DType t);
inline std::string_view dtype_name(DType t) { return type_traits(t).name; }
std::optional<DType> dtype_from_ggml_id(uint32_t id);
// Accepts ggml names case-insensitively ("F32", "q8_0", "Q4_K").
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes for n elements; nullopt when n is not a multiple of the block size or overflows.
std::optional<uint64_t> dtype_bytes(DType t, int64_t n);

}  // namespace ef
