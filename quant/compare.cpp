// Variants side by side (see compare.h).
#include "quant/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "core/ef_tensors.h"
#include "quant/ef_format.h"
#include "quant/export_llamacpp.h"
#include "quant/quantize_model.h"
#include "quant/sensitivity.h"
#include "runtime/calib/calibration.h"
#include "runtime/eval/perplexity.h"
#include "runtime/eval/tasks.h"
#include "runtime/profile.h"

namespace ef {
namespace {

// A slice [a, b) of the parent's progress; a cancel of the parent reaches the job at its next report.
class SubProgress {
public:
    SubProgress(Progress& parent, double a, double b, std::string stage)
        : child_([this, &parent, a, b, stage = std::move(stage)](double f, const std::string& s) {
              parent.report(a + (b - a) * std::clamp(f, 0.0, 1.0), s.empty() ? stage : stage + ": " + s);
              if (parent.cancelled()) child_.cancel();
          }) {
        if (parent.cancelled()) child_.cancel();
    }
    SubProgress(const SubProgress&) = delete;
    SubProgress& operator=(const SubProgress&) = delete;
    Progress& get() { return child_; }

private:
    Progress child_;
};

bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// llama.cpp's tensor_type_fallback for rows the block does not divide.
DType llamacpp_fallback(DType t, int64_t row) {
    if (row % type_traits(t).block_size == 0) return t;
    DType f = t;
    switch (t) {
        case DType::Q2_K:
        case DType::Q3_K: f = DType::Q4_0; break;
        case DType::Q4_K: f = DType::Q5_0; break;
        case DType::Q5_K: f = DType::Q5_1; break;
        case DType::Q6_K: f = DType::Q8_0; break;
        default: break;
    }
    return row % type_traits(f).block_size == 0 ? f : DType::F16;
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// The 2-D projection weights (what the quantized variants change): llama.cpp-quantizable, not the
// embedding or the output head.
bool projection_weight(const Tensor& t) {
    return llamacpp_quantizable(t) && t.name != "token_embd.weight" && t.name != "output.weight" && !has(t.name, "ffn_gate_inp");
}

std::string fmt(double v) {
    char b[40];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
}

}  // namespace

const std::vector<std::string>& compare_variant_names() {
    static const std::vector<std::string> names = {"f32", "q8_0", "gptq4", "q4_k_m", "q3_k_m", "ef"};
    return names;
}

Result<std::map<std::string, DType>> llamacpp_recipe_types(const Model& m, const std::string& recipe) {
    const bool q4 = recipe == "q4_k_m";
    if (!q4 && recipe != "q3_k_m") return make_error("unknown llama.cpp recipe '" + recipe + "' (q4_k_m, q3_k_m)");
    const DType base = q4 ? DType::Q4_K : DType::Q3_K;
    const bool tied = m.find("output.weight") == nullptr;
    auto is_attn_v = [](const std::string& n) { return has(n, "attn_v.weight") || has(n, "attn_qkv.weight") || has(n, "attn_kv_b.weight"); };
    int n_attn_v = 0;
    for (const auto& t : m.tensors)
        if (llamacpp_quantizable(t) && is_attn_v(t.name)) ++n_attn_v;
    const int n_layer = int(m.config.n_layers);
    int i_attn_v = 0, i_ffn_down = 0;
    std::map<std::string, DType> types;
    for (const auto& t : m.tensors) {
        if (!llamacpp_quantizable(t) || ef_companion_base(t.name) || has(t.name, "ffn_gate_inp")) continue;
        DType want = base;
        const std::string& n = t.name;
        if (n == "output.weight" || (tied && n == "token_embd.weight")) {
            want = t.row_length() % type_traits(base).block_size != 0 ? DType::Q8_0 : DType::Q6_K;
        } else if (n == "token_embd.weight") {
            want = base;
        } else if (is_attn_v(n)) {
            if (q4) want = use_more_bits(i_attn_v, n_attn_v) ? DType::Q6_K : base;
            else want = i_attn_v < 2 ? DType::Q5_K : DType::Q4_K;
            ++i_attn_v;
        } else if (has(n, "ffn_down")) {
            if (q4) want = use_more_bits(i_ffn_down, n_layer) ? DType::Q6_K : base;
            else want = i_ffn_down < n_layer / 16 ? DType::Q5_K : DType::Q4_K;
            ++i_ffn_down;
        } else if (has(n, "attn_output.weight")) {
            if (!q4) want = DType::Q4_K;
        }
        types[n] = llamacpp_fallback(want, t.row_length());
    }
    return types;
}

Result<CompareResult> compare_variants(const Model& m, const CompareOptions& o, Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> names = o.variants.empty() ? compare_variant_names() : o.variants;
    for (const auto& v : names) {
        const auto& all = compare_variant_names();
        if (std::find(all.begin(), all.end(), v) == all.end())
            return make_error("unknown variant '" + v + "' (f32, q8_0, gptq4, q4_k_m, q3_k_m, ef)");
    }
    if (!(o.bits > 0 && o.bits <= 32)) return make_error("--bits must be in (0, 32]");
    if (o.n_ctx < 8) return make_error("the window must have at least 8 tokens");
    std::vector<std::pair<eval::Task, std::vector<eval::McItem>>> tasks;
    for (const auto& name : o.tasks) {
        auto t = eval::task_from_name(name);
        if (!t) return make_error("unknown task '" + name + "' (arc_easy, arc_challenge, piqa, winogrande, hellaswag, lambada)");
        auto items = eval::load_task(*t, o.eval_dir + "/" + eval::task_file(*t), o.limit);
        if (!items) return make_error(items.message());
        tasks.emplace_back(*t, std::move(*items));
    }
    auto tok = Tokenizer::create(m.vocab);
    if (!tok) return make_error("no usable tokenizer: " + tok.message());

    CompareResult res;
    res.model = m.source_path;
    res.bits_requested = o.bits;
    res.bits_used = o.bits;
    res.tasks = o.tasks;
    res.limit = o.limit;
    res.n_ctx = int(std::min<int64_t>(o.n_ctx, m.config.context_length));
    const TextSplit split = split_calibration_text(o.text);
    const std::string origin = o.text_origin.empty() ? "the text" : o.text_origin;
    const int n_ctx = res.n_ctx;

    SessionOptions so;
    so.threads = std::max(1, o.threads);
    const bool need = std::any_of(names.begin(), names.end(), [](const std::string& v) { return v != "f32" && v != "q8_0"; });
    const bool need_hessian = std::find(names.begin(), names.end(), "gptq4") != names.end();
    const bool need_ef = std::find(names.begin(), names.end(), "ef") != names.end();

    // Calibration on the last 10% of the lines: activation statistics (+ Hessians) and KL windows.
    std::optional<CalibrationResult> calib;
    std::vector<std::vector<int32_t>> calib_windows;
    if (need) {
        SubProgress sp(progress, 0.0, 0.08, "calibration");
        CalibrationOptions co;
        co.tokens = int64_t(o.calib_windows) * n_ctx;
        co.n_ctx = n_ctx;
        co.hessian = need_hessian;
        co.session = so;
        auto c = calibrate(m, *tok, split.calib, origin + " (last 10% of its lines)", co, sp.get());
        if (!c) return make_error(c.message());
        res.calib_tokens = c->tokens;
        calib = std::move(*c);
        if (need_ef) {
            auto w = calibration_windows(*tok, split.calib, n_ctx, o.calib_windows);
            if (!w) return make_error(w.message());
            calib_windows = std::move(*w);
        }
    }

    if (progress.cancelled()) return make_error("cancelled");
    // The reference log-probabilities on the held-out part.
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path base_path = fs::temp_directory_path(ec) /
                               ("ef-compare-" + std::to_string(std::random_device{}()) + "-" + std::to_string(std::random_device{}()) + ".klbase");
    struct Cleanup {
        fs::path p;
        ~Cleanup() { std::error_code e; fs::remove(p, e); }
    } cleanup{base_path};
    {
        SubProgress sp(progress, 0.08, 0.12, "reference logits");
        eval::KlBaseOptions ko;
        ko.ppl.n_ctx = n_ctx;
        ko.ppl.max_chunks = o.chunks;
        ko.ppl.session = so;
        auto b = eval::write_kl_base(m, *tok, split.eval, base_path.string(), ko, sp.get());
        if (!b) return make_error(origin + " (held-out part): " + b.message());
        res.chunks = b->n_chunks;
        res.scored_tokens = b->count;
    }

    for (size_t vi = 0; vi < names.size(); ++vi) {
        const std::string& name = names[vi];
        const double a = 0.12 + 0.88 * double(vi) / double(names.size());
        const double b = 0.12 + 0.88 * double(vi + 1) / double(names.size());
        if (progress.cancelled()) return make_error("cancelled");
        SubProgress build(progress, a, a + 0.5 * (b - a), name + ": build");
        SubProgress measure(progress, a + 0.5 * (b - a), b, name + ": measure");

        VariantResult vr;
        vr.name = name;
        std::optional<Model> owned;
        if (name == "f32") {
            vr.description = "the model as loaded (reference)";
        } else if (name == "q8_0" || name == "gptq4") {
            ModelQuantOptions qo;
            qo.method = name == "q8_0" ? QuantMethod::Rtn : QuantMethod::Gptq;
            qo.ggml_type = name == "q8_0" ? DType::Q8_0 : DType::Q4_0;
            qo.threads = so.threads;
            vr.description = name == "q8_0" ? "q8_0 round-to-nearest, embeddings/output kept"
                                            : "q4_0 by GPTQ, embeddings/output kept";
            auto q = quantize_model(m, qo, calib ? &calib->stats : nullptr, nullptr, build.get());
            if (!q) return make_error(name + ": " + q.message());
            owned = std::move(*q);
        } else if (name == "q4_k_m" || name == "q3_k_m") {
            auto types = llamacpp_recipe_types(m, name);
            if (!types) return make_error(types.message());
            LlamacppExportOptions eo;
            eo.tensor_types = std::move(*types);
            eo.threads = so.threads;
            const ActivationStats* st = calib ? &calib->stats : nullptr;
            eo.importance = [st](const std::string& n) -> const std::vector<float>* {
                const auto* in = st ? st->find(n) : nullptr;
                return in && !in->energy.empty() ? &in->energy : nullptr;
            };
            vr.description = std::string("llama.cpp ") + (name == "q4_k_m" ? "Q4_K_M" : "Q3_K_M") + " mixture, imatrix-weighted";
            auto q = export_for_llamacpp(m, eo, build.get());
            if (!q) return make_error(name + ": " + q.message());
            owned = std::move(*q);
        } else {  // ef
            SensitivityOptions sopt;
            sopt.threads = so.threads;
            sopt.session = so;
            auto sens = measure_sensitivity(m, calib_windows, sopt, build.get());
            if (!sens) return make_error("ef: " + sens.message());
            uint64_t min_bytes = 0;
            int64_t w = 0;
            for (const auto& u : sens->plan.units) {
                uint64_t mb = UINT64_MAX;
                for (const auto& op : u.options) mb = std::min(mb, op.bytes);
                min_bytes += mb;
                w += u.weights;
            }
            res.bits_minimum = w > 0 ? 8.0 * double(min_bytes) / double(w) : 0;
            res.bits_used = o.bits;
            if (o.bits < res.bits_minimum) {
                res.bits_used = res.bits_minimum;
                res.note = "ef: --bits " + fmt(o.bits) + " is below the format's minimum of " + fmt(res.bits_minimum) +
                           " effective bits per weight (every layer at 2 bits); the minimum is used";
            }
            AllocBudget budget;
            budget.kind = BudgetKind::AverageBits;
            // The minimum itself must fit despite rounding: a hair above it.
            budget.average_bits = std::max(res.bits_used, res.bits_minimum * (1 + 1e-12));
            auto r = allocate_bits(sens->plan.units, budget);
            if (!r) return make_error("ef: " + r.message());
            auto q = apply_allocation(m, *sens, r->choice, sopt, build.get());
            if (!q) return make_error("ef: " + q.message());
            vr.description = "EdgeFusion allocation at " + fmt(res.bits_used) + " bits (achieved " + fmt(r->average_bits) + ")";
            owned = std::move(*q);
        }
        const Model& v = owned ? *owned : m;

        // Size.
        const EfModelBits eb = ef_model_bits(v);
        vr.bits_per_weight = eb.effective_bits;
        std::map<std::string, uint64_t> ef_bytes;
        for (const auto& t : eb.tensors) ef_bytes[t.name] = t.block_bytes + t.companion_bytes;
        uint64_t qbytes = 0;
        int64_t total_weights = 0;  // of this variant (a llama.cpp export of a routed model drops a branch)
        for (const auto& t : v.tensors) {
            if (ef_companion_base(t.name)) continue;
            ++vr.dtypes[std::string(dtype_name(t.dtype))];
            if (!projection_weight(t)) continue;
            total_weights += t.shape[0] * t.shape[1];
            auto it = ef_bytes.find(t.name);
            qbytes += it != ef_bytes.end() ? it->second : t.nbytes();
        }
        vr.quant_bits_per_weight = total_weights > 0 ? 8.0 * double(qbytes) / double(total_weights) : 0;
        vr.weight_bytes = v.weight_bytes();

        // Quality.
        auto kl = eval::compare_kl_base(v, base_path.string(), so, measure.get());
        if (!kl) return make_error(name + ": " + kl.message());
        vr.ppl = kl->ppl;
        vr.ppl_error = kl->ppl_error;
        vr.kl = kl->mean_kl;
        vr.kl_error = kl->kl_error;
        vr.top1 = kl->top1_agreement;
        if (!tasks.empty()) {
            auto scorer = eval::SessionScorer::create(v, *tok, so);
            if (!scorer) return make_error(name + ": " + scorer.message());
            double sum = 0;
            for (const auto& [task, items] : tasks) {
                auto tr = eval::run_task(task, items, **scorer, measure.get());
                if (!tr) return make_error(name + ": " + tr.message());
                vr.task_acc[eval::task_name(task)] = tr->acc;
                sum += tr->acc;
            }
            vr.mean_acc = sum / double(tasks.size());
        }

        // Speed and memory.
        auto s = Session::create(v, so);
        if (!s) return make_error(name + ": " + s.message());
        const auto path = layer_paths(*s, Routing::Hard);
        vr.state_bytes = kv_cache_bytes(v, path, n_ctx) + ssm_state_bytes(v, path);
        vr.memory_bytes = vr.weight_bytes + vr.state_bytes;
        vr.gflops_per_token = flops_per_token(v, path, n_ctx / 2) / 1e9;
        const int bench_n = int(std::min<int64_t>(std::max(1, o.bench_tokens), s->max_positions()));
        // Best of 3 repetitions: the machine may be shared, and the fastest run is the least disturbed.
        auto sp = bench_decode(*s, bench_n, 3, 2, measure.get());
        if (!sp) return make_error(name + ": " + sp.message());
        vr.tokens_per_s = sp->samples.empty() ? sp->mean : *std::max_element(sp->samples.begin(), sp->samples.end());
        res.variants.push_back(std::move(vr));
    }
    res.process_peak_rss = peak_rss_bytes();
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.report(1.0, "done");
    return res;
}

namespace {

struct Column {
    std::string key, title;
};

std::vector<Column> columns(const CompareResult& r) {
    std::vector<Column> c = {{"variant", "variant"},
                             {"bits_per_weight", "bits/weight (all)"},
                             {"quant_bits_per_weight", "bits/weight (layers)"},
                             {"ppl", "PPL"},
                             {"ppl_error", "PPL ±"},
                             {"kl", "KL vs f32"},
                             {"top1", "top-1 agree"}};
    for (const auto& t : r.tasks) c.push_back({"acc_" + t, t + " acc"});
    if (!r.tasks.empty()) c.push_back({"acc_mean", "mean acc"});
    c.push_back({"memory_mb", "memory MB"});
    c.push_back({"tokens_per_s", "tokens/s"});
    c.push_back({"gflops_per_token", "GFLOPs/token"});
    return c;
}

std::string cell(const VariantResult& v, const std::string& key) {
    if (key == "variant") return v.name;
    if (key == "bits_per_weight") return fmt(v.bits_per_weight);
    if (key == "quant_bits_per_weight") return fmt(v.quant_bits_per_weight);
    if (key == "ppl") return fmt(v.ppl);
    if (key == "ppl_error") return fmt(v.ppl_error);
    if (key == "kl") return fmt(v.kl);
    if (key == "top1") return fmt(v.top1);
    if (key == "acc_mean") return fmt(v.mean_acc);
    if (key == "memory_mb") return fmt(double(v.memory_bytes) / 1e6);
    if (key == "tokens_per_s") return fmt(v.tokens_per_s);
    if (key == "gflops_per_token") return fmt(v.gflops_per_token);
    if (key.rfind("acc_", 0) == 0) {
        auto it = v.task_acc.find(key.substr(4));
        return it == v.task_acc.end() ? "" : fmt(it->second);
    }
    return "";
}

}  // namespace

std::string compare_markdown(const CompareResult& r) {
    const auto cols = columns(r);
    std::string s = "|";
    for (const auto& c : cols) s += " " + c.title + " |";
    s += "\n|";
    for (size_t i = 0; i < cols.size(); ++i) s += i == 0 ? "---|" : "---:|";
    s += "\n";
    for (const auto& v : r.variants) {
        s += "|";
        for (const auto& c : cols) s += " " + cell(v, c.key) + " |";
        s += "\n";
    }
    s += "\n";
    for (const auto& v : r.variants) s += "- " + v.name + ": " + v.description + "\n";
    s += "\nWindows of " + std::to_string(r.n_ctx) + " tokens, " + std::to_string(r.chunks) + " held-out chunks (" +
         std::to_string(r.scored_tokens) + " scored tokens); calibration " + std::to_string(r.calib_tokens) + " tokens";
    if (!r.tasks.empty()) s += "; tasks: first " + std::to_string(r.limit) + " items each";
    s += ".\nMemory = weights + KV cache/SSM state for the window (computed); peak RSS of the whole run: " +
         fmt(double(r.process_peak_rss) / 1e6) + " MB. " + fmt(r.seconds) + " s.\n";
    if (!r.note.empty()) s += "\n**Note:** " + r.note + "\n";
    return s;
}

std::string compare_csv(const CompareResult& r) {
    const auto cols = columns(r);
    std::string s;
    for (size_t i = 0; i < cols.size(); ++i) s += (i ? "," : "") + cols[i].key;
    s += "\n";
    for (const auto& v : r.variants) {
        for (size_t i = 0; i < cols.size(); ++i) s += (i ? "," : "") + cell(v, cols[i].key);
        s += "\n";
    }
    return s;
}

std::string compare_json(const CompareResult& r) {
    nlohmann::json j;
    j["model"] = r.model;
    j["n_ctx"] = r.n_ctx;
    j["chunks"] = r.chunks;
    j["scored_tokens"] = r.scored_tokens;
    j["calib_tokens"] = r.calib_tokens;
    j["tasks"] = r.tasks;
    j["limit"] = r.limit;
    j["bits_requested"] = r.bits_requested;
    j["bits_used"] = r.bits_used;
    j["bits_minimum"] = r.bits_minimum;
    j["note"] = r.note;
    j["process_peak_rss_bytes"] = r.process_peak_rss;
    j["seconds"] = r.seconds;
    nlohmann::json vs = nlohmann::json::array();
    for (const auto& v : r.variants) {
        nlohmann::json x;
        x["variant"] = v.name;
        x["description"] = v.description;
        x["bits_per_weight"] = v.bits_per_weight;
        x["quant_bits_per_weight"] = v.quant_bits_per_weight;
        x["ppl"] = v.ppl;
        x["ppl_error"] = v.ppl_error;
        x["kl"] = v.kl;
        x["kl_error"] = v.kl_error;
        x["top1"] = v.top1;
        x["task_acc"] = v.task_acc;
        x["acc_mean"] = v.mean_acc;
        x["weight_bytes"] = v.weight_bytes;
        x["state_bytes"] = v.state_bytes;
        x["memory_bytes"] = v.memory_bytes;
        x["memory_mb"] = double(v.memory_bytes) / 1e6;
        x["tokens_per_s"] = v.tokens_per_s;
        x["gflops_per_token"] = v.gflops_per_token;
        x["dtypes"] = v.dtypes;
        vs.push_back(std::move(x));
    }
    j["variants"] = vs;
    return j.dump(2);
}

}  // namespace ef
