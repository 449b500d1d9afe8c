// GGUF shared pieces: the value-type numbering, tokenizer keys <-> Vocab, and the format row.
#include "core/formats/gguf.h"

#include <array>
#include <cstring>
#include <limits>

namespace ef {
namespace gguf {
namespace {

using std::to_string;

constexpr std::array<std::pair<MetaType, ValueType>, 13> kTypeMap = {{
    {MetaType::U8, ValueType::U8},     {MetaType::I8, ValueType::I8},       {MetaType::U16, ValueType::U16},
    {MetaType::I16, ValueType::I16},   {MetaType::U32, ValueType::U32},     {MetaType::I32, ValueType::I32},
    {MetaType::F32, ValueType::F32},   {MetaType::Bool, ValueType::Bool},   {MetaType::String, ValueType::String},
    {MetaType::Array, ValueType::Array}, {MetaType::U64, ValueType::U64},   {MetaType::I64, ValueType::I64},
    {MetaType::F64, ValueType::F64},
}};

const char* type_label(const MetaValue& v) {
    switch (v.type) {
        case MetaType::U8: return "u8";
        case MetaType::I8: return "i8";
        case MetaType::U16: return "u16";
        case MetaType::I16: return "i16";
        case MetaType::U32: return "u32";
        case MetaType::I32: return "i32";
        case MetaType::F32: return "f32";
        case MetaType::Bool: return "bool";
        case MetaType::String: return "string";
        case MetaType::U64: return "u64";
        case MetaType::I64: return "i64";
        case MetaType::F64: return "f64";
        case MetaType::Array: return "array";
    }
    return "?";
}

// Integer value of a scalar whatever alternative holds it.
std::optional<int64_t> int_of(const MetaValue& v) {
    if (v.type == MetaType::Array || v.type == MetaType::String || v.type == MetaType::F32 ||
        v.type == MetaType::F64)
        return std::nullopt;
    if (const auto* u = std::get_if<uint64_t>(&v.scalar))
        return *u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::nullopt : std::optional<int64_t>(int64_t(*u));
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return *i;
    if (const auto* b = std::get_if<bool>(&v.scalar)) return *b ? 1 : 0;
    return std::nullopt;
}

std::optional<double> number_of(const MetaValue& v) {
    if (const auto* d = std::get_if<double>(&v.scalar)) return *d;
    if (auto i = int_of(v)) return double(*i);
    return std::nullopt;
}

MetaValue array_of(MetaType elem, std::vector<MetaValue> items) {
    MetaValue v;
    v.type = MetaType::Array;
    v.elem_type = elem;
    v.array = std::move(items);
    return v;
}

}  // namespace

ValueType value_type_of(MetaType t) {
    for (const auto& [m, g] : kTypeMap)
        if (m == t) return g;
    return ValueType::U8;
}

std::optional<MetaType> meta_type_of(uint32_t id) {
    for (const auto& [m, g] : kTypeMap)
        if (uint32_t(g) == id) return m;
    return std::nullopt;
}

Status vocab_from_kv(Metadata& kv, Vocab& vocab, const std::string& origin) {
    auto err = [&](const std::string& m) { return make_error(origin + ": " + m); };
    auto take = [&](const char* key) -> std::optional<MetaValue> {
        auto it = kv.find(key);
        if (it == kv.end()) return std::nullopt;
        MetaValue v = std::move(it->second);
        kv.erase(it);
        return v;
    };
    auto want_string = [&](const char* key, std::string& dst) -> Status {
        if (auto v = take(key)) {
            const std::string* s = v->as_string();
            if (!s) return err(std::string(key) + " must be a string, found " + type_label(*v));
            dst = *s;
        }
        return {};
    };
    EF_TRY_STATUS(want_string("tokenizer.ggml.model", vocab.model));
    EF_TRY_STATUS(want_string("tokenizer.ggml.pre", vocab.pre));

    // Arrays the parser did not read directly (other element types, or no ParseOptions::vocab).
    auto want_array = [&](const char* key, auto&& convert) -> Status {
        auto v = take(key);
        if (!v) return {};
        if (v->type != MetaType::Array) return err(std::string(key) + " must be an array, found " + type_label(*v));
        for (size_t i = 0; i < v->array.size(); ++i)
            if (!convert(v->array[i], i)) return err(std::string(key) + "[" + to_string(i) + "] has the wrong type");
        return {};
    };
    if (kv.count("tokenizer.ggml.tokens")) vocab.tokens.clear();
    EF_TRY_STATUS(want_array("tokenizer.ggml.tokens", [&](const MetaValue& e, size_t) {
        const std::string* s = e.as_string();
        if (s) vocab.tokens.push_back(*s);
        return s != nullptr;
    }));
    if (kv.count("tokenizer.ggml.merges")) vocab.merges.clear();
    EF_TRY_STATUS(want_array("tokenizer.ggml.merges", [&](const MetaValue& e, size_t) {
        const std::string* s = e.as_string();
        if (s) vocab.merges.push_back(*s);
        return s != nullptr;
    }));
    if (kv.count("tokenizer.ggml.scores")) vocab.scores.clear();
    EF_TRY_STATUS(want_array("tokenizer.ggml.scores", [&](const MetaValue& e, size_t) {
        auto d = e.type == MetaType::Array || e.type == MetaType::String ? std::nullopt : number_of(e);
        if (d) vocab.scores.push_back(float(*d));
        return d.has_value();
    }));
    if (kv.count("tokenizer.ggml.token_type")) vocab.token_types.clear();
    EF_TRY_STATUS(want_array("tokenizer.ggml.token_type", [&](const MetaValue& e, size_t) {
        auto i = int_of(e);
        const bool ok = i && *i >= std::numeric_limits<int32_t>::min() && *i <= std::numeric_limits<int32_t>::max();
        if (ok) vocab.token_types.push_back(int32_t(*i));
        return ok;
    }));

    struct IdKey { const char* key; int32_t* dst; };
    for (const IdKey& k : {IdKey{"tokenizer.ggml.bos_token_id", &vocab.bos_id},
                           IdKey{"tokenizer.ggml.eos_token_id", &vocab.eos_id},
                           IdKey{"tokenizer.ggml.unknown_token_id", &vocab.unk_id},
                           IdKey{"tokenizer.ggml.padding_token_id", &vocab.pad_id}}) {
        if (auto v = take(k.key)) {
            auto i = int_of(*v);
            if (!i || v->type == MetaType::Bool || *i > std::numeric_limits<int32_t>::max())
                return err(std::string(k.key) + " must be a token id (integer), found " + type_label(*v));
            *k.dst = int32_t(*i);
        }
    }
    if (auto v = take("tokenizer.ggml.add_bos_token")) {
        if (v->type != MetaType::Bool) return err(std::string("tokenizer.ggml.add_bos_token must be a bool, found ") + type_label(*v));
        vocab.add_bos = std::get<bool>(v->scalar);
    }

    const size_t n = vocab.tokens.size();
    if (!vocab.scores.empty() && vocab.scores.size() != n)
        return err("tokenizer.ggml.scores has " + to_string(vocab.scores.size()) + " entries but there are " +
                   to_string(n) + " tokens");
    if (!vocab.token_types.empty() && vocab.token_types.size() != n)
        return err("tokenizer.ggml.token_type has " + to_string(vocab.token_types.size()) +
                   " entries but there are " + to_string(n) + " tokens");
    return {};
}

void vocab_to_kv(const Vocab& v, std::vector<std::pair<std::string, MetaValue>>& out) {
    const bool any = !v.empty();
    if (any || !v.model.empty()) out.emplace_back("tokenizer.ggml.model", MetaValue::str(v.model));
    if (!v.pre.empty()) out.emplace_back("tokenizer.ggml.pre", MetaValue::str(v.pre));
    if (!v.tokens.empty()) {
        std::vector<MetaValue> a;
        a.reserve(v.tokens.size());
        for (const auto& t : v.tokens) a.push_back(MetaValue::str(t));
        out.emplace_back("tokenizer.ggml.tokens", array_of(MetaType::String, std::move(a)));
    }
    if (!v.scores.empty()) {
        std::vector<MetaValue> a;
        a.reserve(v.scores.size());
        for (float s : v.scores) a.push_back(MetaValue::f32(s));
        out.emplace_back("tokenizer.ggml.scores", array_of(MetaType::F32, std::move(a)));
    }
    if (!v.token_types.empty()) {
        std::vector<MetaValue> a;
        a.reserve(v.token_types.size());
        for (int32_t t : v.token_types) a.push_back(MetaValue::i32(t));
        out.emplace_back("tokenizer.ggml.token_type", array_of(MetaType::I32, std::move(a)));
    }
    if (!v.merges.empty()) {
        std::vector<MetaValue> a;
        a.reserve(v.merges.size());
        for (const auto& m : v.merges) a.push_back(MetaValue::str(m));
        out.emplace_back("tokenizer.ggml.merges", array_of(MetaType::String, std::move(a)));
    }
    // llama.cpp reads token ids as u32; -1 (none) is expressed by leaving the key out.
    if (v.bos_id >= 0) out.emplace_back("tokenizer.ggml.bos_token_id", MetaValue::u32(uint32_t(v.bos_id)));
    if (v.eos_id >= 0) out.emplace_back("tokenizer.ggml.eos_token_id", MetaValue::u32(uint32_t(v.eos_id)));
    if (v.unk_id >= 0) out.emplace_back("tokenizer.ggml.unknown_token_id", MetaValue::u32(uint32_t(v.unk_id)));
    if (v.pad_id >= 0) out.emplace_back("tokenizer.ggml.padding_token_id", MetaValue::u32(uint32_t(v.pad_id)));
    if (any || !v.add_bos) out.emplace_back("tokenizer.ggml.add_bos_token", MetaValue::boolean(v.add_bos));
}

}  // namespace gguf

const FormatHandler& gguf_format_handler() {
    static const FormatHandler h{
        "gguf",
        {".gguf"},
        [](std::span<const std::byte> head) {
            return head.size() >= 4 && std::memcmp(head.data(), "GGUF", 4) == 0;
        },
        [](const std::string& path, const LoadOptions& opts, Progress& progress) {
            return gguf::read_model(path, opts, progress);
        },
        [](const Model& model, const std::string& path, const SaveOptions&, Progress& progress) {
            return gguf::write_model(model, path, progress);
        },
    };
    return h;
}

}  // namespace ef
