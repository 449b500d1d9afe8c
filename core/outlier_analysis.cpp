#include "core/outlier_analysis.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

#include "core/stats.h"

namespace ef {

const TensorOutliers* OutlierAnalysis::find(std::string_view name) const {
    for (const auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

std::string_view outlier_selection_name(OutlierSelection s) {
    return s == OutlierSelection::Saliency ? "saliency" : "magnitude";
}

std::optional<OutlierSelection> outlier_selection_from_name(std::string_view s) {
    if (s == "magnitude") return OutlierSelection::Magnitude;
    if (s == "saliency") return OutlierSelection::Saliency;
    return std::nullopt;
}

int layer_of_tensor(std::string_view name) {
    if (!name.starts_with("blk.")) return -1;
    int64_t n = 0;
    size_t i = 4;
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && n < (int64_t(1) << 30); ++i) n = n * 10 + (name[i] - '0');
    return (i > 4 && i < name.size() && name[i] == '.') ? int(n) : -1;
}

Status check_outlier_options(const OutlierAnalysisOptions& o) {
    if (o.block < 1) return make_error("outlier analysis: block size B = " + std::to_string(o.block) + " must be at least 1");
    if (!(o.k > 0) || !std::isfinite(o.k))
        return make_error("outlier analysis: k = " + std::to_string(o.k) + " must be a positive number");
    if (!(o.fraction >= 0.0 && o.fraction <= 0.05))
        return make_error("outlier analysis: outlier fraction p = " + std::to_string(o.fraction) +
                          " is outside [0, 0.05] (0% to 5%)");
    return {};
}

namespace {

constexpr size_t kBins = 65536;
using Histogram = std::vector<uint64_t>;  // kBins

// Non-negative float scores order like their bit patterns.
inline uint32_t score_bits(float s) { return s > 0 ? std::bit_cast<uint32_t>(s) : 0u; }

struct Block {
    float max_over_rms, kurtosis;
};

// x: (n) one block; non-finite values skipped.
Block block_stats(const float* x, int64_t n) {
    int64_t cnt = 0;
    double sum = 0, sumsq = 0, maxabs = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) continue;
        const double v = x[i];
        ++cnt;
        sum += v;
        sumsq += v * v;
        maxabs = std::max(maxabs, std::fabs(v));
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    if (cnt == 0) return {nan, nan};
    const double mean = sum / double(cnt);
    double m2 = 0, m4 = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) continue;
        const double d = double(x[i]) - mean, d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
    }
    m2 /= double(cnt);
    m4 /= double(cnt);
    return {sumsq > 0 ? float(maxabs / std::sqrt(sumsq / double(cnt))) : nan,
            m2 > 0 ? float(m4 / (m2 * m2) - 3.0) : nan};
}

class Analyzer {
public:
    Analyzer(const Model& m, const OutlierAnalysisOptions& o, Progress& progress) : m_(m), o_(o), progress_(progress) {}

