// The HDF5 checkpoint beyond the model (issue 4, "Export"): the full-precision master weights stay in
// /tensors; each quantized variant goes under /quantized/<variant>, and the outlier analysis under
// /analysis/outliers (layout in hdf5_format.h). Writes are atomic like save_model's.
#pragma once
#include <string>
#include <vector>

#include "core/formats/format.h"
#include "core/outlier_analysis.h"

namespace ef {

// A quantized variant of a checkpoint's model: the tensors it replaces (same name) or adds (EF
// companions), stored like /tensors (packed block bytes as uint8 with dtype and shape attributes).
struct QuantizedVariant {
    std::string name;         // group name: non-empty, no '/', not "." (e.g. "ef3_b128", "q4_K_M")
    std::string description;  // free text or JSON: how it was made
    std::vector<Tensor> tensors;
};

// The tensors of `quantized` that differ from `master` (new names, other dtype, shape or bytes), in
// `quantized`'s order.
QuantizedVariant make_variant(std::string name, std::string description, const Model& master, const Model& quantized);
// `master` with the variant applied: same-named tensors replaced in place, new ones inserted after the
// weight they belong to (EF companions) or appended. Error when a variant tensor's layout is invalid.
Result<Model> apply_variant(const Model& master, const QuantizedVariant& v);

struct CheckpointExtras {
    OutlierAnalysisPtr outliers;             // null: none written
    std::vector<QuantizedVariant> variants;  // distinct names
};

// Writes master + extras as one HDF5 checkpoint (atomic; a failed or cancelled save leaves no file).
Status save_checkpoint(const Model& master, const std::string& path, const CheckpointExtras& extras,
                       const SaveOptions& opts = {}, Progress& progress = Progress::none());
// Adds extras to an existing checkpoint (a copy is edited, then renamed over it): a variant with an
// existing name and the outlier analysis replace the old ones. HDF5 does not reuse the freed space,
// so replacing repeatedly grows the file; save_checkpoint writes a compact one.
Status add_to_checkpoint(const std::string& path, const CheckpointExtras& extras, const SaveOptions& opts = {},
                         Progress& progress = Progress::none());

// Variant names in the order they were written (empty when the file has none).
Result<std::vector<std::string>> list_variants(const std::string& path);
Result<QuantizedVariant> load_variant(const std::string& path, const std::string& name,
                                      Progress& progress = Progress::none());
// Error "<path>: has no outlier analysis (/analysis/outliers)" when there is none.
Result<OutlierAnalysisPtr> load_outlier_analysis(const std::string& path);
bool has_outlier_analysis(const std::string& path);

}  // namespace ef
