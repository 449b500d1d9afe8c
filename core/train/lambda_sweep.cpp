#include "core/train/lambda_sweep.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/train/checkpoint_path.h"
#include "core/train/train_data.h"
#include "runtime/eval/perplexity.h"
#include "runtime/router_analysis.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::train {
namespace {

namespace fs = std::filesystem;

std::string num(double v, const char* f = "%.4g") {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// Held-out windows and the reference model's log-probabilities over them, made once per sweep.
struct Evaluator {
    std::string reference;   // "the dense base model P" / "the starting model P (soft routing)"
    int64_t T = 0;
    std::vector<int32_t> windows;           // (n, T + 1)
    std::vector<std::vector<float>> ref_lp; // per window: (T, V) log-softmax of the reference
    double ref_nll = 0;                     // mean over the scored positions
    int64_t positions = 0;
    int threads = 1;
    bool routed_base = false;               // the base is an edgefusion model (fine-tuned as it is)
    float base_tau = 1;                     // its router temperature
};

// logits (V) -> log-softmax in place.
void log_softmax(std::span<float> row) {
    const double lse = eval::log_sum_exp(row);
    for (float& x : row) x = float(double(x) - lse);
}

Result<std::vector<float>> window_logits(Session& s, std::span<const int32_t> inputs) {
    s.reset();
    return s.eval_batch(inputs, true);
}

Result<Evaluator> make_evaluator(const TrainConfig& c, const std::string& base_path, const LambdaSweepOptions& o,
                                 Progress& progress) {
    Evaluator ev;
    ev.threads = o.threads > 0 ? o.threads : c.training.threads;
    ev.T = c.data.seq_len;
    LoadOptions lo;
    lo.tokenizer_path = c.model.tokenizer;
    auto base = load_model(base_path, lo);  // (its own 0..1 fractions would run the sweep's bar backwards)
    if (!base) return make_error("base model " + base.message());
    if (base->vocab.empty()) return make_error("base model " + base_path + ": has no tokenizer (set model.tokenizer)");
    auto tok = Tokenizer::create(base->vocab);
    if (!tok) return make_error("base model " + base_path + ": " + tok.message());
    std::ifstream f(c.data.train_text, std::ios::binary);
    if (!f) return make_error(c.path + ": 'data.train_text': cannot read " + c.data.train_text);
    std::ostringstream ss;
    ss << f.rdbuf();
    // The trainer's split (trainer.cpp): the same tokens, so the held-out part was never trained on.
    const TokenData data = split_tokens(tok->encode(ss.str(), false), c.data.val_fraction);
    ev.windows = fixed_windows(data.val, 1, ev.T, std::max<int64_t>(1, o.eval_windows));
    if (ev.windows.empty())
        return make_error(c.path + ": the validation split of 'data.train_text' (" + std::to_string(data.val.size()) +
                          " tokens) is shorter than one window of " + std::to_string(ev.T + 1) +
                          "; raise 'data.val_fraction' (perplexity and KL are measured on it)");
    SessionOptions so;
    so.threads = ev.threads;
    so.max_positions = std::max<int64_t>(ev.T, 1);
    const bool routed = base->architecture == "edgefusion";
    ev.routed_base = routed;
    ev.base_tau = base->config.router_temperature;
    so.routing = routed ? Routing::Soft : Routing::Hard;
    ev.reference = routed ? "the starting model " + base_path + " (soft routing)" : "the dense base model " + base_path;
    auto s = Session::create(*base, so);
    if (!s) return make_error("base model " + base_path + ": " + s.message());
    const int64_t n = int64_t(ev.windows.size()) / (ev.T + 1);
    const int64_t V = base->config.vocab_size;
    double nll = 0;
    for (int64_t w = 0; w < n; ++w) {
        if (progress.cancelled()) return make_error("cancelled");
        const std::span<const int32_t> win(ev.windows.data() + w * (ev.T + 1), size_t(ev.T + 1));
        auto l = window_logits(*s, win.first(size_t(ev.T)));
        if (!l) return make_error("base model " + base_path + ": " + l.message());
        for (int64_t t = 0; t < ev.T; ++t) {
            std::span<float> row(l->data() + t * V, size_t(V));
            log_softmax(row);
            nll -= double(row[size_t(win[size_t(t + 1)])]);
        }
        ev.ref_lp.push_back(std::move(*l));
    }
    ev.positions = n * ev.T;
    ev.ref_nll = nll / double(ev.positions);
    return ev;
}

// Perplexity and mean KL(reference || model) of the hard-routed model on the evaluator's windows.
Status evaluate_point(const Evaluator& ev, const Model& m, LambdaPoint& p, Progress& progress) {
    SessionOptions so;
    so.threads = ev.threads;
    so.max_positions = std::max<int64_t>(ev.T, 1);
    so.routing = Routing::Hard;
    auto s = Session::create(m, so);
    if (!s) return s.error();
    const int64_t V = m.config.vocab_size;
    double nll = 0, kl = 0;
    for (size_t w = 0; w < ev.ref_lp.size(); ++w) {
        if (progress.cancelled()) return make_error("cancelled");
        const std::span<const int32_t> win(ev.windows.data() + int64_t(w) * (ev.T + 1), size_t(ev.T + 1));
        auto l = window_logits(*s, win.first(size_t(ev.T)));
        if (!l) return l.error();
        if (int64_t(l->size()) != ev.T * V || ev.ref_lp[w].size() != l->size())
            return make_error("the trained model's vocabulary differs from the base model's");
        for (int64_t t = 0; t < ev.T; ++t) {
            std::span<float> row(l->data() + t * V, size_t(V));
            log_softmax(row);
            nll -= double(row[size_t(win[size_t(t + 1)])]);
            const float* r = ev.ref_lp[w].data() + t * V;
            double k = 0;
            for (int64_t v = 0; v < V; ++v) k += std::exp(double(r[v])) * (double(r[v]) - double(row[size_t(v)]));
            kl += std::max(0.0, k);
        }
    }
    p.val_ppl = std::exp(nll / double(ev.positions));
    p.kl = kl / double(ev.positions);
    return Status::success();
}

// One short run for `lambda` into OUT/lambda_<v>/, evaluated. Progress: [lo, hi) of `parent`.
Result<LambdaPoint> run_point(const TrainConfig& config, float lambda, const std::string& base_path, const Evaluator& ev,
                              const LambdaSweepOptions& o, Progress& parent, double lo, double hi) {
    const std::string tag = "lambda " + num(lambda, "%g");
    if (parent.cancelled()) return make_error(tag + ": cancelled");
    TrainConfig c = config;
    c.router.lambda = lambda;
    if (o.steps > 0) c.training.steps = o.steps;
    c.training.warmup = std::min(c.training.warmup, c.training.steps / 10);
    c.training.checkpoint_every = 0;
    c.training.eval_every = 0;
    c.training.freeze_base = true;
    c.quant.format = "none";

    LambdaPoint p;
    p.lambda = lambda;
    p.run_dir = (fs::path(o.output_dir) / lambda_dir_name(lambda)).string();
    TrainOptions to;
    to.output_dir = p.run_dir;
    to.base_model = base_path;
    to.freeze_base = true;
    to.skip_quantization = true;
    to.threads = o.threads;
    to.on_message = o.on_message;
    if (o.on_log) to.on_log = [&](const TrainLogEntry& e) { o.on_log(lambda, e); };

    // The run's own Progress: its fractions map into [lo, lo + 0.9 (hi - lo)) and never go back
    // (loading the base model reports its own 0..1 before the steps do); a cancel of the sweep
    // reaches it at its next report (run_training polls it every step).
    Progress* self = nullptr;
    double shown = lo;
    Progress child([&](double f, const std::string& stage) {
        shown = std::max(shown, lo + 0.9 * (hi - lo) * std::clamp(f, 0.0, 1.0));
        parent.report(shown, tag + ": " + stage);
        if (parent.cancelled() && self) self->cancel();
    });
    self = &child;
    auto r = run_training(c, to, child);
    if (!r) return make_error(tag + ": " + r.message());
    p.steps = r->steps_done;
    if (!r->log.empty()) {
        p.final_loss = r->log.back().loss;
        p.task_loss = r->log.back().task_loss;
    }
    p.checkpoint = r->final_checkpoint;
    parent.report(lo + 0.9 * (hi - lo), tag + ": evaluating");

    auto file = resolve_model_path(p.checkpoint);
    if (!file) return make_error(tag + ": " + file.message());
    auto m = load_model(*file);
    if (!m) return make_error(tag + ": " + m.message());
    auto a = analyze_router(*m);
    if (!a) return make_error(tag + ": " + a.message());
    double gsum = 0;
    for (const RouterLayer& L : a->layers) {
        p.gates.push_back(float(L.gate));
        gsum += L.gate;
    }
    p.mean_gate = p.gates.empty() ? 0 : gsum / double(p.gates.size());
    p.ssm_frac = a->ssm_frac;
    p.gate_entropy_bits = a->mean_entropy_bits;
    p.gflops_per_token = a->gflops_per_token;
    p.dense_gflops_per_token = a->dense_gflops_per_token;
    p.flops_reduction_pct = a->flops_reduction_pct;
    if (Status s = evaluate_point(ev, *m, p, parent); !s) return make_error(tag + ": evaluating: " + s.error().message);
    parent.report(hi, tag + ": done");
    return p;
}

Result<std::string> base_of(const TrainConfig& c, const LambdaSweepOptions& o) {
    const std::string base = !o.base_model.empty() ? o.base_model : c.model.base;
    if (base.empty())
        return make_error(c.path + ": the lambda sweep trains gates with the base frozen and needs a base model "
                          "(model.base or --base-model: a dense llama model to hybridize, or a trained edgefusion checkpoint)");
    auto f = resolve_model_path(base);
    if (!f) return make_error("base model " + f.message());
    return *f;
}

}  // namespace

std::string lambda_dir_name(float lambda) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, lambda);
    return "lambda_" + std::string(buf, r.ptr);
}