    Result<OutlierAnalysisPtr> run() {
        EF_TRY_STATUS(check_outlier_options(o_));
        for (const auto& t : m_.tensors) {
            const bool pick = o_.select ? o_.select(t) : default_select(t);
            if (!pick) continue;
            const auto numel = shape_numel(t.shape);
            if (!numel) return make_error("outlier analysis: tensor '" + t.name + "': invalid shape");
            if (*numel == 0) continue;
            const std::vector<float>* e = nullptr;
            if (o_.selection == OutlierSelection::Saliency) {
                e = o_.energy ? o_.energy(t.name) : nullptr;
                if (!e) return make_error("outlier analysis: tensor '" + t.name + "': no activation energy for saliency");
                if (int64_t(e->size()) != t.row_length())
                    return make_error("outlier analysis: tensor '" + t.name + "': activation energy has " +
                                      std::to_string(e->size()) + " values for " + std::to_string(t.row_length()) +
                                      " columns");
            }
            items_.push_back({&t, e});
            total_elems_ += double(*numel);
        }
        auto a = std::make_shared<OutlierAnalysis>();
        a->block = o_.block;
        a->k = o_.k;
        a->fraction = o_.fraction;
        a->selection = o_.selection;
        a->tensors.resize(items_.size());
        res_ = &a->tensors;

        // Pass 1: block statistics, tensor moments, high 16 bits of every score.
        Histogram hi(kBins, 0);
        EF_TRY_STATUS(parallel(hi, [&](size_t i, Histogram& h) { return pass1(i, h); }));
        uint64_t n = 0;
        for (uint64_t c : hi) n += c;
        a->total_weights = int64_t(n);
        a->budget = int64_t(std::floor(o_.fraction * double(n)));
        const uint64_t want = uint64_t(a->budget);

        // Exact threshold: the bin holding the want-th largest score, then its low 16 bits.
        uint64_t above_bin = 0;
        bin_ = -1;
        if (want > 0) {
            for (size_t b = kBins; b-- > 0;) {
                if (above_bin + hi[b] >= want) { bin_ = int64_t(b); break; }
                above_bin += hi[b];
            }
        }
        Histogram lo(kBins, 0);
        EF_TRY_STATUS(parallel(lo, [&](size_t i, Histogram& h) { return pass2(i, h); }));
        if (want > 0) {
            uint64_t above = above_bin;
            for (size_t b = kBins; b-- > 0;) {
                if (above + lo[b] >= want) {
                    thr_bits_ = (uint32_t(bin_) << 16) | uint32_t(b);
                    break;
                }
                above += lo[b];
            }
            a->threshold = std::bit_cast<float>(thr_bits_);
            // Pass 3: per block, scores above the threshold and ties at it.
            ties_.resize(items_.size());
            Histogram unused;
            EF_TRY_STATUS(parallel(unused, [&](size_t i, Histogram&) { return pass3(i); }));
            int64_t remaining = a->budget - int64_t(above);  // ties to take, in model order
            for (size_t i = 0; i < items_.size(); ++i) {
                auto& r = a->tensors[i];
                for (size_t b = 0; b < ties_[i].size() && remaining > 0; ++b) {
                    const int32_t take = int32_t(std::min<int64_t>(ties_[i][b], remaining));
                    r.block_budget[b] += take;
                    remaining -= take;
                }
            }
        }
        for (auto& r : a->tensors) {
            r.budget = 0;
            for (int32_t c : r.block_budget) r.budget += c;
            r.budget_share = a->budget > 0 ? double(r.budget) / double(a->budget) : 0.0;
        }
        a->layers = summarize_outlier_layers(a->tensors, a->budget);
        progress_.report(1.0, "outlier analysis");
        return OutlierAnalysisPtr(std::move(a));
    }

private:
    struct Item {
        const Tensor* t;
        const std::vector<float>* energy;
    };

    static bool default_select(const Tensor& t) {
        if (t.shape.size() < 2) return false;
        switch (t.dtype) {
            case DType::I8: case DType::I16: case DType::I32: case DType::I64: return false;
            default: return true;
        }
    }

    float score(const Item& it, float w, int64_t c) const {
        return o_.selection == OutlierSelection::Saliency ? w * w * (*it.energy)[size_t(c)] : std::fabs(w);
    }

