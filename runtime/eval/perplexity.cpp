#include "runtime/eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/storage.h"

namespace ef::eval {
namespace {

constexpr char kMagic[8] = {'E', 'F', 'K', 'L', 'B', 'A', 'S', 'E'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxDim = 1u << 24;  // sanity bound for every header count

// The log-probability both the writer and the comparer compute, so a model compared with its own
// base gives bit-identical values (KL exactly 0).
inline float log_prob(float logit, double lse) { return float(double(logit) - lse); }

int scored_per_chunk(int n_ctx) { return n_ctx - 1 - n_ctx / 2; }

// Evaluates every chunk from an empty state and calls fn(chunk, k, logits, target) for the k-th
// scored position of the chunk (k = 0 .. n_ctx-2-first). Batched: the unscored first half is a
// prefill (no logits), the scored half one eval_batch with every position's logits.
template <class Fn>
Status run_chunks(const Model& model, const ChunkPlan& plan, SessionOptions so, Progress& progress,
                  const std::string& stage, Fn&& fn) {
    so.max_positions = std::max<int64_t>(so.max_positions, plan.n_ctx);
    auto session = Session::create(model, so);
    if (!session) return session.error();
    const int first = plan.n_ctx / 2;
    const size_t V = size_t(model.config.vocab_size);
    std::vector<int32_t> window(size_t(plan.n_ctx - 1));
    for (int c = 0; c < plan.n_chunks; ++c) {
        if (progress.cancelled()) return make_error("cancelled");
        session->reset();
        const size_t start = size_t(c) * size_t(plan.n_ctx);
        // Positions 0 .. n_ctx-2 (the last token is only a target), the first one BOS.
        std::copy_n(plan.tokens.begin() + ptrdiff_t(start), window.size(), window.begin());
        if (plan.bos >= 0) window[0] = plan.bos;
        const std::span<const int32_t> w(window);
        if (auto r = session->prefill(w.first(size_t(first))); !r) return r.error();
        if (progress.cancelled()) return make_error("cancelled");
        auto logits = session->eval_batch(w.subspan(size_t(first)), /*all_logits=*/true);
        if (!logits) return logits.error();
        for (int j = first; j + 1 < plan.n_ctx; ++j) {
            const std::span<const float> row(logits->data() + size_t(j - first) * V, V);
            EF_TRY_STATUS(fn(c, j - first, row, plan.tokens[start + size_t(j) + 1]));
        }
        progress.report(double(c + 1) / plan.n_chunks, stage + " chunk " + std::to_string(c + 1) + "/" +
                                                           std::to_string(plan.n_chunks));
    }
    return Status::success();
}

void finish(PerplexityResult& r, const NllStats& all) {
    r.count = all.count;
    r.mean_nll = all.mean();
    r.ppl = std::exp(r.mean_nll);
    r.ppl_error = r.ppl * all.mean_error();
}

Status check_n_ctx(int n_ctx) {
    if (n_ctx < 4 || uint32_t(n_ctx) > kMaxDim) return make_error("context size " + std::to_string(n_ctx) + " is out of range (4 .. 2^24)");
    return Status::success();
}

}  // namespace

double log_sum_exp(std::span<const float> logits) {
    if (logits.empty()) return -INFINITY;
    const float mx = *std::max_element(logits.begin(), logits.end());
    double s = 0;
    for (float v : logits) s += std::exp(double(v) - double(mx));
    return double(mx) + std::log(s);
}

double NllStats::mean_error() const {
    if (count < 2) return 0;
    const double m = mean();
    const double var = sum2 / double(count) - m * m;
    return var > 0 ? std::sqrt(var / double(count - 1)) : 0;
}

double percentile(const std::vector<double>& v, double fraction) {
    if (v.empty()) return 0;
    if (fraction <= 0) return v.front();
    if (fraction >= 1) return v.back();
    double p = fraction * double(v.size() - 1);
    const size_t ip = size_t(p);
    p -= double(ip);
    return (1 - p) * v[ip] + p * v[std::min(ip + 1, v.size() - 1)];
}

Result<ChunkPlan> plan_chunks(const Tokenizer& tok, std::string_view text, int n_ctx, int max_chunks) {
    EF_TRY_STATUS(check_n_ctx(n_ctx));
    ChunkPlan p;
    p.n_ctx = n_ctx;
    p.tokens = tok.encode(text, /*add_special=*/true);
    // The vocabulary adds BOS when encoding with add_special gives one token more.
    const bool adds_bos = tok.bos_id() >= 0 && !p.tokens.empty() && p.tokens[0] == tok.bos_id() &&
                          tok.encode("a", true).size() > tok.encode("a", false).size();
    p.bos = adds_bos ? tok.bos_id() : -1;
    if (p.tokens.size() < size_t(2) * size_t(n_ctx))
        return make_error("the text tokenizes to " + std::to_string(p.tokens.size()) + " tokens; perplexity with a context of " +
                          std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx));
    const int64_t all = int64_t(p.tokens.size() / size_t(n_ctx));
    p.n_chunks = int(max_chunks > 0 ? std::min<int64_t>(max_chunks, all) : all);
    return p;
}

Result<PerplexityResult> perplexity(const Model& model, const Tokenizer& tok, std::string_view text,
                                    const PerplexityOptions& opts, Progress& progress) {
    auto plan = plan_chunks(tok, text, opts.n_ctx, opts.max_chunks);
    if (!plan) return plan.error();
    PerplexityResult r;
    r.n_ctx = plan->n_ctx;
    r.n_chunks = plan->n_chunks;
    r.n_text_tokens = int64_t(plan->tokens.size());
    NllStats all, chunk;
    EF_TRY_STATUS(run_chunks(model, *plan, opts.session, progress, "perplexity",
                             [&](int, int k, std::span<const float> logits, int32_t target) -> Status {
                                 if (target < 0 || size_t(target) >= logits.size())
                                     return make_error("token id " + std::to_string(target) + " is outside the model's vocabulary");
                                 const double nll = log_sum_exp(logits) - double(logits[size_t(target)]);
                                 all.add(nll);
                                 chunk.add(nll);
                                 if (k + 1 == scored_per_chunk(plan->n_ctx)) {
                                     r.chunk_ppl.push_back(std::exp(chunk.mean()));
                                     r.cumulative_ppl.push_back(std::exp(all.mean()));
                                     if (opts.on_chunk)
                                         opts.on_chunk(int(r.chunk_ppl.size()) - 1, plan->n_chunks,
                                                       r.cumulative_ppl.back(), r.chunk_ppl.back());
                                     chunk = {};
                                 }
                                 return Status::success();
                             }));
    finish(r, all);
    return r;
}

Result<PerplexityResult> write_kl_base(const Model& model, const Tokenizer& tok, std::string_view text,
                                       const std::string& path, const KlBaseOptions& opts, Progress& progress) {
    auto plan = plan_chunks(tok, text, opts.ppl.n_ctx, opts.ppl.max_chunks);
    if (!plan) return plan.error();
    const int64_t n_vocab = model.config.vocab_size;
    if (n_vocab <= 0 || uint64_t(n_vocab) > kMaxDim) return make_error("model vocabulary size " + std::to_string(n_vocab) + " is out of range");
    if (opts.top_k < 0 || opts.top_k > n_vocab)
        return make_error("top-k " + std::to_string(opts.top_k) + " must be 0 (full) or at most the vocabulary size " + std::to_string(n_vocab));
    auto w = AtomicFileWriter::create(path);
    if (!w) return w.error();
    AtomicFileWriter& out = **w;
    const uint32_t header[5] = {kVersion, uint32_t(n_vocab), uint32_t(plan->n_ctx), uint32_t(plan->n_chunks), uint32_t(opts.top_k)};
    EF_TRY_STATUS(out.write(kMagic, sizeof kMagic));
    EF_TRY_STATUS(out.write(header, sizeof header));
    EF_TRY_STATUS(out.write(&plan->bos, sizeof(int32_t)));
    EF_TRY_STATUS(out.write(plan->tokens.data(), size_t(plan->n_chunks) * size_t(plan->n_ctx) * sizeof(int32_t)));

    PerplexityResult r;
    r.n_ctx = plan->n_ctx;
    r.n_chunks = plan->n_chunks;
    r.n_text_tokens = int64_t(plan->tokens.size());
    NllStats all, chunk;
    std::vector<float> lp(static_cast<size_t>(n_vocab));
    std::vector<int32_t> order(static_cast<size_t>(n_vocab));
    std::vector<std::byte> rec;
    EF_TRY_STATUS(run_chunks(model, *plan, opts.ppl.session, progress, "KL base",
                             [&](int, int k, std::span<const float> logits, int32_t target) -> Status {
                                 if (int64_t(logits.size()) != n_vocab || target < 0 || target >= n_vocab)
                                     return make_error("logits/vocabulary size mismatch");
                                 const double lse = log_sum_exp(logits);
                                 for (size_t i = 0; i < lp.size(); ++i) lp[i] = log_prob(logits[i], lse);
                                 const float nll = -lp[size_t(target)];
                                 all.add(lse - double(logits[size_t(target)]));
                                 chunk.add(lse - double(logits[size_t(target)]));
                                 EF_TRY_STATUS(out.write(&nll, sizeof nll));
                                 if (opts.top_k == 0) {
                                     EF_TRY_STATUS(out.write(lp.data(), lp.size() * sizeof(float)));
                                 } else {
                                     for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
                                     // Most likely first; the lower id first on ties (argmax's rule).
                                     std::partial_sort(order.begin(), order.begin() + opts.top_k, order.end(), [&](int32_t a, int32_t b) {
                                         return lp[size_t(a)] > lp[size_t(b)] || (lp[size_t(a)] == lp[size_t(b)] && a < b);
                                     });
                                     rec.resize(size_t(opts.top_k) * 8);
                                     for (int i = 0; i < opts.top_k; ++i) {
                                         std::memcpy(rec.data() + size_t(i) * 8, &order[size_t(i)], 4);
                                         std::memcpy(rec.data() + size_t(i) * 8 + 4, &lp[size_t(order[size_t(i)])], 4);
                                     }
                                     EF_TRY_STATUS(out.write(rec));
                                 }
                                 if (k + 1 == scored_per_chunk(plan->n_ctx)) {
                                     r.chunk_ppl.push_back(std::exp(chunk.mean()));
                                     r.cumulative_ppl.push_back(std::exp(all.mean()));
                                     if (opts.ppl.on_chunk)
                                         opts.ppl.on_chunk(int(r.chunk_ppl.size()) - 1, plan->n_chunks,
                                                       r.cumulative_ppl.back(), r.chunk_ppl.back());
                                     chunk = {};
                                 }
                                 return Status::success();
                             }));
    EF_TRY_STATUS(out.commit());
    finish(r, all);
    return r;
}

Result<KlResult> compare_kl_base(const Model& model, const std::string& path, const SessionOptions& session,
                                 Progress& progress) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) return make_error(path + ": cannot open the KL base file");
    const auto bad = [&](const std::string& why) { return make_error(path + ": not a valid KL base file: " + why); };
    std::fseek(f.get(), 0, SEEK_END);
    const long fsize = std::ftell(f.get());
    std::fseek(f.get(), 0, SEEK_SET);
    char magic[8];
    uint32_t h[5];
    int32_t bos = -1;
    if (fsize < long(sizeof magic + sizeof h + 4) || std::fread(magic, 1, 8, f.get()) != 8 ||
        std::fread(h, 4, 5, f.get()) != 5 || std::fread(&bos, 4, 1, f.get()) != 1)
        return bad("too short for the header");
    if (std::memcmp(magic, kMagic, 8) != 0) return bad("wrong magic (expected EFKLBASE)");
    if (h[0] != kVersion) return bad("unsupported version " + std::to_string(h[0]));
    const uint32_t n_vocab = h[1], n_ctx = h[2], n_chunks = h[3], top_k = h[4];
    if (n_vocab == 0 || n_vocab > kMaxDim || n_ctx < 4 || n_ctx > kMaxDim || n_chunks == 0 || n_chunks > kMaxDim || top_k > n_vocab)
        return bad("header counts out of range (vocab " + std::to_string(n_vocab) + ", n_ctx " + std::to_string(n_ctx) +
                   ", chunks " + std::to_string(n_chunks) + ", top_k " + std::to_string(top_k) + ")");
    if (bos < -1 || bos >= int64_t(n_vocab)) return bad("BOS id " + std::to_string(bos) + " out of range");
    const uint64_t n_tok = uint64_t(n_chunks) * n_ctx;
    const uint64_t rec = 4 + (top_k ? uint64_t(top_k) * 8 : uint64_t(n_vocab) * 4);
    const uint64_t n_pos = uint64_t(n_chunks) * uint64_t(scored_per_chunk(int(n_ctx)));
    const uint64_t expected = 8 + sizeof h + 4 + n_tok * 4 + n_pos * rec;
    if (uint64_t(fsize) != expected)
        return bad("size " + std::to_string(fsize) + " bytes, the header implies " + std::to_string(expected));
    if (model.config.vocab_size != int64_t(n_vocab))
        return make_error(path + ": the base model had " + std::to_string(n_vocab) + " tokens, this model has " +
                          std::to_string(model.config.vocab_size));
    ChunkPlan plan;
    plan.n_ctx = int(n_ctx);
    plan.n_chunks = int(n_chunks);
    plan.bos = bos;
    plan.tokens.resize(size_t(n_tok));
    if (std::fread(plan.tokens.data(), 4, size_t(n_tok), f.get()) != n_tok) return bad("truncated token windows");
    for (int32_t t : plan.tokens)
        if (t < 0 || uint32_t(t) >= n_vocab) return bad("token id " + std::to_string(t) + " out of range");

    KlResult r;
    r.n_ctx = plan.n_ctx;
    r.n_chunks = plan.n_chunks;
    r.top_k = int(top_k);
    NllStats nll, nll_base, kl;
    std::vector<double> kls;
    kls.reserve(size_t(n_pos));
    int64_t same_top = 0;
    std::vector<float> base(top_k ? size_t(top_k) * 2 : size_t(n_vocab));
    std::vector<float> lp(n_vocab);
    EF_TRY_STATUS(run_chunks(model, plan, session, progress, "KL divergence",
                             [&](int, int, std::span<const float> logits, int32_t target) -> Status {
                                 float base_nll = 0;
                                 if (std::fread(&base_nll, 4, 1, f.get()) != 1 || std::fread(base.data(), 4, base.size(), f.get()) != base.size())
                                     return bad("truncated log-probabilities");
                                 const double lse = log_sum_exp(logits);
                                 for (size_t i = 0; i < lp.size(); ++i) lp[i] = log_prob(logits[i], lse);
                                 nll.add(lse - double(logits[size_t(target)]));
                                 nll_base.add(base_nll);
                                 const int32_t top = argmax(lp);  // over the rounded log-probs, as the base was
                                 double d = 0;
                                 int32_t base_top = 0;
                                 if (top_k == 0) {
                                     base_top = argmax(base);
                                     for (size_t i = 0; i < lp.size(); ++i) {
                                         const double pb = std::exp(double(base[i]));
                                         if (pb > 0) d += pb * (double(base[i]) - double(lp[i]));
                                     }
                                 } else {
                                     double pb_top = 0, pm_top = 0;
                                     for (uint32_t i = 0; i < top_k; ++i) {
                                         int32_t id;
                                         std::memcpy(&id, &base[2 * i], 4);
                                         if (id < 0 || uint32_t(id) >= n_vocab) return bad("token id out of range in the top-k list");
                                         if (i == 0) base_top = id;
                                         const double lb = base[2 * i + 1], lm = lp[size_t(id)];
                                         const double pb = std::exp(lb);
                                         pb_top += pb;
                                         pm_top += std::exp(lm);
                                         d += pb * (lb - lm);
                                     }
                                     // The rest of the vocabulary as one bucket on both sides.
                                     const double rb = 1 - pb_top, rm = std::max(1 - pm_top, 1e-30);
                                     if (rb > 1e-12) d += rb * std::log(rb / rm);
                                 }
                                 kl.add(d);
                                 kls.push_back(d);
                                 same_top += top == base_top;
                                 return Status::success();
                             }));
    r.count = kl.count;
    r.mean_kl = kl.mean();
    r.kl_error = kl.count > 10 ? kl.mean_error() : 0;  // llama.cpp reports no error below 11 samples
    std::sort(kls.begin(), kls.end());
    r.median_kl = percentile(kls, 0.5);
    r.p99_kl = percentile(kls, 0.99);
    r.max_kl = kls.empty() ? 0 : kls.back();
    const double p = r.count ? double(same_top) / double(r.count) : 0;
    r.top1_agreement = p;
    r.top1_error = r.count > 1 ? std::sqrt(p * (1 - p) / double(r.count - 1)) : 0;
    r.ppl = std::exp(nll.mean());
    r.ppl_error = r.ppl * nll.mean_error();
    r.base_ppl = std::exp(nll_base.mean());
    r.base_ppl_error = r.base_ppl * nll_base.mean_error();
    return r;
}

