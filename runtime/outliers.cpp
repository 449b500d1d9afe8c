#include "runtime/outliers.h"

#include <vector>

#include "core/ef_tensors.h"
#include "quant/half.h"
#include "runtime/matmul.h"

namespace ef::rt {

void apply_outliers(std::span<float> y, const EfOutlierView& s, std::span<const float> x) {
    if (s.empty()) return;
    for (int64_t r = 0; r < s.rows; ++r) {
        const int32_t b = s.rowptr[r], e = s.rowptr[r + 1];
        if (b == e) continue;
        float acc = 0.0f;
        for (int32_t i = b; i < e; ++i) acc += float(ef_get6(s.vals, i)) * x[s.col[i]];
        y[size_t(r)] += f16_to_f32(s.scale[r]) * acc;
    }
}

void apply_outliers_batch(std::span<float> y, const EfOutlierView& s, std::span<const float> x, int64_t T) {
    if (s.empty()) return;
    std::vector<float> v;
    for (int64_t r = 0; r < s.rows; ++r) {
        const int32_t b = s.rowptr[r], e = s.rowptr[r + 1];
        if (b == e) continue;
        v.resize(size_t(e - b));
        for (int32_t i = b; i < e; ++i) v[size_t(i - b)] = float(ef_get6(s.vals, i));
        const float sr = f16_to_f32(s.scale[r]);
        const uint16_t* col = s.col + b;
        for (int64_t t = 0; t < T; ++t) {
            const float* xt = x.data() + t * s.cols;
            float acc = 0.0f;
            for (size_t i = 0; i < v.size(); ++i) acc += v[i] * xt[col[i]];
            y[size_t(t * s.rows + r)] += sr * acc;
        }
    }
}

void apply_outliers_row(std::span<float> out, const EfOutlierView& s, int64_t row) {
    if (s.empty()) return;
    const float sr = f16_to_f32(s.scale[row]);
    for (int32_t i = s.rowptr[row]; i < s.rowptr[row + 1]; ++i) out[s.col[i]] += sr * float(ef_get6(s.vals, i));
}

Result<Weight> find_weight(const Model& m, const std::string& name) {
    Weight w;
    w.t = m.find(name);
    if (!w.t) return make_error("tensor '" + name + "' is missing");
    auto view = ef_outlier_view(name, w.t->rows(), w.t->row_length(), ef_find_companions(m, name));
    if (!view) return view.error();
    w.outliers = *view;
    return w;
}

Status project(std::span<float> y, const Weight& w, std::span<const float> x, const MatvecOptions& o) {
    if (w.observer) w.observer->on_projection(w.t->name, x, 1);
    EF_TRY_STATUS(matvec(y, *w.t, x, o));
    apply_outliers(y, w.outliers, x);
    return {};
}

Status project(std::span<float> y, const Weight& w, std::span<const float> x, int64_t T, const MatvecOptions& o) {
    if (w.observer) w.observer->on_projection(w.t->name, x, T);
    EF_TRY_STATUS(matmul(y, *w.t, x, T, o));
    apply_outliers_batch(y, w.outliers, x, T);
    return {};
}

Status weight_row(std::span<float> out, const Weight& w, int64_t row) {
    EF_TRY_STATUS(tensor_row(out, *w.t, row));
    apply_outliers_row(out, w.outliers, row);
    return {};
}

}  // namespace ef::rt
