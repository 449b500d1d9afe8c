// The training engine's operators (issue 5), llm.c style: plain float32 buffers, a forward that
// saves what its backward needs, and a hand-written backward. Rows are positions: x: (T, C) holds
// position t at x[t * C ..]. Weights are stored as our tensors store them: W: (OC, C) row-major,
// so out = x @ W^T.
//
// Forward meaning and conventions (RoPE pairing, softplus above 20, Mamba-1/2 discretisation,
// grouped norms, attention scale, RMSNorm's sum of squares in double) are exactly those of the
// runtime's inference ops (runtime/ops.h, runtime/ops_seq.h), so a training forward reproduces the
// runtime's logits.
//
// CONVENTION: every *_backward ACCUMULATES (+=) into each gradient output it is given; callers zero
// the grads once per step and residual branches simply add. An empty span for a gradient output
// means it is not needed and is skipped.
#pragma once
#include <cstdint>
#include <span>

namespace ef::rt {
class ThreadPool;
}

namespace ef::train {

// out: (T, C) = wte[tokens[t]]; wte: (V, C). (A token outside [0, V) gives a zero row, no gradient.)
void embedding_forward(std::span<float> out, std::span<const int32_t> tokens, std::span<const float> wte, int64_t C);
void embedding_backward(std::span<float> dwte, std::span<const float> dout, std::span<const int32_t> tokens, int64_t C);

// out, x: (T, C); w: (C); rstd: (T) saved 1/rms
void rmsnorm_forward(std::span<float> out, std::span<float> rstd, std::span<const float> x, std::span<const float> w,
                     int64_t T, int64_t C, float eps);
void rmsnorm_backward(std::span<float> dx, std::span<float> dw, std::span<const float> dout, std::span<const float> x,
                      std::span<const float> w, std::span<const float> rstd, int64_t T, int64_t C);
// grouped (Mamba-2 ssm_norm): each row's C values in G groups normalised separately (as rt::rmsnorm_groups);
// rstd: (T, G)
void rmsnorm_groups_forward(std::span<float> out, std::span<float> rstd, std::span<const float> x,
                            std::span<const float> w, int64_t T, int64_t C, int64_t G, float eps);
void rmsnorm_groups_backward(std::span<float> dx, std::span<float> dw, std::span<const float> dout,
                             std::span<const float> x, std::span<const float> w, std::span<const float> rstd, int64_t T,
                             int64_t C, int64_t G);

// out: (T, OC) = x: (T, C) @ W^T, W: (OC, C). Split over the pool (rows of out / of dW); pool may be null.
void matmul_forward(std::span<float> out, std::span<const float> x, std::span<const float> W, int64_t T, int64_t C,
                    int64_t OC, rt::ThreadPool* pool);
void matmul_backward(std::span<float> dx, std::span<float> dW, std::span<const float> dout, std::span<const float> x,
                     std::span<const float> W, int64_t T, int64_t C, int64_t OC, rt::ThreadPool* pool);

// RoPE of positions 0..T-1 in place, as rt::rope_seq with pos0 = 0; x: (T, H, D).
// Backward: the inverse rotation of dx in place.
void rope_forward(std::span<float> x, int64_t T, int64_t H, int64_t D, int64_t rope_dim, float theta);
void rope_backward(std::span<float> dx, int64_t T, int64_t H, int64_t D, int64_t rope_dim, float theta);

// Causal GQA attention from an empty cache: q, out: (T, H, D); k, v: (T, KVH, D); probs: (H, T, T) saved
// softmax rows.
void attention_forward(std::span<float> out, std::span<float> probs, std::span<const float> q,
                       std::span<const float> k, std::span<const float> v, int64_t T, int64_t H, int64_t KVH,
                       int64_t D, float scale, rt::ThreadPool* pool);
void attention_backward(std::span<float> dq, std::span<float> dk, std::span<float> dv, std::span<const float> dout,
                        std::span<const float> q, std::span<const float> k, std::span<const float> v,
                        std::span<const float> probs, int64_t T, int64_t H, int64_t KVH, int64_t D, float scale,
                        rt::ThreadPool* pool);

// Elementwise (n values): out = silu(gate) * up; silu; softplus; out = a * b.
void swiglu_forward(std::span<float> out, std::span<const float> gate, std::span<const float> up);
void swiglu_backward(std::span<float> dgate, std::span<float> dup, std::span<const float> dout,
                     std::span<const float> gate, std::span<const float> up);
void silu_forward(std::span<float> out, std::span<const float> x);
void silu_backward(std::span<float> dx, std::span<const float> dout, std::span<const float> x);
void softplus_forward(std::span<float> out, std::span<const float> x);  // as rt::softplus (x itself above 20)
void softplus_backward(std::span<float> dx, std::span<const float> dout, std::span<const float> x);
float softplus_grad(float x);  // d softplus / dx = sigmoid(x) (1 above 20)
void mul_forward(std::span<float> out, std::span<const float> a, std::span<const float> b);
void mul_backward(std::span<float> da, std::span<float> db, std::span<const float> dout, std::span<const float> a,
                  std::span<const float> b);

// Causal depthwise conv1d from a zero state: x, out: (T, C); w: (C, K); bias: (C) or empty (then dbias ignored).
void conv1d_forward(std::span<float> out, std::span<const float> x, std::span<const float> w,
                    std::span<const float> bias, int64_t T, int64_t C, int64_t K);
void conv1d_backward(std::span<float> dx, std::span<float> dw, std::span<float> dbias, std::span<const float> dout,
                     std::span<const float> x, std::span<const float> w, int64_t T, int64_t C, int64_t K);

// Mamba-1 selective scan from h = 0, same meaning as rt::selective_scan_seq (y, x, dt: (T, C); A: (C, N);
// B, Cm: (T, N); D: (C)). hs: (T + 1, C, N) saved states (hs[0] = 0).
void selective_scan_forward(std::span<float> y, std::span<float> hs, std::span<const float> x,
                            std::span<const float> dt, std::span<const float> A, std::span<const float> B,
                            std::span<const float> Cm, std::span<const float> D, int64_t T, int64_t C, int64_t N);
void selective_scan_backward(std::span<float> dx, std::span<float> ddt, std::span<float> dA, std::span<float> dB,
                             std::span<float> dCm, std::span<float> dD, std::span<const float> dy,
                             std::span<const float> hs, std::span<const float> x, std::span<const float> dt,
                             std::span<const float> A, std::span<const float> B, std::span<const float> Cm,
                             std::span<const float> D, int64_t T, int64_t C, int64_t N);
// The same split over the pool (fixed chunks of channels; results do not depend on the thread count).
void selective_scan_forward(std::span<float> y, std::span<float> hs, std::span<const float> x,
                            std::span<const float> dt, std::span<const float> A, std::span<const float> B,
                            std::span<const float> Cm, std::span<const float> D, int64_t T, int64_t C, int64_t N,
                            rt::ThreadPool* pool);
void selective_scan_backward(std::span<float> dx, std::span<float> ddt, std::span<float> dA, std::span<float> dB,
                             std::span<float> dCm, std::span<float> dD, std::span<const float> dy,
                             std::span<const float> hs, std::span<const float> x, std::span<const float> dt,
                             std::span<const float> A, std::span<const float> B, std::span<const float> Cm,
                             std::span<const float> D, int64_t T, int64_t C, int64_t N, rt::ThreadPool* pool);

// Mamba-2 SSD from S = 0, the recurrence of rt::ssd_step over T steps (dt raw: softplus inside; y, x: (T, H, P);
// dt: (T, H); A, D: (H); B, Cm: (T, G, N)). Ss: (T + 1, H, P, N) saved states.
void ssd_forward(std::span<float> y, std::span<float> Ss, std::span<const float> x, std::span<const float> dt,
                 std::span<const float> A, std::span<const float> B, std::span<const float> Cm,
                 std::span<const float> D, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N,
                 rt::ThreadPool* pool);
void ssd_backward(std::span<float> dx, std::span<float> ddt, std::span<float> dA, std::span<float> dB,
                  std::span<float> dCm, std::span<float> dD, std::span<const float> dy, std::span<const float> Ss,
                  std::span<const float> x, std::span<const float> dt, std::span<const float> A,
                  std::span<const float> B, std::span<const float> Cm, std::span<const float> D, int64_t T, int64_t H,
                  int64_t P, int64_t G, int64_t N, rt::ThreadPool* pool);

// Gate mixing (n values): out = g * a + (1 - g) * s, g = sigmoid(alpha / tau). dalpha: one float, accumulated.
void gate_mix_forward(std::span<float> out, std::span<const float> a, std::span<const float> s, float alpha,
                      float tau);
void gate_mix_backward(std::span<float> da, std::span<float> ds, float* dalpha, std::span<const float> dout,
                       std::span<const float> a, std::span<const float> s, float alpha, float tau);

// Mean next-token cross-entropy over T rows of logits (T, V) with targets (T) (target < 0: ignored row;
// so is one >= V, which only corrupt data can give);
// returns the mean loss; backward writes dlogits += scale * (softmax - onehot) / counted_rows.
double cross_entropy_forward(std::span<const float> logits, std::span<const int32_t> targets, int64_t T, int64_t V);
void cross_entropy_backward(std::span<float> dlogits, std::span<const float> logits,
                            std::span<const int32_t> targets, int64_t T, int64_t V, float scale = 1.0f);

// Mean over T rows of KL(teacher || student) from logits at temperature 1, natural log.
double kl_forward(std::span<const float> student_logits, std::span<const float> teacher_logits, int64_t T,
                  int64_t V);
void kl_backward(std::span<float> dlogits, std::span<const float> student_logits,
                 std::span<const float> teacher_logits, int64_t T, int64_t V, float scale = 1.0f);
// The same with rows split over the pool (results do not depend on the thread count).
double cross_entropy_forward(std::span<const float> logits, std::span<const int32_t> targets, int64_t T, int64_t V,
                             rt::ThreadPool* pool);
void cross_entropy_backward(std::span<float> dlogits, std::span<const float> logits,
                            std::span<const int32_t> targets, int64_t T, int64_t V, float scale, rt::ThreadPool* pool);
double kl_forward(std::span<const float> student_logits, std::span<const float> teacher_logits, int64_t T, int64_t V,
                  rt::ThreadPool* pool);
void kl_backward(std::span<float> dlogits, std::span<const float> student_logits,
                 std::span<const float> teacher_logits, int64_t T, int64_t V, float scale, rt::ThreadPool* pool);

}  // namespace ef::train