Result<std::vector<float>> parse_lambda_list(std::string_view text) {
    std::vector<float> out;
    if (text.empty()) return make_error("the lambda list is empty (e.g. 0,0.001,0.01,0.1)");
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        std::string item(text.substr(start, comma - start));
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (item.empty()) return make_error("the lambda list '" + std::string(text) + "' has an empty item");
        float v = 0;
        auto r = std::from_chars(item.data(), item.data() + item.size(), v);
        if (r.ec != std::errc() || r.ptr != item.data() + item.size())
            return make_error("lambda '" + item + "' is not a number (the list is comma-separated: 0,0.001,0.01)");
        if (!std::isfinite(v) || v < 0) return make_error("lambda '" + item + "' must be a finite number >= 0");
        for (float w : out)
            if (w == v) return make_error("lambda " + item + " is given twice");
        out.push_back(v);
        start = comma + 1;
    }
    return out;
}

Result<LambdaSweep> sweep_lambda(const TrainConfig& config, const std::vector<float>& lambdas, const LambdaSweepOptions& o,
                                 Progress& progress) {
    register_hdf5_format();
    if (lambdas.empty()) return make_error("no lambdas to sweep");
    for (size_t i = 0; i < lambdas.size(); ++i) {
        if (!std::isfinite(lambdas[i]) || lambdas[i] < 0) return make_error("lambda " + num(lambdas[i], "%g") + " must be >= 0");
        for (size_t j = 0; j < i; ++j)
            if (lambdas[j] == lambdas[i]) return make_error("lambda " + num(lambdas[i], "%g") + " is given twice");
    }
    if (o.output_dir.empty()) return make_error("no output folder given");
    if (o.steps < 0) return make_error("the step count must not be negative");
    auto base = base_of(config, o);
    if (!base) return base.error();
    auto ev = make_evaluator(config, *base, o, progress);
    if (!ev) return ev.error();
    TrainConfig c = config;
    ModelSection& m = c.model;
    if (m.dim || m.layers || m.heads || m.kv_heads || m.head_dim || m.ffn_hidden || m.vocab_size) {
        // A from-scratch config (e.g. the one that trained the base): the base model has the shape.
        m.dim = m.layers = m.heads = m.kv_heads = m.head_dim = m.ffn_hidden = m.vocab_size = 0;
        if (o.on_message) o.on_message("the model shape comes from the base model " + *base + "; the config's shape keys are not used");
    }
    if (ev->routed_base) {
        // Its gates mean g = sigmoid(alpha / tau) at its own temperature: keep that one fixed, so
        // every run starts from the routing the model has.
        c.router.tau_start = c.router.tau_end = ev->base_tau;
        c.router.anneal = Anneal::None;
    }

    LambdaSweep s;
    s.config_path = config.path;
    s.base_model = *base;
    s.reference = ev->reference;
    s.eval_positions = ev->positions;
    s.reference_ppl = std::exp(ev->ref_nll);
    const double n = double(lambdas.size());
    for (size_t i = 0; i < lambdas.size(); ++i) {
        auto p = run_point(c, lambdas[i], *base, *ev, o, progress, double(i) / n, double(i + 1) / n);
        if (!p) return p.error();
        if (o.on_point) o.on_point(*p);
        s.points.push_back(std::move(*p));
    }
    return s;
}

