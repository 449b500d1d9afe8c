// The work behind "Quantize & Export" (issue 4, GUI): calibration -> quantize_model -> export ->
// atomic save, as one function the dialog runs on a worker thread and the tests call directly.
// Qt-free on purpose (plain library calls), so it is the same path whether a widget or a test
// drives it. The stages share one Progress: fractions are mapped onto one bar, and a cancel stops
// whichever stage is running (the save functions write atomically, so no file appears).
//
// Outputs:
//   LlamacppGguf    export_for_llamacpp (ggml types kept, EF types -> nearest ggml type, an
//                   edgefusion model hard-routed to granitehybrid / jamba), then save_model (.gguf)
//   NativeGguf      the quantized model as it is, EF blocks and outlier companions included (.gguf)
//   Hdf5Checkpoint  the master (full-precision) model plus the quantized model as one variant
//                   (save_checkpoint, .h5 / .hdf5)
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"
#include "quant/quantize_model.h"

namespace ef::views {

enum class QuantOutput : uint8_t { LlamacppGguf, NativeGguf, Hdf5Checkpoint };
const char* quant_output_name(QuantOutput o);  // "llama.cpp GGUF", "EdgeFusion GGUF", "HDF5 checkpoint"

struct QuantizeJobOptions {
    ModelQuantOptions quant;  // method, target, fallback, threads
    QuantOutput output = QuantOutput::NativeGguf;
    std::string path;         // the output file
    // Calibration (imatrix, gptq, EF saliency outliers): the user's text file, or empty for the last
    // 10% of the lines of `default_text` (split_calibration_text).
    std::string calib_path;
    std::string default_text = "../shared/text/wikitext-2-raw-test.txt";
    int64_t calib_tokens = 4096;
    int calib_ctx = 0;           // 0: min(512, the model's context)
    std::string variant_name;    // HDF5 variant; empty: the quantized format's name (e.g. "q4_K", "ef3_b128")
};

struct QuantizeJobResult {
    ModelQuantReport report;       // per tensor + totals (quantize_model's, or describe_quantized for a pre-built model)
    bool prebuilt = false;         // the dialog was given an already-quantized model
    std::string source_label;      // what was quantized ("the loaded model" or the pre-built model's label)
    std::string path;
    QuantOutput output = QuantOutput::NativeGguf;
    uint64_t source_bytes = 0;     // tensor bytes of the master model
    uint64_t output_bytes = 0;     // tensor bytes of what was written (llama.cpp: the exported model)
    uint64_t file_bytes = 0;       // size on disk
    double output_bits_per_weight = 0;  // 8 * output_bytes / master weights
    std::map<std::string, int> output_dtypes;  // storage type -> tensor count of what was written
    std::string output_architecture;
    int64_t calib_tokens = 0;
    std::string calib_origin, calib_warning;
    double seconds = 0;
};

// A ModelQuantReport for a model quantized elsewhere (the allocation editor): per weight of
// `quantized` (companions folded in), its source dtype and RMSE against `master`'s same-named tensor
// (dequantized, EF outliers added), method `method` where the dtype changed, "kept" otherwise.
Result<ModelQuantReport> describe_quantized(const Model& master, const Model& quantized, const std::string& method,
                                            Progress& progress = Progress::none());

// Runs the whole job. `prebuilt` non-null: no calibration or quantization, `prebuilt` is exported
// (its report from describe_quantized unless `prebuilt_report` is given). Checks the options (the
// path's extension for the output, the quantizer's own checks) before any long work.
Result<QuantizeJobResult> run_quantize_job(const Model& master, const Model* prebuilt, const ModelQuantReport* prebuilt_report,
                                           const std::string& prebuilt_label, const QuantizeJobOptions& o,
                                           Progress& progress = Progress::none());

}  // namespace ef::views
