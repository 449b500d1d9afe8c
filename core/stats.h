// Tensor statistics and magnitude heatmaps for inspection (GUI tensor table and heatmap, CLI inspect).
// Both read a tensor in row chunks through Tensor::rows_to_f32, so a 1 GB quantized tensor is never
// dequantized at once, and both report progress and honour cancellation.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "core/tensor.h"

namespace ef {

// Summary of a tensor's values. Moments are population moments (divide by n) over the finite values
// only; NaN and ±Inf are counted separately and excluded from everything else.
struct TensorStats {
    int64_t count = 0;       // all elements (finite + NaN + Inf)
    int64_t finite = 0;      // elements the moments are computed over
    int64_t nan_count = 0;
    int64_t inf_count = 0;
    double min = std::numeric_limits<double>::quiet_NaN();  // NaN when there is no finite value
    double max = std::numeric_limits<double>::quiet_NaN();
    double mean = std::numeric_limits<double>::quiet_NaN();
    double std = std::numeric_limits<double>::quiet_NaN();  // population standard deviation
    double rms = std::numeric_limits<double>::quiet_NaN();  // sqrt(mean(x^2))
    // EXCESS kurtosis m4 / m2^2 - 3 (0 for a normal distribution, large for outlier-heavy weights);
    // NaN when the variance is zero.
    double kurtosis = std::numeric_limits<double>::quiet_NaN();
    double max_abs = std::numeric_limits<double>::quiet_NaN();
    double max_abs_over_rms = std::numeric_limits<double>::quiet_NaN();  // outlier ratio
};

// Streaming, mergeable accumulator of the first four central moments, in double (Welford/Terriberry
// updates; Pébay's formulas to merge chunks). Numerically stable for large n and large offsets.
class MomentAccumulator {
public:
    void add(double x);
    void add(std::span<const float> values);
    void merge(const MomentAccumulator& other);
    TensorStats result() const;

private:
    int64_t n_ = 0, nan_ = 0, inf_ = 0;
    double mean_ = 0, m2_ = 0, m3_ = 0, m4_ = 0, sumsq_ = 0;
    double min_ = std::numeric_limits<double>::infinity();
    double max_ = -std::numeric_limits<double>::infinity();
};

// Stats of a whole tensor, read in chunks of about `chunk_elements` values. Error on a bad layout or
// when cancelled ("cancelled").
Result<TensorStats> tensor_stats(const Tensor& t, Progress& progress = Progress::none(),
                                 int64_t chunk_elements = int64_t(1) << 20);

// A downsampled |w| map of a tensor seen as a matrix: rows = numel / shape.back(), cols = shape.back()
// (a 1-D tensor is one row, a scalar one cell). Cell (i, j) covers source rows row_range(i) and
// columns col_range(j); both partitions are as even as possible.
struct Heatmap {
    int rows = 0, cols = 0;             // cells
    int64_t src_rows = 0, src_cols = 0; // matrix the tensor was viewed as
    std::vector<float> max_abs;         // rows*cols, row-major: max |w| in the cell (keeps outliers)
    std::vector<float> mean_abs;        // rows*cols: mean |w| over the cell's finite values
    float max_value = 0;                // largest finite max_abs cell
    float min_positive = 0;             // smallest max_abs cell > 0 (0 when none): log-scale floor

    float max_at(int r, int c) const { return max_abs[size_t(r) * size_t(cols) + size_t(c)]; }
    float mean_at(int r, int c) const { return mean_abs[size_t(r) * size_t(cols) + size_t(c)]; }
    // Half-open source ranges [first, second) for cell row r / cell column c.
    std::pair<int64_t, int64_t> row_range(int r) const { return {split(src_rows, rows, r), split(src_rows, rows, r + 1)}; }
    std::pair<int64_t, int64_t> col_range(int c) const { return {split(src_cols, cols, c), split(src_cols, cols, c + 1)}; }
    // Cell row/column containing source row/column (inverse of the ranges above).
    int cell_of_row(int64_t row) const { return cell_of(src_rows, rows, row); }
    int cell_of_col(int64_t col) const { return cell_of(src_cols, cols, col); }

private:
    static int64_t split(int64_t n, int cells, int i) { return cells ? n * i / cells : 0; }
    // Largest i with floor(i*n/cells) <= x.
    static int cell_of(int64_t n, int cells, int64_t x) { return n ? int(((x + 1) * cells - 1) / n) : 0; }
};

// max_rows/max_cols cap the cell grid (a smaller matrix keeps one cell per element). Non-finite
// values: Inf counts as an infinite |w| in max_abs (shown saturated), NaN is skipped.
Result<Heatmap> magnitude_heatmap(const Tensor& t, int max_rows, int max_cols,
                                  Progress& progress = Progress::none());

}  // namespace ef