    // Calls fn(row0, values) over whole-row chunks of about 1M values.
    template <class Fn>
    Status for_chunks(const Tensor& t, Fn&& fn) {
        const int64_t rows = t.rows(), cols = t.row_length();
        const int64_t step = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, cols));
        for (int64_t r0 = 0; r0 < rows; r0 += step) {
            if (progress_.cancelled()) return make_error("cancelled");
            const int64_t nr = std::min(step, rows - r0);
            auto v = t.rows_to_f32(r0, nr);
            if (!v) return make_error("outlier analysis: " + v.message());
            fn(r0, nr, v->data());
            advance(double(nr * cols));
        }
        return {};
    }

    void advance(double elems) {
        std::lock_guard lock(mu_);
        done_ += elems;
        progress_.report(std::min(0.999, done_ / std::max(1.0, 3.0 * total_elems_)), "outlier analysis");
    }

    Status pass1(size_t i, Histogram& hist) {
        const Item& it = items_[i];
        const Tensor& t = *it.t;
        TensorOutliers& r = (*res_)[i];
        r.name = t.name;
        r.layer = layer_of_tensor(t.name);
        r.rows = t.rows();
        r.cols = t.row_length();
        r.block = o_.block;
        r.blocks_per_row = (r.cols + o_.block - 1) / o_.block;
        const size_t cells = size_t(r.rows) * size_t(r.blocks_per_row);
        r.block_max_over_rms.assign(cells, 0.0f);
        r.block_kurtosis.assign(cells, 0.0f);
        r.block_beyond_k_sigma.assign(cells, 0);
        r.block_budget.assign(cells, 0);
        if (it.energy) r.activation_energy = *it.energy;
        MomentAccumulator acc;
        const int64_t cols = r.cols, B = o_.block;
        EF_TRY_STATUS(for_chunks(t, [&](int64_t r0, int64_t nr, const float* v) {
            acc.add(std::span<const float>(v, size_t(nr * cols)));
            for (int64_t j = 0; j < nr; ++j) {
                const float* row = v + j * cols;
                for (int64_t b = 0; b < r.blocks_per_row; ++b) {
                    const int64_t c0 = b * B, n = std::min(B, cols - c0);
                    const Block s = block_stats(row + c0, n);
                    r.block_max_over_rms[r.index(r0 + j, b)] = s.max_over_rms;
                    r.block_kurtosis[r.index(r0 + j, b)] = s.kurtosis;
                }
                for (int64_t c = 0; c < cols; ++c)
                    if (std::isfinite(row[c])) ++hist[score_bits(score(it, row[c], c)) >> 16];
            }
        }));
        const TensorStats s = acc.result();
        r.finite = s.finite;
        r.mean = s.mean;
        r.std = s.std;
        r.max_over_rms = s.max_abs_over_rms;
        r.kurtosis = s.kurtosis;
        return {};
    }

    // Tensor-sigma counts; low 16 bits of the scores in the threshold's bin.
    Status pass2(size_t i, Histogram& hist) {
        const Item& it = items_[i];
        TensorOutliers& r = (*res_)[i];
        const double mu = r.mean, lim = o_.k * r.std;
        const int64_t cols = r.cols, B = o_.block;
        const bool ok = std::isfinite(mu) && std::isfinite(lim);
        EF_TRY_STATUS(for_chunks(*it.t, [&](int64_t r0, int64_t nr, const float* v) {
            for (int64_t j = 0; j < nr; ++j) {
                const float* row = v + j * cols;
                for (int64_t c = 0; c < cols; ++c) {
                    if (!std::isfinite(row[c])) continue;
                    if (ok && std::fabs(double(row[c]) - mu) > lim) ++r.block_beyond_k_sigma[r.index(r0 + j, c / B)];
                    if (bin_ >= 0) {
                        const uint32_t bits = score_bits(score(it, row[c], c));
                        if (int64_t(bits >> 16) == bin_) ++hist[bits & 0xffff];
                    }
                }
            }
        }));
        r.beyond_k_sigma = 0;
        for (int32_t c : r.block_beyond_k_sigma) r.beyond_k_sigma += c;
        return {};
    }

    Status pass3(size_t i) {
        const Item& it = items_[i];
        TensorOutliers& r = (*res_)[i];
        auto& ties = ties_[i];
        ties.assign(r.block_budget.size(), 0);
        const int64_t cols = r.cols, B = o_.block;
        return for_chunks(*it.t, [&](int64_t r0, int64_t nr, const float* v) {
            for (int64_t j = 0; j < nr; ++j) {
                const float* row = v + j * cols;
                for (int64_t c = 0; c < cols; ++c) {
                    if (!std::isfinite(row[c])) continue;
                    const uint32_t bits = score_bits(score(it, row[c], c));
                    if (bits > thr_bits_) ++r.block_budget[r.index(r0 + j, c / B)];
                    else if (bits == thr_bits_) ++ties[r.index(r0 + j, c / B)];
                }
            }
        });
    }

    // Runs fn(tensor index, thread-local histogram) over all items on a few threads; the local
    // histograms are added into `merged` (when it is non-empty). First error wins.
    template <class Fn>
    Status parallel(Histogram& merged, Fn&& fn) {
        const size_t hw = o_.threads > 0 ? size_t(o_.threads) : std::max(1u, std::thread::hardware_concurrency());
        const size_t nt = std::max<size_t>(1, std::min(hw, items_.size()));
        std::atomic<size_t> next{0};
        std::mutex err_mu;
        Status first;
        std::vector<Histogram> local(nt, Histogram(merged.size(), 0));
        auto work = [&](size_t w) {
            for (;;) {
                {
                    std::lock_guard lock(err_mu);
                    if (!first.ok()) return;
                }
                const size_t i = next.fetch_add(1);
                if (i >= items_.size()) return;
                Status s;
                try {
                    s = fn(i, local[w]);
                } catch (const std::exception& e) {  // allocation failure on a huge tensor
                    s = make_error("outlier analysis: " + items_[i].t->name + ": " + e.what());
                }
                if (!s.ok()) {
                    std::lock_guard lock(err_mu);
                    if (first.ok()) first = s;
                    return;
                }
            }
        };
        std::vector<std::thread> pool;
        for (size_t w = 1; w < nt; ++w) pool.emplace_back(work, w);
        work(0);
        for (auto& th : pool) th.join();
        if (!first.ok()) return first;
        for (const auto& h : local)
            for (size_t b = 0; b < h.size(); ++b) merged[b] += h[b];
        return {};
    }

    const Model& m_;
    const OutlierAnalysisOptions& o_;
    Progress& progress_;
    std::vector<Item> items_;
    std::vector<TensorOutliers>* res_ = nullptr;
    std::vector<std::vector<int32_t>> ties_;
    int64_t bin_ = -1;
    uint32_t thr_bits_ = 0;
    double total_elems_ = 0, done_ = 0;
    std::mutex mu_;
};

}  // namespace

