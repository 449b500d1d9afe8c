#include "core/arch/blocks.h"

#include <cmath>

namespace ef::arch {

// ---- tensor specs ------------------------------------------------------------------------------

std::string blk(int layer, std::string_view rest) { return "blk." + std::to_string(layer) + "." + std::string(rest); }

static void add(std::vector<TensorSpec>& s, std::string name, Shape shape, int layer, bool optional = false) {
    s.push_back(TensorSpec{std::move(name), std::move(shape), layer, optional});
}

void add_norm_spec(std::vector<TensorSpec>& s, const std::string& name, int64_t n, int layer) { add(s, name, {n}, layer); }

void add_global_specs(std::vector<TensorSpec>& s, const ModelConfig& c) {
    add(s, "token_embd.weight", {c.vocab_size, c.dim}, -1);
    add(s, "output_norm.weight", {c.dim}, -1);
    // llama.cpp falls back to token_embd when output.weight is absent (tied embeddings).
    add(s, "output.weight", {c.vocab_size, c.dim}, -1, c.tied_embeddings);
}

void add_attention_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer) {
    const int64_t q = c.attn.n_heads * c.attn.head_dim, kv = c.attn.n_kv_heads * c.attn.head_dim;
    add(s, blk(layer, "attn_q.weight"), {q, c.dim}, layer);
    add(s, blk(layer, "attn_k.weight"), {kv, c.dim}, layer);
    add(s, blk(layer, "attn_v.weight"), {kv, c.dim}, layer);
    add(s, blk(layer, "attn_output.weight"), {c.dim, q}, layer);
}

void add_mamba1_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer, bool bcdt_norms) {
    const auto& m = c.ssm;
    add(s, blk(layer, "ssm_in.weight"), {2 * m.d_inner, c.dim}, layer);
    add(s, blk(layer, "ssm_conv1d.weight"), {m.d_inner, m.d_conv}, layer);
    add(s, blk(layer, "ssm_conv1d.bias"), {m.d_inner}, layer);
    add(s, blk(layer, "ssm_x.weight"), {m.dt_rank + 2 * m.d_state, m.d_inner}, layer);
    if (bcdt_norms) add(s, blk(layer, "ssm_dt_norm.weight"), {m.dt_rank}, layer);
    add(s, blk(layer, "ssm_dt.weight"), {m.d_inner, m.dt_rank}, layer);
    add(s, blk(layer, "ssm_dt.bias"), {m.d_inner}, layer);
    if (bcdt_norms) {
        add(s, blk(layer, "ssm_b_norm.weight"), {m.d_state}, layer);
        add(s, blk(layer, "ssm_c_norm.weight"), {m.d_state}, layer);
    }
    add(s, blk(layer, "ssm_a"), {m.d_inner, m.d_state}, layer);  // no ".weight" in llama.cpp
    add(s, blk(layer, "ssm_d"), {m.d_inner}, layer);
    add(s, blk(layer, "ssm_out.weight"), {c.dim, m.d_inner}, layer);
}

void add_mamba2_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer) {
    const auto& m = c.ssm;
    const int64_t conv_dim = m.d_inner + 2 * m.n_groups * m.d_state;
    // in_proj emits z, x, B, C and dt: d_inner + conv_dim + n_heads rows.
    add(s, blk(layer, "ssm_in.weight"), {m.d_inner + conv_dim + m.n_heads, c.dim}, layer);
    add(s, blk(layer, "ssm_conv1d.weight"), {conv_dim, m.d_conv}, layer);
    add(s, blk(layer, "ssm_conv1d.bias"), {conv_dim}, layer);
    add(s, blk(layer, "ssm_dt.bias"), {m.n_heads}, layer);
    add(s, blk(layer, "ssm_a"), {m.n_heads, 1}, layer);
    add(s, blk(layer, "ssm_d"), {m.n_heads, 1}, layer);
    add(s, blk(layer, "ssm_norm.weight"), {m.n_groups, m.n_groups > 0 ? m.d_inner / m.n_groups : 0}, layer);
    add(s, blk(layer, "ssm_out.weight"), {c.dim, m.d_inner}, layer);
}

