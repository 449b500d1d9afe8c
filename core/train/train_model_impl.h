// Private to TrainModel (train_model.cpp, train_attention.cpp, train_ssm.cpp): the layer plan as
// indices into the parameter list, the activations one forward saves for its backward, and the
// per-branch forward/backward passes. Not part of ef_train's interface.
//
// Batches: B sequences of T positions are N = B * T rows, sequence b at rows [b*T, (b+1)*T).
// Row-wise ops (matmul, norms, elementwise) run on all N rows at once; the sequence ops
// (attention, RoPE, conv1d, scan, SSD) run per sequence, each from an empty state.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/train/train_model.h"

namespace ef::train {

// A parameter as a branch sees it: its values, and its gradient (empty when frozen: not computed).
struct W {
    std::span<const float> v;
    std::span<float> g;
};

struct AttnWeights {
    W q, k, v, o;
};
struct Mamba1Weights {
    W in, conv_w, conv_b, x, dt_w, dt_b, A, D, out;
};
struct Mamba2Weights {
    W in, conv_w, conv_b, dt_b, A, D, norm, out;  // norm.v empty: no grouped norm
};
struct FfnWeights {
    W norm, gate, up, down;
};

struct AttnActs {
    std::vector<float> q, k, v;  // (N, H*D) after RoPE, (N, KVH*D) after RoPE, (N, KVH*D)
    std::vector<float> probs;    // (B, H, T, T)
    std::vector<float> att;      // (N, H*D) attention output before attn_output
};
struct Mamba1Acts {
    std::vector<float> x_in, z;          // (N, di) each: the halves of in_proj
    std::vector<float> xc, xs;           // (N, di) conv1d output, silu of it
    std::vector<float> dtr, Bm, Cm;      // (N, R), (N, Ns), (N, Ns): the split of x_proj
    std::vector<float> dt;               // (N, di) dt_proj + bias (softplus inside the scan)
    std::vector<float> hs;               // (B, T + 1, di, Ns) scan states
    std::vector<float> y, sz, yg;        // (N, di): scan output, silu(z), y * silu(z)
};
struct Mamba2Acts {
    std::vector<float> z, xbc_in, dt;    // (N, di), (N, conv_dim), (N, H) raw + bias: the split of in_proj
    std::vector<float> xbc_c, x, Bm, Cm; // (N, conv_dim) conv1d output; silu of it split: (N, di), (N, G*Ns) x2
    std::vector<float> Ss;               // (B, T + 1, H, P, Ns) SSD states
    std::vector<float> y, sz, yg;        // (N, di): SSD output, silu(z), y * silu(z)
    std::vector<float> rstd, yn;         // (N, G), (N, di): the grouped norm
};
struct FfnActs {
    std::vector<float> xn, rstd;         // (N, C), (N)
    std::vector<float> g, u, h;          // (N, F): gate, up, silu(gate) * up
};
struct LayerActs {
    std::vector<float> x_in, xn, rstd;   // (N, C) residual in, (N, C) normed, (N)
    AttnActs attn;
    Mamba1Acts m1;
    Mamba2Acts m2;
    std::vector<float> a_out, s_out;     // (N, C) branch outputs
    std::vector<float> x_mid;            // (N, C) residual after the mixer
    FfnActs ffn;
};

// Parameter indices of one layer (-1: absent).
struct LayerParams {
    LayerDesc desc;
    bool has_attn = false, has_ssm = false;
    MixerKind ssm_kind = MixerKind::Mamba2;
    int attn_norm = -1, q = -1, k = -1, v = -1, o = -1;
    int ssm_in = -1, conv_w = -1, conv_b = -1, ssm_x = -1, dt_w = -1, dt_b = -1, A = -1, D = -1, ssm_norm = -1, ssm_out = -1;
    int router = -1;
    int ffn_norm = -1, gate = -1, up = -1, down = -1;
};

struct Shape2 {
    int64_t B = 0, T = 0;
    int64_t N() const { return B * T; }
};

struct TrainModel::Impl {
    std::string architecture;
    ModelConfig config;
    std::vector<LayerDesc> layers;
    Metadata metadata;
    Vocab vocab;
    std::string source_path, source_format;

    std::vector<Param> params;
    int embd = -1, out_norm = -1, output = -1;  // output -1: tied to token_embd
    std::vector<LayerParams> lp;

