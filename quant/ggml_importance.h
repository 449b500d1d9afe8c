// Whole-matrix quantization to ggml's block types, with optional importance weights (llama.cpp's
// imatrix: one non-negative weight per input column, e.g. the column's mean squared activation).
//
// The bytes are those of ggml_quantize_chunk for the same rows and weights. Without weights every
// type runs its plain reference quantizer (quant/ggml_blocks.h); with weights the types that ggml
// quantizes differently (q4_0, q4_1, q5_0, q5_1, q2_K .. q6_K) run the weighted scale searches,
// and q8_0 ignores the weights as ggml does. Rows are independent, so callers may split a matrix
// into row ranges and quantize them on several threads.
#pragma once
#include <cstdint>

#include "core/result.h"
#include "quant/dtype.h"

namespace ef::ggml {

// True for the ggml types quantize_rows accepts: q4_0, q4_1, q5_0, q5_1, q8_0, q2_K .. q6_K.
bool supports_quantize_rows(DType t);

// Quantizes nrows rows of n_per_row floats (src: (nrows, n_per_row), row-major) into dst, which
// must hold nrows * n_per_row / block_size blocks. importance is null or n_per_row weights shared
// by every row. Returns the bytes written, or an error for an unsupported type or a row length
// that is not a multiple of the type's block size.
Result<uint64_t> quantize_rows(DType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                               const float* importance);

}  // namespace ef::ggml