namespace {
std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}
}  // namespace

std::string to_markdown(const PerplexityResult& r) {
    std::string s = "| metric | value |\n|---|---|\n";
    s += "| PPL | " + fmt("%.4f", r.ppl) + " ± " + fmt("%.5f", r.ppl_error) + " |\n";
    s += "| mean NLL | " + fmt("%.6f", r.mean_nll) + " |\n";
    s += "| n_ctx | " + std::to_string(r.n_ctx) + " |\n";
    s += "| chunks | " + std::to_string(r.n_chunks) + " |\n";
    s += "| scored tokens | " + std::to_string(r.count) + " |\n";
    s += "| text tokens | " + std::to_string(r.n_text_tokens) + " |\n\n";
    s += "| chunk | PPL (chunk) | PPL (cumulative) |\n|---|---|---|\n";
    for (size_t i = 0; i < r.chunk_ppl.size(); ++i)
        s += "| " + std::to_string(i + 1) + " | " + fmt("%.4f", r.chunk_ppl[i]) + " | " + fmt("%.4f", r.cumulative_ppl[i]) + " |\n";
    return s;
}

std::string to_json(const PerplexityResult& r) {
    nlohmann::json j = {{"metric", "perplexity"}, {"ppl", r.ppl}, {"ppl_error", r.ppl_error}, {"mean_nll", r.mean_nll},
                        {"n_ctx", r.n_ctx}, {"chunks", r.n_chunks}, {"scored_tokens", r.count},
                        {"text_tokens", r.n_text_tokens}, {"chunk_ppl", r.chunk_ppl}, {"cumulative_ppl", r.cumulative_ppl}};
    return j.dump(2);
}

