#include "quant/quantize_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <thread>

#include "core/ef_tensors.h"
#include "quant/ggml_importance.h"
#include "quant/gptq.h"

namespace ef {

std::string_view quant_method_name(QuantMethod m) {
    switch (m) {
        case QuantMethod::Rtn: return "rtn";
        case QuantMethod::Imatrix: return "imatrix";
        case QuantMethod::Gptq: return "gptq";
    }
    return "?";
}

bool glob_match(std::string_view p, std::string_view s) {
    // Iterative matcher with one backtrack point for the last '*'.
    size_t i = 0, j = 0, star = std::string_view::npos, mark = 0;
    while (j < s.size()) {
        if (i < p.size() && (p[i] == '?' || p[i] == s[j])) {
            ++i;
            ++j;
        } else if (i < p.size() && p[i] == '*') {
            star = i++;
            mark = j;
        } else if (star != std::string_view::npos) {
            i = star + 1;
            j = ++mark;
        } else {
            return false;
        }
    }
    while (i < p.size() && p[i] == '*') ++i;
    return i == p.size();
}

bool quant_kept_by_default(const Tensor& t) {
    const std::string& n = t.name;
    if (t.shape.size() != 2 || n.size() < 7 || n.compare(n.size() - 7, 7, ".weight") != 0) return true;
    static const char* const patterns[] = {"token_embd.weight", "output.weight", "*norm*", "*ssm_conv1d*",
                                           "*ssm_a*", "*ssm_d*", "*ssm_dt*", "*router*"};
    for (const char* p : patterns)
        if (glob_match(p, n)) return true;
    return false;
}

double dtype_code_bits(DType t) {
    if (auto l = ef_layout(t)) return l->bits;
    switch (t) {
        case DType::Q4_0: case DType::Q4_1: case DType::Q4_K: return 4;
        case DType::Q5_0: case DType::Q5_1: case DType::Q5_K: return 5;
        case DType::Q8_0: case DType::Q8_K: case DType::I8: return 8;
        case DType::Q2_K: return 2;
        case DType::Q3_K: return 3;
        case DType::Q6_K: return 6;
        default: {
            const auto& tr = type_traits(t);
            return 8.0 * double(tr.type_size) / double(tr.block_size);
        }
    }
}

namespace {

bool is_companion(const std::string& name) { return ef_companion_base(name); }

// llama.cpp's fallback for a ggml type whose block does not divide the row (llama-quant.cpp).
DType ggml_fallback(DType t, int64_t cols) {
    DType r = t;
    switch (t) {
        case DType::Q2_K: case DType::Q3_K: r = DType::Q4_0; break;
        case DType::Q4_K: r = DType::Q5_0; break;
        case DType::Q5_K: r = DType::Q5_1; break;
        case DType::Q6_K: r = DType::Q8_0; break;
        default: break;  // 32-block types: nothing smaller, so f16 below
    }
    return cols % type_traits(r).block_size == 0 ? r : DType::F16;
}

// What one tensor becomes.
struct Plan {
    const Tensor* src = nullptr;
    bool quantize = false;
    DType dtype = DType::F32;  // target storage type
    bool fallback = false;
    QuantMethod method = QuantMethod::Rtn;  // as run (fallback types GPTQ cannot make run imatrix)
};

std::string dims(const Tensor& t) { return std::to_string(t.rows()) + " x " + std::to_string(t.row_length()); }

// Dense float weights of a source tensor, its EF outliers (if any) added.
Result<std::vector<float>> dense_weights(const Model& m, const Tensor& t) {
    auto v = t.to_f32();
    if (!v) return make_error(t.name + ": " + v.message());
    auto c = ef_find_companions(m, t.name);
    if (c.any()) {
        auto view = ef_outlier_view(t.name, t.rows(), t.row_length(), c);
        if (!view) return view.error();
        sparse_outliers_add_dense(v->data(), *view);
    }
    return v;
}

double rmse_of(std::span<const float> a, std::span<const float> b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = double(a[i]) - double(b[i]);
        s += d * d;
    }
    return a.empty() ? 0.0 : std::sqrt(s / double(a.size()));
}

int thread_count(int t) { return t > 0 ? t : int(std::max(1u, std::thread::hardware_concurrency())); }

// ggml blocks of w: (rows, cols) on several threads (rows are independent).
Result<Tensor> quantize_ggml(const std::string& name, std::span<const float> w, int64_t rows, int64_t cols, DType t,
                             const float* importance, int threads, Progress& progress, double p0, double p1) {
    const uint64_t row_bytes = *dtype_bytes(t, cols);
    std::vector<std::byte> buf(size_t(row_bytes) * size_t(rows));
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(64, rows / (4 * threads) + 1));
    std::atomic<int64_t> next{0}, done{0};
    std::mutex mu;
    std::string error;
    auto work = [&](bool main) {
        for (;;) {
            if (progress.cancelled()) return;
            const int64_t r0 = next.fetch_add(chunk);
            if (r0 >= rows) return;
            const int64_t n = std::min(chunk, rows - r0);
            auto r = ggml::quantize_rows(t, w.data() + r0 * cols, buf.data() + size_t(r0) * row_bytes, n, cols, importance);
            if (!r) {
                std::lock_guard<std::mutex> lock(mu);
                if (error.empty()) error = name + ": " + r.message();
                return;
            }
            done += n;
            if (main) progress.report(p0 + (p1 - p0) * double(done.load()) / double(rows), name);
        }
    };
    std::vector<std::thread> pool;
    const int nt = int(std::min<int64_t>(threads, (rows + chunk - 1) / chunk));
    for (int k = 1; k < nt; ++k) pool.emplace_back(work, false);
    work(true);
    for (auto& th : pool) th.join();
    if (progress.cancelled()) return make_error("cancelled");
    if (!error.empty()) return make_error(error);
    return Tensor::from_bytes(name, t, {rows, cols}, std::move(buf));
}

}  // namespace

