// Calibration (issue 4): runs the runtime over a text and collects, for every weight a projection
// multiplies, the statistics of its input activations x: (cols) that the quantizers use
// (quant/quantize_model.h ActivationStats): the per-column energy E[x_c^2] (llama.cpp's imatrix:
// sum over tokens of x^2 / tokens) and, on request, GPTQ's Hessian (2/N) sum x x^T
// (quant/gptq.h HessianAccumulator; C^2 doubles per distinct input while collecting).
//
// Library ef_calib (runtime/CMakeLists.txt): it needs the session (ef_runtime) and the quantizer's
// types (ef_quant), so it sits above both; ef_quant stays free of the runtime and the board runner
// (ef_runtime) free of the quantizers.
//
// How it runs: the text is tokenized (BOS first when the vocabulary adds it) and cut into
// consecutive windows of n_ctx tokens; each window runs from an empty state with its first token
// replaced by BOS (as llama-imatrix and llama-perplexity do), through Session::eval_batch with a
// ProjectionObserver (runtime/observer.h) that sums the statistics. Weights fed the very same
// activations (q/k/v, gate/up: consecutive projections of one unchanged buffer) share one input.
// By default the output head's input is not collected (it needs every position's logits); the
// default tensor selection keeps the output unquantized anyway.
//
// Default text: the last 10% of the lines of ../shared/text/wikitext-2-raw-test.txt; evaluate
// perplexity on the other 90% (split_calibration_text; `edgefusion evaluate --heldout`).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "quant/quantize_model.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef {

inline constexpr const char* kDefaultCalibrationText = "../shared/text/wikitext-2-raw-test.txt";
inline constexpr double kCalibrationFraction = 0.1;  // the last 10% of the default text's lines

struct CalibrationOptions {
    int64_t tokens = 16384;  // tokens to run (the last window may be shorter)
    int n_ctx = 0;           // window; 0: min(512, the model's context length)
    bool hessian = false;    // also GPTQ's Hessians
    bool output_head = false;  // also the output head's input (computes every position's logits)
    SessionOptions session;    // threads, kernels, routing (observer is set by calibrate)
};

struct CalibrationResult {
    ActivationStats stats;
    int64_t tokens = 0;     // tokens run
    int windows = 0;
    std::string warning;    // non-empty when the text had fewer tokens than asked for (all were used)
};

// Runs `tokens` (already tokenized, BOS handling done by the caller) in windows of n_ctx.
// Too few tokens for one window of min(n_ctx, tokens asked) is an error; fewer than asked is a
// warning. Progress over windows; cancel -> error "cancelled".
Result<CalibrationResult> calibrate_tokens(const Model& m, std::span<const int32_t> tokens, int32_t bos,
                                           const CalibrationOptions& o, Progress& progress = Progress::none());
// Tokenizes `text` with the model's tokenizer and runs calibrate_tokens. `origin` names the text in errors.
Result<CalibrationResult> calibrate(const Model& m, const Tokenizer& tok, std::string_view text, const std::string& origin,
                                    const CalibrationOptions& o, Progress& progress = Progress::none());

// The default text's parts: calib = the last `fraction` of its lines (at least one), eval = the rest.
struct TextSplit {
    std::string_view eval, calib;
};
TextSplit split_calibration_text(std::string_view text, double fraction = kCalibrationFraction);

}  // namespace ef
