#include "core/metadata.h"

#include <cmath>
#include <sstream>

namespace ef {

bool MetaValue::is_integer() const {
    switch (type) {
        case MetaType::U8: case MetaType::I8: case MetaType::U16: case MetaType::I16:
        case MetaType::U32: case MetaType::I32: case MetaType::U64: case MetaType::I64:
            return true;
        default:
            return false;
    }
}

bool MetaValue::is_float() const { return type == MetaType::F32 || type == MetaType::F64; }

std::optional<double> MetaValue::as_number() const {
    if (type == MetaType::Array || type == MetaType::String) return std::nullopt;
    if (const auto* u = std::get_if<uint64_t>(&scalar)) return double(*u);
    if (const auto* i = std::get_if<int64_t>(&scalar)) return double(*i);
    if (const auto* d = std::get_if<double>(&scalar)) return *d;
    if (const auto* b = std::get_if<bool>(&scalar)) return *b ? 1.0 : 0.0;
    return std::nullopt;
}

std::optional<int64_t> MetaValue::as_int() const {
    if (const auto* u = std::get_if<uint64_t>(&scalar)) {
        if (type == MetaType::Array || *u > uint64_t(INT64_MAX)) return std::nullopt;
        return int64_t(*u);
    }
    if (const auto* i = std::get_if<int64_t>(&scalar)) {
        if (type == MetaType::Array) return std::nullopt;
        return *i;
    }
    if (const auto* b = std::get_if<bool>(&scalar)) return *b ? 1 : 0;
    return std::nullopt;
}

const std::string* MetaValue::as_string() const {
    if (type != MetaType::String) return nullptr;
    return std::get_if<std::string>(&scalar);
}

std::string MetaValue::to_display_string(size_t max_array_items) const {
    std::ostringstream os;
    if (type == MetaType::Array) {
        os << "[";
        for (size_t i = 0; i < array.size() && i < max_array_items; ++i) {
            if (i) os << ", ";
            os << array[i].to_display_string(max_array_items);
        }
        if (array.size() > max_array_items) os << ", ... (" << array.size() << " items)";
        os << "]";
        return os.str();
    }
    if (const auto* s = as_string()) return "\"" + *s + "\"";
    if (type == MetaType::Bool) return std::get<bool>(scalar) ? "true" : "false";
    if (is_float()) {
        os << std::get<double>(scalar);
        return os.str();
    }
    if (const auto* u = std::get_if<uint64_t>(&scalar)) os << *u;
    else if (const auto* i = std::get_if<int64_t>(&scalar)) os << *i;
    return os.str();
}

}  // namespace ef