void add_swiglu_specs(std::vector<TensorSpec>& s, const ModelConfig& c, int layer) {
    add(s, blk(layer, "ffn_norm.weight"), {c.dim}, layer);
    add(s, blk(layer, "ffn_gate.weight"), {c.ffn_hidden, c.dim}, layer);
    add(s, blk(layer, "ffn_down.weight"), {c.dim, c.ffn_hidden}, layer);
    add(s, blk(layer, "ffn_up.weight"), {c.ffn_hidden, c.dim}, layer);
}

std::vector<TensorSpec> plan_specs(const ModelConfig& c, const std::vector<LayerDesc>& layers, bool jamba_norms) {
    std::vector<TensorSpec> s;
    add_global_specs(s, c);
    for (size_t i = 0; i < layers.size(); ++i) {
        const int l = int(i);
        const LayerDesc& d = layers[i];
        add(s, blk(l, "attn_norm.weight"), {c.dim}, l);
        switch (d.mixer) {
            case MixerKind::Attention: add_attention_specs(s, c, l); break;
            case MixerKind::Mamba1: add_mamba1_specs(s, c, l, jamba_norms); break;
            case MixerKind::Mamba2: add_mamba2_specs(s, c, l); break;
            case MixerKind::Routed:
                add_attention_specs(s, c, l);
                if (d.ssm_branch == MixerKind::Mamba1) add_mamba1_specs(s, c, l, false);
                else add_mamba2_specs(s, c, l);
                // The gate logit alpha: g = sigmoid(alpha / T) is the attention share.
                add(s, blk(l, "router_gate"), {1}, l);
                break;
        }
        if (d.ffn == FfnKind::SwiGLU) add_swiglu_specs(s, c, l);
    }
    return s;
}

// ---- HF names ----------------------------------------------------------------------------------

HfNaming mamba_backbone_naming() {
    HfNaming n;
    n.embed = "backbone.embeddings.weight";
    n.final_norm = "backbone.norm_f.weight";
    n.layer_prefix = "backbone.layers.";
    n.attn_norm = "norm";
    n.ssm = "mixer";
    return n;
}

