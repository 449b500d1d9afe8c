// Zero-shot multiple-choice evaluation by log-likelihood (lm-evaluation-harness's method) on the
// JSONL formats of ../shared/eval (see shared/README.md):
//   arc_easy, arc_challenge, piqa  {query, choices, gold}: context = query, continuation = " " + choice
//   winogrande {context_options, continuation, gold}: context = option, continuation = " " + continuation
//   hellaswag  {activity_label, ctx_a, ctx_b (or ctx), endings, label}: lm-eval's preprocessing
//              (" [title]" -> ". ", [bracketed] removed, double spaces collapsed); context =
//              "label: ctx_a Ctx_b", continuation = " " + ending; also acc_norm = argmax of
//              log-likelihood / bytes of the ending
//   lambada    {context, continuation}: one request, context + " " + continuation; correct when greedy
//              decoding reproduces every continuation token; perplexity = exp(-mean log-likelihood of
//              the continuation per item), as lm-eval reports it
// A request's tokens are encode(context + continuation) with BOS when the vocabulary adds it; the
// continuation tokens are those past the length of encode(context) (lm-eval's split), and only they
// are scored. Long requests keep their last max_positions tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::eval {

enum class Task : uint8_t { ArcEasy, ArcChallenge, Piqa, Winogrande, Hellaswag, Lambada };

// "arc_easy", "arc_challenge", "piqa", "winogrande", "hellaswag", "lambada".
std::optional<Task> task_from_name(const std::string& name);
const char* task_name(Task t);
const char* task_file(Task t);  // file name in the eval folder, e.g. "hellaswag_val_1k.jsonl"

struct Request {
    std::string context, continuation;
};

struct McItem {
    std::vector<Request> choices;        // one for lambada
    int gold = 0;
    std::vector<double> norm_bytes;      // hellaswag: bytes of each ending (acc_norm's divisor)
};

// Parses one task's JSONL (at most `limit` items when limit > 0); errors name the file and line.
Result<std::vector<McItem>> load_task(Task t, const std::string& path, int64_t limit = 0);

struct Loglik {
    double logprob = 0;    // sum of the continuation tokens' log-probabilities
    bool greedy = false;   // every continuation token is the argmax given its prefix
    int64_t n_tokens = 0;  // continuation tokens scored
};

// What the tasks need from a model; tests substitute a fake.
class LoglikScorer {
public:
    virtual ~LoglikScorer() = default;
    virtual Result<Loglik> score(const Request& r) = 0;
};

// Runs requests through an ef::Session (reset before each request).
class SessionScorer final : public LoglikScorer {
public:
    static Result<std::unique_ptr<SessionScorer>> create(const Model& model, const Tokenizer& tok,
                                                         const SessionOptions& opts = {});
    Result<Loglik> score(const Request& r) override;

private:
    SessionScorer(Session s, Tokenizer t) : session_(std::move(s)), tok_(std::move(t)) {}
    Session session_;
    Tokenizer tok_;
    int64_t max_positions_ = 0;
};

struct TaskResult {
    std::string task;
    int64_t n = 0;
    double acc = 0, acc_stderr = 0;
    std::optional<double> acc_norm, acc_norm_stderr;  // hellaswag
    std::optional<double> ppl;                        // lambada
};

Result<TaskResult> run_task(Task t, const std::vector<McItem>& items, LoglikScorer& scorer,
                            Progress& progress = Progress::none());

std::string to_markdown(const std::vector<TaskResult>& rs);
std::string to_json(const std::vector<TaskResult>& rs);

}  // namespace ef::eval
