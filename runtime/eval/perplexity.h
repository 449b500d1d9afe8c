// Perplexity and KL divergence over a text, the way llama-perplexity measures them.
//
// The text is tokenized once (BOS first when the vocabulary adds it) and cut into consecutive
// windows of n_ctx tokens ("chunks"). Each chunk is evaluated from an empty state with its first
// token replaced by BOS (when the vocabulary adds BOS); only the second half is scored: the logits
// at positions first = n_ctx/2 .. n_ctx-2 predict tokens first+1 .. n_ctx-1, so every scored token
// has at least n_ctx/2 tokens of context. PPL = exp(mean NLL); its error is llama.cpp's:
// PPL * sqrt((E[nll^2] - E[nll]^2) / (count - 1)).
//
// KL divergence (like --kl-divergence-base): a base model's log-probabilities at the scored
// positions are saved once to a file (format below); another model (a quantized copy, a fused
// edit) is then run on the very same token windows and compared: KL(base || model) per position,
// its mean with error, median, 99th percentile, maximum, and how often both pick the same top-1.
//
// KL base file (little-endian, version 1):
//   char[8]  "EFKLBASE"
//   u32 version (1), u32 n_vocab, u32 n_ctx, u32 n_chunks, u32 top_k (0: full distribution),
//   i32 bos (the token that replaced each chunk's first token, -1: none)
//   i32 tokens[n_chunks * n_ctx]                     the windows as tokenized (before BOS)
//   per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them), in order:
//     f32 nll of the target token under the base model
//     top_k == 0: f32 log_prob[n_vocab]              the full log-softmax
//     top_k  > 0: {i32 id, f32 log_prob}[top_k]      the k most likely tokens, most likely first
// With top_k > 0 the tokens outside the top k are pooled into one "rest" bucket on both sides,
// which gives a lower bound of the full KL (log-sum inequality) that is tight when k covers most
// of the mass. The file is written atomically.
#pragma once
#include <functional>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::eval {

struct PerplexityOptions {
    int n_ctx = 512;
    int max_chunks = 0;  // 0: every full chunk of the text
    SessionOptions session;
    // Called after each chunk with its index, the chunk count, the running PPL over chunks
    // 0..chunk and that chunk's own PPL (the workbench charts them live).
    std::function<void(int chunk, int n_chunks, double cumulative_ppl, double chunk_ppl)> on_chunk;
};

struct PerplexityResult {
    int n_ctx = 0;
    int n_chunks = 0;
    int64_t n_text_tokens = 0;     // tokens of the whole text
    int64_t count = 0;             // scored tokens
    double mean_nll = 0;
    double ppl = 0;
    double ppl_error = 0;          // llama.cpp's +/- estimate
    std::vector<double> chunk_ppl;       // each chunk alone
    std::vector<double> cumulative_ppl;  // over chunks 1..i (what llama-perplexity prints as [i])
};

// log(sum(exp(logits))) computed stably in double.
double log_sum_exp(std::span<const float> logits);

// Running NLL statistics in llama.cpp's way.
struct NllStats {
    double sum = 0, sum2 = 0;
    int64_t count = 0;
    void add(double nll) { sum += nll; sum2 += nll * nll; ++count; }
    double mean() const { return count ? sum / double(count) : 0; }
    // Standard error of the mean NLL (0 when it cannot be estimated).
    double mean_error() const;
};

// The text's tokens and whether each chunk's first token becomes BOS.
struct ChunkPlan {
    std::vector<int32_t> tokens;
    int n_ctx = 0;
    int n_chunks = 0;
    int32_t bos = -1;  // -1: the vocabulary does not add BOS
};
Result<ChunkPlan> plan_chunks(const Tokenizer& tok, std::string_view text, int n_ctx, int max_chunks);

Result<PerplexityResult> perplexity(const Model& model, const Tokenizer& tok, std::string_view text,
                                    const PerplexityOptions& opts, Progress& progress = Progress::none());

struct KlBaseOptions {
    PerplexityOptions ppl;
    int top_k = 0;  // 0: store the full log-softmax
};
// Runs the base model over the text and saves its log-probabilities to `path` (atomically).
// Returns the base model's perplexity over the same positions.
Result<PerplexityResult> write_kl_base(const Model& model, const Tokenizer& tok, std::string_view text,
                                       const std::string& path, const KlBaseOptions& opts,
                                       Progress& progress = Progress::none());

struct KlResult {
    int n_ctx = 0, n_chunks = 0, top_k = 0;
    int64_t count = 0;
    double mean_kl = 0, kl_error = 0, median_kl = 0, p99_kl = 0, max_kl = 0;
    double top1_agreement = 0, top1_error = 0;  // fractions in [0, 1]
    double ppl = 0, ppl_error = 0;              // the compared model
    double base_ppl = 0, base_ppl_error = 0;    // the base model, from the file
};
Result<KlResult> compare_kl_base(const Model& model, const std::string& path, const SessionOptions& session = {},
                                 Progress& progress = Progress::none());

// Linear interpolation between sorted values (llama.cpp's percentile).
double percentile(const std::vector<double>& sorted, double fraction);

std::string to_markdown(const PerplexityResult& r);
std::string to_json(const PerplexityResult& r);
std::string to_markdown(const KlResult& r);
std::string to_json(const KlResult& r);

}  // namespace ef::eval
