// GGUF that llama.cpp runs (issue 4, "Export"): a model whose every tensor is a standard ggml type
// and whose architecture is one llama.cpp knows, made from any of our models, quantized or not.
//
// Per-tensor types: an explicit map (a bit allocation's result) wins, then a default type, then the
// tensor's own type: ggml types stay as they are and EdgeFusion block types go to the nearest ggml
// type (nearest_ggml_type). Re-quantization dequantizes first (EF: blocks + the sparse outlier
// correction S, so the companions are folded in and dropped) and packs with ggml::quantize_rows
// (ggml's own bytes, optionally importance-weighted). A tensor already in the wanted type is copied.
//
// EdgeFusion (every layer routed) exports with hard gates, exactly as Session's Routing::Hard runs
// it: g = sigmoid(alpha / T) >= 0.5 keeps the attention branch, else the SSM branch; the gate and
// the other branch are dropped. Mamba-2 branches -> granitehybrid (llama.cpp's Granite-4.0-H; per
// layer attention.head_count_kv = 0 marks an SSM layer), Mamba-1 branches -> jamba (same rule).
// Jamba's Mamba-1 always RMS-normalises dt, B and C, which our Mamba-1 branch does not; the export
// keeps the computation anyway: ssm_x's rows are scaled by s = 2^-k (exact in F32) so that mean(x^2)
// of the scaled dt/B/C falls below half an ulp of the norm epsilon, where rmsnorm(y) = y / sqrt(eps)
// exactly in float, and the norm weights sqrt(eps) / s undo both factors (a few ulps of rounding).
// k is chosen so activations up to |x| = 1e6 stay in that regime; ssm_x therefore stays F32 (a
// scaled matrix would underflow f16 block scales). What cannot be expressed is refused: soft
// routing, every gate on the SSM branch (llama.cpp's hybrids assert on an empty KV cache, and its
// pure SSM rows have no FFN; every gate on attention exports as llama), a jamba target with RoPE or a custom attention scale on a kept attention layer, partial
// RoPE for granitehybrid, d_inner != 2 * dim, layers without the dense SwiGLU FFN.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "quant/ef_format.h"

namespace ef {

struct LlamacppExportOptions {
    // Type for every quantizable weight (see llamacpp_quantizable) not named in tensor_types;
    // unset: keep ggml types, EF types -> nearest_ggml_type.
    std::optional<DType> default_type;
    // Exact tensor name -> ggml type. Names of tensors the export drops (the unused branch of a
    // routed layer) are ignored; names the model does not have are an error.
    std::map<std::string, DType> tensor_types;
    // Optional per-tensor importance weights for the quantizer: one value per input column (C),
    // e.g. E[x_c^2] from calibration. Null or absent: plain quantizers.
    std::function<const std::vector<float>*(const std::string& name)> importance;
    // Routing::Soft in Session terms; llama.cpp has no mixed layer, so true is refused.
    bool soft_routing = false;
    int threads = 0;  // 0: hardware_concurrency
};

// The ggml types llama.cpp accepts for weights and we can write: f32, f16, bf16, q4_0, q4_1, q5_0,
// q5_1, q8_0, q2_K .. q6_K.
bool is_llamacpp_weight_type(DType t);

// llama.cpp's own rule (llama-quant.cpp) for which tensors a quantizer touches: 2-D, the name ends
// in "weight", not a norm ("_norm.weight"), not ssm_conv1d. Everything else stays F32.
bool llamacpp_quantizable(const Tensor& t);

// The EF layout's nearest ggml type for rows of `row_length` weights, by effective bits per weight
// (code bits + header bits per weight: ef3_b128 = 3.125) among the ggml types with the same code
// bits whose block fits the row (k-quants need row_length % 256 == 0, the others % 32); ties go
// to the k-quant. Families and bits per weight:
//   k = 2: q2_K (2.625)                      fallback q4_0 (4.5)  (no 2/3-bit 32-block ggml type)
//   k = 3: q3_K (3.4375)                     fallback q4_0 (4.5)
//   k = 4: q4_K (4.5), q4_0 (4.5), q4_1 (5)  -> ef4a_b32 = q4_1, every other ef4 = q4_K; fallback
//                                               q4_0 (q4_1 for ef4a_b32)
//   k = 5: q5_K (5.5), q5_0 (5.5), q5_1 (6)  -> ef5a_b32 = q5_1, others q5_K; fallback q5_0 (q5_1 for ef5a_b32)
//   k = 6: q6_K (6.5625)                     fallback q8_0 (8.5)
//   k = 8: q8_0 (8.5)
// Rows that are not a multiple of 32 get F16 (cannot happen for EF tensors, whose B >= 32 divides
// the row).
DType nearest_ggml_type(const EfLayout& l, int64_t row_length);

// `wanted` if its block divides row_length, else the 32-block type with similar bits
// (q2_K, q3_K, q4_K -> q4_0; q5_K -> q5_0; q6_K -> q8_0), else F16.
DType ggml_type_for_row(DType wanted, int64_t row_length);

// The hard-gated equivalent of an edgefusion model as granitehybrid / jamba (tensor types and EF
// companions kept, except Jamba's scaled ssm_x, which is F32). Other rows: refused (they need no
// routing). To re-type a jamba result, export the edgefusion model itself: export_for_llamacpp
// knows that ssm_x must stay F32 there, a plain jamba model does not say so.
Result<Model> edgefusion_hard_routed(const Model& m);

// The export. The result passes validate_model, runs in our Session, and save_model writes it as
// a GGUF that llama.cpp loads. Progress over tensors; cancel -> error "cancelled".
Result<Model> export_for_llamacpp(const Model& m, const LlamacppExportOptions& o, Progress& progress = Progress::none());

}  // namespace ef
