// Internal to core/hdf5: the reader and writer behind hdf5_format_handler(), and the dtype <->
// HDF5 type mapping they share (layout in hdf5_format.h).
#pragma once
#include <functional>
#include <optional>

#include "core/formats/format.h"
#include "core/hdf5/h5_util.h"

namespace ef::hdf5 {

Result<Model> load(const std::string& path, const LoadOptions& opts, Progress& progress);
Status save(const Model& model, const std::string& path, const SaveOptions& opts, Progress& progress);

// save() plus extra groups (analysis, quantized variants: hdf5_checkpoint.h) written by `extra(file,
// zstd level)` after /tensors, inside the same atomic write. Its errors should name the target path.
using ExtraWriter = std::function<Status(hid_t file, int level)>;
Status save_with(const Model& model, const std::string& path, const SaveOptions& opts, Progress& progress,
                 const ExtraWriter& extra);

// One tensor as a dataset laid out like /tensors (typed or uint8 bytes; dtype and shape attributes).
// Errors are short; callers prefix file and object.
Status write_tensor_dataset(hid_t group, const Tensor& t, int level, Progress& progress, double base, double span);
// Reads such a dataset with every size checked first (file_size bounds the stored bytes). Errors are
// prefixed with "<path>: "; cancellation gives "<path>: loading cancelled".
Result<Tensor> read_tensor_dataset(hid_t group, const std::string& name, const std::string& path, uint64_t file_size,
                                   Progress& progress, double base, double span);

// A dtype stored as a typed dataset: file and memory type (equal except for byte order).
// nullopt: stored as raw uint8 bytes (bf16, quantized types).
struct TypedStorage {
    h5::Handle file_type;  // may be a predefined type (not closed)
    h5::Handle mem_type;
    H5T_class_t cls;
    size_t size;
    bool is_signed;
};
std::optional<TypedStorage> typed_storage(DType t);

inline constexpr int kMaxRank = 8;
inline constexpr const char* kTensorsGroup = "tensors";
inline constexpr const char* kVocabGroup = "vocab";

}  // namespace ef::hdf5
