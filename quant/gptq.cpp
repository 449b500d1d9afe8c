#include "quant/gptq.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <thread>

#include "quant/ggml_blocks.h"
#include "quant/half.h"

namespace ef {
namespace {

using MatF = Eigen::MatrixXf;                                                        // column-major
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatD = Eigen::MatrixXd;

constexpr float kF16Max = 65504.0f;
inline uint16_t f16_clamped(float v) { return f32_to_f16(std::clamp(v, -kF16Max, kF16Max)); }

inline int clamp_round(float v, int lo, int hi) {
    float q = std::nearbyint(v);
    if (!(q >= float(lo))) q = float(lo);  // NaN too
    if (q > float(hi)) q = float(hi);
    return int(q);
}

std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

struct Header {
    uint16_t d = 0, m = 0;  // f16 bit patterns
    float df = 0, mf = 0;
};

// One block format: how a block's header is chosen (the RTN search / ggml's reference), the nearest
// code under a fixed header, decoding, and the block bytes. Q4_0 and Q8_0 decode like symmetric EF
// codes with offsets 8 and 128, so EfLayout{4|8, 32, false} serves their arithmetic.
struct Codec {
    GptqTarget target = GptqTarget::Ef;
    EfLayout l;
    int steps = 0;

    int block() const { return l.block; }
    int64_t type_size() const {
        return target == GptqTarget::Q4_0   ? int64_t(sizeof(ggml::block_q4_0))
               : target == GptqTarget::Q8_0 ? int64_t(sizeof(ggml::block_q8_0))
                                            : l.type_size();
    }
    // x: (B) the block's weights now. Sets the header and the codes the search chose for x.
    void start(const float* x, Header& h, uint8_t* codes) const {
        if (target == GptqTarget::Ef) {
            uint8_t tmp[4 + 256];
            ef_quantize_block(l, x, nullptr, steps, tmp);
            ef_read_block(l, tmp, h.d, h.m, codes);
        } else if (target == GptqTarget::Q4_0) {
            ggml::block_q4_0 b{};
            ggml::quantize_q4_0(x, &b, 32);
            h.d = b.d;
            h.m = 0;
            for (int j = 0; j < 16; ++j) {
                codes[j] = uint8_t(b.qs[j] & 15);
                codes[j + 16] = uint8_t(b.qs[j] >> 4);
            }
        } else {
            ggml::block_q8_0 b{};
            ggml::quantize_q8_0(x, &b, 32);
            h.d = b.d;
            h.m = 0;
            for (int j = 0; j < 32; ++j) codes[j] = uint8_t(int(b.qs[j]) + 128);
        }
        h.df = f16_to_f32(h.d);
        h.mf = f16_to_f32(h.m);
    }
    int nearest(const Header& h, float w) const {
        const int qmax = (1 << l.bits) - 1;
        const float id = h.df != 0.0f ? 1.0f / h.df : 0.0f;
        return l.affine ? clamp_round((w - h.mf) * id, 0, qmax) : clamp_round(w * id + float(1 << (l.bits - 1)), 0, qmax);
    }
    float decode(const Header& h, int u) const { return ef_decode(l, h.df, h.mf, u); }
    void write(const Header& h, const uint8_t* codes, std::byte* dst) const {
        if (target == GptqTarget::Ef) {
            ef_write_block(l, h.d, h.m, codes, dst);
        } else if (target == GptqTarget::Q4_0) {
            ggml::block_q4_0 b{};
            b.d = h.d;
            for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(codes[j] | (codes[j + 16] << 4));
            std::memcpy(dst, &b, sizeof b);
        } else {
            ggml::block_q8_0 b{};
            b.d = h.d;
            for (int j = 0; j < 32; ++j) b.qs[j] = int8_t(int(codes[j]) - 128);
            std::memcpy(dst, &b, sizeof b);
        }
    }
};

std::vector<std::byte> bytes_of(const void* p, size_t nb) {
    std::vector<std::byte> v(nb);
    if (nb) std::memcpy(v.data(), p, nb);
    return v;
}

}  // namespace

// --- Hessian accumulator ---------------------------------------------------------------------------

HessianAccumulator::HessianAccumulator(int64_t cols) : c_(std::max<int64_t>(cols, 0)), s_(size_t(c_ * c_), 0.0) {}

Status HessianAccumulator::add(std::span<const float> x, int64_t rows) {
    if (rows < 0 || int64_t(x.size()) != rows * c_)
        return make_error("Hessian accumulator: " + std::to_string(x.size()) + " values are not " + std::to_string(rows) +
                          " activation rows of " + std::to_string(c_) + " columns");
    for (size_t i = 0; i < x.size(); ++i)
        if (!std::isfinite(x[i]))
            return make_error("Hessian accumulator: non-finite activation at row " + std::to_string(int64_t(i) / c_) +
                              ", column " + std::to_string(int64_t(i) % c_));
    Eigen::Map<MatD> s(s_.data(), c_, c_);
    constexpr int64_t kChunk = 256;  // rows converted to double at a time
    for (int64_t r0 = 0; r0 < rows; r0 += kChunk) {
        const int64_t nr = std::min(kChunk, rows - r0);
        Eigen::Map<const RowMatF> xr(x.data() + r0 * c_, nr, c_);
        const MatD xd = xr.cast<double>();  // (nr, C)
        s.selfadjointView<Eigen::Upper>().rankUpdate(xd.transpose());  // S += X^T X
    }
    n_ += rows;
    return {};
}

Result<std::vector<float>> HessianAccumulator::finish() const {
    if (n_ == 0) return make_error("Hessian accumulator: no calibration activations were added");
    std::vector<float> h(size_t(c_ * c_));
    const double k = 2.0 / double(n_);
    for (int64_t i = 0; i < c_; ++i)
        for (int64_t j = i; j < c_; ++j) {
            const float v = float(k * s_[size_t(j * c_ + i)]);  // column-major upper: (i, j) at j*C + i
            h[size_t(i * c_ + j)] = v;
            h[size_t(j * c_ + i)] = v;
        }
    return h;
}

// --- GPTQ ------------------------------------------------------------------------------------------

Result<EfQuantized> gptq_quantize_matrix(const std::string& name, std::span<const float> w, int64_t rows,
                                         int64_t cols, std::span<const float> h, const GptqOptions& o,
                                         Progress& progress) {
    const std::string t = "tensor " + name + " (" + std::to_string(rows) + " x " + std::to_string(cols) + "): ";
    if (rows <= 0 || cols <= 0) return make_error(t + "empty matrix");
    if (rows > std::numeric_limits<int64_t>::max() / cols || int64_t(w.size()) != rows * cols)
        return make_error(t + std::to_string(w.size()) + " weight values do not fill the matrix");
    if (int64_t(h.size()) != cols * cols)
        return make_error(t + "GPTQ needs a " + std::to_string(cols) + " x " + std::to_string(cols) +
                          " Hessian (one row and column per input column), got " + std::to_string(h.size()) + " values");
    for (size_t i = 0; i < w.size(); ++i)
        if (!std::isfinite(w[i]))
            return make_error(t + "non-finite weight at row " + std::to_string(int64_t(i) / cols) + ", column " +
                              std::to_string(int64_t(i) % cols));
    double max_diag = 0;
    for (int64_t i = 0; i < cols; ++i) {
        for (int64_t j = 0; j < cols; ++j)
            if (!std::isfinite(h[size_t(i * cols + j)]))
                return make_error(t + "non-finite Hessian entry H[" + std::to_string(i) + ", " + std::to_string(j) + "]");
        const float d = h[size_t(i * cols + i)];
        if (d < 0.0f)
            return make_error(t + "Hessian diagonal H[" + std::to_string(i) + ", " + std::to_string(i) + "] = " + fmt(d) +
                              " is negative; H = (2/N) sum x x^T is positive semidefinite");
        max_diag = std::max(max_diag, double(d));
    }
    for (int64_t i = 0; i < cols; ++i)
        for (int64_t j = i + 1; j < cols; ++j) {
            const double a = h[size_t(i * cols + j)], b = h[size_t(j * cols + i)];
            if (std::fabs(a - b) > 1e-5 * max_diag + 1e-6 * (std::fabs(a) + std::fabs(b)))
                return make_error(t + "Hessian is not symmetric: H[" + std::to_string(i) + ", " + std::to_string(j) +
                                  "] = " + fmt(a) + " but H[" + std::to_string(j) + ", " + std::to_string(i) + "] = " + fmt(b));
        }
    if (!(o.damp_percent >= 0.0 && o.damp_percent <= 100.0))
        return make_error(t + "GPTQ dampening " + fmt(o.damp_percent) + "% is outside [0, 100]");
    if (o.lazy_batch < 1) return make_error(t + "GPTQ lazy batch size must be >= 1, got " + std::to_string(o.lazy_batch));
    if (!o.ef.importance.empty())
        return make_error(t + "GPTQ takes no importance weights (the Hessian already weighs the error); leave them empty");

    // Options as the RTN checker sees them: the ggml targets are blocks of 32 with 4 or 8 bits.
    EfQuantOptions eo = o.ef;
    Codec codec;
    codec.target = o.target;
    if (o.target != GptqTarget::Ef) {
        if (o.ef.outlier_fraction > 0)
            return make_error(t + "outliers are stored only beside EF blocks; use outlier fraction 0 for Q4_0 / Q8_0");
        eo.bits = o.target == GptqTarget::Q4_0 ? 4 : 8;
        eo.block = 32;
        eo.affine = false;
    }
    const bool saliency = eo.selection == OutlierSelection::Saliency;
    if (saliency && eo.activation_energy.empty()) {  // E[x_c^2] = H_cc / 2
        eo.activation_energy.resize(size_t(cols));
        for (int64_t c = 0; c < cols; ++c) eo.activation_energy[size_t(c)] = 0.5f * h[size_t(c * cols + c)];
    }
    EF_TRY_STATUS(ef_check_options(eo, rows, cols, name));
    codec.l = EfLayout{eo.bits, eo.block, eo.affine};
    codec.steps = eo.search_steps;
    const DType dt = o.target == GptqTarget::Q4_0 ? DType::Q4_0 : o.target == GptqTarget::Q8_0 ? DType::Q8_0
                                                                                                : *ef_dtype(eo.bits, eo.block, eo.affine);
    const int B = codec.block();
    const int64_t nblocks = cols / B;

    progress.report(0.0, "GPTQ: inverting the Hessian of " + name);
    // Dead columns (H_ii = 0: the input is always 0) carry no information: H_ii = 1, W[:, i] = 0.
    MatD hd = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(h.data(), cols, cols)
                  .cast<double>();
    std::vector<float> wk(w.begin(), w.end());  // (R, C) working copy
    for (int64_t c = 0; c < cols; ++c)
        if (hd(c, c) == 0.0) {
            hd(c, c) = 1.0;
            for (int64_t r = 0; r < rows; ++r) wk[size_t(r * cols + c)] = 0.0f;
        }

    std::vector<int32_t> rowptr;
    std::vector<uint16_t> ocol;
    ef_select_outliers(wk, rows, cols, int64_t(std::floor(eo.outlier_fraction * double(rows * cols))), eo.selection,
                       eo.activation_energy, rowptr, ocol);
    const int64_t kept = int64_t(ocol.size());

    // Processing order: perm[p] = original column at position p.
    std::vector<int64_t> perm(static_cast<size_t>(cols)), pos(static_cast<size_t>(cols));
    std::iota(perm.begin(), perm.end(), int64_t(0));
    if (o.act_order)
        std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return hd(a, a) > hd(b, b); });
    for (int64_t p = 0; p < cols; ++p) pos[size_t(perm[size_t(p)])] = p;
    MatD hp(cols, cols);
    for (int64_t j = 0; j < cols; ++j)
        for (int64_t i = 0; i < cols; ++i) hp(i, j) = hd(perm[size_t(i)], perm[size_t(j)]);
    hd.resize(0, 0);
    const double damp = o.damp_percent / 100.0 * hp.diagonal().mean();
    hp.diagonal().array() += damp;

    // U: the upper Cholesky factor of H^-1 (H^-1 = U^T U); U(i, j) / U(i, i) spreads column i's error to j.
    // With J the order reversal and J H J = L L^T (Cholesky), H^-1 = (J L^-1 J)^T (J L^-1 J) and J L^-1 J
    // is upper triangular with a positive diagonal, so it is U: one Cholesky and one triangular inverse
    // instead of inverting H and factoring H^-1 (half the flops, one C x C buffer less).
    hp = hp.reverse().eval();
    Eigen::LLT<MatD> llt(hp);
    if (llt.info() != Eigen::Success)
        return make_error(t + "the Hessian plus dampening is not positive definite (Cholesky failed); raise the "
                              "dampening (now " + fmt(o.damp_percent) + "% of the mean diagonal)");
    hp.setIdentity();
    llt.matrixL().solveInPlace(hp);  // L^-1
    const RowMatF u = hp.reverse().cast<float>();
    for (int64_t i = 0; i < cols; ++i)
        if (!std::isfinite(u(i, i)) || !(u(i, i) > 0.0f))
            return make_error(t + "the inverse Hessian is ill-conditioned (its Cholesky factor has a zero or non-finite "
                                  "pivot); raise the dampening (now " + fmt(o.damp_percent) + "%)");
    hp.resize(0, 0);
    if (progress.cancelled()) return make_error(t + "quantization cancelled");

    const uint64_t row_bytes = uint64_t(nblocks) * uint64_t(codec.type_size());
    std::vector<std::byte> blocks(static_cast<size_t>(row_bytes * uint64_t(rows)));
    std::vector<int8_t> ovals(static_cast<size_t>(kept));
    std::vector<uint16_t> oscale(static_cast<size_t>(rows), 0);

    const int64_t chunk = std::clamp<int64_t>(rows / 4, 1, 64);  // rows per task
    const int64_t tasks = (rows + chunk - 1) / chunk;
    int threads = eo.threads > 0 ? eo.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    threads = int(std::min<int64_t>(threads, tasks));
    std::atomic<int64_t> next{0}, done{0};
    std::atomic<bool> stop{false};
    std::vector<double> sq(static_cast<size_t>(threads), 0.0), mx(static_cast<size_t>(threads), 0.0);
    const int lb = o.lazy_batch;

    auto worker = [&](int tid) {
        MatF wc;           // (nr, C) current weights, permuted column order
        MatF err;          // (nr, lb) scaled errors of the current lazy batch
        std::vector<uint8_t> isout, searched, codes;  // (nr, C), original column order
        std::vector<float> snap, xb(static_cast<size_t>(B)), deq(static_cast<size_t>(cols));
        std::vector<Header> hdr;  // (nr, nblocks)
        std::vector<char> started(static_cast<size_t>(nblocks));
        Eigen::VectorXf cur;
        for (;;) {
            if (stop.load(std::memory_order_relaxed)) return;
            const int64_t r0 = next.fetch_add(1) * chunk;
            if (r0 >= rows) return;
            const int64_t nr = std::min(rows, r0 + chunk) - r0;
            wc.resize(nr, cols);
            for (int64_t p = 0; p < cols; ++p)
                for (int64_t r = 0; r < nr; ++r) wc(r, p) = wk[size_t((r0 + r) * cols + perm[size_t(p)])];
            isout.assign(size_t(nr * cols), 0);
            for (int64_t r = 0; r < nr; ++r)
                for (int32_t i = rowptr[size_t(r0 + r)]; i < rowptr[size_t(r0 + r + 1)]; ++i) isout[size_t(r * cols + ocol[size_t(i)])] = 1;
            searched.assign(size_t(nr * cols), 0);
            codes.assign(size_t(nr * cols), 0);
            snap.assign(size_t(nr * cols), 0.0f);
            hdr.assign(size_t(nr * nblocks), Header{});
            std::fill(started.begin(), started.end(), 0);
            err.resize(nr, lb);

            for (int64_t i1 = 0; i1 < cols; i1 += lb) {
                const int64_t i2 = std::min<int64_t>(cols, i1 + lb);
                for (int64_t i = i1; i < i2; ++i) {
                    const int64_t c = perm[size_t(i)];
                    const int64_t blk = c / B;
                    if (!started[size_t(blk)]) {
                        // The block's header from its weights now: none of its columns is quantized yet; those
                        // past this lazy batch still owe the batch's pending update, applied here.
                        started[size_t(blk)] = 1;
                        const int64_t k = i - i1;
                        for (int64_t j = 0; j < B; ++j) {
                            const int64_t cc = blk * B + j, p = pos[size_t(cc)];
                            if (p >= i2 && k > 0) {
                                cur = wc.col(p) - err.leftCols(k) * u.block(i1, p, k, 1);
                                for (int64_t r = 0; r < nr; ++r) snap[size_t(r * cols + cc)] = cur(r);
                            } else {
                                for (int64_t r = 0; r < nr; ++r) snap[size_t(r * cols + cc)] = wc(r, p);
                            }
                        }
                        for (int64_t r = 0; r < nr; ++r) {
                            const size_t o0 = size_t(r * cols + blk * B);
                            for (int j = 0; j < B; ++j) xb[size_t(j)] = isout[o0 + size_t(j)] ? 0.0f : snap[o0 + size_t(j)];
                            codec.start(xb.data(), hdr[size_t(r * nblocks + blk)], searched.data() + o0);
                        }
                    }
                    const float dinv = 1.0f / u(i, i);
                    for (int64_t r = 0; r < nr; ++r) {
                        const size_t at = size_t(r * cols + c);
                        if (isout[at]) {  // held fixed: its value is kept exactly by the residual
                            codes[at] = searched[at];
                            err(r, i - i1) = 0.0f;
                            continue;
                        }
                        const Header& hh = hdr[size_t(r * nblocks + blk)];
                        const float x = wc(r, i);
                        const int code = x == snap[at] ? searched[at] : codec.nearest(hh, x);
                        codes[at] = uint8_t(code);
                        err(r, i - i1) = (x - codec.decode(hh, code)) * dinv;
                    }
                    if (i + 1 < i2)
                        wc.block(0, i + 1, nr, i2 - i - 1).noalias() -= err.col(i - i1) * u.block(i, i + 1, 1, i2 - i - 1);
                }
                if (i2 < cols)
                    wc.rightCols(cols - i2).noalias() -= err.leftCols(i2 - i1) * u.block(i1, i2, i2 - i1, cols - i2);
                if (progress.cancelled()) {
                    stop.store(true);
                    return;
                }
            }

            for (int64_t r = 0; r < nr; ++r) {
                const int64_t gr = r0 + r;
                std::byte* dst = blocks.data() + uint64_t(gr) * row_bytes;
                for (int64_t b = 0; b < nblocks; ++b) {
                    const Header& hh = hdr[size_t(r * nblocks + b)];
                    const uint8_t* cb = codes.data() + r * cols + b * B;
                    codec.write(hh, cb, dst + b * codec.type_size());
                    for (int j = 0; j < B; ++j) deq[size_t(b * B + j)] = codec.decode(hh, cb[j]);
                }
                // Outlier residuals against the input weights, 6-bit at the row's f16 scale max|r| / 31.
                const float* wr = w.data() + gr * cols;
                const int32_t rb = rowptr[size_t(gr)], re = rowptr[size_t(gr + 1)];
                float rmax = 0.0f;
                for (int32_t i = rb; i < re; ++i) rmax = std::max(rmax, std::fabs(wr[ocol[size_t(i)]] - deq[ocol[size_t(i)]]));
                if (re > rb) {
                    oscale[size_t(gr)] = f16_clamped(rmax / float(kEfOutlierMax));
                    const float s = f16_to_f32(oscale[size_t(gr)]);
                    const float is = s > 0.0f ? 1.0f / s : 0.0f;
                    for (int32_t i = rb; i < re; ++i) {
                        const int cidx = ocol[size_t(i)];
                        const int v = clamp_round((wr[cidx] - deq[size_t(cidx)]) * is, -kEfOutlierMax, kEfOutlierMax);
                        ovals[size_t(i)] = int8_t(v);
                        deq[size_t(cidx)] += s * float(v);
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
            const int64_t all = done.fetch_add(nr) + nr;
            if (tid == 0) progress.report(double(all) / double(rows), "GPTQ: quantizing " + name);
        }
    };
    std::vector<std::thread> pool;
    for (int k = 1; k < threads; ++k) pool.emplace_back(worker, k);
    worker(0);
    for (auto& th : pool) th.join();
    if (stop.load() || progress.cancelled()) return make_error(t + "quantization cancelled");

    EfQuantized q;
    auto bt = Tensor::from_bytes(name, dt, {rows, cols}, std::move(blocks));
    if (!bt) return bt.error();
    q.blocks = std::move(*bt);
    if (kept > 0) {
        std::vector<std::byte> packed(static_cast<size_t>(ef_packed6_bytes(kept)), std::byte{0});
        ef_pack6(ovals.data(), kept, reinterpret_cast<uint8_t*>(packed.data()));
        Result<Tensor> parts[] = {
            Tensor::from_bytes(name + std::string(kEfRowptrSuffix), DType::I32, {rows + 1},
                               bytes_of(rowptr.data(), rowptr.size() * 4)),
            Tensor::from_bytes(name + std::string(kEfColsSuffix), DType::I16, {kept}, bytes_of(ocol.data(), ocol.size() * 2)),
            Tensor::from_bytes(name + std::string(kEfValsSuffix), DType::I8, {int64_t(packed.size())}, packed),
            Tensor::from_bytes(name + std::string(kEfScaleSuffix), DType::F16, {rows},
                               bytes_of(oscale.data(), oscale.size() * 2)),
        };
        for (auto& p : parts) {
            if (!p) return p.error();
            q.companions.push_back(std::move(p.value()));
        }
    }
    double sum = 0, mxe = 0;
    for (int k = 0; k < threads; ++k) { sum += sq[size_t(k)]; mxe = std::max(mxe, mx[size_t(k)]); }
    q.stats.code_bits = eo.bits;
    q.stats.nnz = kept;
    q.stats.bytes = q.blocks.nbytes();
    for (const auto& c : q.companions) q.stats.bytes += c.nbytes();
    q.stats.effective_bits = 8.0 * double(q.stats.bytes) / double(rows * cols);
    q.stats.rmse = std::sqrt(sum / double(rows * cols));
    q.stats.max_abs_err = mxe;
    progress.report(1.0, "GPTQ: quantized " + name);
    return q;
}

Result<std::vector<float>> gptq_dequantize(const EfQuantized& q) {
    if (ef_layout(q.blocks.dtype)) return ef_dequantize_matrix(q);
    if (!q.companions.empty()) return make_error("tensor " + q.blocks.name + ": outliers beside a non-EF block type");
    return q.blocks.to_f32();
}

}  // namespace ef