Result<LambdaPoint> train_lambda_point(const TrainConfig& config, float lambda, const LambdaSweepOptions& opts,
                                       Progress& progress) {
    auto s = sweep_lambda(config, {lambda}, opts, progress);
    if (!s) return s.error();
    return std::move(s->points.front());
}

Result<TrainConfig> gate_training_config(const std::string& base_model, const std::string& text_path, bool distill,
                                         const std::string& tokenizer) {
    std::error_code ec;
    auto absolute = [&](const std::string& p) { return fs::absolute(p, ec).string(); };
    // YAML strings in double quotes; the parser then checks every value as it does for a file.
    auto q = [](const std::string& s) {
        std::string o = "\"";
        for (char ch : s) {
            if (ch == '"' || ch == '\\') o += '\\';
            o += ch;
        }
        return o + "\"";
    };
    std::string y = "model:\n  arch: edgefusion\n  base: " + q(absolute(base_model)) + "\n";
    if (!tokenizer.empty()) y += "  tokenizer: " + q(absolute(tokenizer)) + "\n";
    y += "data:\n  train_text: " + q(absolute(text_path)) + "\n  val_fraction: 0.1\n  seq_len: 64\n  batch: 4\n";
    y += "training:\n  steps: 50\n  lr: 0.01\n  min_lr: 0.001\n  warmup: 5\n  weight_decay: 0\n  log_every: 10\n  freeze_base: true\n";
    y += "router:\n  lambda: 0\n";
    y += std::string("distill:\n  enabled: ") + (distill ? "true" : "false") + "\n";
    return parse_train_config(y, "<gate training of " + base_model + ">");
}