std::vector<HfTensorMapping> hf_map_from_specs(const std::vector<TensorSpec>& specs, const ModelConfig& c,
                                               const std::vector<LayerDesc>& layers, const HfNaming& n) {
    std::vector<HfTensorMapping> out;
    for (const auto& sp : specs) {
        HfTensorMapping m{sp.name, "", sp.shape, HfTransform::None};
        if (sp.layer < 0) {
            if (sp.name == "token_embd.weight") m.hf_name = n.embed;
            else if (sp.name == "output_norm.weight") m.hf_name = n.final_norm;
            else if (sp.name == "output.weight") m.hf_name = n.lm_head;
            else continue;
            out.push_back(std::move(m));
            continue;
        }
        const LayerDesc& d = layers.at(size_t(sp.layer));
        const bool mamba2 = d.mixer == MixerKind::Mamba2 || (d.mixer == MixerKind::Routed && d.ssm_branch == MixerKind::Mamba2);
        const std::string lp = n.layer_prefix + std::to_string(sp.layer) + ".";
        const std::string base = sp.name.substr(blk(sp.layer, "").size());  // e.g. "attn_q.weight"
        const std::string ssm = lp + n.ssm + ".";
        const std::string attn = lp + n.attn + ".";
        const std::string mlp = lp + n.mlp + ".";
        if (base == "attn_norm.weight") m.hf_name = lp + n.attn_norm + ".weight";
        else if (base == "ffn_norm.weight") m.hf_name = lp + n.ffn_norm + ".weight";
        else if (base == "attn_q.weight") {
            m.hf_name = attn + "q_proj.weight";
            if (n.rope_permute) m.transform = HfTransform::RopePermuteQ;
        } else if (base == "attn_k.weight") {
            m.hf_name = attn + "k_proj.weight";
            if (n.rope_permute) m.transform = HfTransform::RopePermuteK;
        } else if (base == "attn_v.weight") m.hf_name = attn + "v_proj.weight";
        else if (base == "attn_output.weight") m.hf_name = attn + "o_proj.weight";
        else if (base == "ffn_gate.weight" || base == "ffn_up.weight") {
            if (n.fused_gate_up) {
                m.hf_name = mlp + "input_linear.weight";
                m.hf_shape = {2 * c.ffn_hidden, c.dim};
                m.transform = base == "ffn_gate.weight" ? HfTransform::FusedRowsFirstHalf : HfTransform::FusedRowsSecondHalf;
            } else {
                m.hf_name = mlp + (base == "ffn_gate.weight" ? "gate_proj.weight" : "up_proj.weight");
            }
        } else if (base == "ffn_down.weight") m.hf_name = mlp + (n.fused_gate_up ? "output_linear.weight" : "down_proj.weight");
        else if (base == "ssm_in.weight") m.hf_name = ssm + "in_proj.weight";
        else if (base == "ssm_conv1d.weight") {
            m.hf_name = ssm + "conv1d.weight";
            m.hf_shape = {sp.shape[0], 1, sp.shape[1]};  // depthwise Conv1d: (channels, 1, kernel)
        } else if (base == "ssm_conv1d.bias") m.hf_name = ssm + "conv1d.bias";
        else if (base == "ssm_x.weight") m.hf_name = ssm + "x_proj.weight";
        else if (base == "ssm_dt.weight") m.hf_name = ssm + "dt_proj.weight";
        else if (base == "ssm_dt.bias") m.hf_name = ssm + (mamba2 ? "dt_bias" : "dt_proj.bias");
        else if (base == "ssm_dt_norm.weight") m.hf_name = ssm + "dt_layernorm.weight";
        else if (base == "ssm_b_norm.weight") m.hf_name = ssm + "b_layernorm.weight";
        else if (base == "ssm_c_norm.weight") m.hf_name = ssm + "c_layernorm.weight";
        else if (base == "ssm_a") {
            m.hf_name = ssm + "A_log";
            m.transform = HfTransform::NegExpOfLog;
            if (mamba2) m.hf_shape = {sp.shape[0]};
        } else if (base == "ssm_d") {
            m.hf_name = ssm + "D";
            if (mamba2) m.hf_shape = {sp.shape[0]};
        } else if (base == "ssm_norm.weight") {
            m.hf_name = ssm + "norm.weight";
            m.hf_shape = {c.ssm.d_inner};  // HF keeps one (d_inner) vector; canonical splits it per group
        } else if (base == "ssm_out.weight") m.hf_name = ssm + "out_proj.weight";
        else if (base == "router_gate") m.hf_name = lp + "router.gate_logit";
        else continue;
        out.push_back(std::move(m));
    }
    return out;
}

// ---- GGUF keys ---------------------------------------------------------------------------------

static std::string type_word(const MetaValue& v) {
    switch (v.type) {
        case MetaType::String: return "a string";
        case MetaType::Array: return "an array";
        case MetaType::Bool: return "a bool";
        case MetaType::F32:
        case MetaType::F64: return "a float";
        default: return "an integer";
    }
}

Status GgufKeys::get_int(std::string_view suffix, int64_t& out, bool required, int64_t min_value) const {
    const std::string k = key(suffix);
    auto it = kv_.find(k);
    if (it == kv_.end()) {
        if (required) return make_error("missing GGUF key '" + k + "'");
        return {};
    }
    const MetaValue& v = it->second;
    if (!v.is_integer()) return make_error("GGUF key '" + k + "' is " + type_word(v) + ", expected an integer");
    if (!v.as_int()) return make_error("GGUF key '" + k + "' is out of range");
    const int64_t x = *v.as_int();
    if (x < min_value)
        return make_error("GGUF key '" + k + "' = " + std::to_string(x) + ", must be at least " + std::to_string(min_value));
    out = x;
    return {};
}

