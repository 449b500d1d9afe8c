// Matrix-matrix product for prefill and batched evaluation: T activation rows against one weight.
// Each activation row meets the weight exactly as in matvec (ops.h): rounded once into the
// weight type's partner type, then dotted with the stored rows, so matmul over T rows equals T
// matvecs up to the float summation order inside a block-tiled kernel.
#pragma once
#include <cstdint>
#include <span>

#include "core/result.h"
#include "core/tensor.h"
#include "runtime/ops.h"

namespace ef::rt {

// Y: (T, nrows) = X: (T, cols) @ W[row0 : row0 + nrows]^T, all row-major.
// W: (rows, cols) of any dtype with a to_float conversion. nrows < 0 means all rows.
// Options as matvec's: the pool splits the work, Kernels picks SIMD / scalar / reference code.
Status matmul(std::span<float> y, const Tensor& w, std::span<const float> x, int64_t T, const MatvecOptions& options,
              int64_t row0 = 0, int64_t nrows = -1);

}  // namespace ef::rt
