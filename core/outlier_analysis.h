// Outlier analysis (issue 4): per tensor and per block of B consecutive input weights (the EF format's
// blocking), how heavy-tailed the weights are, and where the model's top-p outliers fall -- the share of
// the outlier budget each tensor and layer takes. Feeds the outlier heatmaps (layers x blocks, or one
// tensor's blocks) and is saved in the HDF5 checkpoint (core/hdf5/hdf5_checkpoint.h). Qt-free.
//
// Definitions (population moments, double precision; NaN and +-Inf weights are skipped everywhere):
//   max_over_rms   max|w| / sqrt(mean w^2) over the block (NaN for an all-zero block)
//   kurtosis       EXCESS kurtosis m4 / m2^2 - 3 over the block, centred on the block mean (NaN when
//                  the block's variance is 0); 0 for a normal distribution
//   beyond_k_sigma number of weights with |w - mu| > k * sigma where mu and sigma are the mean and
//                  population standard deviation of the WHOLE TENSOR (not of the block): block counts
//                  then add up to the tensor's count and show where the tensor's tail sits. (A block's
//                  own sigma would cap every block at B / k^2 by Chebyshev and hide concentrated tails.)
//   budget         how many of the model's top-p outliers lie in the block. The budget is
//                  N = floor(p * n) weights over the n analysed (finite) weights of the whole model,
//                  ranked by score |w| (magnitude) or w^2 * E[x_c^2] (saliency, computed in float as
//                  the EF quantizer does); ties at the threshold are taken in model order, row-major.
// A tensor of any rank is viewed as a matrix (rows = numel / last dim, cols = last dim); per-block
// arrays are (rows, blocks_per_row) row-major with blocks_per_row = ceil(cols / B) (the last block of a
// row is short when B does not divide cols; the EF format itself requires B | cols).
// Quantized tensors are analysed as their dequantized values (EF outlier companions not added): run
// it on the full-precision master weights.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "quant/ef_quantize.h"  // OutlierSelection (header-only enum; no link dependency on ef_quant)

namespace ef {

struct OutlierAnalysisOptions {
    int64_t block = 128;      // B: consecutive input weights per block (>= 1)
    double k = 3.0;           // count |w - mu| > k * sigma (k > 0)
    double fraction = 0.005;  // p in [0, 0.05]: the model's outlier budget
    OutlierSelection selection = OutlierSelection::Magnitude;
    // (cols) E[x_c^2] of the tensor's input columns; required for every analysed tensor with Saliency.
    std::function<const std::vector<float>*(const std::string& name)> energy;
    // Which tensors to analyse; default: rank >= 2, non-integer dtype (float or quantized weights).
    std::function<bool(const Tensor&)> select;
    int threads = 0;  // 0: hardware concurrency
};

// Per-tensor results. Arrays are (rows, blocks_per_row), row-major.
struct TensorOutliers {
    std::string name;
    int layer = -1;  // N of "blk.N."; -1 for tensors outside the layer stack (token_embd, output, ...)
    int64_t rows = 0, cols = 0, block = 0, blocks_per_row = 0;
    int64_t finite = 0;  // weights counted (non-finite ones skipped)
    // Whole-tensor values (same definitions as the per-block ones).
    double mean = std::numeric_limits<double>::quiet_NaN();
    double std = std::numeric_limits<double>::quiet_NaN();
    double max_over_rms = std::numeric_limits<double>::quiet_NaN();
    double kurtosis = std::numeric_limits<double>::quiet_NaN();
    int64_t beyond_k_sigma = 0;
    int64_t budget = 0;         // model outliers in this tensor
    double budget_share = 0;    // budget / model budget (0 when the model budget is 0)

    std::vector<float> block_max_over_rms;   // (rows, blocks_per_row)
    std::vector<float> block_kurtosis;       // (rows, blocks_per_row)
    std::vector<int32_t> block_beyond_k_sigma;  // (rows, blocks_per_row)
    std::vector<int32_t> block_budget;       // (rows, blocks_per_row)
    // (cols) E[x_c^2] the saliency scores used; empty for magnitude selection. Kept so a saved
    // analysis can be recomputed and checked on its own.
    std::vector<float> activation_energy;

    size_t index(int64_t r, int64_t b) const { return size_t(r) * size_t(blocks_per_row) + size_t(b); }
};

// One row per layer index that has analysed tensors (ascending), then layer -1 when present.
struct LayerOutliers {
    int layer = -1;
    int64_t weights = 0;          // analysed weights in the layer
    int64_t beyond_k_sigma = 0;
    int64_t budget = 0;           // model outliers in the layer
    double budget_share = 0;      // budget / model budget
    double weight_share = 0;      // weights / model weights: a layer with budget_share >> weight_share
                                  // is outlier-heavy
    double max_over_rms = 0;      // largest tensor max|w|/rms in the layer
};

// Immutable once made: analyze_outliers and load_outlier_analysis hand it out as shared_ptr<const>.
struct OutlierAnalysis {
    int64_t block = 128;
    double k = 3.0;
    double fraction = 0.005;
    OutlierSelection selection = OutlierSelection::Magnitude;
    int64_t total_weights = 0;  // n: finite analysed weights
    int64_t budget = 0;         // N = floor(p * n)
    // Score of the N-th largest weight (+inf when N = 0): scores above it are in the budget, ties in
    // model order.
    double threshold = std::numeric_limits<double>::infinity();
    std::vector<TensorOutliers> tensors;  // model order
    std::vector<LayerOutliers> layers;

    const TensorOutliers* find(std::string_view name) const;
};
using OutlierAnalysisPtr = std::shared_ptr<const OutlierAnalysis>;

std::string_view outlier_selection_name(OutlierSelection s);  // "magnitude" / "saliency"
std::optional<OutlierSelection> outlier_selection_from_name(std::string_view s);
// N of a "blk.N." tensor name, -1 otherwise.
int layer_of_tensor(std::string_view name);

// Checks the options (B >= 1, k > 0, p in [0, 0.05]); the error says what is wrong.
Status check_outlier_options(const OutlierAnalysisOptions& o);

// Three passes over every selected tensor (block statistics; tensor-sigma counts and the exact budget
// threshold by a two-level radix select over the score bits; budget counts), each multi-threaded over
// tensors, reading row chunks through Tensor::rows_to_f32. Progress over all passes; cancel -> error
// "cancelled". Errors name the tensor (e.g. missing activation energy for Saliency).
Result<OutlierAnalysisPtr> analyze_outliers(const Model& m, const OutlierAnalysisOptions& o,
                                            Progress& progress = Progress::none());

// Layer table from tensor results (used by analyze_outliers and the HDF5 reader).
std::vector<LayerOutliers> summarize_outlier_layers(const std::vector<TensorOutliers>& tensors, int64_t budget);

}  // namespace ef
