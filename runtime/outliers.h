// The EdgeFusion sparse correction at matmul time (issue 4): y = dequant(Q) x + S x, with S the CSR
// outlier matrix stored beside an ef* weight (quant/ef_format.h, core/ef_tensors.h). S x is summed
// with the float activations (never rounded to the kernels' Q8_0), each row in CSR order exactly as
// quant/'s reference sparse_outliers_apply, so the fast path equals it bit for bit.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "core/model.h"
#include "core/result.h"
#include "core/tensor.h"
#include "quant/ef_format.h"
#include "runtime/observer.h"
#include "runtime/ops.h"

namespace ef::rt {

// y: (R) += S x;  x: (C). S is a checked view (ef_outlier_view); empty views do nothing.
void apply_outliers(std::span<float> y, const EfOutlierView& s, std::span<const float> x);
// Y: (T, R) += X: (T, C) S^T, row-major; each row's outliers are decoded once for all T tokens.
void apply_outliers_batch(std::span<float> y, const EfOutlierView& s, std::span<const float> x, int64_t T);
// out: (C) += row `row` of S (an embedding lookup of an EF table).
void apply_outliers_row(std::span<float> out, const EfOutlierView& s, int64_t row);

// A weight matrix as the session multiplies it: the tensor and its outlier correction (empty view
// for every non-EF tensor and EF tensors without companions).
struct Weight {
    const Tensor* t = nullptr;
    EfOutlierView outliers;
    ProjectionObserver* observer = nullptr;  // shown X before each project() (runtime/observer.h)
};
// The weight `name` of m with its companions, checked (a wrong companion is an error naming it).
Result<Weight> find_weight(const Model& m, const std::string& name);

// y: (R) = W x + S x  (rt::matvec, then the correction).
Status project(std::span<float> y, const Weight& w, std::span<const float> x, const MatvecOptions& o);
// Y: (T, R) = X W^T + X S^T  (rt::matmul, then the correction); X: (T, C).
Status project(std::span<float> y, const Weight& w, std::span<const float> x, int64_t T, const MatvecOptions& o);
// out: (C) = row `row` of W + S (embedding lookup).
Status weight_row(std::span<float> out, const Weight& w, int64_t row);

}  // namespace ef::rt