std::vector<LayerOutliers> summarize_outlier_layers(const std::vector<TensorOutliers>& tensors, int64_t budget) {
    std::map<int, LayerOutliers> by;  // -1 sorts first; moved to the end below
    int64_t total = 0;
    for (const auto& t : tensors) {
        LayerOutliers& l = by[t.layer];
        l.layer = t.layer;
        l.weights += t.finite;
        l.beyond_k_sigma += t.beyond_k_sigma;
        l.budget += t.budget;
        if (std::isfinite(t.max_over_rms)) l.max_over_rms = std::max(l.max_over_rms, t.max_over_rms);
        total += t.finite;
    }
    std::vector<LayerOutliers> out;
    for (auto& [layer, l] : by) {
        l.budget_share = budget > 0 ? double(l.budget) / double(budget) : 0.0;
        l.weight_share = total > 0 ? double(l.weights) / double(total) : 0.0;
        if (layer >= 0) out.push_back(l);
    }
    if (auto it = by.find(-1); it != by.end()) out.push_back(it->second);
    return out;
}

Result<OutlierAnalysisPtr> analyze_outliers(const Model& m, const OutlierAnalysisOptions& o, Progress& progress) {
    progress.report(0.0, "outlier analysis");
    return Analyzer(m, o, progress).run();  // cancelled -> "cancelled", as tensor_stats
}

}  // namespace ef
