#include "runtime/eval/tasks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/eval/perplexity.h"

namespace ef::eval {
namespace {

struct TaskRow {
    Task task;
    const char* name;
    const char* file;
};
constexpr TaskRow kTasks[] = {
    {Task::ArcEasy, "arc_easy", "arc_easy.jsonl"},
    {Task::ArcChallenge, "arc_challenge", "arc_challenge.jsonl"},
    {Task::Piqa, "piqa", "piqa.jsonl"},
    {Task::Winogrande, "winogrande", "winogrande.jsonl"},
    {Task::Hellaswag, "hellaswag", "hellaswag_val_1k.jsonl"},
    {Task::Lambada, "lambada", "lambada_openai.jsonl"},
};

std::string strip(const std::string& s) {
    const char* ws = " \t\n\r\f\v";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
    std::string out;
    size_t i = 0;
    for (size_t p; (p = s.find(from, i)) != std::string::npos; i = p + from.size()) out += s.substr(i, p - i) + to;
    return out + s.substr(i);
}

// lm-eval's HellaSwag preprocessing.
std::string hellaswag_preprocess(const std::string& text) {
    std::string s = replace_all(strip(text), " [title]", ". ");
    std::string out;  // drop every "[...]" (shortest match), like re.sub("\\[.*?\\]", "")
    for (size_t i = 0; i < s.size();) {
        const size_t close = s[i] == '[' ? s.find(']', i + 1) : std::string::npos;
        if (close != std::string::npos) {
            i = close + 1;
        } else {
            out += s[i++];
        }
    }
    return replace_all(out, "  ", " ");
}

// Python's str.capitalize() for ASCII letters.
std::string capitalize(const std::string& s) {
    std::string out = s;
    for (size_t i = 0; i < out.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(out[i]);
        if (c >= 0x80) continue;
        out[i] = char(i == 0 ? std::toupper(c) : std::tolower(c));
    }
    return out;
}

Result<int> get_index(const nlohmann::json& j, const char* key) {
    if (!j.contains(key)) return make_error(std::string("missing \"") + key + "\"");
    const auto& v = j[key];
    if (v.is_number_integer()) return int(v.get<int64_t>());
    if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 9) return std::stoi(s);
    }
    return make_error(std::string("\"") + key + "\" is not an index");
}

Result<std::string> get_string(const nlohmann::json& j, const char* key) {
    if (!j.contains(key) || !j[key].is_string()) return make_error(std::string("missing string \"") + key + "\"");
    return j[key].get<std::string>();
}

Result<std::vector<std::string>> get_strings(const nlohmann::json& j, const char* key) {
    if (!j.contains(key) || !j[key].is_array() || j[key].empty())
        return make_error(std::string("missing non-empty array \"") + key + "\"");
    std::vector<std::string> out;
    for (const auto& v : j[key]) {
        if (!v.is_string()) return make_error(std::string("\"") + key + "\" holds a non-string");
        out.push_back(v.get<std::string>());
    }
    return out;
}

Result<McItem> parse_item(Task t, const nlohmann::json& j) {
    McItem it;
    switch (t) {
    case Task::ArcEasy:
    case Task::ArcChallenge:
    case Task::Piqa: {
        auto q = get_string(j, "query");
        if (!q) return q.error();
        auto ch = get_strings(j, "choices");
        if (!ch) return ch.error();
        auto g = get_index(j, "gold");
        if (!g) return g.error();
        for (const auto& c : *ch) it.choices.push_back({*q, " " + c});
        it.gold = *g;
        break;
    }
    case Task::Winogrande: {
        auto opts = get_strings(j, "context_options");
        if (!opts) return opts.error();
        auto cont = get_string(j, "continuation");
        if (!cont) return cont.error();
        auto g = get_index(j, "gold");
        if (!g) return g.error();
        for (const auto& o : *opts) it.choices.push_back({o, " " + *cont});
        it.gold = *g;
        break;
    }
    case Task::Hellaswag: {
        std::string ctx;
        if (j.contains("ctx_a") && j["ctx_a"].is_string() && j.contains("ctx_b") && j["ctx_b"].is_string()) {
            ctx = j["ctx_a"].get<std::string>() + " " + capitalize(j["ctx_b"].get<std::string>());
        } else {
            auto c = get_string(j, "ctx");
            if (!c) return c.error();
            ctx = *c;
        }
        std::string label = j.contains("activity_label") && j["activity_label"].is_string() ? j["activity_label"].get<std::string>() : "";
        const std::string query = hellaswag_preprocess(label.empty() ? ctx : label + ": " + ctx);
        auto endings = get_strings(j, "endings");
        if (!endings) return endings.error();
        auto g = get_index(j, "label");
        if (!g) return g.error();
        for (const auto& e : *endings) {
            const std::string choice = hellaswag_preprocess(e);
            it.choices.push_back({query, " " + choice});
            it.norm_bytes.push_back(double(std::max<size_t>(choice.size(), 1)));
        }
        it.gold = *g;
        break;
    }
    case Task::Lambada: {
        auto c = get_string(j, "context");
        if (!c) return c.error();
        auto cont = get_string(j, "continuation");
        if (!cont) return cont.error();
        it.choices.push_back({*c, " " + strip(*cont)});
        it.gold = 0;
        break;
    }
    }
    if (it.gold < 0 || size_t(it.gold) >= it.choices.size())
        return make_error("gold index " + std::to_string(it.gold) + " is outside the " + std::to_string(it.choices.size()) + " choices");
    return it;
}

