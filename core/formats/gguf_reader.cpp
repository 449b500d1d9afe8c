// GGUF reading: header parsing with every count bounded by the file size, then the Model built on
// top of the mapped file (tensor data are spans into the mapping, never copies).
#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/arch/architecture.h"
#include "core/formats/gguf.h"

namespace ef::gguf {
namespace {

using std::to_string;

// Sequential reader over the file image. The first failure is latched in `err`; every read after
// it fails too, so callers can chain reads and check once.
struct Cursor {
    std::span<const std::byte> b;
    uint64_t pos = 0;
    std::string err;

    uint64_t left() const { return pos <= b.size() ? b.size() - pos : 0; }
    bool fail(std::string m) {
        if (err.empty()) err = std::move(m);
        return false;
    }
    bool truncated(const std::string& what, uint64_t need) {
        return fail("truncated file: " + what + " needs " + to_string(need) + " bytes at offset " +
                    to_string(pos) + " but only " + to_string(left()) + " remain");
    }
    // `suffix` is appended to `what` only when building an error, so hot loops allocate nothing.
    template <class T>
    bool get(T& v, const std::string& what, const char* suffix = "") {
        if (!err.empty()) return false;
        if (left() < sizeof(T)) return truncated(what + suffix, sizeof(T));
        std::memcpy(&v, b.data() + pos, sizeof(T));
        pos += sizeof(T);
        return true;
    }
    bool get_string(std::string& s, const std::string& what) {
        uint64_t n = 0;
        if (!get(n, what, " (string length)")) return false;
        if (n > left())
            return fail("truncated or corrupt file: " + what + ": string length " + to_string(n) + " at offset " +
                        to_string(pos - 8) + " exceeds the " + to_string(left()) + " bytes left");
        s.assign(reinterpret_cast<const char*>(b.data() + pos), size_t(n));
        pos += n;
        return true;
    }
};

// Smallest encoded size of one value of a type; bounds element counts before allocating.
uint64_t min_encoded_size(ValueType t) {
    switch (t) {
        case ValueType::U8: case ValueType::I8: case ValueType::Bool: return 1;
        case ValueType::U16: case ValueType::I16: return 2;
        case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
        case ValueType::U64: case ValueType::I64: case ValueType::F64: case ValueType::String: return 8;
        case ValueType::Array: return 12;  // u32 type + u64 count
    }
    return 1;
}

constexpr int kMaxArrayDepth = 8;           // nested arrays deeper than this are not real metadata
constexpr uint64_t kMaxMetaElements = 1ull << 24;  // MetaValue array elements per file (memory bound)

template <class T>
bool read_scalar(Cursor& c, MetaValue& out, MetaType mt, const std::string& what) {
    T v{};
    if (!c.get(v, what)) return false;
    out.type = mt;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
        out.scalar = double(v);
    else if constexpr (std::is_signed_v<T>)
        out.scalar = int64_t(v);
    else
        out.scalar = uint64_t(v);
    return true;
}

bool read_value(Cursor& c, uint32_t type_id, MetaValue& out, int depth, const std::string& what,
                uint64_t& element_budget) {
    const auto mt = meta_type_of(type_id);
    if (!mt) return c.fail(what + ": unknown value type " + to_string(type_id));
    switch (*mt) {
        case MetaType::U8: return read_scalar<uint8_t>(c, out, *mt, what);
        case MetaType::I8: return read_scalar<int8_t>(c, out, *mt, what);
        case MetaType::U16: return read_scalar<uint16_t>(c, out, *mt, what);
        case MetaType::I16: return read_scalar<int16_t>(c, out, *mt, what);
        case MetaType::U32: return read_scalar<uint32_t>(c, out, *mt, what);
        case MetaType::I32: return read_scalar<int32_t>(c, out, *mt, what);
        case MetaType::U64: return read_scalar<uint64_t>(c, out, *mt, what);
        case MetaType::I64: return read_scalar<int64_t>(c, out, *mt, what);
        case MetaType::F32: return read_scalar<float>(c, out, *mt, what);
        case MetaType::F64: return read_scalar<double>(c, out, *mt, what);
        case MetaType::Bool: {
            uint8_t v = 0;
            if (!c.get(v, what)) return false;
            out.type = MetaType::Bool;
            out.scalar = v != 0;
            return true;
        }
        case MetaType::String: {
            std::string s;
            if (!c.get_string(s, what)) return false;
            out.type = MetaType::String;
            out.scalar = std::move(s);
            return true;
        }
        case MetaType::Array: {
            if (depth >= kMaxArrayDepth)
                return c.fail(what + ": arrays nested deeper than " + to_string(kMaxArrayDepth) + " levels");
            uint32_t elem_id = 0;
            uint64_t count = 0;
            if (!c.get(elem_id, what, " (array element type)") || !c.get(count, what, " (array length)"))
                return false;
            const auto emt = meta_type_of(elem_id);
            if (!emt) return c.fail(what + ": unknown array element type " + to_string(elem_id));
            const uint64_t min_size = min_encoded_size(value_type_of(*emt));
            if (count > c.left() / min_size)
                return c.fail("truncated or corrupt file: " + what + ": array length " + to_string(count) +
                              " cannot fit in the " + to_string(c.left()) + " bytes left");
            if (count > element_budget)
                return c.fail(what + ": array of " + to_string(count) +
                              " elements exceeds the metadata size this reader accepts");
            element_budget -= count;
            out.type = MetaType::Array;
            out.elem_type = *emt;
            out.array.clear();
            out.array.resize(size_t(count));
            for (uint64_t i = 0; i < count; ++i)
                if (!read_value(c, elem_id, out.array[size_t(i)], depth + 1, what, element_budget)) return false;
            return true;
        }
    }
    return c.fail(what + ": unknown value type " + to_string(type_id));
}

// Reads a tokenizer array straight into a vector when its element type is the expected one
// (handled = true). Another element type is left unconsumed (handled = false) for the generic
// path. Returns false only on a read error.
template <class T>
bool read_direct_array(Cursor& c, ValueType want, std::vector<T>& dst, const std::string& what, bool& handled) {
    handled = false;
    const uint64_t start = c.pos;
    uint32_t elem_id = 0;
    uint64_t count = 0;
    if (!c.get(elem_id, what, " (array element type)") || !c.get(count, what, " (array length)")) return false;
    if (elem_id != uint32_t(want)) {
        c.pos = start;
        return true;
    }
    handled = true;
    if (count > c.left() / min_encoded_size(want))
        return c.fail("truncated or corrupt file: " + what + ": array length " + to_string(count) +
                      " cannot fit in the " + to_string(c.left()) + " bytes left");
    dst.clear();
    dst.resize(size_t(count));
    for (uint64_t i = 0; i < count; ++i) {
        if constexpr (std::is_same_v<T, std::string>) {
            if (!c.get_string(dst[size_t(i)], what)) return false;
        } else {
            if (!c.get(dst[size_t(i)], what)) return false;
        }
    }
    return true;
}

bool read_tensor_info(Cursor& c, uint64_t index, uint64_t n_tensors, TensorInfo& ti) {
    const std::string what = "tensor info " + to_string(index) + " of " + to_string(n_tensors);
    if (!c.get_string(ti.name, what + " name")) return false;
    const std::string tw = what + " ('" + ti.name + "')";
    uint32_t n_dims = 0;
    if (!c.get(n_dims, tw + " n_dims")) return false;
    if (n_dims > kMaxDims)
        return c.fail(tw + ": " + to_string(n_dims) + " dimensions (GGUF allows at most " + to_string(kMaxDims) + ")");
    Shape ne(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t v = 0;
        if (!c.get(v, tw + " ne[" + to_string(d) + "]")) return false;
        if (v == 0 || v > uint64_t(std::numeric_limits<int64_t>::max()))
            return c.fail(tw + ": dimension ne[" + to_string(d) + "] = " + to_string(int64_t(v)) +
                          " (must be positive)");
        ne[d] = int64_t(v);
    }
    uint32_t type_id = 0;
    if (!c.get(type_id, tw + " type") || !c.get(ti.offset, tw + " offset")) return false;
    const auto dt = dtype_from_ggml_id(type_id);
    if (!dt) return c.fail(tw + ": unknown or unsupported ggml type id " + to_string(type_id));
    ti.dtype = *dt;
    ti.shape.assign(ne.rbegin(), ne.rend());
    const auto numel = shape_numel(ti.shape);
    if (!numel) return c.fail(tw + ": element count of shape " + shape_to_string(ti.shape) + " overflows");
    const auto& tr = type_traits(ti.dtype);
    if (n_dims > 0 && ne[0] % tr.block_size != 0)
        return c.fail(tw + ": row length " + to_string(ne[0]) + " is not a multiple of the " +
                      std::string(tr.name) + " block size " + to_string(tr.block_size));
    const auto nbytes = dtype_bytes(ti.dtype, *numel);
    if (!nbytes) return c.fail(tw + ": byte size of shape " + shape_to_string(ti.shape) + " overflows");
    ti.nbytes = *nbytes;
    return true;
}

bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

Result<Header> parse_header(std::span<const std::byte> file, const std::string& origin, const ParseOptions& opts) {
    auto err = [&](const std::string& m) { return make_error(origin + ": " + m); };
    Cursor c;
    c.b = file;
    Header h;
    uint32_t magic = 0;
    if (!c.get(magic, "magic")) return err(c.err);
    if (magic != kMagic) return err("not a GGUF file (the first 4 bytes are not \"GGUF\")");
    if (!c.get(h.version, "version")) return err(c.err);
    if (h.version != 2 && h.version != 3) {
        // A byte-swapped 2 or 3 is a big-endian file, which ggml writes only on big-endian hosts.
        const uint32_t sw = __builtin_bswap32(h.version);
        if (sw == 2 || sw == 3) return err("big-endian GGUF files are not supported");
        return err("unsupported GGUF version " + to_string(h.version) + " (supported: 2 and 3)");
    }
    uint64_t n_tensors = 0, n_kv = 0;
    if (!c.get(n_tensors, "tensor count") || !c.get(n_kv, "key/value count")) return err(c.err);
    // Smallest possible key/value: empty key (8) + type (4) + one byte; tensor info: empty name (8)
    // + n_dims (4) + type (4) + offset (8).
    if (n_kv > c.left() / 13)
        return err("truncated or corrupt file: key/value count " + to_string(n_kv) + " is impossible for a file of " +
                   to_string(file.size()) + " bytes");
    if (n_tensors > c.left() / 24)
        return err("truncated or corrupt file: tensor count " + to_string(n_tensors) + " is impossible for a file of " +
                   to_string(file.size()) + " bytes");

    std::unordered_set<std::string> seen_keys;
    uint64_t element_budget = kMaxMetaElements;
    h.key_order.reserve(size_t(n_kv));
    for (uint64_t i = 0; i < n_kv; ++i) {
        const std::string what = "key/value " + to_string(i) + " of " + to_string(n_kv);
        std::string key;
        uint32_t type_id = 0;
        if (!c.get_string(key, what + " key")) return err(c.err);
        const std::string kw = "key '" + key + "'";
        if (!c.get(type_id, kw + " value type")) return err(c.err);
        if (!seen_keys.insert(key).second) return err("duplicate key '" + key + "'");
        h.key_order.push_back(key);

        if (opts.vocab && type_id == uint32_t(ValueType::Array)) {
            bool handled = false;
            bool ok = true;
            if (key == "tokenizer.ggml.tokens")
                ok = read_direct_array(c, ValueType::String, opts.vocab->tokens, kw, handled);
            else if (key == "tokenizer.ggml.merges")
                ok = read_direct_array(c, ValueType::String, opts.vocab->merges, kw, handled);
            else if (key == "tokenizer.ggml.scores")
                ok = read_direct_array(c, ValueType::F32, opts.vocab->scores, kw, handled);
            else if (key == "tokenizer.ggml.token_type")
                ok = read_direct_array(c, ValueType::I32, opts.vocab->token_types, kw, handled);
            if (!ok) return err(c.err);
            if (handled) continue;
        }
        MetaValue v;
        if (!read_value(c, type_id, v, 0, kw, element_budget)) return err(c.err);
        h.kv.emplace(key, std::move(v));
    }

    if (auto it = h.kv.find("general.alignment"); it != h.kv.end()) {
        if (it->second.type != MetaType::U32)
            return err("general.alignment must be a u32 value");
        const uint64_t a = std::get<uint64_t>(it->second.scalar);
        if (!is_power_of_two(a)) return err("general.alignment " + to_string(a) + " is not a power of two");
        h.alignment = a;
    }

    h.tensors.resize(size_t(n_tensors));
    std::unordered_set<std::string> seen_names;
    for (uint64_t i = 0; i < n_tensors; ++i) {
        auto& ti = h.tensors[size_t(i)];
        if (!read_tensor_info(c, i, n_tensors, ti)) return err(c.err);
        if (!seen_names.insert(ti.name).second) return err("duplicate tensor name '" + ti.name + "'");
    }

    // The data section starts at the next multiple of the alignment after the infos.
    const uint64_t end = c.pos;
    h.data_offset = end + (h.alignment - end % h.alignment) % h.alignment;
    if (n_tensors > 0 && h.data_offset > file.size())
        return err("truncated file: the data section would start at offset " + to_string(h.data_offset) +
                   " but the file has " + to_string(file.size()) + " bytes");
    const uint64_t data_size = n_tensors > 0 ? file.size() - h.data_offset : 0;

    for (const auto& ti : h.tensors) {
        if (ti.offset % h.alignment != 0)
            return err("tensor '" + ti.name + "' has offset " + to_string(ti.offset) +
                       ", not a multiple of the alignment " + to_string(h.alignment));
        if (ti.offset > data_size || ti.nbytes > data_size - ti.offset)
            return err("tensor '" + ti.name + "' data (" + to_string(ti.nbytes) + " bytes at data offset " +
                       to_string(ti.offset) + ") runs past the end of the file (data section has " +
                       to_string(data_size) + " bytes; truncated file?)");
    }
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(h.tensors.size());
    for (const auto& ti : h.tensors) by_offset.push_back(&ti);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const auto* a = by_offset[i - 1];
        const auto* b = by_offset[i];
        if (a->offset + a->nbytes > b->offset)
            return err("tensors '" + a->name + "' and '" + b->name + "' overlap in the data section");
    }
    return h;
}

Result<Model> read_model(const std::string& path, const LoadOptions& opts, Progress& progress) {
    auto err = [&](const std::string& m) { return make_error(path + ": " + m); };
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.error();
    std::shared_ptr<MappedFile> map = std::move(mapped.value());
    progress.report(0.0, "reading GGUF header");

    Model m;
    auto parsed = parse_header(map->bytes(), path, ParseOptions{&m.vocab});
    if (!parsed) return parsed.error();
    Header& h = parsed.value();

    auto arch_it = h.kv.find("general.architecture");
    if (arch_it == h.kv.end()) return err("missing general.architecture");
    const std::string* arch_name = arch_it->second.as_string();
    if (!arch_name) return err("general.architecture is not a string");
    const ArchitectureInfo* arch = find_architecture(*arch_name);
    if (!arch) {
        std::string known;
        for (const auto* a : architectures()) known += (known.empty() ? "" : ", ") + std::string(a->name);
        return err("unsupported architecture '" + *arch_name + "' (supported: " + known + ")");
    }
    m.architecture = std::string(arch->name);
    EF_TRY_STATUS(vocab_from_kv(h.kv, m.vocab, path));

    if (Status s = arch->read_gguf(h.kv, m.config, m.layers); !s) {
        const std::string& msg = s.message();
        return make_error(msg.rfind(path, 0) == 0 ? msg : path + ": " + msg);
    }
    // Keys the row owns are regenerated from the config on save; keep only the rest.
    Metadata row_keys;
    arch->write_gguf(m.config, m.layers, row_keys);
    for (const auto& [k, v] : row_keys) h.kv.erase(k);
    h.kv.erase("general.architecture");
    h.kv.erase("general.alignment");
    m.metadata = std::move(h.kv);

    const auto bytes = map->bytes();
    m.tensors.reserve(h.tensors.size());
    for (size_t i = 0; i < h.tensors.size(); ++i) {
        if (progress.cancelled()) return err("loading cancelled");
        auto& ti = h.tensors[i];
        Tensor t;
        t.name = std::move(ti.name);
        t.dtype = ti.dtype;
        t.shape = std::move(ti.shape);
        t.data = bytes.subspan(size_t(h.data_offset + ti.offset), size_t(ti.nbytes));
        t.owner = map;
        m.tensors.push_back(std::move(t));
        progress.report(double(i + 1) / double(h.tensors.size()), "GGUF tensors");
    }
    if (m.config.vocab_size == 0) {
        if (const Tensor* emb = m.find("token_embd.weight"); emb && emb->shape.size() == 2)
            m.config.vocab_size = emb->shape[0];
        else
            m.config.vocab_size = int64_t(m.vocab.tokens.size());
    }
    m.source_path = path;
    m.source_format = "gguf";
    // GGUF has no "tied" key: llama.cpp reuses token_embd when output.weight is absent.
    m.config.tied_embeddings = m.find("token_embd.weight") && !m.find("output.weight");
    if (opts.validate) EF_TRY_STATUS(validate_model(m, path));
    progress.report(1.0, "done");
    return m;
}

}  // namespace ef::gguf