std::string to_markdown(const KlResult& r) {
    std::string s = "| metric | value |\n|---|---|\n";
    s += "| mean KL | " + fmt("%.6f", r.mean_kl) + " ± " + fmt("%.6f", r.kl_error) + " |\n";
    s += "| median KL | " + fmt("%.6f", r.median_kl) + " |\n";
    s += "| 99% KL | " + fmt("%.6f", r.p99_kl) + " |\n";
    s += "| max KL | " + fmt("%.6f", r.max_kl) + " |\n";
    s += "| same top-1 | " + fmt("%.3f", 100 * r.top1_agreement) + " ± " + fmt("%.3f", 100 * r.top1_error) + " % |\n";
    s += "| PPL (model) | " + fmt("%.4f", r.ppl) + " ± " + fmt("%.5f", r.ppl_error) + " |\n";
    s += "| PPL (base) | " + fmt("%.4f", r.base_ppl) + " ± " + fmt("%.5f", r.base_ppl_error) + " |\n";
    s += "| positions | " + std::to_string(r.count) + " (" + std::to_string(r.n_chunks) + " chunks of " +
         std::to_string(r.n_ctx) + (r.top_k ? ", top-" + std::to_string(r.top_k) : std::string(", full distribution")) + ") |\n";
    return s;
}

std::string to_json(const KlResult& r) {
    nlohmann::json j = {{"metric", "kl_divergence"}, {"mean_kl", r.mean_kl}, {"kl_error", r.kl_error},
                        {"median_kl", r.median_kl}, {"p99_kl", r.p99_kl}, {"max_kl", r.max_kl},
                        {"top1_agreement", r.top1_agreement}, {"top1_error", r.top1_error},
                        {"ppl", r.ppl}, {"ppl_error", r.ppl_error}, {"base_ppl", r.base_ppl},
                        {"base_ppl_error", r.base_ppl_error}, {"positions", r.count}, {"n_ctx", r.n_ctx},
                        {"chunks", r.n_chunks}, {"top_k", r.top_k}};
    return j.dump(2);
}

}  // namespace ef::eval
