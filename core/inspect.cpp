#include "core/inspect.h"

#include <cstdio>
#include <sstream>

#include "core/model_json.h"

namespace ef {

void split_tensor_name(const std::string& name, int& layer, std::string& role) {
    layer = -1;
    std::string rest = name;
    if (name.rfind("blk.", 0) == 0) {
        const auto dot = name.find('.', 4);
        if (dot != std::string::npos) {
            try {
                layer = std::stoi(name.substr(4, dot - 4));
                rest = name.substr(dot + 1);
            } catch (...) {
                layer = -1;
            }
        }
    }
    for (const char* suffix : {".weight", ".bias"}) {
        const std::string s = suffix;
        if (rest.size() > s.size() && rest.compare(rest.size() - s.size(), s.size(), s) == 0) {
            rest.resize(rest.size() - s.size());
            break;
        }
    }
    role = rest;
}

ModelSummary summarize(const Model& m) {
    ModelSummary s;
    s.path = m.source_path;
    s.format = m.source_format;
    s.architecture = m.architecture;
    s.config = m.config;
    s.metadata = m.metadata;
    s.vocab_model = m.vocab.model;
    s.vocab_size = m.vocab.tokens.size();
    s.layers.resize(m.layers.size());
    for (size_t i = 0; i < m.layers.size(); ++i) {
        s.layers[i].index = int(i);
        s.layers[i].desc = m.layers[i];
    }
    for (const auto& t : m.tensors) {
        TensorSummary ts;
        ts.name = t.name;
        ts.dtype = std::string(dtype_name(t.dtype));
        ts.shape = t.shape;
        ts.parameters = t.numel();
        ts.bytes = t.nbytes();
        split_tensor_name(t.name, ts.layer, ts.role);
        const size_t idx = s.tensors.size();
        if (ts.layer >= 0 && size_t(ts.layer) < s.layers.size()) {
            auto& l = s.layers[size_t(ts.layer)];
            l.parameters += ts.parameters;
            l.bytes += ts.bytes;
            l.tensors.push_back(idx);
        } else {
            s.global_tensors.push_back(idx);
        }
        s.parameters += ts.parameters;
        s.bytes += ts.bytes;
        s.tensors.push_back(std::move(ts));
    }
    s.bits_per_weight = s.parameters > 0 ? 8.0 * double(s.bytes) / double(s.parameters) : 0.0;
    s.ef = ef_model_bits(m);
    for (const auto& e : s.ef.tensors)
        for (auto& ts : s.tensors)
            if (ts.name == e.name) {
                ts.code_bits = e.code_bits;
                ts.effective_bits = e.effective_bits;
                ts.outliers = e.nnz;
            }
    return s;
}

namespace {

nlohmann::json tensor_json(const TensorSummary& t) {
    nlohmann::json j{{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"parameters", t.parameters},
                     {"bytes", t.bytes}, {"bits_per_weight", t.parameters ? 8.0 * double(t.bytes) / double(t.parameters) : 0.0}};
    if (t.code_bits > 0) {
        j["code_bits"] = t.code_bits;
        j["effective_bits"] = t.effective_bits;
        j["outliers"] = t.outliers;
    }
    return j;
}

std::string layer_label(const LayerDesc& d) {
    std::string s(mixer_name(d.mixer));
    if (d.mixer == MixerKind::Routed) s += " (attention | " + std::string(mixer_name(d.ssm_branch)) + ")";
    s += " + ";
    s += ffn_name(d.ffn);
    return s;
}

std::string human_bytes(uint64_t b) {
    char buf[64];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
    else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(1ull << 20));
    else if (b >= (1ull << 10)) std::snprintf(buf, sizeof buf, "%.2f KiB", double(b) / 1024.0);
    else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
    return buf;
}

}  // namespace