std::string sweep_markdown(const LambdaSweep& s) {
    std::ostringstream o;
    o << "Lambda sweep: base " << s.base_model << "; KL against " << s.reference << " on " << s.eval_positions
      << " held-out positions (reference perplexity " << num(s.reference_ppl) << ")\n\n";
    o << "| lambda | ssm_frac | entropy (bits) | mean g | KL (nats) | PPL | GFLOPs/token | vs dense | loss | gates |\n";
    o << "| -----: | -------: | -------------: | -----: | --------: | --: | -----------: | -------: | ---: | ----- |\n";
    for (const LambdaPoint& p : s.points) {
        std::string g;
        for (float x : p.gates) g += (g.empty() ? "" : " ") + num(x, "%.2f");
        o << "| " << num(p.lambda, "%g") << " | " << num(p.ssm_frac, "%.3f") << " | " << num(p.gate_entropy_bits, "%.3f") << " | "
          << num(p.mean_gate, "%.3f") << " | " << num(p.kl, "%.4f") << " | " << num(p.val_ppl, "%.3f") << " | "
          << num(p.gflops_per_token, "%.6f") << " | " << num(-p.flops_reduction_pct, "%+.1f%%") << " | " << num(p.final_loss, "%.4f")
          << " | " << g << " |\n";
    }
    return o.str();
}

std::string sweep_csv(const LambdaSweep& s) {
    std::ostringstream o;
    o << "lambda,ssm_frac,gate_entropy_bits,mean_gate,kl,val_ppl,gflops_per_token,dense_gflops_per_token,"
         "flops_reduction_pct,final_loss,steps,gates,checkpoint\n";
    for (const LambdaPoint& p : s.points) {
        std::string g;
        for (float x : p.gates) g += (g.empty() ? "" : ";") + num(x, "%.6g");
        o << num(p.lambda, "%.9g") << "," << num(p.ssm_frac, "%.9g") << "," << num(p.gate_entropy_bits, "%.9g") << ","
          << num(p.mean_gate, "%.9g") << "," << num(p.kl, "%.9g") << "," << num(p.val_ppl, "%.9g") << ","
          << num(p.gflops_per_token, "%.9g") << "," << num(p.dense_gflops_per_token, "%.9g") << ","
          << num(p.flops_reduction_pct, "%.9g") << "," << num(p.final_loss, "%.9g") << "," << p.steps << "," << g << ",\""
          << p.checkpoint << "\"\n";
    }
    return o.str();
}

std::string sweep_json(const LambdaSweep& s) {
    nlohmann::json j;
    j["config"] = s.config_path;
    j["base_model"] = s.base_model;
    j["reference"] = s.reference;
    j["eval_positions"] = s.eval_positions;
    j["reference_ppl"] = s.reference_ppl;
    j["points"] = nlohmann::json::array();
    for (const LambdaPoint& p : s.points) {
        j["points"].push_back({{"lambda", p.lambda},
                               {"steps", p.steps},
                               {"final_loss", p.final_loss},
                               {"task_loss", p.task_loss},
                               {"gates", p.gates},
                               {"ssm_frac", p.ssm_frac},
                               {"gate_entropy_bits", p.gate_entropy_bits},
                               {"mean_gate", p.mean_gate},
                               {"kl", p.kl},
                               {"val_ppl", p.val_ppl},
                               {"gflops_per_token", p.gflops_per_token},
                               {"dense_gflops_per_token", p.dense_gflops_per_token},
                               {"flops_reduction_pct", p.flops_reduction_pct},
                               {"run_dir", p.run_dir},
                               {"checkpoint", p.checkpoint}});
    }
    return j.dump(2);
}

}  // namespace ef::train
