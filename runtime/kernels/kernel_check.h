// Operands for checking vec_dot kernels against their scalar references: random weight rows in
// any kernel type (including raw random blocks, so every quant and scale bit pattern occurs) and
// a double-precision reference dot. Shared by `edgefusion-run selftest` (on the board) and the
// unit tests, so both check the kernels on the same kind of data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "quant/dtype.h"

namespace ef::rt::kernels {

// Every weight type with a vec_dot kernel row.
std::span<const DType> kernel_types();
// K-quants are checked bitwise (their SIMD kernels keep the scalar summation order).
bool is_kquant(DType t);

std::vector<float> random_floats(std::mt19937& rng, int64_t n, float scale);
// A weight row of n values in `t`: quantized N(0, 0.5) floats, or (raw_bytes, quantized types)
// random block bytes with sane f16 scales.
std::vector<std::byte> random_row(std::mt19937& rng, DType t, int64_t n, bool raw_bytes);

// The dot product and sum |w_j * a_j| in double over the dequantized row and the activations as
// the kernels see them (rounded like ggml): the scale a reordered float sum's error is measured by.
struct ReferenceDot {
    double dot = 0, absdot = 0;
};
ReferenceDot reference_dot(DType t, std::span<const std::byte> row, std::span<const float> x);

}  // namespace ef::rt::kernels
