// Free-form key/value metadata, typed like GGUF's values so a GGUF file round-trips exactly
// (general.name, licence, anything the model brings). Model structure lives in ModelConfig, not here.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ef {

enum class MetaType : uint8_t { U8, I8, U16, I16, U32, I32, F32, Bool, String, U64, I64, F64, Array };

struct MetaValue {
    MetaType type = MetaType::String;
    // Scalars are stored widened; `type` keeps the on-disk width.
    std::variant<uint64_t, int64_t, double, bool, std::string> scalar;
    MetaType elem_type = MetaType::U8;  // for arrays
    std::vector<MetaValue> array;       // for arrays (elements are scalars or arrays)

    static MetaValue str(std::string s) { return {MetaType::String, std::move(s), {}, {}}; }
    static MetaValue u32(uint32_t v) { return {MetaType::U32, uint64_t(v), {}, {}}; }
    static MetaValue i32(int32_t v) { return {MetaType::I32, int64_t(v), {}, {}}; }
    static MetaValue u64(uint64_t v) { return {MetaType::U64, v, {}, {}}; }
    static MetaValue f32(float v) { return {MetaType::F32, double(v), {}, {}}; }
    static MetaValue boolean(bool v) { return {MetaType::Bool, v, {}, {}}; }

    bool is_integer() const;
    bool is_float() const;
    // Numeric value of an integer/float/bool scalar (nullopt otherwise).
    std::optional<double> as_number() const;
    std::optional<int64_t> as_int() const;
    const std::string* as_string() const;
    std::string to_display_string(size_t max_array_items = 8) const;
};

using Metadata = std::map<std::string, MetaValue>;

}  // namespace ef
