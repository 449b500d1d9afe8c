#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

namespace ef {

std::string_view stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::Count: return "count";
        case StopReason::EndOfGeneration: return "end-of-generation";
        case StopReason::ContextFull: return "context-full";
        case StopReason::Callback: return "callback";
        case StopReason::Cancelled: return "cancelled";
    }
    return "?";
}

std::vector<int32_t> eog_tokens(const Vocab& v) {
    std::vector<int32_t> out;
    if (v.eos_id >= 0) out.push_back(v.eos_id);
    static const char* const kNames[] = {"<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<|end|>", "<end_of_turn>",
                                         "<|eom_id|>", "</s>", "<|end_of_text|>"};
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        const bool control = i < v.token_types.size() && v.token_types[i] == 3;
        if (!control) continue;
        for (const char* n : kNames)
            if (v.tokens[i] == n && std::find(out.begin(), out.end(), int32_t(i)) == out.end()) out.push_back(int32_t(i));
    }
    return out;
}

Result<GenerateResult> generate(Session& session, const Tokenizer& tok, std::string_view prompt,
                                const GenerateOptions& opts, const TokenCallback& on_token, Progress& progress) {
    using Clock = std::chrono::steady_clock;
    if (opts.n_predict < 0) return make_error("the number of tokens to generate must be >= 0, got " + std::to_string(opts.n_predict));
    auto sampler = Sampler::create(opts.sampling);
    if (!sampler) return sampler.error();

    GenerateResult r;
    r.prompt_tokens = tok.encode(prompt, opts.add_special, false);
    if (r.prompt_tokens.empty()) return make_error("the prompt is empty (no tokens to start from)");
    const int64_t n_ctx = session.max_positions();
    if (int64_t(r.prompt_tokens.size()) > n_ctx)
        return make_error("the prompt has " + std::to_string(r.prompt_tokens.size()) + " tokens, more than the context of " +
                          std::to_string(n_ctx));
    const auto eog = opts.stop_at_eog ? eog_tokens(session.model().vocab) : std::vector<int32_t>{};

    session.reset();
    for (int32_t t : r.prompt_tokens) sampler->accept(t);
    auto t0 = Clock::now();
    auto logits = session.prefill(r.prompt_tokens);
    if (!logits) return logits.error();
    r.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

    t0 = Clock::now();
    std::vector<float> cur = std::move(logits.value());
    r.stop = StopReason::Count;
    for (int i = 0; i < opts.n_predict; ++i) {
        if (progress.cancelled()) {
            r.stop = StopReason::Cancelled;
            break;
        }
        const int32_t next = sampler->sample(cur);
        if (std::find(eog.begin(), eog.end(), next) != eog.end()) {
            r.stop = StopReason::EndOfGeneration;
            break;
        }
        sampler->accept(next);
        r.tokens.push_back(next);
        const std::string piece = tok.token_to_piece(next, false);
        r.text += piece;
        progress.report(double(i + 1) / opts.n_predict, "generating");
        if (on_token && !on_token(next, piece)) {
            r.stop = StopReason::Callback;
            break;
        }
        if (i + 1 == opts.n_predict) break;
        if (session.position() >= n_ctx) {
            r.stop = StopReason::ContextFull;
            break;
        }
        auto l = session.eval(next);
        if (!l) return l.error();
        cur = std::move(l.value());
    }
    r.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return r;
}

}  // namespace ef
