// Text generation: tokenize the prompt, prefill it, then sample token after token, streaming each
// piece through a callback, until n tokens, an end-of-generation token, the end of the context,
// the callback saying stop, or cancellation.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef {

struct GenerateOptions {
    int n_predict = 128;       // tokens to generate (>= 0)
    SamplerParams sampling;
    bool add_special = true;   // BOS when the vocabulary asks for it
    bool stop_at_eog = true;   // stop at end-of-generation tokens (they are not emitted)
};

enum class StopReason : uint8_t { Count, EndOfGeneration, ContextFull, Callback, Cancelled };
std::string_view stop_reason_name(StopReason r);

struct GenerateResult {
    std::vector<int32_t> prompt_tokens;
    std::vector<int32_t> tokens;  // generated, end-of-generation token excluded
    std::string text;             // the generated pieces concatenated
    StopReason stop = StopReason::Count;
    double prefill_seconds = 0.0, decode_seconds = 0.0;
};

// Called with each new token and its text; return false to stop.
using TokenCallback = std::function<bool(int32_t token, const std::string& piece)>;

// End-of-generation ids of a vocabulary: EOS plus control tokens llama.cpp also treats as the end of
// a turn (<|eot_id|>, <|im_end|>, <|endoftext|>, <end_of_turn>, ...).
std::vector<int32_t> eog_tokens(const Vocab& v);

// Resets the session first. Errors: an empty prompt (after tokenizing), a prompt longer than the
// context, invalid sampling values, a failing forward pass. Progress reports the fraction of n_predict.
Result<GenerateResult> generate(Session& session, const Tokenizer& tok, std::string_view prompt,
                                const GenerateOptions& opts, const TokenCallback& on_token = {},
                                Progress& progress = Progress::none());

}  // namespace ef