int first_max(const std::vector<double>& v) {
    int best = 0;
    for (size_t i = 1; i < v.size(); ++i)
        if (v[i] > v[size_t(best)]) best = int(i);
    return best;
}

double stderr_of(double p, int64_t n) { return n > 1 ? std::sqrt(p * (1 - p) / double(n - 1)) : 0; }

}  // namespace

std::optional<Task> task_from_name(const std::string& name) {
    for (const auto& r : kTasks)
        if (name == r.name) return r.task;
    if (name == "lambada_openai") return Task::Lambada;
    if (name == "hellaswag_val_1k") return Task::Hellaswag;
    return std::nullopt;
}

const char* task_name(Task t) {
    for (const auto& r : kTasks)
        if (r.task == t) return r.name;
    return "?";
}

const char* task_file(Task t) {
    for (const auto& r : kTasks)
        if (r.task == t) return r.file;
    return "?";
}

Result<std::vector<McItem>> load_task(Task t, const std::string& path, int64_t limit) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open the " + std::string(task_name(t)) + " file");
    std::vector<McItem> items;
    std::string line;
    for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
        if (limit > 0 && int64_t(items.size()) >= limit) break;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (strip(line).empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) return make_error(path + ":" + std::to_string(lineno) + ": not a JSON object");
        auto item = parse_item(t, j);
        if (!item) return make_error(path + ":" + std::to_string(lineno) + ": " + item.message());
        items.push_back(std::move(*item));
    }
    if (items.empty()) return make_error(path + ": no items");
    return items;
}

Result<std::unique_ptr<SessionScorer>> SessionScorer::create(const Model& model, const Tokenizer& tok,
                                                             const SessionOptions& opts) {
    auto s = Session::create(model, opts);
    if (!s) return s.error();
    auto sc = std::unique_ptr<SessionScorer>(new SessionScorer(std::move(*s), tok));
    sc->max_positions_ = opts.max_positions > 0 ? opts.max_positions : model.config.context_length;
    return sc;
}

Result<Loglik> SessionScorer::score(const Request& r) {
    std::vector<int32_t> whole = tok_.encode(r.context + r.continuation, /*add_special=*/true);
    size_t n_ctx = tok_.encode(r.context, true).size();
    if (whole.size() < 2) return make_error("request too short to score: \"" + r.context + r.continuation + "\"");
    n_ctx = std::clamp<size_t>(n_ctx, 1, whole.size() - 1);  // at least one token on each side
    if (max_positions_ > 0 && int64_t(whole.size()) > max_positions_) {  // keep the end (lm-eval's left truncation)
        const size_t drop = whole.size() - size_t(max_positions_);
        if (drop >= n_ctx) return make_error("continuation longer than the model's context");
        whole.erase(whole.begin(), whole.begin() + ptrdiff_t(drop));
        n_ctx -= drop;
    }
    session_.reset();
    Loglik ll;
    ll.greedy = true;
    // Batched: the context up to its last token is a prefill (no logits needed); the positions
    // from there on predict the continuation, so one eval_batch returns all their logits.
    const std::span<const int32_t> w(whole);
    if (n_ctx > 1)
        if (auto r = session_.prefill(w.first(n_ctx - 1)); !r) return r.error();
    auto logits = session_.eval_batch(w.subspan(n_ctx - 1, whole.size() - n_ctx), /*all_logits=*/true);
    if (!logits) return logits.error();
    const size_t V = size_t(session_.model().config.vocab_size);
    for (size_t i = n_ctx - 1; i + 1 < whole.size(); ++i) {
        const std::span<const float> row(logits->data() + (i - (n_ctx - 1)) * V, V);
        const int32_t next = whole[i + 1];
        if (next < 0 || size_t(next) >= V) return make_error("token id outside the model's vocabulary");
        ll.logprob += double(row[size_t(next)]) - log_sum_exp(row);
        ll.greedy = ll.greedy && argmax(row) == next;
        ++ll.n_tokens;
    }
    return ll;
}

