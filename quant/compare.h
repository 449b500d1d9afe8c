// `edgefusion compare` (issue 4, "The paper's table"): quantized variants of one model side by side.
// Each variant is built in memory from the loaded model and measured on the same data:
//   f32      the model as loaded (its own precision; F32 for llama2.c checkpoints) - the reference
//   q8_0     every projection weight q8_0 by round-to-nearest (embeddings/output/norms kept)
//   gptq4    every projection weight q4_0 by GPTQ (calibration Hessians; q4_0 so the variant is a
//            standard ggml type llama.cpp runs; rows 32 does not divide fall back to f16)
//   q4_k_m   llama.cpp's Q4_K_M mixture, q3_k_m its Q3_K_M mixture (llamacpp_recipe_types below),
//            packed with ggml's quantizers weighted by the calibration imatrix where one exists
//   ef       the EdgeFusion allocation: measured KL sensitivity per layer, exact solver at an average
//            of `bits` effective bits per quantized weight (quant/sensitivity.h, quant/bit_alloc.h);
//            a target below the smallest possible average is raised to that minimum and reported
// Text: split_calibration_text cuts the evaluation text; the last 10% of its lines calibrate (GPTQ
// Hessians, imatrix, the allocation's KL windows), the rest are held out for perplexity, KL and top-1.
// Metrics per variant:
//   perplexity       llama-perplexity's way (runtime/eval/perplexity.h) on the held-out part
//   KL, top-1        KL(f32 || variant) and top-1 agreement on the same scored positions (the f32
//                    log-probabilities go to a temporary KL base file, deleted afterwards)
//   tasks            zero-shot accuracy on ../shared/eval (first `limit` items of each task)
//   memory           weights + KV cache / SSM state for `n_ctx` positions, computed, not measured:
//                    one process runs every variant, so its peak RSS is the max so far and says
//                    nothing per variant (the process peak is reported once, beside the table)
//   tokens/s         decode speed (runtime/profile.h bench_decode) over `bench_tokens` tokens from an
//                    empty context, best of 3 repetitions (the machine may be shared)
//   GFLOPs/token     flops_per_token at n_past = n_ctx / 2 (the same for every variant)
//   bits per weight  effective bits over all weights (ef_model_bits: scales, outliers counted) and
//                    over the quantizable 2-D projection weights alone
// Library ef_compare (above ef_alloc and ef_calib). Qt-free.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "quant/dtype.h"

namespace ef {

// Variant names in table order.
const std::vector<std::string>& compare_variant_names();  // f32, q8_0, gptq4, q4_k_m, q3_k_m, ef

// llama.cpp's per-tensor types for the Q4_K_M / Q3_K_M mixtures (llama-quant.cpp,
// llama_tensor_get_type) for the tensors llama.cpp quantizes (2-D, name ends in "weight", not a
// norm, not ssm_conv1d, not the router "ffn_gate_inp"). Rules implemented (non-MoE, non-Falcon):
//   default      q4_K (Q4_K_M) / q3_K (Q3_K_M)
//   output       q6_K, or q8_0 when its row length is not a multiple of the default type's block;
//                the token embedding follows the output's rule when there is no output.weight (tied)
//   attn_v / attn_qkv / attn_kv_b (counted in model order, i of n):
//                Q4_K_M: q6_K when use_more_bits(i, n); Q3_K_M: q5_K for i < 2 else q4_K
//   ffn_down (i-th of n_layers): Q4_K_M: q6_K when use_more_bits(i, n);
//                Q3_K_M: q5_K for i < n/16, else q4_K
//   attn_output: Q3_K_M q4_K
//   use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
// Then llama.cpp's fallback for rows the block does not divide: q2_K/q3_K -> q4_0, q4_K -> q5_0,
// q5_K -> q5_1, q6_K -> q8_0, and f16 when 32 does not divide the row either.
// Not implemented: the MoE (n_expert = 8), 70B-GQA and Falcon special cases, user overrides.
// recipe: "q4_k_m" or "q3_k_m".
Result<std::map<std::string, DType>> llamacpp_recipe_types(const Model& m, const std::string& recipe);

struct CompareOptions {
    std::vector<std::string> variants;  // empty: all, in compare_variant_names() order
    double bits = 3.1;                  // ef: target average effective bits per quantized weight
    std::string text;                   // the evaluation text (already read); split as above
    std::string text_origin;            // for messages
    int n_ctx = 128;                    // perplexity / KL window (capped at the model's context)
    int chunks = 8;                     // held-out windows for perplexity/KL (0: all)
    int calib_windows = 4;              // calibration windows of n_ctx tokens
    std::vector<std::string> tasks = {"arc_easy", "piqa"};
    int limit = 20;                     // items per task (0: all)
    std::string eval_dir = "../shared/eval";
    int bench_tokens = 32;              // decode tokens for tokens/s
    int threads = 1;
};

struct VariantResult {
    std::string name;
    std::string description;
    double ppl = 0, ppl_error = 0;
    double kl = 0, kl_error = 0;
    double top1 = 0;                         // fraction in [0, 1]
    std::map<std::string, double> task_acc;  // task -> accuracy in [0, 1]
    double mean_acc = 0;                     // mean over tasks
    uint64_t weight_bytes = 0;               // all tensors
    uint64_t state_bytes = 0;                // KV cache + SSM state for n_ctx positions
    uint64_t memory_bytes = 0;               // weight_bytes + state_bytes
    double tokens_per_s = 0;
    double gflops_per_token = 0;
    double bits_per_weight = 0;              // effective, over all weights of the model
    double quant_bits_per_weight = 0;        // effective, over the 2-D projection weights
    std::map<std::string, int> dtypes;       // storage type -> tensor count
};

struct CompareResult {
    std::string model;
    std::vector<VariantResult> variants;
    double bits_requested = 0, bits_used = 0;  // ef; bits_used > bits_requested: raised to the minimum
    double bits_minimum = 0;
    std::string note;                          // e.g. the raised target, shown with the table
    int n_ctx = 0, chunks = 0;
    int64_t scored_tokens = 0, calib_tokens = 0;
    uint64_t process_peak_rss = 0;             // the whole run's peak (all variants)
    std::vector<std::string> tasks;
    int limit = 0;
    double seconds = 0;
};

// Builds and measures the variants. Errors: an unknown variant or task, a missing eval file, a text
// too short for one window of each part. Progress over the variants; cancel -> error "cancelled".
Result<CompareResult> compare_variants(const Model& m, const CompareOptions& o, Progress& progress = Progress::none());

std::string compare_markdown(const CompareResult& r);
std::string compare_csv(const CompareResult& r);
std::string compare_json(const CompareResult& r);

}  // namespace ef
