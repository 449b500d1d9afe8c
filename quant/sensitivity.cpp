#include "quant/sensitivity.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

#include "quant/ef_quantize.h"
#include "runtime/eval/perplexity.h"
#include "runtime/profile.h"

namespace ef {
namespace {

bool ends_with(std::string_view s, std::string_view suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Tensors kept at their stored precision by default: embeddings/head and the SSM's small sensitive
// parameters (conv1d, A, D, dt), besides anything that is not a 2-D weight matrix.
bool kept_by_default(const std::string& n) {
    if (n == "token_embd.weight" || n == "output.weight") return true;
    if (n.find("norm") != std::string::npos) return true;  // 2-D group norms (Mamba-2's ssm_norm) too
    for (const char* k : {".ssm_conv1d", ".ssm_a", ".ssm_d", ".ssm_dt"})
        if (n.find(k) != std::string::npos) return true;
    return false;
}

int choose_block(int64_t cols, int preferred) {
    if (preferred > 0 && cols % preferred == 0) return preferred;
    for (int b : {256, 128, 64, 32})
        if (cols % b == 0) return b;
    return 0;
}

// "blk.12.attn_q.weight" -> "blk.12"; other names -> themselves.
std::string layer_of(const std::string& n) {
    if (n.rfind("blk.", 0) != 0) return n;
    const size_t dot = n.find('.', 4);
    return dot == std::string::npos ? n : n.substr(0, dot);
}

EfQuantOptions quant_options(const SensitivityOptions& o, int bits, int block, int threads) {
    EfQuantOptions q;
    q.bits = bits;
    q.block = block;
    q.affine = o.affine;
    q.outlier_fraction = o.outlier_fraction;
    q.search_steps = o.search_steps;
    q.threads = threads;
    return q;
}

// Per-column activation energy sum_t x_tc^2 of the target weights over the calibration windows.
class EnergyObserver : public rt::ProjectionObserver {
public:
    std::map<std::string, std::vector<double>> energy;  // pre-sized for the targets
    void on_projection(const std::string& weight, std::span<const float> x, int64_t T) override {
        auto it = energy.find(weight);
        if (it == energy.end() || T <= 0) return;
        std::vector<double>& e = it->second;
        const size_t cols = e.size();
        if (x.size() != size_t(T) * cols) return;
        for (int64_t t = 0; t < T; ++t)
            for (size_t c = 0; c < cols; ++c) e[c] += double(x[size_t(t) * cols + c]) * double(x[size_t(t) * cols + c]);
    }
};

void log_softmax_rows(std::vector<float>& x, int64_t vocab) {
    const int64_t rows = int64_t(x.size()) / vocab;
    for (int64_t r = 0; r < rows; ++r) {
        std::span<float> row(x.data() + r * vocab, size_t(vocab));
        const double lse = eval::log_sum_exp(row);
        for (float& v : row) v = float(double(v) - lse);
    }
}

}  // namespace

Result<UnitPlan> plan_units(const Model& m, const SensitivityOptions& o) {
    if (o.bits.empty()) return make_error("sensitivity: no candidate widths");
    for (int b : o.bits)
        if (!ef_dtype(b, 32, o.affine)) return make_error("sensitivity: width " + std::to_string(b) + " is not one of 2, 3, 4, 5, 6, 8");
    if (!ef_dtype(2, o.block, false)) return make_error("sensitivity: block size " + std::to_string(o.block) + " is not one of 32, 64, 128, 256");
    UnitPlan p;
    std::map<std::string, size_t> index;
    for (const Tensor& t : m.tensors) {
        const int block = t.shape.size() == 2 ? choose_block(t.row_length(), o.block) : 0;
        const bool quant = t.shape.size() == 2 && ends_with(t.name, ".weight") && !kept_by_default(t.name) && block > 0 &&
                           !is_ef_dtype(t.dtype) && type_traits(t.dtype).to_float != nullptr &&
                           (o.outlier_fraction == 0 || t.row_length() <= kEfMaxOutlierCols);
        if (!quant) {
            p.kept.push_back(t.name);
            p.kept_bytes += t.nbytes();
            continue;
        }
        const std::string unit = o.per_tensor ? t.name : layer_of(t.name);
        auto [it, fresh] = index.emplace(unit, p.units.size());
        if (fresh) {
            p.units.push_back(AllocUnit{unit, {}, 0, {}, {}});
            p.targets.emplace_back();
        }
        AllocUnit& u = p.units[it->second];
        u.tensors.push_back(t.name);
        u.weights += t.numel();
        p.targets[it->second].push_back({t.name, t.rows(), t.row_length(), block});
    }
    if (p.units.empty()) return make_error("sensitivity: the model has no quantizable weight matrices");
    return p;
}

Result<std::vector<std::vector<int32_t>>> calibration_windows(const Tokenizer& tok, std::string_view text, int n_ctx,
                                                              int max_windows, int skip_windows) {
    auto plan = eval::plan_chunks(tok, text, n_ctx, 0);
    if (!plan) return make_error("calibration text: " + plan.message());
    if (skip_windows < 0 || skip_windows >= plan->n_chunks)
        return make_error("calibration text: it has " + std::to_string(plan->n_chunks) + " windows of " +
                          std::to_string(n_ctx) + " tokens, cannot skip " + std::to_string(skip_windows));
    const int avail = plan->n_chunks - skip_windows;
    const int n = max_windows > 0 ? std::min(max_windows, avail) : avail;
    std::vector<std::vector<int32_t>> w;
    for (int i = 0; i < n; ++i) {
        const auto b = plan->tokens.begin() + int64_t(skip_windows + i) * n_ctx;
        w.emplace_back(b, b + n_ctx);
        if (plan->bos >= 0) w.back()[0] = plan->bos;
    }
    return w;
}

Result<KlReference> KlReference::create(const Model& base, std::vector<std::vector<int32_t>> windows, const SessionOptions& so) {
    if (windows.empty()) return make_error("KL reference: no calibration windows");
    auto s = Session::create(base, so);
    if (!s) return s.error();
    KlReference r;
    r.vocab_ = base.config.vocab_size;
    for (const auto& w : windows) {
        if (w.empty()) return make_error("KL reference: an empty calibration window");
        s->reset();
        auto lg = s->eval_batch(w, true);
        if (!lg) return lg.error();
        log_softmax_rows(*lg, r.vocab_);
        r.logp_.push_back(std::move(*lg));
    }
    r.windows_ = std::move(windows);
    return r;
}

int64_t KlReference::positions() const {
    int64_t n = 0;
    for (const auto& w : windows_) n += int64_t(w.size());
    return n;
}

Result<double> KlReference::kl(const Model& model, const SessionOptions& so) const {
    if (model.config.vocab_size != vocab_) return make_error("KL: the model's vocabulary differs from the base model's");
    auto s = Session::create(model, so);
    if (!s) return s.error();
    double sum = 0;
    int64_t count = 0;
    for (size_t i = 0; i < windows_.size(); ++i) {
        s->reset();
        auto lg = s->eval_batch(windows_[i], true);
        if (!lg) return lg.error();
        for (int64_t t = 0; t < int64_t(windows_[i].size()); ++t) {
            const float* q = lg->data() + t * vocab_;
            const float* b = logp_[i].data() + t * vocab_;
            const double lse = eval::log_sum_exp(std::span<const float>(q, size_t(vocab_)));
            double kl = 0;
            for (int64_t v = 0; v < vocab_; ++v) {
                const double lb = b[v];
                kl += std::exp(lb) * (lb - (double(q[v]) - lse));
            }
            sum += std::max(0.0, kl);  // rounding can leave a tiny negative value
            ++count;
        }
    }
    if (!std::isfinite(sum)) return make_error("KL: the quantized model's output is not finite");
    return sum / double(count);
}

Result<SensitivityResult> measure_sensitivity(const Model& m, const std::vector<std::vector<int32_t>>& windows,
                                              const SensitivityOptions& o, Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    auto plan = plan_units(m, o);
    if (!plan) return plan.error();
    SensitivityResult res;
    res.plan = std::move(*plan);
    res.proxy = o.proxy;
    SessionOptions so = o.session;
    so.threads = 1;  // parallel over measurements instead
    std::optional<KlReference> ref;
    if (!o.proxy) {
        progress.report(0.0, "sensitivity: full-precision reference");
        auto r = KlReference::create(m, windows, so);
        if (!r) return make_error("sensitivity: " + r.message());
        ref = std::move(*r);
        res.positions = ref->positions();
    }
    // Proxy: activation energies from one full-precision pass over the windows (white when none).
    EnergyObserver obs;
    if (o.proxy && !windows.empty()) {
        for (const auto& ts : res.plan.targets)
            for (const auto& t : ts) obs.energy[t.name].assign(size_t(t.cols), 0.0);
        SessionOptions po = so;
        po.observer = &obs;
        auto s = Session::create(m, po);
        if (!s) return s.error();
        for (const auto& w : windows) {
            s->reset();
            auto lg = s->eval_batch(w, false);
            if (!lg) return make_error("sensitivity: " + lg.message());
        }
        for (const auto& w : windows) res.positions += int64_t(w.size());
    }
    const size_t nb = o.bits.size(), nu = res.plan.units.size(), jobs = nu * nb;
    for (auto& u : res.plan.units) u.options.assign(nb, AllocOption{});
    std::atomic<size_t> next{0}, done{0};
    std::atomic<bool> stop{false};
    std::mutex err_mu;
    std::optional<Error> first_error;
    auto fail = [&](Error e) {
        std::lock_guard<std::mutex> lk(err_mu);
        if (!first_error) first_error = std::move(e);
        stop.store(true);
    };
    auto worker = [&](bool caller) {
        for (;;) {
            if (stop.load()) return;
            const size_t j = next.fetch_add(1);
            if (j >= jobs) return;
            const size_t iu = j / nb, ib = j % nb;
            const int bits = o.bits[ib];
            Model q = m;
            uint64_t bytes = 0;
            double proxy = 0;
            for (const QuantTarget& t : res.plan.targets[iu]) {
                // Converted per job, not cached: all targets as floats would be 4 bytes per weight at once.
                auto wf = m.find(t.name)->to_f32();
                if (!wf) return fail(wf.error());
                const std::vector<float>& w = *wf;
                auto qm = ef_quantize_matrix(t.name, w, t.rows, t.cols, quant_options(o, bits, t.block, 1));
                if (!qm) return fail(qm.error());
                bytes += qm->stats.bytes;
                auto deq = ef_dequantize_matrix(*qm);
                if (!deq) return fail(deq.error());
                // sum_rc E_c dW_rc^2 / sum_rc E_c W_rc^2 (E = 1 without calibration)
                auto en = obs.energy.find(t.name);
                const std::vector<double>* E = en == obs.energy.end() ? nullptr : &en->second;
                double e2 = 0, w2 = 0;
                for (size_t i = 0; i < w.size(); ++i) {
                    const double d = double(w[i]) - double((*deq)[i]);
                    const double ec = E ? (*E)[i % size_t(t.cols)] : 1.0;
                    e2 += ec * d * d;
                    w2 += ec * double(w[i]) * double(w[i]);
                }
                proxy += w2 > 0 ? e2 / w2 : 0.0;
                if (!o.proxy) {
                    Tensor* dst = q.find(t.name);
                    auto nt = Tensor::from_f32(t.name, dst->shape, *deq, DType::F32);
                    if (!nt) return fail(nt.error());
                    *dst = std::move(*nt);
                }
            }
            double loss = proxy;
            if (!o.proxy) {
                auto kl = ref->kl(q, so);
                if (!kl) return fail(make_error("sensitivity of " + res.plan.units[iu].name + " at " + std::to_string(bits) +
                                                " bits: " + kl.message()));
                loss = *kl;
            }
            res.plan.units[iu].options[ib] = AllocOption{bits, bytes, loss};
            const size_t d = done.fetch_add(1) + 1;
            if (caller) {  // only the calling thread talks to the progress sink
                progress.report(double(d) / double(jobs), "sensitivity: " + res.plan.units[iu].name + " at " +
                                                              std::to_string(bits) + " bits");
                if (progress.cancelled()) stop.store(true);
            }
        }
    };
    int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    threads = int(std::min<size_t>(size_t(threads), jobs));
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker, false);
    worker(true);
    for (auto& t : pool) t.join();
    if (first_error) return *first_error;
    if (progress.cancelled() || done.load() != jobs) return make_error("sensitivity measurement cancelled");
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.report(1.0, "sensitivity measured");
    return res;
}

Result<Model> apply_allocation(const Model& m, const SensitivityResult& s, const std::vector<int>& choice,
                               const SensitivityOptions& o, Progress& progress) {
    const auto& units = s.plan.units;
    if (choice.size() != units.size())
        return make_error("apply allocation: " + std::to_string(choice.size()) + " choices for " + std::to_string(units.size()) + " units");
    std::map<std::string, std::pair<int, const QuantTarget*>> want;  // tensor -> (bits, target)
    for (size_t i = 0; i < units.size(); ++i) {
        if (choice[i] < 0 || choice[i] >= int(units[i].options.size()))
            return make_error("apply allocation: unit " + units[i].name + " has no option " + std::to_string(choice[i]));
        for (const QuantTarget& t : s.plan.targets[i]) want[t.name] = {units[i].options[size_t(choice[i])].bits, &t};
    }
    Model out = m;
    out.tensors.clear();
    size_t done = 0;
    for (const Tensor& t : m.tensors) {
        auto it = want.find(t.name);
        if (it == want.end()) {
            out.tensors.push_back(t);
            continue;
        }
        if (progress.cancelled()) return make_error("quantization cancelled");
        auto f = t.to_f32();
        if (!f) return f.error();
        const QuantTarget& qt = *it->second.second;
        auto q = ef_quantize_matrix(t.name, *f, qt.rows, qt.cols, quant_options(o, it->second.first, qt.block, o.threads));
        if (!q) return q.error();
        out.tensors.push_back(std::move(q->blocks));
        for (auto& c : q->companions) out.tensors.push_back(std::move(c));
        progress.report(double(++done) / double(want.size()), "quantizing " + t.name);
    }
    return out;
}

Result<uint64_t> runtime_state_bytes(const Model& m, int64_t n_ctx, Routing routing) {
    if (n_ctx <= 0) return make_error("runtime state: the context length must be positive");
    SessionOptions so;
    so.routing = routing;
    so.max_positions = 1;  // only the gates are needed
    auto s = Session::create(m, so);
    if (!s) return s.error();
    const auto path = layer_paths(*s, routing);
    return kv_cache_bytes(m, path, n_ctx) + ssm_state_bytes(m, path);
}

}  // namespace ef
