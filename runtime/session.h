// A decoding session over an ef::Model: the reference forward pass, one token at a time.
//
// The layer loop is driven only by ModelConfig and Model::layers (the layer plan): each layer is
// RMSNorm -> mixer (attention, Mamba-1, Mamba-2, or a routed mix of attention and an SSM) ->
// residual, then, when the plan says so, RMSNorm -> SwiGLU FFN -> residual. Granite's multipliers
// (embedding, residual, logit, attention scale) come from the config and are neutral (1) elsewhere.
// Optional pieces (Jamba's dt/B/C norms, Mamba-2's grouped norm) are used when their tensors exist,
// as llama.cpp does. Nothing here looks at the architecture's name.
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
struct SessionTimings {
    std::vector<double> layer_s;  // (n_layers)
    double embed_s = 0, attention_s = 0, mamba1_s = 0, mamba2_s = 0, ffn_s = 0, output_s = 0;
    int64_t evals = 0;
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
};

class Session {
public:
    // Checks the model against its architecture row and collects the weights. The model must
    // outlive the session (tensors are read in place, never copied whole).
    static Result<Session> create(const Model& model, const SessionOptions& options = {});

    // Feeds one token at the next position; returns the next-token logits (vocab_size).
    Result<std::vector<float>> eval(int32_t token);
    // Feeds the tokens in order; returns the logits after the last one.
    Result<std::vector<float>> prefill(std::span<const int32_t> tokens);
    // Back to position 0 with empty caches and zero SSM state.
    void reset();

    int64_t position() const { return pos_; }
    int64_t max_positions() const { return opts_.max_positions; }  // the context size
    // The residual stream after the last layer (before output_norm) of the latest eval: (dim).
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

    const Model* model_ = nullptr;
    SessionOptions opts_;
    const Tensor* embed_ = nullptr;
    const Tensor* output_ = nullptr;
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