Status GgufKeys::get_float(std::string_view suffix, float& out, bool required) const {
    const std::string k = key(suffix);
    auto it = kv_.find(k);
    if (it == kv_.end()) {
        if (required) return make_error("missing GGUF key '" + k + "'");
        return {};
    }
    const MetaValue& v = it->second;
    if (!(v.is_float() || v.is_integer()) || !v.as_number())
        return make_error("GGUF key '" + k + "' is " + type_word(v) + ", expected a float");
    const double x = *v.as_number();
    if (!std::isfinite(x)) return make_error("GGUF key '" + k + "' is not a finite number");
    out = float(x);
    return {};
}

Status GgufKeys::get_bool(std::string_view suffix, bool& out, bool required) const {
    const std::string k = key(suffix);
    auto it = kv_.find(k);
    if (it == kv_.end()) {
        if (required) return make_error("missing GGUF key '" + k + "'");
        return {};
    }
    const MetaValue& v = it->second;
    if (v.type != MetaType::Bool) return make_error("GGUF key '" + k + "' is " + type_word(v) + ", expected a bool");
    out = std::get<bool>(v.scalar);
    return {};
}

Status GgufKeys::get_int_or_array(std::string_view suffix, int64_t n, std::vector<int64_t>& out, bool required) const {
    const std::string k = key(suffix);
    auto it = kv_.find(k);
    if (it == kv_.end()) {
        if (required) return make_error("missing GGUF key '" + k + "'");
        return {};
    }
    const MetaValue& v = it->second;
    if (v.type != MetaType::Array) {
        int64_t x = 0;
        EF_TRY_STATUS(get_int(suffix, x, true, 0));
        out.assign(size_t(std::max<int64_t>(n, 0)), x);
        return {};
    }
    if (int64_t(v.array.size()) != n)
        return make_error("GGUF key '" + k + "' has " + std::to_string(v.array.size()) + " entries, expected one per layer (" +
                          std::to_string(n) + ")");
    out.clear();
    for (size_t i = 0; i < v.array.size(); ++i) {
        const MetaValue& e = v.array[i];
        if (!e.is_integer() || !e.as_int() || *e.as_int() < 0)
            return make_error("GGUF key '" + k + "' entry " + std::to_string(i) + " is not a non-negative integer");
        out.push_back(*e.as_int());
    }
    return {};
}

Status GgufKeys::get_uniform_int(std::string_view suffix, int64_t n_layers, int64_t& out, bool required,
                                 std::optional<int64_t> ignore) const {
    std::vector<int64_t> vals;
    EF_TRY_STATUS(get_int_or_array(suffix, n_layers, vals, required));
    std::optional<int64_t> first;
    size_t first_i = 0;
    for (size_t i = 0; i < vals.size(); ++i) {
        if (ignore && vals[i] == *ignore) continue;
        if (!first) {
            first = vals[i];
            first_i = i;
        } else if (vals[i] != *first) {
            return make_error("GGUF key '" + key(suffix) + "' differs between layers (" + std::to_string(*first) + " on layer " +
                              std::to_string(first_i) + ", " + std::to_string(vals[i]) + " on layer " + std::to_string(i) +
                              "); only one value is supported");
        }
    }
    if (first) out = *first;
    else if (!vals.empty() && ignore) out = *ignore;
    return {};
}

