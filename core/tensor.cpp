#include "core/tensor.h"

#include <cstring>
#include <limits>

namespace ef {

std::string shape_to_string(const Shape& s) {
    std::string out = "(";
    for (size_t i = 0; i < s.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(s[i]);
    }
    return out + ")";
}

std::optional<int64_t> shape_numel(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) {
        if (d < 0) return std::nullopt;
        if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
        n *= d;
    }
    return n;
}

int64_t Tensor::numel() const { return shape_numel(shape).value_or(0); }

uint64_t Tensor::nbytes() const { return dtype_bytes(dtype, numel()).value_or(0); }

Status validate_tensor_layout(const std::string& name, DType dtype, const Shape& shape, uint64_t nbytes) {
    const auto n = shape_numel(shape);
    if (!n) return make_error("tensor " + name + ": invalid shape " + shape_to_string(shape));
    const auto& tr = type_traits(dtype);
    const int64_t row = shape.empty() ? 1 : shape.back();
    if (tr.block_size > 1 && row % tr.block_size != 0)
        return make_error("tensor " + name + ": row length " + std::to_string(row) + " is not a multiple of " +
                          std::string(tr.name) + "'s block size " + std::to_string(tr.block_size));
    const auto bytes = dtype_bytes(dtype, *n);
    if (!bytes) return make_error("tensor " + name + ": size overflows");
    if (*bytes != nbytes)
        return make_error("tensor " + name + ": " + std::string(tr.name) + " " + shape_to_string(shape) + " needs " +
                          std::to_string(*bytes) + " bytes but " + std::to_string(nbytes) + " are stored");
    return {};
}

Result<std::vector<float>> Tensor::rows_to_f32(int64_t row0, int64_t nrows) const {
    const auto& tr = type_traits(dtype);
    if (!tr.to_float) return make_error("tensor " + name + ": " + std::string(tr.name) + " cannot be converted to float");
    const int64_t rl = row_length();
    if (row0 < 0 || nrows < 0 || row0 + nrows > rows())
        return make_error("tensor " + name + ": rows out of range");
    if (tr.block_size > 1 && rl % tr.block_size != 0)
        return make_error("tensor " + name + ": row length not a multiple of the block size");
    const uint64_t row_bytes = *dtype_bytes(dtype, rl);
    if (data.size() < uint64_t(row0 + nrows) * row_bytes) return make_error("tensor " + name + ": data too short");
    std::vector<float> out(size_t(nrows * rl));
    if (!out.empty()) tr.to_float(data.data() + uint64_t(row0) * row_bytes, out.data(), nrows * rl);
    return out;
}

Result<std::vector<float>> Tensor::to_f32() const { return rows_to_f32(0, rows()); }

Result<Tensor> Tensor::from_f32(std::string name, Shape shape, std::span<const float> values, DType dtype) {
    const auto n = shape_numel(shape);
    if (!n || *n != int64_t(values.size()))
        return make_error("tensor " + name + ": " + std::to_string(values.size()) + " values do not fill shape " +
                          shape_to_string(shape));
    const auto& tr = type_traits(dtype);
    if (!tr.from_float_ref) return make_error("tensor " + name + ": cannot convert float to " + std::string(tr.name));
    const int64_t rl = shape.empty() ? 1 : shape.back();
    if (tr.block_size > 1 && rl % tr.block_size != 0)
        return make_error("tensor " + name + ": row length " + std::to_string(rl) + " is not a multiple of " +
                          std::string(tr.name) + "'s block size " + std::to_string(tr.block_size));
    std::vector<std::byte> bytes(size_t(*dtype_bytes(dtype, *n)));
    if (*n > 0) tr.from_float_ref(values.data(), bytes.data(), *n);
    return from_bytes(std::move(name), dtype, std::move(shape), std::move(bytes));
}

Result<Tensor> Tensor::from_bytes(std::string name, DType dtype, Shape shape, std::vector<std::byte> bytes) {
    EF_TRY_STATUS(validate_tensor_layout(name, dtype, shape, bytes.size()));
    auto owner = std::make_shared<OwnedBuffer>(std::move(bytes));
    Tensor t;
    t.name = std::move(name);
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.data = owner->bytes();
    t.owner = std::move(owner);
    return t;
}

}  // namespace ef
