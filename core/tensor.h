// Tensors. Dimension order, once for the whole code base:
//   shape is outermost-first and row-major contiguous, like PyTorch and safetensors:
//   a linear weight is (out_features, in_features); shape.back() is the contiguous dimension and
//   quantized blocks run along it. GGUF lists ne[] innermost-first, so GGUF ne == reversed shape.
// Tensors never have gaps: strides follow from the shape.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/storage.h"
#include "quant/dtype.h"

namespace ef {

using Shape = std::vector<int64_t>;

std::string shape_to_string(const Shape& s);  // "(64, 512)"
// Product of dims; nullopt when a dim is negative or the product overflows int64.
std::optional<int64_t> shape_numel(const Shape& s);

struct Tensor {
    std::string name;                     // canonical (GGUF-style) name, e.g. "blk.0.attn_q.weight"
    DType dtype = DType::F32;
    Shape shape;                          // outermost-first, see above
    std::span<const std::byte> data;      // nbytes() bytes, contiguous
    std::shared_ptr<const Storage> owner; // keeps `data` alive (a mapped file or owned buffer)

    int64_t numel() const;
    uint64_t nbytes() const;
    int64_t rows() const { return shape.empty() ? 1 : numel() / shape.back(); }
    int64_t row_length() const { return shape.empty() ? 1 : shape.back(); }

    // Dequantizes to float: the whole tensor, or rows [row0, row0 + nrows).
    Result<std::vector<float>> to_f32() const;
    Result<std::vector<float>> rows_to_f32(int64_t row0, int64_t nrows) const;

    // A tensor owning a fresh copy of `values` converted to `dtype` (row length must be a multiple
    // of the block size for quantized types).
    static Result<Tensor> from_f32(std::string name, Shape shape, std::span<const float> values,
                                   DType dtype = DType::F32);
    // A tensor owning raw bytes already in `dtype`'s layout.
    static Result<Tensor> from_bytes(std::string name, DType dtype, Shape shape, std::vector<std::byte> bytes);
};

// Checks that dtype/shape/byte count agree (block-size divisibility, no overflow).
Status validate_tensor_layout(const std::string& name, DType dtype, const Shape& shape, uint64_t nbytes);

}  // namespace ef