Status quantize_model_each(const Model& m, const ModelQuantOptions& o, const ActivationStats* stats, const QuantSink& sink,
                           ModelQuantReport* report, Progress& progress) {
    const bool ggml_target = !o.ef_format;
    if (ggml_target && !ggml::supports_quantize_rows(o.ggml_type))
        return make_error("cannot quantize to " + std::string(dtype_name(o.ggml_type)) +
                          ": the ggml targets are q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K");
    if (o.method == QuantMethod::Gptq && ggml_target && o.ggml_type != DType::Q4_0 && o.ggml_type != DType::Q8_0)
        return make_error("GPTQ makes EF, q4_0 or q8_0 blocks, not " + std::string(dtype_name(o.ggml_type)));
    if (o.ef_format) {
        if (!ef_dtype(o.ef.bits, o.ef.block, o.ef.affine))
            return make_error("EF format needs bits in {2, 3, 4, 5, 6, 8} and block in {32, 64, 128, 256}; got bits " +
                              std::to_string(o.ef.bits) + ", block " + std::to_string(o.ef.block));
        if (!(o.ef.outlier_fraction >= 0.0 && o.ef.outlier_fraction <= 0.05))
            return make_error("outlier fraction " + std::to_string(o.ef.outlier_fraction * 100) +
                              "% is outside [0%, 5%]");
    }
    const bool saliency = o.ef_format && o.ef.outlier_fraction > 0 && o.ef.selection == OutlierSelection::Saliency;
    const bool need_stats = o.method != QuantMethod::Rtn || saliency;
    if (need_stats && !stats)
        return make_error(std::string(o.method != QuantMethod::Rtn ? quant_method_name(o.method) : "saliency outlier selection") +
                          " needs calibration statistics");

    // Plan every tensor first, so a bad option or tensor fails before any work.
    std::vector<Plan> plans;
    int64_t work_total = 0;
    for (const Tensor& t : m.tensors) {
        if (is_companion(t.name)) continue;  // folded into its weight
        Plan p;
        p.src = &t;
        p.dtype = t.dtype;
        bool keep = o.keep_defaults && quant_kept_by_default(t);
        if (t.shape.size() != 2 || !type_traits(t.dtype).to_float) keep = true;
        for (const auto& g : o.keep) keep = keep || glob_match(g, t.name);
        if (!keep) {
            const int64_t cols = t.row_length();
            p.quantize = true;
            p.method = o.method;
            if (ggml_target) {
                p.dtype = o.ggml_type;
                if (cols % type_traits(p.dtype).block_size != 0) {
                    if (!o.allow_fallback)
                        return make_error("tensor " + t.name + " (" + dims(t) + "): the row length " + std::to_string(cols) +
                                          " is not a multiple of " + std::string(dtype_name(p.dtype)) + "'s block of " +
                                          std::to_string(type_traits(p.dtype).block_size) + "; keep it (--keep) or allow the fallback");
                    p.dtype = ggml_fallback(p.dtype, cols);
                    p.fallback = true;
                }
            } else {
                int B = o.ef.block;
                if (cols % B != 0) {
                    if (!o.allow_fallback)
                        return make_error("tensor " + t.name + " (" + dims(t) + "): block size " + std::to_string(B) +
                                          " does not divide the row length " + std::to_string(cols) +
                                          "; choose a block that does, keep the tensor (--keep) or leave --block out for the fallback");
                    while (B > 32 && cols % B != 0) B /= 2;
                    p.fallback = true;
                }
                p.dtype = cols % B == 0 ? *ef_dtype(o.ef.bits, B, o.ef.affine) : DType::F16;
                if (p.dtype != DType::F16) {
                    EfQuantOptions eo = o.ef;
                    eo.block = B;
                    eo.activation_energy.clear();
                    eo.selection = OutlierSelection::Magnitude;  // energies are checked below
                    if (Status s = ef_check_options(eo, t.rows(), cols, t.name); !s) return s.error();
                }
            }
            if (p.dtype == DType::F16) p.method = QuantMethod::Rtn;
            // GPTQ makes EF, q4_0 and q8_0; a fallback type beside those is made with importance weights.
            const bool gptq_ok = is_ef_dtype(p.dtype) || p.dtype == DType::Q4_0 || p.dtype == DType::Q8_0;
            if (p.method == QuantMethod::Gptq && !gptq_ok) p.method = QuantMethod::Imatrix;
            if (need_stats && p.dtype != DType::F16) {
                const ActivationStats::Input* in = stats->find(t.name);
                if (!in)
                    return make_error("tensor " + t.name + ": the calibration run saw no input of this weight; keep it (--keep)");
                if (in->cols != cols || int64_t(in->energy.size()) != cols)
                    return make_error("tensor " + t.name + ": calibration statistics have " + std::to_string(in->cols) +
                                      " columns, the weight " + std::to_string(cols));
                if (p.method == QuantMethod::Gptq && int64_t(in->hessian.size()) != cols * cols)
                    return make_error("tensor " + t.name + ": GPTQ needs the calibration Hessian, which was not collected");
            }
            work_total += t.numel();
        }
        plans.push_back(p);
    }

    ModelQuantReport rep;
    const int threads = thread_count(o.threads);
    int64_t work_done = 0;
    double code_sum = 0;
    for (const Plan& p : plans) {
        const Tensor& t = *p.src;
        TensorQuantReport row;
        row.name = t.name;
        row.rows = t.rows();
        row.cols = t.row_length();
        row.source_dtype = std::string(dtype_name(t.dtype));
        if (progress.cancelled()) return make_error("cancelled");
        if (!p.quantize) {
            EF_TRY_STATUS(sink(Tensor(t)));
            uint64_t bytes = t.nbytes();
            auto c = ef_find_companions(m, t.name);  // a kept EF weight keeps its outliers
            for (const Tensor* ct : {c.rowptr, c.cols, c.vals, c.scale})
                if (ct) {
                    EF_TRY_STATUS(sink(Tensor(*ct)));
                    bytes += ct->nbytes();
                }
            row.dtype = row.source_dtype;
            row.method = "kept";
            row.code_bits = dtype_code_bits(t.dtype);
            row.bytes = bytes;
            row.effective_bits = 8.0 * double(bytes) / double(std::max<int64_t>(1, t.numel()));
            rep.tensors.push_back(row);
            if (t.owner) t.owner->release(t.data);
            continue;
        }
        const int64_t R = t.rows(), C = t.row_length();
        const double p0 = work_total ? double(work_done) / double(work_total) : 0.0;
        const double p1 = work_total ? double(work_done + t.numel()) / double(work_total) : 1.0;
        progress.report(p0, t.name);
        auto w = dense_weights(m, t);
        if (!w) return w.error();
        const ActivationStats::Input* in = stats ? stats->find(t.name) : nullptr;
        row.dtype = std::string(dtype_name(p.dtype));
        row.method = std::string(quant_method_name(p.method));
        row.fallback = p.fallback;
        row.code_bits = dtype_code_bits(p.dtype);

        // Child progress over this tensor's rows, cancelled with the parent.
        Progress* self = nullptr;
        Progress child([&](double f, const std::string&) {
            progress.report(p0 + (p1 - p0) * f, t.name);
            if (progress.cancelled() && self) self->cancel();
        });
        self = &child;

        if (is_ef_dtype(p.dtype) || (p.method == QuantMethod::Gptq)) {
            EfQuantOptions eo = o.ef;
            eo.threads = threads;
            if (auto l = ef_layout(p.dtype)) eo.block = l->block;
            eo.importance.clear();
            eo.activation_energy.clear();
            if (in) eo.activation_energy = in->energy;
            Result<EfQuantized> q = make_error("unreachable");
            if (p.method == QuantMethod::Gptq) {
                GptqOptions go;
                go.target = is_ef_dtype(p.dtype) ? GptqTarget::Ef : p.dtype == DType::Q4_0 ? GptqTarget::Q4_0 : GptqTarget::Q8_0;
                if (go.target != GptqTarget::Ef) eo.outlier_fraction = 0;
                go.ef = eo;
                go.act_order = o.act_order;
                go.damp_percent = o.damp_percent;
                q = gptq_quantize_matrix(t.name, *w, R, C, in->hessian, go, child);
            } else {
                if (p.method == QuantMethod::Imatrix) eo.importance = in->energy;
                q = ef_quantize_matrix(t.name, *w, R, C, eo, child);
            }
            if (!q) return progress.cancelled() ? make_error("cancelled") : q.error();
            row.rmse = q->stats.rmse;
            row.nnz = q->stats.nnz;
            row.bytes = q->blocks.nbytes();
            q->blocks.shape = t.shape;
            for (auto& c : q->companions) row.bytes += c.nbytes();
            EF_TRY_STATUS(sink(std::move(q->blocks)));
            for (auto& c : q->companions) EF_TRY_STATUS(sink(std::move(c)));
        } else {
            Result<Tensor> q = make_error("unreachable");
            if (p.dtype == DType::F16) {
                q = Tensor::from_f32(t.name, t.shape, *w, DType::F16);
            } else {
                const float* imp = p.method == QuantMethod::Imatrix ? in->energy.data() : nullptr;
                q = quantize_ggml(t.name, *w, R, C, p.dtype, imp, threads, progress, p0, p1);
            }
            if (!q) return q.error();
            auto back = q->to_f32();
            if (!back) return back.error();
            row.rmse = rmse_of(*w, *back);
            row.bytes = q->nbytes();
            EF_TRY_STATUS(sink(std::move(*q)));
        }
        row.effective_bits = 8.0 * double(row.bytes) / double(t.numel());
        rep.quantized_params += t.numel();
        rep.quantized_bytes += row.bytes;
        code_sum += row.code_bits * double(t.numel());
        rep.fallbacks += int(p.fallback);
        work_done += t.numel();
        rep.tensors.push_back(row);
        if (t.owner) t.owner->release(t.data);  // streaming through a mapped checkpoint: drop what is done
    }
    for (const auto& r : rep.tensors) {
        rep.params += r.rows * r.cols;
        rep.bytes += r.bytes;
    }
    rep.bits_per_weight = rep.params ? 8.0 * double(rep.bytes) / double(rep.params) : 0.0;
    if (rep.quantized_params) {
        rep.quantized_code_bits = code_sum / double(rep.quantized_params);
        rep.quantized_effective_bits = 8.0 * double(rep.quantized_bytes) / double(rep.quantized_params);
    }
    progress.report(1.0, "quantized");
    if (report) *report = std::move(rep);
    return {};
}

