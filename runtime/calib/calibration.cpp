#include "runtime/calib/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "quant/gptq.h"
#include "runtime/observer.h"

namespace ef {
namespace {

uint64_t fnv1a(std::span<const float> x) {
    uint64_t h = 1469598103934665603ull;
    const auto* p = reinterpret_cast<const unsigned char*>(x.data());
    for (size_t i = 0; i < x.size_bytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

// Sums each distinct input's statistics as the session runs. A weight seen for the first time right
// after another weight's projection of the very same buffer (pointer, size and contents) joins that
// weight's input; later calls of the same shape add nothing twice. finish() checks that every weight
// of an input saw as many rows as the input summed (else the sharing guess was wrong).
class Collector final : public rt::ProjectionObserver {
public:
    Collector(bool hessian, std::set<std::string> ignore) : hessian_(hessian), ignore_(std::move(ignore)) {}

    void on_projection(const std::string& name, std::span<const float> x, int64_t T) override {
        if (!error_.empty() || T <= 0 || ignore_.count(name)) return;
        const int64_t cols = int64_t(x.size()) / T;
        const uint64_t hash = fnv1a(x);
        const bool same = x.data() == prev_ptr_ && x.size() == prev_n_ && hash == prev_hash_ && prev_group_ < groups_.size();
        size_t g;
        bool add = true;
        auto it = seen_.find(name);
        if (it == seen_.end()) {
            if (same && groups_[prev_group_].cols == cols) {
                g = prev_group_;
                add = false;
                groups_[g].weights.push_back(name);
            } else {
                g = groups_.size();
                groups_.push_back(Group{});
                Group& G = groups_.back();
                G.cols = cols;
                G.sum2.assign(size_t(cols), 0.0);
                if (hessian_) G.h = std::make_unique<HessianAccumulator>(cols);
                G.weights.push_back(name);
            }
            seen_[name] = Seen{g, T};
        } else {
            g = it->second.group;
            it->second.rows += T;
            if (groups_[g].cols != cols) {
                error_ = "the input of " + name + " changed width from " + std::to_string(groups_[g].cols) + " to " + std::to_string(cols);
                return;
            }
            add = !(same && prev_group_ == g);
        }
        if (add) accumulate(groups_[g], x, T, name);
        prev_ptr_ = x.data();
        prev_n_ = x.size();
        prev_hash_ = hash;
        prev_group_ = g;
    }

    Result<ActivationStats> finish(int64_t tokens) {
        if (!error_.empty()) return make_error(error_);
        ActivationStats s;
        s.tokens = tokens;
        for (auto& G : groups_) {
            for (const auto& w : G.weights)
                if (seen_[w].rows != G.rows)
                    return make_error("calibration: " + w + " and " + G.weights.front() + " looked like one input but saw different rows");
            ActivationStats::Input in;
            in.cols = G.cols;
            in.rows = G.rows;
            in.weights = G.weights;
            in.energy.resize(size_t(G.cols));
            for (int64_t c = 0; c < G.cols; ++c) {
                const double e = G.rows ? G.sum2[size_t(c)] / double(G.rows) : 0.0;
                if (!std::isfinite(e)) return make_error("calibration: non-finite activations at the input of " + G.weights.front());
                in.energy[size_t(c)] = float(e);
            }
            if (G.h) {
                auto h = G.h->finish();
                if (!h) return make_error("calibration: " + G.weights.front() + ": " + h.message());
                in.hessian = std::move(*h);
                G.h.reset();
            }
            for (const auto& w : G.weights) s.by_weight[w] = s.inputs.size();
            s.inputs.push_back(std::move(in));
        }
        return s;
    }

private:
    struct Group {
        int64_t cols = 0, rows = 0;
        std::vector<double> sum2;  // (cols) sum of x^2
        std::unique_ptr<HessianAccumulator> h;
        std::vector<std::string> weights;
    };
    struct Seen {
        size_t group = 0;
        int64_t rows = 0;
    };

    void accumulate(Group& G, std::span<const float> x, int64_t T, const std::string& name) {
        for (int64_t t = 0; t < T; ++t) {
            const float* row = x.data() + t * G.cols;
            for (int64_t c = 0; c < G.cols; ++c) G.sum2[size_t(c)] += double(row[c]) * double(row[c]);
        }
        G.rows += T;
        if (G.h)
            if (Status st = G.h->add(x, T); !st) error_ = "calibration: the input of " + name + ": " + st.error().message;
    }

    bool hessian_;
    std::set<std::string> ignore_;
    std::vector<Group> groups_;
    std::map<std::string, Seen> seen_;
    const float* prev_ptr_ = nullptr;
    size_t prev_n_ = 0;
    uint64_t prev_hash_ = 0;
    size_t prev_group_ = size_t(-1);
    std::string error_;
};

}  // namespace

Result<CalibrationResult> calibrate_tokens(const Model& m, std::span<const int32_t> tokens, int32_t bos,
                                           const CalibrationOptions& o, Progress& progress) {
    const int64_t ctx = m.config.context_length;
    const int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min<int64_t>(512, ctx);
    if (n_ctx < 1 || n_ctx > ctx)
        return make_error("calibration window " + std::to_string(n_ctx) + " is outside 1.." + std::to_string(ctx) +
                          " (the model's context length)");
    if (o.tokens < 1) return make_error("calibration needs at least one token (got " + std::to_string(o.tokens) + ")");
    const int64_t have = int64_t(tokens.size()), need = std::min<int64_t>(o.tokens, n_ctx);
    if (have < need)
        return make_error("calibration text too short: " + std::to_string(have) + " tokens, need at least " + std::to_string(need) +
                          " (one window of " + std::to_string(n_ctx) + " tokens, or --calib-tokens)");
    CalibrationResult r;
    const int64_t use = std::min<int64_t>(o.tokens, have);
    if (use < o.tokens)
        r.warning = "the calibration text has " + std::to_string(have) + " tokens, fewer than the " + std::to_string(o.tokens) +
                    " asked for; all of them were used";

    std::set<std::string> ignore;
    if (!o.output_head) ignore = {"output.weight", "token_embd.weight"};
    Collector col(o.hessian, ignore);
    SessionOptions so = o.session;
    so.observer = &col;
    so.max_positions = n_ctx;
    auto s = Session::create(m, so);
    if (!s) return s.error();
    const int n_windows = int((use + n_ctx - 1) / n_ctx);
    std::vector<int32_t> window;
    for (int w = 0; w < n_windows; ++w) {
        if (progress.cancelled()) return make_error("cancelled");
        progress.report(double(w) / n_windows, "calibration window " + std::to_string(w + 1) + "/" + std::to_string(n_windows));
        const int64_t b = int64_t(w) * n_ctx, n = std::min<int64_t>(n_ctx, use - b);
        window.assign(tokens.begin() + b, tokens.begin() + b + n);
        if (bos >= 0) window[0] = bos;
        s->reset();
        auto out = s->eval_batch(window, o.output_head);
        if (!out) return make_error("calibration window " + std::to_string(w + 1) + ": " + out.message());
    }
    auto stats = col.finish(use);
    if (!stats) return stats.error();
    r.stats = std::move(*stats);
    r.tokens = use;
    r.windows = n_windows;
    progress.report(1.0, "calibration done");
    return r;
}

Result<CalibrationResult> calibrate(const Model& m, const Tokenizer& tok, std::string_view text, const std::string& origin,
                                    const CalibrationOptions& o, Progress& progress) {
    const std::vector<int32_t> tokens = tok.encode(text, /*add_special=*/true);
    // The vocabulary adds BOS when encoding with add_special gives one token more (as perplexity decides).
    const bool adds_bos = tok.bos_id() >= 0 && !tokens.empty() && tokens[0] == tok.bos_id() &&
                          tok.encode("a", true).size() > tok.encode("a", false).size();
    auto r = calibrate_tokens(m, tokens, adds_bos ? tok.bos_id() : -1, o, progress);
    if (!r) return make_error(origin + ": " + r.message());
    return r;
}

TextSplit split_calibration_text(std::string_view text, double fraction) {
    std::vector<size_t> starts;  // line starts
    for (size_t i = 0; i < text.size(); ++i)
        if (i == 0 || text[i - 1] == '\n') starts.push_back(i);
    if (starts.empty()) return {text, text};
    const size_t n = starts.size();
    const size_t k = std::clamp<size_t>(size_t(std::llround(double(n) * fraction)), 1, n);
    const size_t cut = starts[n - k];
    return {text.substr(0, cut), text.substr(cut)};
}

}  // namespace ef