Result<TaskResult> run_task(Task t, const std::vector<McItem>& items, LoglikScorer& scorer, Progress& progress) {
    TaskResult r;
    r.task = task_name(t);
    int64_t correct = 0, correct_norm = 0;
    double sum_ll = 0;
    for (size_t k = 0; k < items.size(); ++k) {
        if (progress.cancelled()) return make_error("cancelled");
        const McItem& it = items[k];
        std::vector<double> ll, norm;
        bool greedy = false;
        for (size_t c = 0; c < it.choices.size(); ++c) {
            auto s = scorer.score(it.choices[c]);
            if (!s) return make_error(std::string(task_name(t)) + " item " + std::to_string(k + 1) + ": " + s.message());
            ll.push_back(s->logprob);
            if (c < it.norm_bytes.size()) norm.push_back(s->logprob / it.norm_bytes[c]);
            greedy = s->greedy;
        }
        if (t == Task::Lambada) {
            correct += greedy;
            sum_ll += ll[0];
        } else {
            correct += first_max(ll) == it.gold;
            if (!norm.empty()) correct_norm += first_max(norm) == it.gold;
        }
        progress.report(double(k + 1) / double(items.size()), r.task + " " + std::to_string(k + 1) + "/" + std::to_string(items.size()));
    }
    r.n = int64_t(items.size());
    if (r.n == 0) return make_error("no items to evaluate");
    r.acc = double(correct) / double(r.n);
    r.acc_stderr = stderr_of(r.acc, r.n);
    if (t == Task::Hellaswag) {
        r.acc_norm = double(correct_norm) / double(r.n);
        r.acc_norm_stderr = stderr_of(*r.acc_norm, r.n);
    }
    if (t == Task::Lambada) r.ppl = std::exp(-sum_ll / double(r.n));
    return r;
}

std::string to_markdown(const std::vector<TaskResult>& rs) {
    std::string s = "| task | n | acc | acc_norm | ppl |\n|---|---|---|---|---|\n";
    char buf[256];
    for (const auto& r : rs) {
        std::string norm = "-", ppl = "-";
        if (r.acc_norm) {
            std::snprintf(buf, sizeof buf, "%.4f ± %.4f", *r.acc_norm, *r.acc_norm_stderr);
            norm = buf;
        }
        if (r.ppl) {
            std::snprintf(buf, sizeof buf, "%.4f", *r.ppl);
            ppl = buf;
        }
        std::snprintf(buf, sizeof buf, "| %s | %lld | %.4f ± %.4f | %s | %s |\n", r.task.c_str(), (long long)r.n, r.acc,
                      r.acc_stderr, norm.c_str(), ppl.c_str());
        s += buf;
    }
    return s;
}

std::string to_json(const std::vector<TaskResult>& rs) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rs) {
        nlohmann::json j = {{"task", r.task}, {"n", r.n}, {"acc", r.acc}, {"acc_stderr", r.acc_stderr}};
        if (r.acc_norm) {
            j["acc_norm"] = *r.acc_norm;
            j["acc_norm_stderr"] = *r.acc_norm_stderr;
        }
        if (r.ppl) j["ppl"] = *r.ppl;
        arr.push_back(j);
    }
    return nlohmann::json({{"metric", "zero_shot"}, {"results", arr}}).dump(2);
}

}  // namespace ef::eval
