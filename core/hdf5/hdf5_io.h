// Internal to core/hdf5: the reader and writer behind hdf5_format_handler(), and the dtype <->
// HDF5 type mapping they share (layout in hdf5_format.h).
#pragma once
#include <optional>

#include "core/formats/format.h"
#include "core/hdf5/h5_util.h"

namespace ef::hdf5 {

Result<Model> load(const std::string& path, const LoadOptions& opts, Progress& progress);
Status save(const Model& model, const std::string& path, const SaveOptions& opts, Progress& progress);

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