nlohmann::json summary_to_json(const ModelSummary& s) {
    nlohmann::json j;
    j["path"] = s.path;
    j["format"] = s.format;
    j["architecture"] = s.architecture;
    j["config"] = config_to_json(s.config);
    j["parameters"] = s.parameters;
    j["bytes"] = s.bytes;
    j["bits_per_weight"] = s.bits_per_weight;
    if (!s.ef.tensors.empty())
        j["edgefusion"] = {{"tensors", s.ef.tensors.size()}, {"ef_weights", s.ef.ef_weights},
                           {"ef_code_bits", s.ef.ef_code_bits}, {"ef_effective_bits", s.ef.ef_effective_bits},
                           {"weights", s.ef.weights}, {"code_bits", s.ef.code_bits},
                           {"effective_bits", s.ef.effective_bits}};
    j["vocab"] = {{"model", s.vocab_model}, {"size", s.vocab_size}};
    j["metadata"] = metadata_to_json(s.metadata);
    auto globals = nlohmann::json::array();
    for (size_t i : s.global_tensors) globals.push_back(tensor_json(s.tensors[i]));
    j["global_tensors"] = std::move(globals);
    auto layers = nlohmann::json::array();
    for (const auto& l : s.layers) {
        nlohmann::json lj{{"index", l.index}, {"mixer", mixer_name(l.desc.mixer)}, {"ffn", ffn_name(l.desc.ffn)},
                          {"parameters", l.parameters}, {"bytes", l.bytes}};
        if (l.desc.mixer == MixerKind::Routed) lj["ssm_branch"] = mixer_name(l.desc.ssm_branch);
        auto ts = nlohmann::json::array();
        for (size_t i : l.tensors) ts.push_back(tensor_json(s.tensors[i]));
        lj["tensors"] = std::move(ts);
        layers.push_back(std::move(lj));
    }
    j["layers"] = std::move(layers);
    return j;
}

std::string summary_to_text(const ModelSummary& s, bool tensors) {
    std::ostringstream os;
    const auto& c = s.config;
    os << "file          " << s.path << " (" << s.format << ")\n";
    os << "architecture  " << s.architecture << "\n";
    os << "parameters    " << s.parameters << "  (" << human_bytes(s.bytes) << ", ";
    char bpw[32];
    std::snprintf(bpw, sizeof bpw, "%.3f", s.bits_per_weight);
    os << bpw << " bits/weight)\n";
    if (!s.ef.tensors.empty()) {
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "edgefusion    %zu tensors, %lld weights: code %.3f, effective %.3f bits/weight; "
                      "all weights: code %.3f, effective %.3f\n",
                      s.ef.tensors.size(), static_cast<long long>(s.ef.ef_weights), s.ef.ef_code_bits,
                      s.ef.ef_effective_bits, s.ef.code_bits, s.ef.effective_bits);
        os << buf;
    }
    os << "dims          dim " << c.dim << ", layers " << c.n_layers << ", vocab " << c.vocab_size << ", context "
       << c.context_length;
    if (c.ffn_hidden) os << ", ffn " << c.ffn_hidden;
    os << "\n";
    if (c.attn.n_heads)
        os << "attention     heads " << c.attn.n_heads << ", kv heads " << c.attn.n_kv_heads << ", head dim "
           << c.attn.head_dim << ", rope theta " << c.attn.rope_theta << "\n";
    if (c.ssm.d_inner) {
        os << "ssm           d_inner " << c.ssm.d_inner << ", d_state " << c.ssm.d_state << ", d_conv " << c.ssm.d_conv;
        if (c.ssm.dt_rank) os << ", dt_rank " << c.ssm.dt_rank;
        if (c.ssm.n_heads) os << ", heads " << c.ssm.n_heads << ", groups " << c.ssm.n_groups;
        os << "\n";
    }
    os << "tokenizer     " << (s.vocab_model.empty() ? "none" : s.vocab_model) << ", " << s.vocab_size << " tokens\n";
    if (!s.metadata.empty()) {
        os << "metadata\n";
        for (const auto& [k, v] : s.metadata) os << "  " << k << " = " << v.to_display_string() << "\n";
    }
    const auto tensor_line = [&](const TensorSummary& t) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "    %-32s %-6s %-18s %12lld params %12s\n", t.name.c_str(), t.dtype.c_str(),
                      shape_to_string(t.shape).c_str(), static_cast<long long>(t.parameters), human_bytes(t.bytes).c_str());
        os << buf;
        if (t.code_bits > 0) {
            std::snprintf(buf, sizeof buf, "      code %.0f bits, effective %.3f bits/weight, %lld outliers\n", t.code_bits,
                          t.effective_bits, static_cast<long long>(t.outliers));
            os << buf;
        }
    };
    os << "global tensors\n";
    for (size_t i : s.global_tensors) tensor_line(s.tensors[i]);
    os << "layers\n";
    for (const auto& l : s.layers) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "  %3d  %-36s %12lld params %12s\n", l.index, layer_label(l.desc).c_str(),
                      static_cast<long long>(l.parameters), human_bytes(l.bytes).c_str());
        os << buf;
        if (tensors)
            for (size_t i : l.tensors) tensor_line(s.tensors[i]);
    }
    return os.str();
}

}  // namespace ef
