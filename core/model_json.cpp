#include "core/model_json.h"

#include <array>
#include <set>

namespace ef {
using nlohmann::json;

namespace {

// One list of config fields drives both directions, so they cannot drift apart.
struct IntField { const char* key; int64_t ModelConfig::*top; int64_t AttentionConfig::*attn; int64_t SsmConfig::*ssm; };
struct FloatField { const char* key; float ModelConfig::*top; float AttentionConfig::*attn; };

const std::array<IntField, 15> kIntFields = {{
    {"vocab_size", &ModelConfig::vocab_size, nullptr, nullptr},
    {"dim", &ModelConfig::dim, nullptr, nullptr},
    {"n_layers", &ModelConfig::n_layers, nullptr, nullptr},
    {"context_length", &ModelConfig::context_length, nullptr, nullptr},
    {"ffn_hidden", &ModelConfig::ffn_hidden, nullptr, nullptr},
    {"attn.n_heads", nullptr, &AttentionConfig::n_heads, nullptr},
    {"attn.n_kv_heads", nullptr, &AttentionConfig::n_kv_heads, nullptr},
    {"attn.head_dim", nullptr, &AttentionConfig::head_dim, nullptr},
    {"attn.rope_dim", nullptr, &AttentionConfig::rope_dim, nullptr},
    {"ssm.d_conv", nullptr, nullptr, &SsmConfig::d_conv},
    {"ssm.d_inner", nullptr, nullptr, &SsmConfig::d_inner},
    {"ssm.d_state", nullptr, nullptr, &SsmConfig::d_state},
    {"ssm.dt_rank", nullptr, nullptr, &SsmConfig::dt_rank},
    {"ssm.n_groups", nullptr, nullptr, &SsmConfig::n_groups},
    {"ssm.n_heads", nullptr, nullptr, &SsmConfig::n_heads},
}};

const std::array<FloatField, 7> kFloatFields = {{
    {"norm_eps", &ModelConfig::norm_eps, nullptr},
    {"attn.rope_theta", nullptr, &AttentionConfig::rope_theta},
    {"attn.scale", nullptr, &AttentionConfig::scale},
    {"embedding_scale", &ModelConfig::embedding_scale, nullptr},
    {"residual_scale", &ModelConfig::residual_scale, nullptr},
    {"logit_scale", &ModelConfig::logit_scale, nullptr},
    {"router_temperature", &ModelConfig::router_temperature, nullptr},
}};

int64_t& int_ref(ModelConfig& c, const IntField& f) {
    if (f.top) return c.*f.top;
    if (f.attn) return c.attn.*f.attn;
    return c.ssm.*f.ssm;
}
float& float_ref(ModelConfig& c, const FloatField& f) { return f.top ? c.*f.top : c.attn.*f.attn; }

constexpr std::array<std::pair<MetaType, const char*>, 13> kMetaTypeNames = {{
    {MetaType::U8, "u8"}, {MetaType::I8, "i8"}, {MetaType::U16, "u16"}, {MetaType::I16, "i16"},
    {MetaType::U32, "u32"}, {MetaType::I32, "i32"}, {MetaType::F32, "f32"}, {MetaType::Bool, "bool"},
    {MetaType::String, "string"}, {MetaType::U64, "u64"}, {MetaType::I64, "i64"}, {MetaType::F64, "f64"},
    {MetaType::Array, "array"},
}};

const char* meta_type_name(MetaType t) {
    for (const auto& [k, n] : kMetaTypeNames)
        if (k == t) return n;
    return "?";
}
std::optional<MetaType> meta_type_from(const std::string& s) {
    for (const auto& [k, n] : kMetaTypeNames)
        if (s == n) return k;
    return std::nullopt;
}

json meta_scalar_to_json(const MetaValue& v) {
    if (const auto* s = v.as_string()) return *s;
    if (v.type == MetaType::Bool) return std::get<bool>(v.scalar);
    if (v.is_float()) return std::get<double>(v.scalar);
    if (const auto* u = std::get_if<uint64_t>(&v.scalar)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return *i;
    return nullptr;
}

json meta_value_to_json(const MetaValue& v) {
    json j;
    j["type"] = meta_type_name(v.type);
    if (v.type == MetaType::Array) {
        j["elem"] = meta_type_name(v.elem_type);
        json arr = json::array();
        for (const auto& e : v.array) arr.push_back(e.type == MetaType::Array ? meta_value_to_json(e) : meta_scalar_to_json(e));
        j["value"] = std::move(arr);
    } else {
        j["value"] = meta_scalar_to_json(v);
    }
    return j;
}

Result<MetaValue> meta_scalar_from_json(MetaType t, const json& j, const std::string& key) {
    MetaValue v;
    v.type = t;
    const auto bad = [&] { return make_error("metadata " + key + ": value does not match type " + meta_type_name(t)); };
    switch (t) {
        case MetaType::String:
            if (!j.is_string()) return bad();
            v.scalar = j.get<std::string>();
            break;
        case MetaType::Bool:
            if (!j.is_boolean()) return bad();
            v.scalar = j.get<bool>();
            break;
        case MetaType::F32: case MetaType::F64:
            if (!j.is_number()) return bad();
            v.scalar = j.get<double>();
            break;
        case MetaType::U8: case MetaType::U16: case MetaType::U32: case MetaType::U64:
            if (!j.is_number_unsigned()) return bad();
            v.scalar = j.get<uint64_t>();
            break;
        case MetaType::I8: case MetaType::I16: case MetaType::I32: case MetaType::I64:
            if (!j.is_number_integer()) return bad();
            v.scalar = j.get<int64_t>();
            break;
        case MetaType::Array:
            return bad();
    }
    return v;
}

Result<MetaValue> meta_value_from_json(const json& j, const std::string& key, int depth) {
    if (depth > 8) return make_error("metadata " + key + ": arrays nested too deeply");
    if (!j.is_object() || !j.contains("type") || !j.contains("value") || !j["type"].is_string())
        return make_error("metadata " + key + ": expected {\"type\", \"value\"}");
    const auto t = meta_type_from(j["type"].get<std::string>());
    if (!t) return make_error("metadata " + key + ": unknown type " + j["type"].get<std::string>());
    if (*t != MetaType::Array) return meta_scalar_from_json(*t, j["value"], key);
    if (!j.contains("elem") || !j["elem"].is_string() || !j["value"].is_array())
        return make_error("metadata " + key + ": malformed array");
    const auto et = meta_type_from(j["elem"].get<std::string>());
    if (!et) return make_error("metadata " + key + ": unknown element type");
    MetaValue v;
    v.type = MetaType::Array;
    v.elem_type = *et;
    for (const auto& e : j["value"]) {
        auto r = *et == MetaType::Array ? meta_value_from_json(e, key, depth + 1) : meta_scalar_from_json(*et, e, key);
        if (!r) return r.error();
        v.array.push_back(std::move(*r));
    }
    return v;
}

}  // namespace

json config_to_json(const ModelConfig& cfg) {
    json j = json::object();
    ModelConfig c = cfg;
    for (const auto& f : kIntFields) j[f.key] = int_ref(c, f);
    for (const auto& f : kFloatFields) j[f.key] = float_ref(c, f);
    j["tied_embeddings"] = cfg.tied_embeddings;
    return j;
}

Result<ModelConfig> config_from_json(const json& j) {
    if (!j.is_object()) return make_error("config: expected a JSON object");
    ModelConfig c;
    std::set<std::string> known{"tied_embeddings"};
    for (const auto& f : kIntFields) {
        known.insert(f.key);
        if (!j.contains(f.key)) continue;
        if (!j[f.key].is_number_integer()) return make_error(std::string("config: ") + f.key + " must be an integer");
        int_ref(c, f) = j[f.key].get<int64_t>();
    }
    for (const auto& f : kFloatFields) {
        known.insert(f.key);
        if (!j.contains(f.key)) continue;
        if (!j[f.key].is_number()) return make_error(std::string("config: ") + f.key + " must be a number");
        float_ref(c, f) = j[f.key].get<float>();
    }
    if (j.contains("tied_embeddings")) {
        if (!j["tied_embeddings"].is_boolean()) return make_error("config: tied_embeddings must be true or false");
        c.tied_embeddings = j["tied_embeddings"].get<bool>();
    }
    for (const auto& [k, v] : j.items())
        if (!known.count(k)) return make_error("config: unknown key " + k);
    return c;
}

std::optional<MixerKind> mixer_from_name(std::string_view s) {
    for (auto k : {MixerKind::Attention, MixerKind::Mamba1, MixerKind::Mamba2, MixerKind::Routed})
        if (mixer_name(k) == s) return k;
    return std::nullopt;
}

std::optional<FfnKind> ffn_from_name(std::string_view s) {
    for (auto k : {FfnKind::None, FfnKind::SwiGLU})
        if (ffn_name(k) == s) return k;
    return std::nullopt;
}

json layers_to_json(const std::vector<LayerDesc>& layers) {
    json arr = json::array();
    for (const auto& l : layers) {
        json e{{"mixer", mixer_name(l.mixer)}, {"ffn", ffn_name(l.ffn)}};
        if (l.mixer == MixerKind::Routed) e["ssm_branch"] = mixer_name(l.ssm_branch);
        arr.push_back(std::move(e));
    }
    return arr;
}

Result<std::vector<LayerDesc>> layers_from_json(const json& j) {
    if (!j.is_array()) return make_error("layers: expected a JSON array");
    std::vector<LayerDesc> out;
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& e = j[i];
        const std::string where = "layers[" + std::to_string(i) + "]";
        if (!e.is_object() || !e.contains("mixer") || !e.contains("ffn") || !e["mixer"].is_string() || !e["ffn"].is_string())
            return make_error(where + ": expected {\"mixer\", \"ffn\"}");
        LayerDesc l;
        const auto m = mixer_from_name(e["mixer"].get<std::string>());
        const auto f = ffn_from_name(e["ffn"].get<std::string>());
        if (!m) return make_error(where + ": unknown mixer " + e["mixer"].get<std::string>());
        if (!f) return make_error(where + ": unknown ffn " + e["ffn"].get<std::string>());
        l.mixer = *m;
        l.ffn = *f;
        if (e.contains("ssm_branch")) {
            const auto b = e["ssm_branch"].is_string() ? mixer_from_name(e["ssm_branch"].get<std::string>()) : std::nullopt;
            if (!b || (*b != MixerKind::Mamba1 && *b != MixerKind::Mamba2))
                return make_error(where + ": ssm_branch must be mamba1 or mamba2");
            l.ssm_branch = *b;
        }
        out.push_back(l);
    }
    return out;
}

json vocab_to_json(const Vocab& v) {
    return json{{"model", v.model}, {"pre", v.pre}, {"tokens", v.tokens}, {"scores", v.scores},
                {"token_types", v.token_types}, {"merges", v.merges}, {"bos_id", v.bos_id}, {"eos_id", v.eos_id},
                {"unk_id", v.unk_id}, {"pad_id", v.pad_id}, {"add_bos", v.add_bos},
                {"max_token_length", v.max_token_length}};
}

Result<Vocab> vocab_from_json(const json& j) {
    if (!j.is_object()) return make_error("vocab: expected a JSON object");
    Vocab v;
    try {
        v.model = j.value("model", std::string());
        v.pre = j.value("pre", std::string());
        v.tokens = j.value("tokens", std::vector<std::string>());
        v.scores = j.value("scores", std::vector<float>());
        v.token_types = j.value("token_types", std::vector<int32_t>());
        v.merges = j.value("merges", std::vector<std::string>());
        v.bos_id = j.value("bos_id", -1);
        v.eos_id = j.value("eos_id", -1);
        v.unk_id = j.value("unk_id", -1);
        v.pad_id = j.value("pad_id", -1);
        v.add_bos = j.value("add_bos", true);
        v.max_token_length = j.value("max_token_length", 0);
    } catch (const json::exception& e) {
        return make_error(std::string("vocab: ") + e.what());
    }
    if (!v.scores.empty() && v.scores.size() != v.tokens.size())
        return make_error("vocab: scores and tokens differ in length");
    if (!v.token_types.empty() && v.token_types.size() != v.tokens.size())
        return make_error("vocab: token_types and tokens differ in length");
    return v;
}

json metadata_to_json(const Metadata& m) {
    json j = json::object();
    for (const auto& [k, v] : m) j[k] = meta_value_to_json(v);
    return j;
}

Result<Metadata> metadata_from_json(const json& j) {
    if (!j.is_object()) return make_error("metadata: expected a JSON object");
    Metadata m;
    for (const auto& [k, v] : j.items()) {
        auto r = meta_value_from_json(v, k, 0);
        if (!r) return r.error();
        m[k] = std::move(*r);
    }
    return m;
}

}  // namespace ef
