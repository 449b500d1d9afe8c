#include "quant/ef_quantize.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

#include "quant/half.h"

namespace ef {
namespace {

constexpr float kF16Max = 65504.0f;

inline float wgt(const float* imp, int i) { return imp ? imp[i] : 1.0f; }

inline int clamp_round(float v, int lo, int hi) {
    float q = std::nearbyint(v);
    if (!(q >= float(lo))) q = float(lo);  // NaN too
    if (q > float(hi)) q = float(hi);
    return int(q);
}

inline uint16_t f16_clamped(float v) { return f32_to_f16(std::clamp(v, -kF16Max, kF16Max)); }

// The block encoding being searched: f16 header and codes u in [0, 2^k).
struct Candidate {
    uint16_t d = 0, m = 0;
    std::array<uint8_t, 256> u{};
    double err = std::numeric_limits<double>::infinity();
};

double block_error(const EfLayout& l, const float* x, const float* imp, const Candidate& c) {
    const float d = f16_to_f32(c.d), m = f16_to_f32(c.m);
    double e = 0;
    for (int i = 0; i < l.block; ++i) {
        const double r = double(x[i]) - double(ef_decode(l, d, m, c.u[size_t(i)]));
        e += double(wgt(imp, i)) * r * r;
    }
    return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
}

// Codes for a fixed (f16) header: plain nearest rounding.
void recode(const EfLayout& l, const float* x, Candidate& c) {
    const float d = f16_to_f32(c.d), m = f16_to_f32(c.m);
    const int qmax = (1 << l.bits) - 1, half = 1 << (l.bits - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < l.block; ++i)
        c.u[size_t(i)] = uint8_t(l.affine ? clamp_round((x[i] - m) * id, 0, qmax) : clamp_round(x[i] * id + float(half), 0, qmax));
}

void consider(const EfLayout& l, const float* x, const float* imp, Candidate& c, Candidate& best) {
    c.err = block_error(l, x, imp, c);
    if (c.err < best.err) best = c;
    // The least-squares header may round codes differently than the header that chose them: re-round once.
    Candidate r = c;
    recode(l, x, r);
    r.err = block_error(l, x, imp, r);
    if (r.err < best.err) best = r;
}

// Symmetric: codes q = clamp(round(s x)) in [-2^(k-1), 2^(k-1)-1] for an inverse scale s, then the
// weighted least-squares d = sum(w x q) / sum(w q^2) for those codes.
void search_symmetric(const EfLayout& l, const float* x, const float* imp, int steps, Candidate& best) {
    const int half = 1 << (l.bits - 1);
    float xm = 0.0f;  // the largest-magnitude weight, signed
    for (int i = 0; i < l.block; ++i)
        if (std::fabs(x[i]) > std::fabs(xm)) xm = x[i];
    if (xm == 0.0f || !std::isfinite(xm)) return;
    Candidate c;
    for (int side = 0; side < 2; ++side)      // the extreme on the long (-2^(k-1)) or short side
        for (int i = -steps; i <= steps; ++i) {
            const float target = side == 0 ? -(float(half) + 0.1f * float(i)) : float(half - 1) + 0.1f * float(i);
            if (side == 1 && target <= 0.0f) continue;
            const float s = target / xm;
            double sxq = 0, sqq = 0;
            for (int j = 0; j < l.block; ++j) {
                const int q = clamp_round(s * x[j], -half, half - 1);
                c.u[size_t(j)] = uint8_t(q + half);
                const double w = wgt(imp, j);
                sxq += w * double(x[j]) * q;
                sqq += w * double(q) * q;
            }
            if (sqq <= 0) continue;
            c.d = f16_clamped(float(sxq / sqq));
            c.m = 0;
            consider(l, x, imp, c, best);
        }
}

// Affine: codes u = clamp(round(s (x - min))) in [0, 2^k - 1], then the weighted least-squares (d, m).
void search_affine(const EfLayout& l, const float* x, const float* imp, int steps, Candidate& best) {
    const int qmax = (1 << l.bits) - 1;
    float mn = x[0], mx = x[0];
    for (int i = 1; i < l.block; ++i) { mn = std::min(mn, x[i]); mx = std::max(mx, x[i]); }
    const float range = mx - mn;
    if (!(range > 0.0f) || !std::isfinite(range)) return;
    Candidate c;
    for (int i = -steps; i <= steps; ++i) {
        const float target = float(qmax) + 0.1f * float(i);
        if (target <= 0.0f) continue;
        const float s = target / range;
        double sw = 0, su = 0, suu = 0, sx = 0, sux = 0;
        for (int j = 0; j < l.block; ++j) {
            const int u = clamp_round(s * (x[j] - mn), 0, qmax);
            c.u[size_t(j)] = uint8_t(u);
            const double w = wgt(imp, j);
            sw += w; su += w * u; suu += w * double(u) * u; sx += w * x[j]; sux += w * double(u) * x[j];
        }
        const double det = sw * suu - su * su;
        if (!(det > 0)) continue;
        c.d = f16_clamped(float((sw * sux - su * sx) / det));
        c.m = f16_clamped(float((suu * sx - su * sux) / det));
        consider(l, x, imp, c, best);
    }
}

std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

}  // namespace

double ef_quantize_block(const EfLayout& l, const float* x, const float* importance, int search_steps, void* dst) {
    // The plain reference encoding is always a candidate, so the search is never worse than it.
    Candidate best;
    std::array<uint8_t, 4 + 256> tmp{};
    ef_quantize_ref(l, x, tmp.data(), l.block);
    ef_read_block(l, tmp.data(), best.d, best.m, best.u.data());
    best.err = block_error(l, x, importance, best);
    if (search_steps > 0) {
        if (l.affine) search_affine(l, x, importance, search_steps, best);
        else search_symmetric(l, x, importance, search_steps, best);
    }
    ef_write_block(l, best.d, best.m, best.u.data(), dst);
    return best.err;
}

EfOutlierView EfQuantized::outliers() const {
    EfOutlierView v;
    v.rows = blocks.rows();
    v.cols = blocks.row_length();
    if (companions.size() != 4) return v;
    v.nnz = companions[1].numel();
    v.rowptr = reinterpret_cast<const int32_t*>(companions[0].data.data());
    v.col = reinterpret_cast<const uint16_t*>(companions[1].data.data());
    v.vals = reinterpret_cast<const uint8_t*>(companions[2].data.data());
    v.scale = reinterpret_cast<const uint16_t*>(companions[3].data.data());
    return v;
}

Status ef_check_options(const EfQuantOptions& o, int64_t rows, int64_t cols, const std::string& name) {
    const std::string t = "tensor " + name + " (" + std::to_string(rows) + " x " + std::to_string(cols) + "): ";
    if (!ef_dtype(o.bits, o.block, o.affine))
        return make_error(t + "EF format needs k in {2, 3, 4, 5, 6, 8} and B in {32, 64, 128, 256}; got k = " +
                          std::to_string(o.bits) + ", B = " + std::to_string(o.block));
    if (rows <= 0 || cols <= 0) return make_error(t + "empty matrix");
    if (cols % o.block != 0)
        return make_error(t + "block size B = " + std::to_string(o.block) + " does not divide the row length " +
                          std::to_string(cols));
    if (!(o.outlier_fraction >= 0.0 && o.outlier_fraction <= 0.05))
        return make_error(t + "outlier fraction p = " + fmt(o.outlier_fraction) + " is outside [0, 0.05] (0% to 5%)");
    if (o.outlier_fraction > 0 && cols > kEfMaxOutlierCols)
        return make_error(t + "outliers store 16-bit column indices, so they need at most " +
                          std::to_string(kEfMaxOutlierCols) + " columns; use outlier fraction 0 for this tensor");
    if (o.outlier_fraction > 0 && o.outlier_fraction * double(rows) * double(cols) > double(std::numeric_limits<int32_t>::max()))
        return make_error(t + "too many outliers for 32-bit row pointers");
    if (o.selection == OutlierSelection::Saliency && o.outlier_fraction > 0 && int64_t(o.activation_energy.size()) != cols)
        return make_error(t + "saliency selection needs the per-column activation energy E[x^2] (" + std::to_string(cols) +
                          " values), got " + std::to_string(o.activation_energy.size()));
    if (!o.importance.empty() && int64_t(o.importance.size()) != cols)
        return make_error(t + "importance weights need one value per column (" + std::to_string(cols) + "), got " +
                          std::to_string(o.importance.size()));
    for (float v : o.importance)
        if (!(v >= 0.0f) || !std::isfinite(v)) return make_error(t + "importance weights must be finite and >= 0");
    if (o.search_steps < 0 || o.search_steps > 100)
        return make_error(t + "scale search steps " + std::to_string(o.search_steps) + " outside [0, 100]");
    return {};
}

void ef_select_outliers(std::span<const float> w, int64_t rows, int64_t cols, int64_t nnz, OutlierSelection selection,
                        std::span<const float> energy, std::vector<int32_t>& rowptr, std::vector<uint16_t>& ocol) {
    const int64_t n = rows * cols;
    rowptr.assign(size_t(rows + 1), 0);
    ocol.clear();
    if (nnz <= 0) return;
    const bool sal = selection == OutlierSelection::Saliency;
    auto score = [&](int64_t i) {
        const float v = w[size_t(i)];
        const float s = sal ? v * v * energy[size_t(i % cols)] : std::fabs(v);
        return std::isnan(s) ? -1.0f : s;
    };
    std::vector<float> sc(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) sc[size_t(i)] = score(i);
    std::nth_element(sc.begin(), sc.begin() + (n - nnz), sc.end());
    const float thr = sc[size_t(n - nnz)];
    int64_t above = 0;
    for (int64_t i = 0; i < n; ++i) above += score(i) > thr;
    std::vector<float>().swap(sc);
    int64_t ties = nnz - above;
    ocol.reserve(size_t(nnz));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
            const float s = score(r * cols + c);
            if (s > thr || (s == thr && ties > 0)) {
                if (s == thr) --ties;
                ocol.push_back(uint16_t(c));
            }
        }
        rowptr[size_t(r + 1)] = int32_t(ocol.size());
    }
}

