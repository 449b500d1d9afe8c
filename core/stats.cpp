#include "core/stats.h"

#include <algorithm>
#include <cmath>

namespace ef {

void MomentAccumulator::add(double x) {
    const float one = float(x);
    add(std::span<const float>(&one, 1));
}

// One chunk: two passes over the chunk (its own mean first, then central sums), then a Pébay merge.
// Cheaper than per-element Welford updates and just as stable.
void MomentAccumulator::add(std::span<const float> values) {
    MomentAccumulator c;
    double sum = 0;
    for (float f : values) {
        if (std::isnan(f)) { ++c.nan_; continue; }
        if (std::isinf(f)) { ++c.inf_; continue; }
        const double x = f;
        ++c.n_;
        sum += x;
        c.sumsq_ += x * x;
        c.min_ = std::min(c.min_, x);
        c.max_ = std::max(c.max_, x);
    }
    if (c.n_ > 0) {
        c.mean_ = sum / double(c.n_);
        double s2 = 0, s3 = 0, s4 = 0, comp = 0;
        for (float f : values) {
            if (!std::isfinite(f)) continue;
            const double d = double(f) - c.mean_;
            const double d2 = d * d;
            comp += d;
            s2 += d2;
            s3 += d2 * d;
            s4 += d2 * d2;
        }
        // Correct the mean's rounding error (the centred values should sum to zero).
        s2 -= comp * comp / double(c.n_);
        c.m2_ = std::max(s2, 0.0);
        c.m3_ = s3;
        c.m4_ = s4;
    }
    merge(c);
}

void MomentAccumulator::merge(const MomentAccumulator& b) {
    nan_ += b.nan_;
    inf_ += b.inf_;
    if (b.n_ == 0) return;
    if (n_ == 0) {
        const int64_t nan = nan_, inf = inf_;
        *this = b;
        nan_ = nan;
        inf_ = inf;
        return;
    }
    const double na = double(n_), nb = double(b.n_), n = na + nb;
    const double d = b.mean_ - mean_, d2 = d * d, d3 = d2 * d, d4 = d2 * d2;
    const double m2 = m2_ + b.m2_ + d2 * na * nb / n;
    const double m3 = m3_ + b.m3_ + d3 * na * nb * (na - nb) / (n * n) + 3.0 * d * (na * b.m2_ - nb * m2_) / n;
    const double m4 = m4_ + b.m4_ + d4 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n) +
                      6.0 * d2 * (na * na * b.m2_ + nb * nb * m2_) / (n * n) + 4.0 * d * (na * b.m3_ - nb * m3_) / n;
    mean_ += d * nb / n;
    m2_ = m2;
    m3_ = m3;
    m4_ = m4;
    n_ += b.n_;
    sumsq_ += b.sumsq_;
    min_ = std::min(min_, b.min_);
    max_ = std::max(max_, b.max_);
}

TensorStats MomentAccumulator::result() const {
    TensorStats s;
    s.finite = n_;
    s.nan_count = nan_;
    s.inf_count = inf_;
    s.count = n_ + nan_ + inf_;
    if (n_ == 0) return s;
    const double n = double(n_);
    s.min = min_;
    s.max = max_;
    s.mean = mean_;
    const double var = m2_ / n;
    s.std = std::sqrt(var);
    s.rms = std::sqrt(sumsq_ / n);
    if (var > 0) s.kurtosis = (m4_ / n) / (var * var) - 3.0;
    s.max_abs = std::max(std::fabs(min_), std::fabs(max_));
    s.max_abs_over_rms = s.rms > 0 ? s.max_abs / s.rms : std::numeric_limits<double>::quiet_NaN();
    return s;
}