void GgufKeyWriter::u32(std::string_view suffix, int64_t v) {
    kv_[arch_ + "." + std::string(suffix)] = MetaValue::u32(uint32_t(v));
}
void GgufKeyWriter::f32(std::string_view suffix, float v) { kv_[arch_ + "." + std::string(suffix)] = MetaValue::f32(v); }
void GgufKeyWriter::boolean(std::string_view suffix, bool v) {
    kv_[arch_ + "." + std::string(suffix)] = MetaValue::boolean(v);
}
void GgufKeyWriter::i32_array(std::string_view suffix, const std::vector<int64_t>& v) {
    MetaValue a;
    a.type = MetaType::Array;
    a.elem_type = MetaType::I32;
    for (int64_t x : v) a.array.push_back(MetaValue::i32(int32_t(x)));
    kv_[arch_ + "." + std::string(suffix)] = std::move(a);
}

Status read_common_gguf(const GgufKeys& k, ModelConfig& c) {
    EF_TRY_STATUS(k.get_int("context_length", c.context_length, true, 1));
    EF_TRY_STATUS(k.get_int("embedding_length", c.dim, true, 1));
    EF_TRY_STATUS(k.get_int("block_count", c.n_layers, true, 1));
    EF_TRY_STATUS(k.get_int("vocab_size", c.vocab_size, false, 1));
    EF_TRY_STATUS(k.get_float("attention.layer_norm_rms_epsilon", c.norm_eps, true));
    EF_TRY_STATUS(k.get_uniform_int("feed_forward_length", c.n_layers, c.ffn_hidden, false));
    EF_TRY_STATUS(k.get_uniform_int("attention.head_count", c.n_layers, c.attn.n_heads, false, int64_t(0)));
    // head_count_kv defaults to head_count (llama.cpp); 0 marks an SSM layer in hybrids.
    c.attn.n_kv_heads = c.attn.n_heads;
    EF_TRY_STATUS(k.get_uniform_int("attention.head_count_kv", c.n_layers, c.attn.n_kv_heads, false, int64_t(0)));
    if (c.attn.n_heads > 0) {
        if (c.dim % c.attn.n_heads != 0 && !k.has("attention.key_length"))
            return make_error("GGUF key '" + k.key("embedding_length") + "' (" + std::to_string(c.dim) +
                              ") is not divisible by '" + k.key("attention.head_count") + "' (" +
                              std::to_string(c.attn.n_heads) + ") and no attention.key_length is given");
        c.attn.head_dim = c.dim / c.attn.n_heads;
        EF_TRY_STATUS(k.get_int("attention.key_length", c.attn.head_dim, false, 1));
        int64_t v_len = c.attn.head_dim;
        EF_TRY_STATUS(k.get_int("attention.value_length", v_len, false, 1));
        if (v_len != c.attn.head_dim)
            return make_error("GGUF keys '" + k.key("attention.key_length") + "' (" + std::to_string(c.attn.head_dim) +
                              ") and '" + k.key("attention.value_length") + "' (" + std::to_string(v_len) +
                              ") differ; only equal key and value head sizes are supported");
        c.attn.rope_dim = c.attn.head_dim;
        EF_TRY_STATUS(k.get_int("rope.dimension_count", c.attn.rope_dim, false, 0));
        EF_TRY_STATUS(k.get_float("rope.freq_base", c.attn.rope_theta, false));
        EF_TRY_STATUS(k.get_float("attention.scale", c.attn.scale, false));
    } else {
        c.attn = AttentionConfig{};
    }
    return {};
}

void write_common_gguf(GgufKeyWriter& w, const ModelConfig& c) {
    if (c.vocab_size > 0) w.u32("vocab_size", c.vocab_size);
    w.u32("context_length", c.context_length);
    w.u32("embedding_length", c.dim);
    w.u32("block_count", c.n_layers);
    w.u32("feed_forward_length", c.ffn_hidden);
    w.u32("attention.head_count", c.attn.n_heads);
    if (c.attn.n_heads > 0) {
        w.u32("attention.head_count_kv", c.attn.n_kv_heads);
        if (c.dim % c.attn.n_heads != 0 || c.attn.head_dim != c.dim / c.attn.n_heads) {
            w.u32("attention.key_length", c.attn.head_dim);
            w.u32("attention.value_length", c.attn.head_dim);
        }
        if (c.attn.rope_dim > 0) {
            w.u32("rope.dimension_count", c.attn.rope_dim);
            w.f32("rope.freq_base", c.attn.rope_theta);
        }
        if (c.attn.scale != 0.0f) w.f32("attention.scale", c.attn.scale);
    }
    w.f32("attention.layer_norm_rms_epsilon", c.norm_eps);
}

