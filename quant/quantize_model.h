// Whole-model quantization (issue 4): every 2-D weight a projection multiplies goes to one target
// format, by round-to-nearest, importance weights (llama.cpp's imatrix) or GPTQ, through the
// per-matrix quantizers (quant/ggml_importance.h, quant/ef_quantize.h, quant/gptq.h). The
// calibration statistics come in as plain data (ActivationStats), so this stays below the runtime;
// runtime/calib/calibration.h fills them by running the model. Qt-free.
//
// Kept as they are by default (the issue: higher precision for these): token_embd, output, every
// norm, SSM conv1d, A, D and dt, the router gate, and all tensors that are not 2-D "*.weight"
// matrices. EF outlier companions of an EF source are folded into the dense weights first and new
// ones are written for the new blocks.
//
// Row lengths that the target's block does not divide ("fallback", shown per tensor):
//  - ggml types: llama.cpp's rule (llama-quant.cpp tensor_type_fallback): q2_K/q3_K -> q4_0,
//    q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0; when that block does not divide either, f16.
//  - EF: the largest block B' <= B of {256, 128, 64, 32} that divides the row, else f16.
//  With allow_fallback = false a row length the block does not divide is an error naming the tensor.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "quant/ef_quantize.h"

namespace ef {

// Per-input calibration statistics: what each weight's input activations x: (cols) looked like.
// Weights fed the same activations (q/k/v, gate/up) share one Input.
struct ActivationStats {
    struct Input {
        int64_t cols = 0;
        int64_t rows = 0;              // activation rows (tokens) seen
        std::vector<float> energy;     // (cols) E[x_c^2] = sum_t x_tc^2 / rows (llama.cpp's imatrix value)
        std::vector<float> hessian;    // (cols, cols) (2 / rows) sum_t x_t x_t^T; empty unless collected
        std::vector<std::string> weights;  // the weights that multiply this input
    };
    std::vector<Input> inputs;
    std::map<std::string, size_t> by_weight;  // weight name -> index into inputs
    int64_t tokens = 0;                       // calibration tokens run through the model

    const Input* find(const std::string& weight) const {
        auto it = by_weight.find(weight);
        return it == by_weight.end() ? nullptr : &inputs[it->second];
    }
};

enum class QuantMethod : uint8_t {
    Rtn,      // round-to-nearest (EF: with the scale search)
    Imatrix,  // importance = E[x_c^2] per column (ggml: llama.cpp's weighted searches)
    Gptq,     // GPTQ with the calibration Hessian (targets EF, q4_0, q8_0)
};
std::string_view quant_method_name(QuantMethod m);  // "rtn", "imatrix", "gptq"

struct ModelQuantOptions {
    QuantMethod method = QuantMethod::Rtn;
    bool ef_format = false;         // EF blocks from `ef` (bits, block, affine, outliers, selection)
    DType ggml_type = DType::Q8_0;  // else this ggml type (q4_0..q5_1, q8_0, q2_K..q6_K)
    EfQuantOptions ef;              // importance / activation_energy are filled per tensor from stats
    bool allow_fallback = true;     // see the top of this file
    bool keep_defaults = true;      // keep embeddings/output/norms/SSM conv1d, A, D, dt/router as they are
    std::vector<std::string> keep;  // more tensors kept as they are: globs with * and ?
    bool act_order = false;         // GPTQ
    double damp_percent = 1.0;      // GPTQ
    int threads = 0;                // 0: hardware_concurrency
};

struct TensorQuantReport {
    std::string name;
    int64_t rows = 0, cols = 0;
    std::string source_dtype, dtype;
    std::string method;       // "rtn", "imatrix", "gptq", or "kept"
    bool fallback = false;    // dtype is a fallback for a row length the target block does not divide
    double code_bits = 0;     // bits of one code (q4_K: 4, ef3_b128: 3, f16: 16)
    double effective_bits = 0;  // 8 * (bytes incl. outlier companions) / weights
    double rmse = 0;          // against the source weights (0 for kept tensors)
    int64_t nnz = 0;          // EF outliers
    uint64_t bytes = 0;       // incl. companions
};

struct ModelQuantReport {
    std::vector<TensorQuantReport> tensors;  // model order (companions folded into their weight)
    int64_t params = 0;                      // weights of the model (companions are bytes, not weights)
    uint64_t bytes = 0;                      // all tensor bytes
    double bits_per_weight = 0;              // 8 * bytes / params
    int64_t quantized_params = 0;
    uint64_t quantized_bytes = 0;
    double quantized_code_bits = 0, quantized_effective_bits = 0;  // weight-averaged over quantized tensors
    int fallbacks = 0;
};

// True for the tensors kept as they are by default (see the top).
bool quant_kept_by_default(const Tensor& t);
// Glob with '*' (any run) and '?' (one character).
bool glob_match(std::string_view pattern, std::string_view name);
// Nominal code bits of a storage type: q8_0 8, q4_K 4, q3_K 3, ef3_b128 3, f16 16, f32 32.
double dtype_code_bits(DType t);

// stats: required for Imatrix (energies), Gptq (Hessians) and EF saliency outliers; may be null else.
// Checks every option and tensor before quantizing anything. Progress over weights; cancel -> "cancelled".
Result<Model> quantize_model(const Model& m, const ModelQuantOptions& o, const ActivationStats* stats,
                             ModelQuantReport* report = nullptr, Progress& progress = Progress::none());

// The same, handing each output tensor to `sink` as soon as it is made (model order; an EF weight's
// outlier companions right after it) instead of collecting a Model, so a caller that writes them out
// (gguf::StreamWriter) holds one tensor at a time. A sink error stops the job and is returned.
using QuantSink = std::function<Status(Tensor&&)>;
Status quantize_model_each(const Model& m, const ModelQuantOptions& o, const ActivationStats* stats, const QuantSink& sink,
                           ModelQuantReport* report = nullptr, Progress& progress = Progress::none());

// The report as a Markdown table plus totals.
std::string quant_report_markdown(const ModelQuantReport& r);

}  // namespace ef
