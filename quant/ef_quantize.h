// Round-to-nearest quantizer for the EdgeFusion format (issue 4): per-block scale search, optional
// per-column importance weights, and the top-p outliers taken out into CSR companions with 6-bit
// residual corrections (layout: notes/ef_format.md, quant/ef_format.h). Qt-free; uses core/ tensors
// but not runtime/ (plain std::thread chunks over rows).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "core/tensor.h"
#include "quant/ef_format.h"

namespace ef {

enum class OutlierSelection : uint8_t {
    Magnitude,  // |w|
    Saliency,   // w^2 * E[x_c^2]; needs activation_energy
};

struct EfQuantOptions {
    int bits = 3;            // k in {2, 3, 4, 5, 6, 8}
    int block = 128;         // B in {32, 64, 128, 256}; must divide the row length
    bool affine = false;
    double outlier_fraction = 0.005;  // p in [0, 0.05] of the matrix's weights
    OutlierSelection selection = OutlierSelection::Magnitude;
    std::vector<float> activation_energy;  // (C) E[x_c^2] from calibration; required for Saliency
    std::vector<float> importance;         // (C) optional weights of the scale search's squared error
    int search_steps = 9;    // candidate inverse scales qmax + 0.1*i, i in [-steps, steps]; 0 = plain RTN
    int threads = 0;         // 0: std::thread::hardware_concurrency()
};

struct EfQuantStats {
    double code_bits = 0;       // k
    double effective_bits = 0;  // 8 * (block bytes + companion bytes) / (R * C)
    double rmse = 0;            // of dequant(blocks) + S against W
    double max_abs_err = 0;
    int64_t nnz = 0;            // outliers kept
    uint64_t bytes = 0;         // block bytes + companion bytes
};

struct EfQuantized {
    Tensor blocks;                   // NAME, ef{k}[a]_b{B}, (R, C)
    std::vector<Tensor> companions;  // NAME.outlier_rowptr, _cols, _vals, _scale; empty when nnz == 0
    EfQuantStats stats;
    EfOutlierView outliers() const;  // view over `companions` (empty when none)
};

// Checks options against a (rows, cols) matrix; the error says what is wrong.
Status ef_check_options(const EfQuantOptions& o, int64_t rows, int64_t cols, const std::string& name);

// The CSR pattern (row pointers, column indices) of the top nnz weights of W: (rows, cols) by |w|
// (Magnitude) or w^2 * energy[c] (Saliency; energy: (cols)); NaN weights are never preferred, and ties
// at the threshold are taken in row-major order, so the choice is deterministic. Shared by RTN and GPTQ
// so both keep the same outliers for the same W.
void ef_select_outliers(std::span<const float> w, int64_t rows, int64_t cols, int64_t nnz, OutlierSelection selection,
                        std::span<const float> energy, std::vector<int32_t>& rowptr, std::vector<uint16_t>& ocol);

// W: (rows, cols) row-major float. Reports progress over rows; cancelled -> error "cancelled".
Result<EfQuantized> ef_quantize_matrix(const std::string& name, std::span<const float> w, int64_t rows, int64_t cols,
                                       const EfQuantOptions& o, Progress& progress = Progress::none());

// Quantizes one block of B weights (the scale search, no outliers). x, importance: (B) (importance may be
// null). Writes the block bytes; returns the importance-weighted squared error of the chosen encoding.
double ef_quantize_block(const EfLayout& l, const float* x, const float* importance, int search_steps, void* dst);

// dequant(blocks) + S as a dense (R, C) float matrix.
Result<std::vector<float>> ef_dequantize_matrix(const Tensor& blocks, const EfOutlierView& outliers);
Result<std::vector<float>> ef_dequantize_matrix(const EfQuantized& q);

// Whole model: every tensor `select` accepts (default: 2-D *.weight tensors other than token_embd and
// output whose row length B divides) is replaced by its EF blocks and companions. `energy` may give
// per-tensor activation energies (needed for Saliency). Progress over tensors; cancel -> error.
struct EfModelQuantOptions {
    EfQuantOptions tensor;
    std::function<bool(const Tensor&)> select;
    std::function<const std::vector<float>*(const std::string& name)> energy;
};
Result<Model> ef_quantize_model(const Model& m, const EfModelQuantOptions& o, Progress& progress = Progress::none());

}  // namespace ef