// ---- config.json -------------------------------------------------------------------------------

static std::string dump(const nlohmann::json& v) { return v.dump(); }

template <class Pred>
static Status find_alias(const nlohmann::json& j, std::initializer_list<std::string_view> names, bool required,
                         const char* what, Pred ok, const nlohmann::json** found, std::string* found_name) {
    *found = nullptr;
    if (!j.is_object()) return make_error("config.json: expected a JSON object");
    for (std::string_view nm : names) {
        auto it = j.find(std::string(nm));
        if (it == j.end() || it->is_null()) continue;
        if (!ok(*it)) return make_error("config.json: '" + std::string(nm) + "' is " + dump(*it) + ", expected " + what);
        if (!*found) {
            *found = &*it;
            *found_name = std::string(nm);
        } else if (**found != *it) {
            return make_error("config.json: '" + *found_name + "' (" + dump(**found) + ") and '" + std::string(nm) + "' (" +
                              dump(*it) + ") contradict each other");
        }
    }
    if (!*found && required) {
        std::string list;
        for (std::string_view nm : names) list += (list.empty() ? "'" : " or '") + std::string(nm) + "'";
        return make_error("config.json: missing " + list);
    }
    return {};
}

Status JsonKeys::get_int(std::initializer_list<std::string_view> names, int64_t& out, bool required, int64_t min_value) const {
    const nlohmann::json* v = nullptr;
    std::string nm;
    EF_TRY_STATUS(find_alias(j_, names, required, "an integer",
                             [](const nlohmann::json& x) { return x.is_number_integer(); }, &v, &nm));
    if (!v) return {};
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))
        return make_error("config.json: '" + nm + "' is out of range");
    const int64_t x = v->get<int64_t>();
    if (x < min_value)
        return make_error("config.json: '" + nm + "' = " + std::to_string(x) + ", must be at least " + std::to_string(min_value));
    out = x;
    return {};
}

Status JsonKeys::get_float(std::initializer_list<std::string_view> names, float& out, bool required) const {
    const nlohmann::json* v = nullptr;
    std::string nm;
    EF_TRY_STATUS(find_alias(j_, names, required, "a number", [](const nlohmann::json& x) { return x.is_number(); }, &v, &nm));
    if (!v) return {};
    const double x = v->get<double>();
    if (!std::isfinite(x)) return make_error("config.json: '" + nm + "' is not a finite number");
    out = float(x);
    return {};
}

Status JsonKeys::get_bool(std::initializer_list<std::string_view> names, bool& out, bool required) const {
    const nlohmann::json* v = nullptr;
    std::string nm;
    EF_TRY_STATUS(find_alias(j_, names, required, "true or false", [](const nlohmann::json& x) { return x.is_boolean(); }, &v, &nm));
    if (v) out = v->get<bool>();
    return {};
}

Status JsonKeys::get_string(std::string_view name, std::string& out, bool required) const {
    const nlohmann::json* v = nullptr;
    std::string nm;
    EF_TRY_STATUS(find_alias(j_, {name}, required, "a string", [](const nlohmann::json& x) { return x.is_string(); }, &v, &nm));
    if (v) out = v->get<std::string>();
    return {};
}

Status check_hf_architectures(const nlohmann::json& j, std::string_view hf_arch) {
    if (!j.is_object()) return make_error("config.json: expected a JSON object");
    auto it = j.find("architectures");
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_array()) return make_error("config.json: 'architectures' must be a list");
    for (const auto& a : *it)
        if (a.is_string() && a.get<std::string>() == hf_arch) return {};
    return make_error("config.json: 'architectures' is " + it->dump() + ", expected it to contain \"" + std::string(hf_arch) + "\"");
}

