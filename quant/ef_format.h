// The EdgeFusion sub-4-bit format (issue 4; byte layout fixed in notes/ef_format.md).
// 48 fixed-layout block types (k bits x B weights x symmetric/affine) are ordinary DType rows, so
// dtype_bytes, GGUF I/O and kernel tables treat them like ggml's types. Outliers live beside the block
// tensor in four CSR companion tensors; this header has their names, the 6-bit value packing and the
// scalar reference y += S x that runtime kernels are checked against. Qt-free, no core/ dependency.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "quant/dtype.h"

namespace ef {

struct EfLayout {
    int bits = 0;        // k: code bits per weight, one of 2, 3, 4, 5, 6, 8
    int block = 0;       // B: weights per block, one of 32, 64, 128, 256
    bool affine = false; // w = d*u + m (else w = d*(u - 2^(k-1)))
    bool operator==(const EfLayout&) const = default;

    constexpr int lo_bits() const { return bits == 2 || bits == 3 ? 2 : bits == 8 ? 8 : 4; }
    constexpr int hi_bits() const { return bits - lo_bits(); }
    constexpr int header_bytes() const { return affine ? 4 : 2; }
    constexpr int64_t type_size() const { return header_bytes() + int64_t(block) * bits / 8; }
};

inline constexpr int kEfBits[6] = {2, 3, 4, 5, 6, 8};
inline constexpr int kEfBlocks[4] = {32, 64, 128, 256};
inline constexpr int kEfTypeCount = 48;
inline constexpr uint32_t kEfGgmlIdBase = 1000;  // GGUF type id = 1000 + index (private range)
static_assert(int(DType::EF_LAST) - int(DType::EF_FIRST) + 1 == kEfTypeCount);

// index = ((bits_idx * 4) + block_idx) * 2 + affine.
std::optional<DType> ef_dtype(int bits, int block, bool affine);
std::optional<EfLayout> ef_layout(DType t);
inline bool is_ef_dtype(DType t) { return t >= DType::EF_FIRST && t <= DType::EF_LAST; }
// The traits row of EF type number `index` (0..47); quant/dtype.cpp serves these from type_traits().
const TypeTraits& ef_type_traits(int index);

// --- block planes -----------------------------------------------------------------------------
// One strided plane of `width`-bit fields (width in {1, 2, 4, 8}) for B values: S = B*width/8 bytes,
// byte j holds values j + i*S at bits width*i (i = 0 .. 8/width - 1). Every plane of the format is one.
void ef_pack_plane(const uint8_t* values, int block, int width, uint8_t* plane);    // values: (B)
void ef_unpack_plane(const uint8_t* plane, int block, int width, uint8_t* values);  // values: (B)
// Codes u (B values in [0, 2^k)) <-> the block's plane bytes (low plane then high plane, no header).
void ef_pack_codes(const EfLayout& l, const uint8_t* codes, uint8_t* planes);
void ef_unpack_codes(const EfLayout& l, const uint8_t* planes, uint8_t* codes);
// One whole block: header (f16 d [, f16 m]) + planes. d, m are f16 bit patterns.
void ef_write_block(const EfLayout& l, uint16_t d, uint16_t m, const uint8_t* codes, void* block);
void ef_read_block(const EfLayout& l, const void* block, uint16_t& d, uint16_t& m, uint8_t* codes);
// Weights of a block from its code (exactly what to_float computes).
inline float ef_decode(const EfLayout& l, float d, float m, int u) {
    return l.affine ? d * float(u) + m : d * float(u - (1 << (l.bits - 1)));
}
// n weights (n a multiple of B) of layout l: blocks -> float, and plain round-to-nearest with the
// amax scale (symmetric: d = amax / (2^(k-1) - 1/2), affine: d = (max - min) / (2^k - 1), m = min),
// so every weight is within d/2 (plus f16 rounding of d, m) of its value.
void ef_dequantize(const EfLayout& l, const void* src, float* dst, int64_t n);
void ef_quantize_ref(const EfLayout& l, const float* src, void* dst, int64_t n);

// --- outliers: CSR companions of weight tensor NAME (R rows, C <= 65536 cols) -------------------
inline constexpr std::string_view kEfRowptrSuffix = ".outlier_rowptr";  // I32 (R + 1)
inline constexpr std::string_view kEfColsSuffix = ".outlier_cols";      // I16 (nnz), uint16 bit pattern
inline constexpr std::string_view kEfValsSuffix = ".outlier_vals";      // I8 (ceil(nnz*6/8)), 6-bit packed
inline constexpr std::string_view kEfScaleSuffix = ".outlier_scale";    // F16 (R): correction = s_r * v
inline constexpr int64_t kEfMaxOutlierCols = 65536;
inline constexpr int kEfOutlierMax = 31;  // v in [-31, 31]
// True when `name` ends in one of the four suffixes; `base` gets NAME.
bool ef_companion_base(std::string_view name, std::string* base = nullptr);

inline int64_t ef_packed6_bytes(int64_t n) { return (n * 6 + 7) / 8; }
// 6-bit two's complement values, LSB-first bit stream (value i at bits 6i..6i+5).
void ef_pack6(const int8_t* v, int64_t n, uint8_t* out);  // out: ef_packed6_bytes(n), zero-filled first
inline int ef_get6(const uint8_t* packed, int64_t i) {
    const int64_t bit = i * 6;
    const int64_t byte = bit >> 3;
    const int sh = int(bit & 7);
    uint32_t w = packed[byte];
    if (sh > 2) w |= uint32_t(packed[byte + 1]) << 8;  // spills into the next byte
    const int v = int((w >> sh) & 63);
    return v >= 32 ? v - 64 : v;
}

// A read-only view of the four companions (what the runtime kernels take).
struct EfOutlierView {
    int64_t rows = 0, cols = 0, nnz = 0;
    const int32_t* rowptr = nullptr;  // (R + 1)
    const uint16_t* col = nullptr;    // (nnz)
    const uint8_t* vals = nullptr;    // (ceil(nnz*6/8))
    const uint16_t* scale = nullptr;  // (R) f16
    bool empty() const { return nnz == 0; }
};
// Checks the CSR structure (monotone row pointers ending at nnz, columns < cols); the message says what
// is wrong. Everything below assumes a checked view.
std::optional<std::string> ef_check_outliers(const EfOutlierView& s);
// y += S x. x: (C) float activations (not rounded), y: (R). Scalar reference for runtime kernels.
void sparse_outliers_apply(float* y, const EfOutlierView& s, const float* x);
// Adds S to a dense (R, C) float matrix (row-major): the dequantized weights W_deq + S.
void sparse_outliers_add_dense(float* w, const EfOutlierView& s);

}  // namespace ef
