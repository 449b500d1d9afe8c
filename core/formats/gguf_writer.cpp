// GGUF writing: key/values from the model (metadata, architecture row, vocabulary), tensor infos
// with offsets laid out the way llama.cpp expects (info order, each padded to the alignment), then
// the data, all through an AtomicFileWriter so a failed or cancelled save leaves no partial file.
#include <cstring>
#include <set>
#include <unordered_set>

#include "core/arch/architecture.h"
#include "core/formats/gguf.h"

namespace ef::gguf {
namespace {

using std::to_string;

template <class T>
void put(std::vector<std::byte>& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}

void put_string(std::vector<std::byte>& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    const size_t at = out.size();
    out.resize(at + s.size());
    if (!s.empty()) std::memcpy(out.data() + at, s.data(), s.size());
}

uint64_t as_u64(const MetaValue& v) {
    if (const auto* u = std::get_if<uint64_t>(&v.scalar)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return uint64_t(*i);
    if (const auto* d = std::get_if<double>(&v.scalar)) return uint64_t(*d);
    if (const auto* b = std::get_if<bool>(&v.scalar)) return *b ? 1 : 0;
    return 0;
}
int64_t as_i64(const MetaValue& v) {
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return *i;
    if (const auto* d = std::get_if<double>(&v.scalar)) return int64_t(*d);
    return int64_t(as_u64(v));
}
double as_f64(const MetaValue& v) {
    if (const auto* d = std::get_if<double>(&v.scalar)) return *d;
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return double(*i);
    return double(as_u64(v));
}

// The value without its type id, encoded as `type` (arrays: element type, count, elements).
void put_value(std::vector<std::byte>& out, MetaType type, const MetaValue& v) {
    switch (type) {
        case MetaType::U8: put<uint8_t>(out, uint8_t(as_u64(v))); break;
        case MetaType::I8: put<int8_t>(out, int8_t(as_i64(v))); break;
        case MetaType::U16: put<uint16_t>(out, uint16_t(as_u64(v))); break;
        case MetaType::I16: put<int16_t>(out, int16_t(as_i64(v))); break;
        case MetaType::U32: put<uint32_t>(out, uint32_t(as_u64(v))); break;
        case MetaType::I32: put<int32_t>(out, int32_t(as_i64(v))); break;
        case MetaType::U64: put<uint64_t>(out, as_u64(v)); break;
        case MetaType::I64: put<int64_t>(out, as_i64(v)); break;
        case MetaType::F32: put<float>(out, float(as_f64(v))); break;
        case MetaType::F64: put<double>(out, as_f64(v)); break;
        case MetaType::Bool: put<uint8_t>(out, as_u64(v) != 0 ? 1 : 0); break;
        case MetaType::String: {
            const std::string* s = v.as_string();
            put_string(out, s ? *s : std::string());
            break;
        }
        case MetaType::Array:
            put<uint32_t>(out, uint32_t(value_type_of(v.elem_type)));
            put<uint64_t>(out, v.array.size());
            for (const auto& e : v.array) put_value(out, v.elem_type, e);
            break;
    }
}

}  // namespace

void append_kv(std::vector<std::byte>& out, const std::string& key, const MetaValue& v) {
    put_string(out, key);
    put<uint32_t>(out, uint32_t(value_type_of(v.type)));
    put_value(out, v.type, v);
}

std::vector<std::byte> encode_header(const std::vector<std::pair<std::string, MetaValue>>& kv,
                                     const std::vector<TensorInfo>& tensors, uint32_t version) {
    std::vector<std::byte> out;
    put<uint32_t>(out, kMagic);
    put<uint32_t>(out, version);
    put<uint64_t>(out, tensors.size());
    put<uint64_t>(out, kv.size());
    for (const auto& [k, v] : kv) append_kv(out, k, v);
    for (const auto& t : tensors) {
        put_string(out, t.name);
        put<uint32_t>(out, uint32_t(t.shape.size()));
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(out, uint64_t(*it));
        put<uint32_t>(out, type_traits(t.dtype).ggml_id);
        put<uint64_t>(out, t.offset);
    }
    return out;
}

Result<std::vector<std::pair<std::string, MetaValue>>> model_kv(const Model& model) {
    const ArchitectureInfo* arch = find_architecture(model.architecture);
    if (!arch) return make_error("cannot write GGUF: unknown architecture '" + model.architecture + "'");
    Metadata row;
    arch->write_gguf(model.config, model.layers, row);
    std::vector<std::pair<std::string, MetaValue>> vocab;
    vocab_to_kv(model.vocab, vocab);

    std::set<std::string> owned{"general.architecture", "general.alignment"};
    for (const auto& [k, v] : row) owned.insert(k);
    for (const auto& [k, v] : vocab) owned.insert(k);

    std::vector<std::pair<std::string, MetaValue>> out;
    out.emplace_back("general.architecture", MetaValue::str(std::string(arch->name)));
    out.emplace_back("general.alignment", MetaValue::u32(kDefaultAlignment));
    for (const auto& [k, v] : model.metadata)
        if (!owned.count(k)) out.emplace_back(k, v);
    for (auto& [k, v] : row) out.emplace_back(k, std::move(v));
    for (auto& kvp : vocab) out.push_back(std::move(kvp));
    return out;
}

Result<TensorInfo> tensor_info(const Tensor& t, uint64_t offset) {
    const std::string tw = "cannot write GGUF: tensor '" + t.name + "'";
    if (t.name.size() > kMaxNameLength)
        return make_error(tw + ": name longer than " + to_string(kMaxNameLength) + " bytes (llama.cpp's limit)");
    if (t.shape.size() > kMaxDims)
        return make_error(tw + " has " + to_string(t.shape.size()) + " dimensions (GGUF allows 4)");
    for (int64_t d : t.shape)
        if (d <= 0) return make_error(tw + " has shape " + shape_to_string(t.shape));
    const auto numel = shape_numel(t.shape);
    const auto& tr = type_traits(t.dtype);
    const auto bytes = numel ? dtype_bytes(t.dtype, *numel) : std::nullopt;
    if (!bytes || (!t.shape.empty() && t.shape.back() % tr.block_size != 0))
        return make_error(tw + ": shape " + shape_to_string(t.shape) + " does not fit " + std::string(tr.name));
    const uint64_t nbytes = bytes.value_or(0);
    if (nbytes != t.data.size())
        return make_error(tw + " has " + to_string(t.data.size()) + " bytes of data, expected " + to_string(nbytes));
    return TensorInfo{t.name, t.dtype, t.shape, offset, nbytes};
}

Result<std::vector<TensorInfo>> model_tensor_infos(const Model& model) {
    std::vector<TensorInfo> infos;
    infos.reserve(model.tensors.size());
    std::unordered_set<std::string> names;
    uint64_t offset = 0;
    for (const Tensor& t : model.tensors) {
        if (!names.insert(t.name).second) return make_error("cannot write GGUF: tensor '" + t.name + "' appears twice");
        auto info = tensor_info(t, offset);
        if (!info) return info.error();
        offset += padded_size(info->nbytes);
        infos.push_back(std::move(*info));
    }
    return infos;
}

Status write_model(const Model& model, const std::string& path, Progress& progress) {
    auto fail = [&](const std::string& m) { return make_error(path + ": " + m); };
    auto kv = model_kv(model);
    if (!kv) return fail(kv.message());
    auto infos = model_tensor_infos(model);
    if (!infos) return fail(infos.message());

    auto created = AtomicFileWriter::create(path);
    if (!created) return created.error();
    auto& w = *created.value();
    EF_TRY_STATUS(w.write(encode_header(kv.value(), infos.value())));
    EF_TRY_STATUS(w.pad_to_alignment(kDefaultAlignment));

    uint64_t total = 0, done = 0;
    for (const auto& t : infos.value()) total += t.nbytes;
    const uint64_t data_start = w.position();
    for (size_t i = 0; i < model.tensors.size(); ++i) {
        if (progress.cancelled()) return fail("save cancelled");
        const Tensor& t = model.tensors[i];
        if (w.position() != data_start + infos.value()[i].offset)
            return fail("internal error: tensor '" + t.name + "' is not at its recorded offset");
        EF_TRY_STATUS(w.write(t.data));
        EF_TRY_STATUS(w.pad_to_alignment(kDefaultAlignment));
        done += t.data.size();
        progress.report(total ? double(done) / double(total) : 1.0, "writing " + t.name);
    }
    if (progress.cancelled()) return fail("save cancelled");
    EF_TRY_STATUS(w.commit());
    progress.report(1.0, "done");
    return {};
}

}  // namespace ef::gguf
