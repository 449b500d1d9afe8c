// Checkpoint formats as a table of handlers: each format file defines one FormatHandler row.
// load_model() picks the handler by magic bytes (then extension); save_model() by extension.
// Handlers report progress and honour cancellation; saves are atomic (core/storage.h).
#pragma once
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "core/result.h"

namespace ef {

struct LoadOptions {
    std::string tokenizer_path;  // llama2.c: the tokenizer .bin that goes with a checkpoint
    bool validate = true;        // check config and tensor shapes against the architecture table
};

struct SaveOptions {
    // HDF5 only: zstd level for compressed chunks.
    int compression_level = 3;
};

struct FormatHandler {
    std::string_view name;                     // "gguf", "safetensors", "hdf5", "llama2c"
    std::vector<std::string_view> extensions;  // lower-case, with dot: ".gguf"
    // True when the first bytes (up to 64; fewer for short files) identify this format.
    bool (*probe)(std::span<const std::byte> head);
    Result<Model> (*load)(const std::string& path, const LoadOptions& opts, Progress& progress);
    Status (*save)(const Model& model, const std::string& path, const SaveOptions& opts, Progress& progress);
};

// Built-in: gguf, safetensors, llama2c. HDF5 lives in its own library (core/hdf5) and registers
// itself with register_format(hdf5_format_handler()) so the board runner stays HDF5-free.
void register_format(const FormatHandler& handler);
const std::vector<FormatHandler>& formats();
const FormatHandler* find_format(std::string_view name);
const FormatHandler* format_for_extension(const std::string& path);

Result<Model> load_model(const std::string& path, const LoadOptions& opts = {}, Progress& progress = Progress::none());
Status save_model(const Model& model, const std::string& path, const SaveOptions& opts = {},
                  Progress& progress = Progress::none());

}  // namespace ef