    // The last forward's activations (kept for its backward).
    Shape2 shape;
    std::vector<int32_t> inputs;           // (N)
    std::vector<LayerActs> acts;
    std::vector<float> x_final, xf, rstd_f, logits;  // (N, C), (N, C), (N), (N, V)

    W w(int idx);  // value + grad (grad empty when frozen or idx < 0)
    AttnWeights attn_weights(const LayerParams& L);
    FfnWeights ffn_weights(const LayerParams& L);
    Mamba1Weights mamba1_weights(const LayerParams& L);
    Mamba2Weights mamba2_weights(const LayerParams& L);
    Status forward(std::span<const int32_t> inputs, Shape2 s, rt::ThreadPool* pool);
    // dlogits: (N, V), consumed. Accumulates parameter grads. router_dgate[l] adds to dL/dg_l.
    void backward(std::vector<float>& dlogits, std::span<const float> router_dgate, rt::ThreadPool* pool);
};

// ---- branches (train_attention.cpp, train_ssm.cpp) ----------------------------------------------------
// Forward: out (N, C) from xn (N, C), filling acts. Backward: dxn (N, C) += d(xn) from dout (N, C);
// parameter grads accumulate into the W's g spans.
void attention_branch_forward(const ModelConfig& c, const AttnWeights& w, std::span<const float> xn, Shape2 s,
                              AttnActs& a, std::vector<float>& out, rt::ThreadPool* pool);
void attention_branch_backward(const ModelConfig& c, const AttnWeights& w, std::span<const float> xn, Shape2 s,
                               const AttnActs& a, std::span<const float> dout, std::span<float> dxn, rt::ThreadPool* pool);
// FFN with its norm: x_out (N, C) = x_mid + residual_scale * down(swiglu(gate(n), up(n))), n = rmsnorm(x_mid).
// Backward: dx holds d(x_out) and becomes d(x_mid).
void ffn_forward(const ModelConfig& c, const FfnWeights& w, std::span<const float> x_mid, Shape2 s, FfnActs& a,
                 std::span<float> x_out, rt::ThreadPool* pool);
void ffn_backward(const ModelConfig& c, const FfnWeights& w, std::span<const float> x_mid, Shape2 s, const FfnActs& a,
                  std::span<float> dx, rt::ThreadPool* pool);
void mamba1_branch_forward(const ModelConfig& c, const Mamba1Weights& w, std::span<const float> xn, Shape2 s,
                           Mamba1Acts& a, std::vector<float>& out, rt::ThreadPool* pool);
void mamba1_branch_backward(const ModelConfig& c, const Mamba1Weights& w, std::span<const float> xn, Shape2 s,
                            const Mamba1Acts& a, std::span<const float> dout, std::span<float> dxn, rt::ThreadPool* pool);
void mamba2_branch_forward(const ModelConfig& c, const Mamba2Weights& w, std::span<const float> xn, Shape2 s,
                           Mamba2Acts& a, std::vector<float>& out, rt::ThreadPool* pool);
void mamba2_branch_backward(const ModelConfig& c, const Mamba2Weights& w, std::span<const float> xn, Shape2 s,
                            const Mamba2Acts& a, std::span<const float> dout, std::span<float> dxn, rt::ThreadPool* pool);

// ---- small helpers (train_model.cpp) -----------------------------------------------------------------
// dst: (N, n) = columns [col0, col0 + n) of src: (N, stride).
void columns_copy(std::vector<float>& dst, std::span<const float> src, int64_t N, int64_t stride, int64_t col0, int64_t n);
// Columns [col0, col0 + n) of dst: (N, stride) += src: (N, n).
void columns_add(std::span<float> dst, std::span<const float> src, int64_t N, int64_t stride, int64_t col0, int64_t n);
// Rows [b*T, (b+1)*T) of a (N, width) buffer.
inline std::span<float> seq(std::vector<float>& v, int64_t b, int64_t T, int64_t width) {
    return std::span<float>(v).subspan(size_t(b * T * width), size_t(T * width));
}
inline std::span<const float> seq(const std::vector<float>& v, int64_t b, int64_t T, int64_t width) {
    return std::span<const float>(v).subspan(size_t(b * T * width), size_t(T * width));
}
inline void zeros(std::vector<float>& v, size_t n) { v.assign(n, 0.0f); }

}  // namespace ef::train
