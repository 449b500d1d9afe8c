// What `--checkpoint PATH` names, shared by every command that takes one (quantize, evaluate,
// infer, sweep-lambda's base model): a model file as given, or a folder holding the model — a
// training run's DIR/checkpoint_final/ (core/train/train_checkpoint.h: model.h5 beside
// train_state.h5), a DIR/checkpoint_quantized/, or any folder with a single model file.
#pragma once
#include <string>

#include "core/result.h"

namespace ef::train {

// The model file PATH names. In a folder: the only model file (.gguf, .safetensors, .h5, .hdf5,
// .bin), else the one whose stem is "model"; train_state.h5 (optimizer state) never counts.
// Errors name the path: missing, an empty folder, several candidates.
Result<std::string> resolve_model_path(const std::string& path);

// Where `quantize --output-dir DIR` writes: DIR/model.gguf (ggml types) or DIR/model.h5 (EF).
std::string model_file_in(const std::string& dir, bool ef_format);

}  // namespace ef::train