// ---- config helpers ----------------------------------------------------------------------------

void complete_attention(ModelConfig& c, bool rope) {
    auto& a = c.attn;
    if (a.n_heads == 0 && c.dim > 0) {
        int64_t hd = 64;
        while (hd > 1 && c.dim % hd != 0) hd /= 2;
        a.n_heads = c.dim / hd;
    }
    if (a.n_kv_heads == 0) a.n_kv_heads = a.n_heads;
    if (a.head_dim == 0 && a.n_heads > 0 && c.dim % a.n_heads == 0) a.head_dim = c.dim / a.n_heads;
    if (!rope) a.rope_dim = 0;
    else if (a.rope_dim == 0) a.rope_dim = a.head_dim;
}

void complete_ffn(ModelConfig& c) {
    if (c.ffn_hidden != 0) return;
    const int64_t x = 8 * c.dim / 3;
    const int64_t m = x >= 256 ? 256 : 32;  // K-quant rows of ffn_down need multiples of 256
    c.ffn_hidden = (x + m - 1) / m * m;
}

void complete_mamba1(ModelConfig& c) {
    auto& s = c.ssm;
    if (s.d_inner == 0) s.d_inner = 2 * c.dim;
    if (s.d_conv == 0) s.d_conv = 4;
    if (s.d_state == 0) s.d_state = 16;
    if (s.dt_rank == 0) s.dt_rank = (c.dim + 15) / 16;
}

void complete_mamba2(ModelConfig& c) {
    auto& s = c.ssm;
    if (s.d_inner == 0) s.d_inner = 2 * c.dim;
    if (s.d_conv == 0) s.d_conv = 4;
    if (s.d_state == 0) s.d_state = c.dim >= 512 ? 128 : 16;
    if (s.n_groups == 0) s.n_groups = 1;
    if (s.n_heads == 0 && s.d_inner > 0) {
        int64_t hd = 64;
        while (hd > 1 && s.d_inner % hd != 0) hd /= 2;
        s.n_heads = s.d_inner / hd;
    }
}

Status require(bool ok, const std::string& message) {
    if (ok) return {};
    return make_error(message);
}

Status check_plan(std::string_view arch, const std::vector<LayerDesc>& layers, std::initializer_list<MixerKind> allowed,
                  FfnKind ffn) {
    for (size_t i = 0; i < layers.size(); ++i) {
        bool ok = false;
        for (MixerKind k : allowed) ok = ok || layers[i].mixer == k;
        if (!ok)
            return make_error(std::string(arch) + ": layer " + std::to_string(i) + " has a " +
                              std::string(mixer_name(layers[i].mixer)) + " mixer, which this architecture does not have");
        if (layers[i].ffn != ffn)
            return make_error(std::string(arch) + ": layer " + std::to_string(i) + " has FFN '" +
                              std::string(ffn_name(layers[i].ffn)) + "', expected '" + std::string(ffn_name(ffn)) + "'");
    }
    return {};
}

Status check_no_granite_scales(std::string_view arch, const ModelConfig& c) {
    if (c.embedding_scale != 1.0f || c.residual_scale != 1.0f || c.logit_scale != 1.0f)
        return make_error(std::string(arch) + " has no embedding/residual/logit multipliers (they must be 1)");
    return {};
}

Status check_no_router(std::string_view arch, const ModelConfig& c) {
    if (c.router_temperature != 1.0f)
        return make_error(std::string(arch) + " has no router; router_temperature must be 1");
    return {};
}

std::vector<LayerDesc> periodic_plan(int64_t n, int64_t period, int64_t offset, LayerDesc attn, LayerDesc ssm) {
    std::vector<LayerDesc> v;
    for (int64_t i = 0; i < n; ++i) v.push_back(period > 0 && i % period == offset ? attn : ssm);
    return v;
}

}  // namespace ef::arch
