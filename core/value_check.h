// Finds non-finite weights (NaN, ±Inf). Opening a file does not read tensor bytes (they are
// mapped), so this scan is separate: `inspect --check`, `convert` before it writes, and the
// workbench's statistics run it.
#pragma once
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"

namespace ef {

struct NonFiniteTensor {
    std::string name;
    int64_t nan_count = 0;
    int64_t inf_count = 0;
};

// Every tensor with a NaN or an infinity (error only for layout problems or cancellation).
Result<std::vector<NonFiniteTensor>> find_non_finite(const Model& m, Progress& progress = Progress::none());
// An error naming `origin` and the offending tensors when any weight is NaN or infinite.
Status check_finite(const Model& m, const std::string& origin, Progress& progress = Progress::none());

}  // namespace ef
