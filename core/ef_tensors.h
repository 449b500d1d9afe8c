// EdgeFusion tensors inside a model: a weight in one of the ef* block types plus, optionally, its four
// CSR outlier companions (quant/ef_format.h). Finds and checks them, gives the view the runtime and the
// reference apply take, and counts the honest bits: code bits (k) and effective bits per weight
// = 8 * (block bytes + all companion bytes) / weights.
#pragma once
#include <string>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "quant/ef_format.h"

namespace ef {

// The companions of a weight (R, C) as tensors; any may be null when the weight has none.
struct EfCompanionTensors {
    const Tensor* rowptr = nullptr;
    const Tensor* cols = nullptr;
    const Tensor* vals = nullptr;
    const Tensor* scale = nullptr;
    bool any() const { return rowptr || cols || vals || scale; }
};
EfCompanionTensors ef_find_companions(const Model& m, const std::string& weight_name);

// Checked view over the companions' bytes (empty view when there are none). Errors name the tensor and
// what is inconsistent: a missing companion, a wrong dtype or size, a broken CSR structure.
Result<EfOutlierView> ef_outlier_view(const std::string& weight_name, int64_t rows, int64_t cols,
                                      const EfCompanionTensors& c);

struct EfTensorBits {
    std::string name;
    std::string dtype;         // "ef3_b128"
    int64_t rows = 0, cols = 0;
    int64_t weights = 0;       // rows * cols
    int64_t nnz = 0;           // outliers
    uint64_t block_bytes = 0;
    uint64_t companion_bytes = 0;
    double code_bits = 0;      // k
    double effective_bits = 0; // 8 * (block_bytes + companion_bytes) / weights
};

struct EfModelBits {
    std::vector<EfTensorBits> tensors;  // every EF weight, in model order
    int64_t ef_weights = 0;
    double ef_code_bits = 0, ef_effective_bits = 0;  // over the EF weights only
    // Over all weights of the model (companions counted as bytes, not as weights); code bits of other
    // tensors are their storage bits (f32: 32, q4_0: 4.5).
    int64_t weights = 0;
    double code_bits = 0, effective_bits = 0;
};
EfModelBits ef_model_bits(const Model& m);

}  // namespace ef
