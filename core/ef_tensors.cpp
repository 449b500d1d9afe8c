#include "core/ef_tensors.h"

namespace ef {

EfCompanionTensors ef_find_companions(const Model& m, const std::string& weight_name) {
    EfCompanionTensors c;
    c.rowptr = m.find(weight_name + std::string(kEfRowptrSuffix));
    c.cols = m.find(weight_name + std::string(kEfColsSuffix));
    c.vals = m.find(weight_name + std::string(kEfValsSuffix));
    c.scale = m.find(weight_name + std::string(kEfScaleSuffix));
    return c;
}

Result<EfOutlierView> ef_outlier_view(const std::string& weight_name, int64_t rows, int64_t cols,
                                      const EfCompanionTensors& c) {
    EfOutlierView v;
    v.rows = rows;
    v.cols = cols;
    if (!c.any()) return v;
    const auto fail = [&](const std::string& what) {
        return make_error("tensor " + weight_name + ": outlier companions: " + what);
    };
    const auto need = [&](const Tensor* t, std::string_view suffix, DType dt) -> std::optional<Error> {
        if (!t) return fail(weight_name + std::string(suffix) + " is missing");
        if (t->dtype != dt)
            return fail(t->name + " is " + std::string(dtype_name(t->dtype)) + ", expected " + std::string(dtype_name(dt)));
        if (t->data.size() != t->nbytes()) return fail(t->name + " holds the wrong number of bytes");
        return std::nullopt;
    };
    if (auto e = need(c.rowptr, kEfRowptrSuffix, DType::I32)) return *e;
    if (auto e = need(c.cols, kEfColsSuffix, DType::I16)) return *e;
    if (auto e = need(c.vals, kEfValsSuffix, DType::I8)) return *e;
    if (auto e = need(c.scale, kEfScaleSuffix, DType::F16)) return *e;
    if (c.rowptr->numel() != rows + 1)
        return fail(c.rowptr->name + " has " + std::to_string(c.rowptr->numel()) + " entries, expected rows + 1 = " +
                    std::to_string(rows + 1));
    if (c.scale->numel() != rows)
        return fail(c.scale->name + " has " + std::to_string(c.scale->numel()) + " entries, expected " + std::to_string(rows));
    v.nnz = c.cols->numel();
    if (c.vals->numel() != ef_packed6_bytes(v.nnz))
        return fail(c.vals->name + " has " + std::to_string(c.vals->numel()) + " bytes; " + std::to_string(v.nnz) +
                    " 6-bit values need " + std::to_string(ef_packed6_bytes(v.nnz)));
    v.rowptr = reinterpret_cast<const int32_t*>(c.rowptr->data.data());
    v.col = reinterpret_cast<const uint16_t*>(c.cols->data.data());
    v.vals = reinterpret_cast<const uint8_t*>(c.vals->data.data());
    v.scale = reinterpret_cast<const uint16_t*>(c.scale->data.data());
    if (auto msg = ef_check_outliers(v)) return fail(*msg);
    return v;
}

EfModelBits ef_model_bits(const Model& m) {
    EfModelBits r;
    double code_bit_sum = 0, ef_code_sum = 0;
    uint64_t all_bytes = 0, ef_bytes = 0;
    for (const Tensor& t : m.tensors) {
        all_bytes += t.nbytes();
        if (ef_companion_base(t.name)) continue;  // bytes of a weight, not weights
        const int64_t n = t.numel();
        r.weights += n;
        const auto l = ef_layout(t.dtype);
        if (!l) {
            const auto& tr = type_traits(t.dtype);
            code_bit_sum += double(n) * 8.0 * double(tr.type_size) / double(tr.block_size);
            continue;
        }
        EfTensorBits b;
        b.name = t.name;
        b.dtype = std::string(dtype_name(t.dtype));
        b.cols = t.row_length();
        b.rows = t.rows();
        b.weights = n;
        b.block_bytes = t.nbytes();
        const EfCompanionTensors c = ef_find_companions(m, t.name);
        for (const Tensor* ct : {c.rowptr, c.cols, c.vals, c.scale})
            if (ct) b.companion_bytes += ct->nbytes();
        if (c.cols) b.nnz = c.cols->numel();
        b.code_bits = l->bits;
        b.effective_bits = n ? 8.0 * double(b.block_bytes + b.companion_bytes) / double(n) : 0.0;
        code_bit_sum += double(n) * l->bits;
        ef_code_sum += double(n) * l->bits;
        ef_bytes += b.block_bytes + b.companion_bytes;
        r.ef_weights += n;
        r.tensors.push_back(std::move(b));
    }
    if (r.weights) {
        r.code_bits = code_bit_sum / double(r.weights);
        r.effective_bits = 8.0 * double(all_bytes) / double(r.weights);
    }
    if (r.ef_weights) {
        r.ef_code_bits = ef_code_sum / double(r.ef_weights);
        r.ef_effective_bits = 8.0 * double(ef_bytes) / double(r.ef_weights);
    }
    return r;
}

}  // namespace ef