Result<Model> quantize_model(const Model& m, const ModelQuantOptions& o, const ActivationStats* stats,
                             ModelQuantReport* report, Progress& progress) {
    Model out;
    out.architecture = m.architecture;
    out.config = m.config;
    out.layers = m.layers;
    out.metadata = m.metadata;
    out.vocab = m.vocab;
    out.source_path = m.source_path;
    out.source_format = m.source_format;
    auto keep = [&](Tensor&& t) -> Status {
        out.add(std::move(t));
        return {};
    };
    EF_TRY_STATUS(quantize_model_each(m, o, stats, keep, report, progress));
    return out;
}

std::string quant_report_markdown(const ModelQuantReport& r) {
    std::string s = "| tensor | shape | from | to | method | code bits | eff. bits | rmse | outliers |\n"
                    "|---|---|---|---|---|---:|---:|---:|---:|\n";
    char buf[512];
    for (const auto& t : r.tensors) {
        std::snprintf(buf, sizeof buf, "| %s | %lld x %lld | %s | %s%s | %s | %.3g | %.4f | %.3g | %lld |\n", t.name.c_str(),
                      (long long)t.rows, (long long)t.cols, t.source_dtype.c_str(), t.dtype.c_str(),
                      t.fallback ? " (fallback)" : "", t.method.c_str(), t.code_bits, t.effective_bits, t.rmse,
                      (long long)t.nnz);
        s += buf;
    }
    std::snprintf(buf, sizeof buf,
                  "\nModel: %lld weights, %llu bytes, %.4f bits per weight (effective, outlier companions included)\n"
                  "Quantized: %lld weights, %llu bytes, code %.4f bits, effective %.4f bits per weight; %d fallback tensor(s)\n",
                  (long long)r.params, (unsigned long long)r.bytes, r.bits_per_weight, (long long)r.quantized_params,
                  (unsigned long long)r.quantized_bytes, r.quantized_code_bits, r.quantized_effective_bits, r.fallbacks);
    s += buf;
    return s;
}

}  // namespace ef
