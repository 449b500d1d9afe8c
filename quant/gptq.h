// GPTQ (issue 4): quantization with second-order error compensation. The Hessian of the layer's
// output error, H = (2/N) sum_t x_t x_t^T over calibration activations x_t: (C), is inverted once
// (Cholesky, Eigen) and each column's rounding error is spread over the not yet quantized columns
// through the upper Cholesky factor of H^-1 (Frantar et al., "GPTQ", 2022). The target is an EF block
// layout (with optional sparse outliers, exactly as ef_quantize_matrix stores them) or ggml's Q4_0 /
// Q8_0; the output is the same EfQuantized structure as ef_quantize_matrix, so the rest of the
// pipeline treats RTN and GPTQ alike. Qt-free; Eigen stays inside gptq.cpp.
//
// Block scales: a block's header (scale d [, offset m]) is chosen by the same scale search as
// ef_quantize_block, on the block's current (error-compensated) weights at the moment its first
// column is quantized. Weights the compensation has not moved since then keep the code that search
// picked; moved ones are rounded to the nearest code under that header. So with a diagonal H (no
// compensation) GPTQ gives exactly RTN's bytes, and the two differ only by the compensation.
// Act-order: columns are processed by descending diag(H), but blocks stay the original column
// blocks: a block's header is fixed when its first column in the permuted order is reached, from all
// of its B weights as they are then (pending lazy-batch updates included).
// Outliers (outlier_fraction > 0, EF targets only): chosen before GPTQ over the whole matrix by |w| or
// saliency w^2 E[x_c^2] (E[x_c^2] = H_cc / 2 when no activation energy is given), counted as 0 when
// block scales are chosen, held fixed (neither quantized nor moved by the compensation, so their
// error is 0 and they spread nothing), and stored as 6-bit residuals w - dequant(Q) in the CSR
// companions.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "quant/ef_quantize.h"

namespace ef {

// Sums x x^T over calibration activation rows in double; finish() gives H = (2/N) sum x x^T.
class HessianAccumulator {
public:
    explicit HessianAccumulator(int64_t cols);
    // x: (T, C) row-major. Non-finite values or a size that is not a multiple of C are an error.
    Status add(std::span<const float> x, int64_t rows);
    int64_t count() const { return n_; }  // N, the rows added so far
    int64_t cols() const { return c_; }
    // H: (C, C) row-major float. Error when nothing was added.
    Result<std::vector<float>> finish() const;

private:
    int64_t c_ = 0, n_ = 0;
    std::vector<double> s_;  // (C, C), upper triangle filled as rows arrive
};

enum class GptqTarget : uint8_t {
    Ef,    // EF layout from ef.bits, ef.block, ef.affine (outliers allowed)
    Q4_0,  // ggml Q4_0: blocks of 32, one f16 scale, codes -8..7 (no outliers)
    Q8_0,  // ggml Q8_0: blocks of 32, one f16 scale, codes -128..127 (no outliers)
};

struct GptqOptions {
    GptqTarget target = GptqTarget::Ef;
    // Layout, outliers, scale search and threads as for RTN (ef_quantize_matrix); importance is not
    // used by GPTQ's scale search (H already weighs the error), so it must be empty.
    EfQuantOptions ef;
    double damp_percent = 1.0;  // added to diag(H): damp_percent/100 * mean(diag(H)), in [0, 100]
    int lazy_batch = 128;       // columns per lazy batch update (any positive number)
    bool act_order = false;     // process columns by descending diag(H)
};

// W: (rows, cols) row-major float; H: (cols, cols) row-major (symmetric, e.g. from HessianAccumulator).
// Progress over rows; cancelled -> error "cancelled". Stats as ef_quantize_matrix (rmse against W).
Result<EfQuantized> gptq_quantize_matrix(const std::string& name, std::span<const float> w, int64_t rows,
                                         int64_t cols, std::span<const float> h, const GptqOptions& o,
                                         Progress& progress = Progress::none());

// Dequantizes a result of either target (EF blocks + outliers, or Q4_0 / Q8_0) to (R, C) float.
Result<std::vector<float>> gptq_dequantize(const EfQuantized& q);

}  // namespace ef