Result<EfQuantized> ef_quantize_matrix(const std::string& name, std::span<const float> w, int64_t rows, int64_t cols,
                                       const EfQuantOptions& o, Progress& progress) {
    EF_TRY_STATUS(ef_check_options(o, rows, cols, name));
    if (rows > std::numeric_limits<int64_t>::max() / cols || int64_t(w.size()) != rows * cols)
        return make_error("tensor " + name + ": " + std::to_string(w.size()) + " values for a " + std::to_string(rows) +
                          " x " + std::to_string(cols) + " matrix");
    const EfLayout l{o.bits, o.block, o.affine};
    const DType dt = *ef_dtype(o.bits, o.block, o.affine);
    const int64_t n = rows * cols;

    // Outliers: the top nnz scores over the whole matrix, in CSR (row-major) order. Ties at the threshold
    // are taken in that order so the choice is deterministic.
    const int64_t nnz = int64_t(std::floor(o.outlier_fraction * double(n)));
    std::vector<int32_t> rowptr;
    std::vector<uint16_t> ocol;
    ef_select_outliers(w, rows, cols, nnz, o.selection, o.activation_energy, rowptr, ocol);
    const int64_t kept = int64_t(ocol.size());

    const uint64_t row_bytes = uint64_t(cols / o.block) * uint64_t(l.type_size());
    std::vector<std::byte> blocks(static_cast<size_t>(row_bytes * uint64_t(rows)));
    std::vector<int8_t> ovals(static_cast<size_t>(kept));
    std::vector<uint16_t> oscale(static_cast<size_t>(rows), 0);

    int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    threads = int(std::min<int64_t>(threads, std::max<int64_t>(1, rows / 4)));
    constexpr int64_t kChunk = 8;
    std::atomic<int64_t> next{0}, done{0};
    std::atomic<bool> stop{false};
    std::vector<double> sq(static_cast<size_t>(threads), 0.0), mx(static_cast<size_t>(threads), 0.0);
    const float* imp = o.importance.empty() ? nullptr : o.importance.data();

    auto worker = [&](int tid) {
        std::vector<float> x(static_cast<size_t>(cols)), deq(static_cast<size_t>(cols));
        for (;;) {
            if (stop.load(std::memory_order_relaxed)) return;
            const int64_t r0 = next.fetch_add(kChunk);
            if (r0 >= rows) return;
            const int64_t r1 = std::min(rows, r0 + kChunk);
            for (int64_t r = r0; r < r1; ++r) {
                const float* wr = w.data() + r * cols;
                std::copy(wr, wr + cols, x.begin());
                const int32_t b = rowptr[size_t(r)], e = rowptr[size_t(r + 1)];
                for (int32_t i = b; i < e; ++i) x[ocol[size_t(i)]] = 0.0f;  // outliers don't set block scales
                std::byte* dst = blocks.data() + uint64_t(r) * row_bytes;
                for (int64_t c = 0; c < cols; c += o.block)
                    ef_quantize_block(l, x.data() + c, imp ? imp + c : nullptr, o.search_steps,
                                      dst + (c / o.block) * l.type_size());
                ef_dequantize(l, dst, deq.data(), cols);
                // Residuals at the outliers, 6-bit against the row's f16 scale max|r| / 31.
                float rmax = 0.0f;
                for (int32_t i = b; i < e; ++i) rmax = std::max(rmax, std::fabs(wr[ocol[size_t(i)]] - deq[ocol[size_t(i)]]));
                if (e > b && std::isfinite(rmax)) {
                    oscale[size_t(r)] = f16_clamped(rmax / float(kEfOutlierMax));
                    const float s = f16_to_f32(oscale[size_t(r)]);
                    const float is = s > 0.0f ? 1.0f / s : 0.0f;
                    for (int32_t i = b; i < e; ++i) {
                        const int c = ocol[size_t(i)];
                        const int v = clamp_round((wr[c] - deq[c]) * is, -kEfOutlierMax, kEfOutlierMax);
                        ovals[size_t(i)] = int8_t(v);
                        deq[size_t(c)] += s * float(v);
                    }
                }
                double es = 0, em = 0;
                for (int64_t c = 0; c < cols; ++c) {
                    const double d = std::fabs(double(wr[c]) - double(deq[size_t(c)]));
                    es += d * d;
                    em = std::max(em, d);
                }
                sq[size_t(tid)] += es;
                mx[size_t(tid)] = std::max(mx[size_t(tid)], em);
            }
            const int64_t all = done.fetch_add(r1 - r0) + (r1 - r0);
            if (tid == 0) {  // only the calling thread talks to the progress sink
                progress.report(double(all) / double(rows), "quantizing " + name);
                if (progress.cancelled()) stop.store(true);
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
    worker(0);
    for (auto& t : pool) t.join();
    if (stop.load() || progress.cancelled()) return make_error("tensor " + name + ": quantization cancelled");

    EfQuantized q;
    auto bt = Tensor::from_bytes(name, dt, {rows, cols}, std::move(blocks));
    if (!bt) return bt.error();
    q.blocks = std::move(*bt);
    if (kept > 0) {
        auto bytes_of = [](const void* p, size_t nb) {
            std::vector<std::byte> v(nb);
            std::memcpy(v.data(), p, nb);
            return v;
        };
        std::vector<std::byte> packed(static_cast<size_t>(ef_packed6_bytes(kept)), std::byte{0});
        ef_pack6(ovals.data(), kept, reinterpret_cast<uint8_t*>(packed.data()));
        const std::pair<std::string_view, Result<Tensor>> parts[] = {
            {kEfRowptrSuffix, Tensor::from_bytes(name + std::string(kEfRowptrSuffix), DType::I32, {rows + 1},
                                                 bytes_of(rowptr.data(), rowptr.size() * 4))},
            {kEfColsSuffix, Tensor::from_bytes(name + std::string(kEfColsSuffix), DType::I16, {kept},
                                               bytes_of(ocol.data(), ocol.size() * 2))},
            {kEfValsSuffix, Tensor::from_bytes(name + std::string(kEfValsSuffix), DType::I8,
                                               {int64_t(packed.size())}, packed)},
            {kEfScaleSuffix, Tensor::from_bytes(name + std::string(kEfScaleSuffix), DType::F16, {rows},
                                                bytes_of(oscale.data(), oscale.size() * 2))},
        };
        for (const auto& [suffix, t] : parts) {
            if (!t) return t.error();
            q.companions.push_back(t.value());
        }
    }
    double sum = 0, mxe = 0;
    for (int t = 0; t < threads; ++t) { sum += sq[size_t(t)]; mxe = std::max(mxe, mx[size_t(t)]); }
    q.stats.code_bits = o.bits;
    q.stats.nnz = kept;
    q.stats.bytes = q.blocks.nbytes();
    for (const auto& c : q.companions) q.stats.bytes += c.nbytes();
    q.stats.effective_bits = 8.0 * double(q.stats.bytes) / double(n);
    q.stats.rmse = std::sqrt(sum / double(n));
    q.stats.max_abs_err = mxe;
    return q;
}

Result<std::vector<float>> ef_dequantize_matrix(const Tensor& blocks, const EfOutlierView& outliers) {
    if (!ef_layout(blocks.dtype))
        return make_error("tensor " + blocks.name + ": " + std::string(dtype_name(blocks.dtype)) + " is not an EF block type");
    auto w = blocks.to_f32();
    if (!w) return w.error();
    if (!outliers.empty()) {
        if (outliers.rows != blocks.rows() || outliers.cols != blocks.row_length())
            return make_error("tensor " + blocks.name + ": outliers are for a " + std::to_string(outliers.rows) + " x " +
                              std::to_string(outliers.cols) + " matrix");
        if (auto msg = ef_check_outliers(outliers)) return make_error("tensor " + blocks.name + ": " + *msg);
        sparse_outliers_add_dense(w->data(), outliers);
    }
    return w;
}

Result<std::vector<float>> ef_dequantize_matrix(const EfQuantized& q) { return ef_dequantize_matrix(q.blocks, q.outliers()); }

Result<Model> ef_quantize_model(const Model& m, const EfModelQuantOptions& o, Progress& progress) {
    const auto default_select = [&](const Tensor& t) {
        const std::string& nm = t.name;
        return t.shape.size() == 2 && nm.size() > 7 && nm.compare(nm.size() - 7, 7, ".weight") == 0 &&
               nm != "token_embd.weight" && nm != "output.weight" && t.row_length() % o.tensor.block == 0 &&
               type_traits(t.dtype).to_float != nullptr;
    };
    Model out = m;
    out.tensors.clear();
    const size_t total = m.tensors.size();
    for (size_t i = 0; i < total; ++i) {
        const Tensor& t = m.tensors[i];
        if (progress.cancelled()) return make_error("quantization cancelled");
        const bool sel = o.select ? o.select(t) : default_select(t);
        if (!sel) {
            out.tensors.push_back(t);
            continue;
        }
        auto f = t.to_f32();
        if (!f) return f.error();
        EfQuantOptions to = o.tensor;
        if (o.energy)
            if (const std::vector<float>* e = o.energy(t.name)) to.activation_energy = *e;
        // The matrix quantizer polls its own Progress; pass the caller's cancel on at each report.
        Progress* self = nullptr;
        Progress sub([&](double frac, const std::string& stage) {
            progress.report((double(i) + frac) / double(total), stage);
            if (progress.cancelled() && self) self->cancel();
        });
        self = &sub;
        auto q = ef_quantize_matrix(t.name, *f, t.rows(), t.row_length(), to, sub);
        if (!q) return q.error();
        out.tensors.push_back(std::move(q->blocks));
        for (auto& c : q->companions) out.tensors.push_back(std::move(c));
    }
    progress.report(1.0, "quantized");
    return out;
}

}  // namespace ef
