// A decoding session over an ef::Model: the reference forward pass, one token at a time.
//
// The layer loop is driven only by ModelConfig and Model::layers (the layer plan): each layer is
// RMSNorm -> mixer (attention, Mamba-1, Mamba-2, or a routed mix of attention and an SSM) ->
// residual, then, when the plan says so, RMSNorm -> SwiGLU FFN -> residual. Granite's multipliers
// (embedding, residual, logit, attention scale) come from the config and are neutral (1) elsewhere.
// Optional pieces (Jamba's dt/B/C norms, Mamba-2's grouped norm) are used when their tensors exist,
// as llama.cpp does. Nothing here looks at the architecture's name.
//
// Prompts (prefill, eval_batch) run in batches of tokens through each layer (session_batch.cpp);
// decoding (eval) runs one token at a time (session.cpp). Both leave the same state behind.
//
// Per-layer state: a KV cache (positions, kv_heads, head_dim) for attention, and the conv window
// (channels, d_conv - 1) plus the SSM state (Mamba-1: (d_inner, d_state); Mamba-2: (heads,
// head_dim, d_state)) for SSM layers.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "runtime/ops.h"
#include "runtime/outliers.h"
#include "runtime/thread_pool.h"

namespace ef {

// How routed (EdgeFusion) layers use their gate g = sigmoid(alpha / router_temperature).
enum class Routing : uint8_t {
    Hard,  // g >= 0.5: attention only, else the SSM branch only (what the board runs)
    Soft,  // x + g * attention + (1 - g) * ssm: both branches, for analysis
};

// Optional time accounting for profiling (Session::set_timings): seconds summed over evals.
// Op kinds: the mixers by kind, the FFN (with its norm), the embedding lookup, the output head
// (final norm + projection); per-layer time also covers the layer's norm and residual adds.
// Batched calls (prefill, eval_batch) add each batch's time once and count all its tokens, so
// seconds / evals is the time per token either way; prefill's output time covers the one
// position it projects.
struct SessionTimings {
    std::vector<double> layer_s;  // (n_layers)
    double embed_s = 0, attention_s = 0, mamba1_s = 0, mamba2_s = 0, ffn_s = 0, output_s = 0;
    int64_t evals = 0;    // tokens fed (one per eval, T per batch)
    int64_t batches = 0;  // batched forward passes (each of up to ubatch tokens)
    void clear() { *this = SessionTimings{}; }
};

struct SessionOptions {
    Routing routing = Routing::Hard;
    // Ggml: activations meet quantized weights the way llama.cpp's CPU backend does (see ops.h).
    rt::ActRounding rounding = rt::ActRounding::Ggml;
    int64_t max_positions = 0;  // 0: the model's context_length
    // Threads for the matrix-vector products, the caller's included (1: no worker threads).
    int threads = 1;
    // Which matvec code runs (ops.h): SIMD kernels, their scalar twins, or the double reference.
    rt::Kernels kernels = rt::Kernels::Fast;
    // Batched calls (prefill, eval_batch) run at most this many tokens through the layers at once
    // (activations of ubatch x ffn_hidden floats); longer inputs go in several batches.
    int64_t ubatch = 512;
    // Mamba-2's chunked SSD in batched calls: chunk length in tokens (ops_seq.h).
    int64_t ssd_chunk = 64;
    // Shown the input of every weight projection (calibration); must outlive the session.
    rt::ProjectionObserver* observer = nullptr;
};

class Session {
public:
    // Checks the model against its architecture row and collects the weights. The model must
    // outlive the session (tensors are read in place, never copied whole).
    static Result<Session> create(const Model& model, const SessionOptions& options = {});

    // Feeds one token at the next position; returns the next-token logits (vocab_size).
    Result<std::vector<float>> eval(int32_t token);
    // Feeds the tokens in order; returns the logits after the last one (vocab_size). Runs them in
    // batches of up to ubatch tokens layer by layer (matrix products, batched attention, Mamba-2's
    // chunked SSD) and projects only the last position onto the vocabulary.
    Result<std::vector<float>> prefill(std::span<const int32_t> tokens);
    // The same batched pass; all_logits: the logits after every token, (T, vocab_size) row-major,
    // else those after the last one, (vocab_size). Equals T evals up to float rounding. Token ids
    // and the room left in the context are checked before anything runs, so an error leaves the
    // session as it was.
    Result<std::vector<float>> eval_batch(std::span<const int32_t> tokens, bool all_logits);
    // Back to position 0 with empty caches and zero SSM state.
    void reset();

    int64_t position() const { return pos_; }
    int64_t max_positions() const { return opts_.max_positions; }  // the context size
    // The residual stream after the last layer (before output_norm) at the latest position fed
    // (by eval, or the last token of prefill / eval_batch): (dim).
    const std::vector<float>& hidden() const { return hidden_; }
    // Attention share g per layer: the gate for routed layers, 1 for attention, 0 for SSM layers.
    const std::vector<float>& gates() const { return gates_; }
    const Model& model() const { return *model_; }
    // Accumulate timings into *t from now on (nullptr: stop). *t must outlive its use.
    void set_timings(SessionTimings* t) { timings_ = t; }

    struct Layer;  // weights and state of one layer (session.cpp)
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    ~Session();

private:
    Session() = default;
    Status run_layer(size_t il, std::vector<float>& x);
    // session_batch.cpp: one layer over x: (T, dim) at positions pos_ .. pos_ + T - 1.
    Status run_layer_batch(size_t il, std::vector<float>& x, int64_t T);
    // Embeds and runs every layer over one batch, then appends the logits of its last head_rows
    // positions (0, 1 or all) to out: (head_rows, vocab_size).
    Status forward_batch(std::span<const int32_t> tokens, int64_t head_rows, std::vector<float>& out);

    const Model* model_ = nullptr;
    SessionOptions opts_;
    rt::Weight embed_, output_;  // with their EdgeFusion outliers, if any
    std::vector<float> output_norm_;
    std::vector<Layer> layers_;
    std::vector<float> gates_;
    std::vector<float> hidden_;
    int64_t pos_ = 0;
    std::unique_ptr<rt::ThreadPool> pool_;  // when threads > 1
    SessionTimings* timings_ = nullptr;
};

// Index of the largest value (the first one on ties), -1 for an empty vector.
int32_t argmax(std::span<const float> v);
// Greedy decoding: feeds `prompt`, then appends the argmax token n times (feeding each back in).
// Returns the n new tokens. The session continues from its current position.
Result<std::vector<int32_t>> greedy_generate(Session& s, std::span<const int32_t> prompt, int n);

}  // namespace ef
