#include "runtime/matmul.h"

#include <string>
#include <vector>

namespace ef::rt {

// First version: one matvec per activation row (the tiled kernels replace this).
Status matmul(std::span<float> y, const Tensor& w, std::span<const float> x, int64_t T, const MatvecOptions& opt,
              int64_t row0, int64_t nrows) {
    if (nrows < 0) nrows = w.rows() - row0;
    const int64_t cols = w.row_length();
    if (T < 0 || int64_t(x.size()) != T * cols || int64_t(y.size()) != T * nrows)
        return make_error("matmul with '" + w.name + "': input has " + std::to_string(x.size()) + " values, output " +
                          std::to_string(y.size()) + " (expected " + std::to_string(T) + " x " + std::to_string(cols) +
                          ", " + std::to_string(T) + " x " + std::to_string(nrows) + ")");
    for (int64_t t = 0; t < T; ++t)
        EF_TRY_STATUS(matvec(y.subspan(size_t(t * nrows), size_t(nrows)), w, x.subspan(size_t(t * cols), size_t(cols)), opt,
                             row0, nrows));
    return {};
}

}  // namespace ef::rt
