// Scalar reference operators of the forward pass (llm.c / llama2.c style): plain loops over
// std::span, one token at a time, no threads and no SIMD, so each op reads like its formula.
// The exception is matvec, where decode spends its time: its reference path stays selectable
// next to SIMD kernels (runtime/kernels) and row splitting across a ThreadPool.
// Shapes are given outermost-first like core/tensor.h: a weight (out, in) has rows of length `in`.
//
// The numerics follow ggml's CPU backend where the choice matters for bit-level agreement with
// llama.cpp: RMSNorm sums squares in double and adds eps to the mean; softplus passes inputs above
// 20 through; and a matrix-vector product first rounds the activation vector through the
// weight type's "vec_dot" type (Q8_0 for Q8_0/Q4_0/Q5_0 weights, Q8_1 for Q4_1/Q5_1, Q8_K for
// k-quants, F16/BF16 for those), because that is what ggml multiplies quantized weights with.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "core/tensor.h"

namespace ef::rt {

// ---- elementwise -------------------------------------------------------------------------------

float silu(float x);      // x * sigmoid(x)
float sigmoid(float x);   // 1 / (1 + exp(-x))
float softplus(float x);  // log(1 + exp(x)); x itself above 20 (as ggml, to avoid overflow)

// x: (n) <- softmax(x) in place (max-subtracted).
void softmax(std::span<float> x);

// out: (n) = silu(gate) * up  (SwiGLU's elementwise part; gate and up: (n)).
void swiglu(std::span<float> out, std::span<const float> gate, std::span<const float> up);

// ---- normalization -----------------------------------------------------------------------------

// out: (n) = x / sqrt(mean(x^2) + eps) * w;  x, w: (n). out may alias x.
void rmsnorm(std::span<float> out, std::span<const float> x, std::span<const float> w, float eps);
// Grouped RMSNorm (Mamba-2's ssm_norm): x, w, out: (groups, n / groups), each group normalized alone.
void rmsnorm_groups(std::span<float> out, std::span<const float> x, std::span<const float> w, int64_t groups, float eps);

// ---- matrix-vector product ---------------------------------------------------------------------

// How the activation vector meets a quantized weight.
enum class ActRounding : uint8_t {
    Exact,  // plain float activations against dequantized weights
    Ggml,   // round activations through the weight type's vec_dot type first (matches llama.cpp CPU)
};

// The activation vector x: (n) as ggml's CPU backend would see it when multiplying a weight of
// type `weight_type`: quantized to the vec_dot type and back. Plain F32 weights leave x as is.
// n must be a multiple of that type's block size (it is, when it is a weight row length).
std::vector<float> round_activations(DType weight_type, std::span<const float> x);

class ThreadPool;  // runtime/thread_pool.h

// Which code computes a matrix-vector product.
enum class Kernels : uint8_t {
    Fast,       // runtime/kernels: ggml-style dot products on the stored weights, the best SIMD
                // kernel for this CPU (F32, F16, BF16, Q8_0, Q4_0, Q2_K..Q6_K with Ggml rounding)
    Scalar,     // the same dot products, plain scalar code (what every SIMD kernel must equal)
    Reference,  // dequantize each row and sum in double: the readable reference
};

struct MatvecOptions {
    ActRounding rounding = ActRounding::Ggml;
    Kernels kernels = Kernels::Fast;
    // Rows are split across the pool's threads when the matrix is big enough to pay for it;
    // every row is computed by one thread with the same code, so y does not depend on it.
    ThreadPool* pool = nullptr;
};

// y: (rows) = W: (rows, cols) @ x: (cols). W of any dtype with a to_float conversion.
// Reference: each row is dequantized into a scratch row and dotted in double, so big matrices
// never exist as floats. Fast/Scalar: the activations are rounded once into the weight type's
// partner type (as round_activations) and each stored row is dotted with them directly; weight
// types without kernels, and ActRounding::Exact on non-F32 weights, use the reference.
// `row0`/`nrows` select a slice of W's rows (y has nrows entries); nrows < 0 means all rows.
Status matvec(std::span<float> y, const Tensor& w, std::span<const float> x, const MatvecOptions& options,
              int64_t row0 = 0, int64_t nrows = -1);
// The same with {rounding, Kernels::Fast, no pool}.
Status matvec(std::span<float> y, const Tensor& w, std::span<const float> x, ActRounding rounding,
              int64_t row0 = 0, int64_t nrows = -1);

// One row of W as floats: (cols). Used for embedding lookups.
Status tensor_row(std::span<float> out, const Tensor& w, int64_t row);

// ---- attention ---------------------------------------------------------------------------------

// Rotary embedding, llama.cpp's "normal" mode used by llama GGUFs: within each head of `head_dim`
// values the first `rope_dim` are rotated as interleaved pairs (2i, 2i+1) by angle
// pos * theta^(-2i / rope_dim); the rest are left alone. x: (n_heads, head_dim) in place.
void rope(std::span<float> x, int64_t n_heads, int64_t head_dim, int64_t rope_dim, int64_t pos, float theta);

// Causal grouped-query attention of one new query position over a KV cache.
// q: (n_heads, head_dim); k_cache, v_cache: (n_pos, n_kv_heads, head_dim) holding positions
// 0..n_pos-1 (the new one included); out: (n_heads, head_dim). Query head h reads KV head
// h / (n_heads / n_kv_heads). scores = q.k * scale, softmax over positions, out = sum p * v.
void attention(std::span<float> out, std::span<const float> q, std::span<const float> k_cache,
               std::span<const float> v_cache, int64_t n_pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
               float scale);

// ---- state-space pieces ------------------------------------------------------------------------

// Causal depthwise conv1d, one step. state: (channels, k - 1) holding the previous k - 1 inputs of
// each channel, oldest first; x: (channels) the new input; w: (channels, k); bias: (channels) or
// empty. out[c] = bias[c] + sum_j w[c, j] * window[c, j] with window = [state[c, :], x[c]];
// the state then shifts left by one and takes x.
void conv1d_step(std::span<float> out, std::span<float> state, std::span<const float> x, std::span<const float> w,
                 std::span<const float> bias, int64_t channels, int64_t k);

// Mamba-1 selective scan (S6), one step, per channel c and state n:
//   dt' = softplus(dt[c]); h[c, n] = h[c, n] * exp(dt' * A[c, n]) + dt' * x[c] * B[n];
//   y[c] = sum_n h[c, n] * C[n] + D[c] * x[c].
// h: (channels, d_state); x, dt, D, y: (channels); A: (channels, d_state); B, C: (d_state).
// A is already negative (GGUF stores -exp(A_log)). dt already includes its bias.
void selective_scan_step(std::span<float> y, std::span<float> h, std::span<const float> x, std::span<const float> dt,
                         std::span<const float> A, std::span<const float> B, std::span<const float> C,
                         std::span<const float> D, int64_t channels, int64_t d_state);

// Mamba-2 SSD in its recurrent form, one step. Heads h of head_dim P share a scalar decay;
// groups of heads share B and C (head h uses group h / (n_heads / n_groups)):
//   dt' = softplus(dt[h]); a = exp(dt' * A[h]);
//   S[h, p, n] = S[h, p, n] * a + dt' * x[h, p] * B[g, n];   y[h, p] = sum_n S[h, p, n] * C[g, n] + D[h] * x[h, p].
// S: (n_heads, P, d_state); x, y: (n_heads, P); dt, A, D: (n_heads); B, C: (n_groups, d_state).
void ssd_step(std::span<float> y, std::span<float> S, std::span<const float> x, std::span<const float> dt,
              std::span<const float> A, std::span<const float> B, std::span<const float> C, std::span<const float> D,
              int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state);

}  // namespace ef::rt
