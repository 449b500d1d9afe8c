// Small models for the HDF5 tests: an architecture row's own tensor list with deterministic
// pseudo-random weights in a mix of dtypes (token_embd F16, matrices Q8_0 where rows fit, output
// BF16, the rest F32), a vocabulary with SPM and byte-level tokens, and typed metadata.
#pragma once
#include <QByteArray>
#include <QCryptographicHash>
#include <QProcessEnvironment>
#include <QString>
#include <cstring>
#include <string>

#include "core/arch/architecture.h"
#include "core/model.h"
#include "core/model_json.h"

namespace ef::test {

inline float hdf5_test_random(uint64_t& state) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return float(double(state >> 11) / double(1ull << 53)) * 2.0f - 1.0f;  // [-1, 1)
}

inline Vocab hdf5_test_vocab(int64_t n) {
    Vocab v;
    v.model = "gpt2";
    v.pre = "llama-bpe";
    for (int64_t i = 0; i < n; ++i) {
        if (i == 0) v.tokens.push_back("<unk>");
        else if (i < 8) v.tokens.push_back("<0x0" + std::to_string(i) + ">");
        else if (i % 3 == 0) v.tokens.push_back("\xc4\xa0w" + std::to_string(i));   // "Ġw<i>"
        else v.tokens.push_back("\xe2\x96\x81t\xc3\xa9" + std::to_string(i));       // "▁té<i>"
        v.token_types.push_back(i == 0 ? 2 : i < 8 ? 6 : 1);
        v.scores.push_back(-0.25f * float(i) + 1.0f / 3.0f);
    }
    v.merges = {"\xc4\xa0 w", "t \xc3\xa9", "\xe2\x96\x81 t"};
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
    v.pad_id = 3;
    v.add_bos = false;
    v.max_token_length = 17;
    return v;
}

inline Metadata hdf5_test_metadata(const std::string& arch) {
    Metadata md;
    md["general.name"] = MetaValue::str("tiny " + arch + " \xe2\x9c\x93");
    md["general.file_type"] = MetaValue::u32(7);
    md["general.quantization_version"] = MetaValue::i32(-2);
    md["test.scale"] = MetaValue::f32(0.1f);
    md["test.flag"] = MetaValue::boolean(true);
    MetaValue arr;
    arr.type = MetaType::Array;
    arr.elem_type = MetaType::String;
    arr.array = {MetaValue::str("a"), MetaValue::str("b c")};
    md["test.list"] = arr;
    return md;
}

// Returns a Model with architecture "" and `error` set when the row cannot make one.
inline Model hdf5_test_model(const std::string& arch_name, std::string* error, int64_t dim = 64, int64_t vocab = 96) {
    Model m;
    const ArchitectureInfo* arch = find_architecture(arch_name);
    if (!arch) {
        *error = "no architecture row '" + arch_name + "'";
        return {};
    }
    m.architecture = std::string(arch->name);
    m.config.vocab_size = vocab;
    m.config.dim = dim;
    m.config.n_layers = 2;
    m.config.context_length = 64;
    arch->complete_config(m.config);
    m.layers = arch->default_layers(m.config);
    if (Status s = validate_config(*arch, m.config, m.layers); !s) {
        *error = s.message();
        return {};
    }
    uint64_t state = 0x51ed2701ull ^ std::hash<std::string>{}(arch_name);
    for (const TensorSpec& spec : arch->tensor_specs(m.config, m.layers)) {
        std::vector<float> v(size_t(shape_numel(spec.shape).value_or(0)));
        for (auto& x : v) x = 0.1f * hdf5_test_random(state);
        DType t = DType::F32;
        if (spec.name == "token_embd.weight") t = DType::F16;
        else if (spec.name == "output.weight") t = DType::BF16;
        else if (spec.shape.size() == 2 && spec.shape.back() % 32 == 0) t = DType::Q8_0;
        auto tensor = Tensor::from_f32(spec.name, spec.shape, v, t);
        if (!tensor) {
            *error = tensor.message();
            return {};
        }
        m.add(std::move(tensor.value()));
    }
    m.vocab = hdf5_test_vocab(vocab);
    m.metadata = hdf5_test_metadata(arch_name);
    return m;
}

// First difference between two models ("" when identical, bytes included).
inline std::string hdf5_model_difference(const Model& a, const Model& b) {
    if (a.architecture != b.architecture) return "architecture " + a.architecture + " vs " + b.architecture;
    if (!(a.config == b.config)) return "config " + config_to_json(a.config).dump() + " vs " + config_to_json(b.config).dump();
    if (a.layers != b.layers) return "layers differ";
    if (metadata_to_json(a.metadata) != metadata_to_json(b.metadata))
        return "metadata " + metadata_to_json(a.metadata).dump() + " vs " + metadata_to_json(b.metadata).dump();
    const Vocab &va = a.vocab, &vb = b.vocab;
    if (va.model != vb.model || va.pre != vb.pre) return "vocab model/pre differ";
    if (va.tokens != vb.tokens) return "vocab tokens differ";
    if (va.scores.size() != vb.scores.size() ||
        (!va.scores.empty() && std::memcmp(va.scores.data(), vb.scores.data(), va.scores.size() * 4) != 0))
        return "vocab scores differ";
    if (va.token_types != vb.token_types) return "vocab token types differ";
    if (va.merges != vb.merges) return "vocab merges differ";
    if (va.bos_id != vb.bos_id || va.eos_id != vb.eos_id || va.unk_id != vb.unk_id || va.pad_id != vb.pad_id ||
        va.add_bos != vb.add_bos || va.max_token_length != vb.max_token_length)
        return "vocab ids/flags differ";
    if (a.tensors.size() != b.tensors.size())
        return "tensor count " + std::to_string(a.tensors.size()) + " vs " + std::to_string(b.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        const Tensor &x = a.tensors[i], &y = b.tensors[i];
        if (x.name != y.name) return "tensor " + std::to_string(i) + ": " + x.name + " vs " + y.name;
        if (x.dtype != y.dtype) return x.name + ": dtype differs";
        if (x.shape != y.shape) return x.name + ": shape " + shape_to_string(x.shape) + " vs " + shape_to_string(y.shape);
        if (x.data.size() != y.data.size() ||
            (!x.data.empty() && std::memcmp(x.data.data(), y.data.data(), x.data.size()) != 0))
            return x.name + ": bytes differ";
    }
    return {};
}

inline QString sha256_hex(std::span<const std::byte> b) {
    return QString::fromLatin1(
        QCryptographicHash::hash(QByteArrayView(reinterpret_cast<const char*>(b.data()), qsizetype(b.size())),
                                 QCryptographicHash::Sha256)
            .toHex());
}

// Our filter plugin (built beside the tests) first, then Debian's plugin folder: the variable
// replaces HDF5's default search path, so both are listed.
inline QString hdf5_plugin_path() {
    QString build = QProcessEnvironment::systemEnvironment().value("EF_BUILD_DIR");
    if (build.isEmpty()) build = QStringLiteral(EF_BINARY_DIR);
    return build + "/hdf5-plugins:/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins";
}

}  // namespace ef::test