namespace {

// Calls fn(row0, values) over the tensor in chunks of whole rows; reports progress, stops on cancel.
template <class Fn>
Status for_each_row_chunk(const Tensor& t, int64_t chunk_elements, Progress& progress, Fn&& fn) {
    const auto numel = shape_numel(t.shape);
    if (!numel) return make_error("tensor '" + t.name + "': invalid shape " + shape_to_string(t.shape));
    if (*numel == 0) return {};
    const int64_t rows = t.rows(), row_len = t.row_length();
    const int64_t step = std::max<int64_t>(1, chunk_elements / std::max<int64_t>(1, row_len));
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
        if (progress.cancelled()) return make_error("cancelled");
        const int64_t n = std::min(step, rows - r0);
        auto values = t.rows_to_f32(r0, n);
        if (!values) return values.error();
        fn(r0, std::span<const float>(*values));
        progress.report(double(r0 + n) / double(rows), t.name);
    }
    return {};
}

}  // namespace

Result<TensorStats> tensor_stats(const Tensor& t, Progress& progress, int64_t chunk_elements) {
    MomentAccumulator acc;
    EF_TRY_STATUS(for_each_row_chunk(t, chunk_elements, progress,
                                     [&](int64_t, std::span<const float> v) { acc.add(v); }));
    return acc.result();
}

Result<Heatmap> magnitude_heatmap(const Tensor& t, int max_rows, int max_cols, Progress& progress) {
    if (max_rows < 1 || max_cols < 1) return make_error("heatmap of '" + t.name + "': cell grid must be at least 1x1");
    const auto numel = shape_numel(t.shape);
    if (!numel) return make_error("tensor '" + t.name + "': invalid shape " + shape_to_string(t.shape));
    Heatmap h;
    if (*numel == 0) return h;
    h.src_rows = t.rows();
    h.src_cols = t.row_length();
    h.rows = int(std::min<int64_t>(h.src_rows, max_rows));
    h.cols = int(std::min<int64_t>(h.src_cols, max_cols));
    const size_t cells = size_t(h.rows) * size_t(h.cols);
    h.max_abs.assign(cells, 0.0f);
    std::vector<double> sum(cells, 0.0);
    std::vector<int64_t> cnt(cells, 0);
    // Column -> cell lookup for ordinary rows; very long rows (a huge 1-D tensor) compute it inline.
    const bool lookup = h.src_cols <= (int64_t(1) << 20);
    std::vector<int> col_cell(lookup ? size_t(h.src_cols) : 0);
    for (int64_t c = 0; c < int64_t(col_cell.size()); ++c) col_cell[size_t(c)] = h.cell_of_col(c);

    const int64_t cols = h.src_cols;
    EF_TRY_STATUS(for_each_row_chunk(t, int64_t(1) << 20, progress, [&](int64_t r0, std::span<const float> v) {
        const int64_t nrows = int64_t(v.size()) / cols;
        for (int64_t i = 0; i < nrows; ++i) {
            const size_t base = size_t(h.cell_of_row(r0 + i)) * size_t(h.cols);
            const float* row = v.data() + i * cols;
            for (int64_t c = 0; c < cols; ++c) {
                const float a = std::fabs(row[c]);
                if (std::isnan(a)) continue;
                const size_t k = base + size_t(lookup ? col_cell[size_t(c)] : h.cell_of_col(c));
                if (a > h.max_abs[k]) h.max_abs[k] = a;
                if (std::isfinite(a)) {
                    sum[k] += a;
                    ++cnt[k];
                }
            }
        }
    }));

    h.mean_abs.resize(cells);
    float lo = std::numeric_limits<float>::infinity();
    for (size_t k = 0; k < cells; ++k) {
        h.mean_abs[k] = cnt[k] ? float(sum[k] / double(cnt[k])) : 0.0f;
        const float m = h.max_abs[k];
        if (std::isfinite(m)) h.max_value = std::max(h.max_value, m);
        if (m > 0 && m < lo) lo = m;
    }
    h.min_positive = std::isfinite(lo) ? lo : 0.0f;
    return h;
}

}  // namespace ef
