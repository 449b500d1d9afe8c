// Sensitivity measurement for bit allocation (issue 4), EXL2-style: for each unit (a layer's or a
// single tensor's quantizable weights) and each candidate code width, quantize only that unit, run
// the model over calibration windows and measure the KL divergence of its next-token distributions
// from the full-precision model's (mean over all positions of all windows, natural log). The
// results are AllocUnits for quant/bit_alloc.h, whose predicted loss of a whole allocation is the
// sum of the units' KLs (the usual additivity assumption of EXL2's optimiser).
//
// During measurement a quantized unit is put into the model dequantized (W_deq + S as F32), so the
// KL reflects the weight error only, not the kernels' activation rounding, which is the same for
// every width. apply_allocation() builds the real EF model (block tensors + CSR companions).
//
// Proxy (SensitivityOptions::proxy): one full-precision pass over the windows records each target
// weight's per-column activation energy E_c = sum_t x_tc^2 (runtime/observer.h); the loss of a
// tensor is then its activation-weighted relative squared error
// sum_rc E_c (W - Q)_rc^2 / sum_rc E_c W_rc^2, the relative output error ||(W - Q) X||^2 / ||W X||^2
// with the cross-column terms of X^T X dropped (exact for uncorrelated columns); a unit sums its
// tensors'. Without windows E = 1 (white activations). Costs one model pass plus one quantization
// per (unit, width), no model run per option; the numbers are not nats and only rank options.
//
// Which tensors are units: every 2-D "*.weight" except token_embd / output (embeddings and head), the
// SSM's conv1d, A, D and dt tensors, norms (Mamba-2's grouped ssm_norm is 2-D), and tensors no
// allowed block size divides; those stay at the
// precision they are stored in and count as fixed bytes. Block size: the requested B when it
// divides the row length, else the largest of {256, 128, 64, 32} that does. Library ef_alloc (above
// ef_runtime and ef_quant); Qt-free.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "quant/bit_alloc.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef {

struct SensitivityOptions {
    std::vector<int> bits = {2, 3, 4, 5, 6, 8};  // candidate code widths
    int block = 128;                 // preferred B (see above)
    bool affine = false;
    double outlier_fraction = 0.005;  // p
    int search_steps = 9;
    bool per_tensor = false;          // units: one per layer (default) or one per tensor
    bool proxy = false;               // relative weight error instead of KL (no model runs)
    int threads = 0;                  // parallel measurements (0: hardware threads)
    SessionOptions session;           // for the model runs (threads inside are forced to 1)
};

// One quantizable tensor and the layout it gets.
struct QuantTarget {
    std::string name;
    int64_t rows = 0, cols = 0;
    int block = 0;
};

struct UnitPlan {
    std::vector<AllocUnit> units;         // options empty until measured; weights and tensors set
    std::vector<std::vector<QuantTarget>> targets;  // per unit
    std::vector<std::string> kept;        // tensors that stay at stored precision
    uint64_t kept_bytes = 0;
};
// Units of m under the rules above.
Result<UnitPlan> plan_units(const Model& m, const SensitivityOptions& o);

// Calibration windows: the text tokenized (BOS first when the vocabulary adds it), cut into
// consecutive windows of n_ctx tokens, each window's first token replaced by BOS. At most
// max_windows (0: all); skip_windows drops that many from the start (for held-out evaluation).
Result<std::vector<std::vector<int32_t>>> calibration_windows(const Tokenizer& tok, std::string_view text, int n_ctx,
                                                              int max_windows, int skip_windows = 0);

// The base model's log-probabilities over fixed windows; kl(model) compares another model on them.
class KlReference {
public:
    static Result<KlReference> create(const Model& base, std::vector<std::vector<int32_t>> windows,
                                      const SessionOptions& so = {});
    // Mean KL(base || model) in nats over every position of every window.
    Result<double> kl(const Model& model, const SessionOptions& so = {}) const;
    int64_t positions() const;

private:
    std::vector<std::vector<int32_t>> windows_;
    std::vector<std::vector<float>> logp_;  // per window: (T, vocab) log-softmax
    int64_t vocab_ = 0;
};

struct SensitivityResult {
    UnitPlan plan;          // units with options filled: bits, exact bytes, loss
    bool proxy = false;
    int64_t positions = 0;  // scored positions per KL measurement
    double seconds = 0;
};
// windows may be empty with proxy. Progress over (unit, width) measurements; cancel -> error.
Result<SensitivityResult> measure_sensitivity(const Model& m, const std::vector<std::vector<int32_t>>& windows,
                                              const SensitivityOptions& o, Progress& progress = Progress::none());

// The model with every unit's tensors EF-quantized at its chosen width (choice: option index per unit)
// using o's layout, outliers and scale search.
Result<Model> apply_allocation(const Model& m, const SensitivityResult& s, const std::vector<int>& choice,
                               const SensitivityOptions& o, Progress& progress = Progress::none());

// Bytes of the deployment besides the weights: KV cache for n_ctx positions + SSM state (runtime/profile.h)
// on the path the session would run.
Result<uint64_t> runtime_state_bytes(const Model& m, int64_t n_ctx, Routing routing = Routing::Hard);

}  // namespace ef
