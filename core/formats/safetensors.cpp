#include "core/formats/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/arch/architecture.h"
#include "core/formats/hf_tokenizer.h"
#include "core/model_json.h"

namespace ef {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxHeader = uint64_t(100) << 20;  // the reference implementation's limit too

std::optional<DType> st_dtype(const std::string& s) {
    if (s == "F32") return DType::F32;
    if (s == "F16") return DType::F16;
    if (s == "BF16") return DType::BF16;
    return std::nullopt;
}
bool st_dtype_known(const std::string& s) {
    for (const char* k : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "I16", "U16", "I32", "U32",
                          "I64", "U64", "F64", "C64"})
        if (s == k) return true;
    return false;
}
const char* st_dtype_name(DType t) { return t == DType::F16 ? "F16" : t == DType::BF16 ? "BF16" : "F32"; }
size_t elem_size(DType t) { return t == DType::F32 ? 4 : 2; }

std::string path_of(const fs::path& p) { return p.string(); }

// q/k row order. Canonical (GGUF, llama2.c) keeps each rotated pair adjacent: per head, row
// 2*j + i for pair j, member i. HF splits each head into two halves: row i*half + j.
std::vector<std::byte> permute_rope_rows(std::span<const std::byte> src, int64_t rows, size_t row_bytes,
                                         int64_t n_head, bool to_hf) {
    std::vector<std::byte> dst(src.size());
    const int64_t head_rows = rows / n_head, half = head_rows / 2;
    for (int64_t h = 0; h < n_head; ++h)
        for (int64_t i = 0; i < 2; ++i)
            for (int64_t j = 0; j < half; ++j) {
                const int64_t hf = h * head_rows + i * half + j, gg = h * head_rows + j * 2 + i;
                const int64_t from = to_hf ? gg : hf, to = to_hf ? hf : gg;
                std::memcpy(dst.data() + size_t(to) * row_bytes, src.data() + size_t(from) * row_bytes, row_bytes);
            }
    return dst;
}

Status check_rope_rows(const std::string& what, int64_t rows, int64_t n_head) {
    if (n_head <= 0 || rows <= 0 || rows % n_head != 0 || (rows / n_head) % 2 != 0)
        return make_error(what + ": " + std::to_string(rows) + " rows cannot be split into " + std::to_string(n_head) +
                          " heads of an even size for the RoPE permutation");
    return {};
}

json read_json_file(const fs::path& p, std::string* err) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        *err = path_of(p) + ": cannot open";
        return json();
    }
    std::stringstream ss;
    ss << in.rdbuf();
    json j = json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) *err = path_of(p) + ": not a valid JSON object";
    return j;
}

bool probe(std::span<const std::byte> head) {
    if (head.size() < 9) return false;
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | uint64_t(head[size_t(i)]);
    return n >= 2 && n <= kMaxHeader && char(head[8]) == '{';
}

// One canonical tensor from the HF tensor `e` (bytes `data` inside `storage`) via mapping `mp`.
Result<Tensor> canonical_tensor(const SafetensorsEntry& e, const HfTensorMapping& mp, std::span<const std::byte> data,
                                const std::shared_ptr<const Storage>& storage, const ModelConfig& cfg,
                                const std::unordered_map<std::string, Shape>& canonical_shape,
                                const std::string& origin) {
    const std::string where = origin + ": tensor \"" + e.name + "\"";
    const bool fused = mp.transform == HfTransform::FusedRowsFirstHalf || mp.transform == HfTransform::FusedRowsSecondHalf;
    if (fused) {
        if (e.shape.empty() || e.shape[0] % 2 != 0) return make_error(where + ": fused tensor has an odd row count");
        const size_t half = data.size() / 2;
        data = mp.transform == HfTransform::FusedRowsFirstHalf ? data.subspan(0, half) : data.subspan(half);
    }
    Shape shape = mp.hf_shape;
    if (fused) shape[0] /= 2;
    if (auto cs = canonical_shape.find(mp.canonical); cs != canonical_shape.end()) {
        if (shape_numel(cs->second) != shape_numel(shape))
            return make_error(where + ": the architecture table maps " + shape_to_string(mp.hf_shape) + " to " +
                              shape_to_string(cs->second));
        shape = cs->second;
    }
    Tensor t;
    t.name = mp.canonical;
    t.dtype = e.dtype;
    t.shape = shape;
    auto own = [&](std::vector<std::byte> b) -> Result<Tensor> {
        auto r = Tensor::from_bytes(t.name, t.dtype, t.shape, std::move(b));
        if (!r) return make_error(origin + ": " + r.message());
        return r;
    };
    switch (mp.transform) {
    case HfTransform::None:
    case HfTransform::FusedRowsFirstHalf:
    case HfTransform::FusedRowsSecondHalf:
        if (reinterpret_cast<uintptr_t>(data.data()) % elem_size(e.dtype) != 0)  // a foreign writer misaligned it
            return own(std::vector<std::byte>(data.begin(), data.end()));
        t.data = data;
        t.owner = storage;
        return t;
    case HfTransform::RopePermuteQ:
    case HfTransform::RopePermuteK: {
        const int64_t n_head = mp.transform == HfTransform::RopePermuteQ ? cfg.attn.n_heads : cfg.attn.n_kv_heads;
        const int64_t rows = e.shape.empty() ? 1 : e.shape[0];
        EF_TRY_STATUS(check_rope_rows(where, rows, n_head));
        return own(permute_rope_rows(data, rows, data.size() / size_t(rows), n_head, /*to_hf=*/false));
    }
    case HfTransform::NegExpOfLog: {
        Tensor view = t;
        view.data = data;
        view.owner = storage;
        auto f = view.to_f32();
        if (!f) return make_error(where + ": " + f.message());
        for (float& x : *f) x = -std::exp(x);
        auto r = Tensor::from_f32(t.name, t.shape, *f, DType::F32);
        if (!r) return make_error(where + ": " + r.message());
        return r;
    }
    }
    return make_error(where + ": unhandled layout transform");
}

// ----- loading ---------------------------------------------------------------------------------

Result<Model> load(const std::string& path_in, const LoadOptions& opts, Progress& progress) {
    fs::path file = path_in;
    std::error_code ec;
    if (fs::is_directory(file, ec)) {
        file /= "model.safetensors";
        if (!fs::exists(file, ec)) {
            if (fs::exists(fs::path(path_in) / "model.safetensors.index.json", ec))
                return make_error(path_in + ": sharded safetensors checkpoints (model.safetensors.index.json) are not supported");
            return make_error(path_in + ": directory has no model.safetensors");
        }
    }
    const std::string origin = path_of(file);
    auto mapped = MappedFile::open(origin);
    if (!mapped) return mapped.error();
    std::shared_ptr<const Storage> storage = *mapped;
    const auto bytes = storage->bytes();
    auto hdr = parse_safetensors_header(bytes, origin);
    if (!hdr) return hdr.error();

    Model m;
    m.source_path = origin;
    m.source_format = "safetensors";
    const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
    const fs::path config_path = dir / "config.json";
    const auto& meta = hdr->metadata;
    json config_json;
    const ArchitectureInfo* arch = nullptr;
    try {
        if (fs::exists(config_path, ec)) {
            std::string err;
            config_json = read_json_file(config_path, &err);
            if (!err.empty()) return make_error(err);
            const json archs = config_json.value("architectures", json());
            if (!archs.is_array() || archs.empty() || !archs[0].is_string())
                return make_error(path_of(config_path) + ": no \"architectures\" list");
            for (const auto& a : archs)
                if (a.is_string() && (arch = find_architecture_by_hf(a.get<std::string>()))) break;
            if (!arch)
                return make_error(path_of(config_path) + ": architecture \"" + archs[0].get<std::string>() +
                                  "\" is not supported");
            m.architecture = std::string(arch->name);
            if (auto st = arch->read_hf_config(config_json, m.config, m.layers); !st)
                return make_error(path_of(config_path) + ": " + st.message());
        } else if (meta.count("ef.architecture") && meta.count("ef.config") && meta.count("ef.layers")) {
            arch = find_architecture(meta.at("ef.architecture"));
            if (!arch) return make_error(origin + ": unknown architecture \"" + meta.at("ef.architecture") + "\" in __metadata__");
            m.architecture = std::string(arch->name);
            const json cj = json::parse(meta.at("ef.config"), nullptr, false);
            const json lj = json::parse(meta.at("ef.layers"), nullptr, false);
            if (cj.is_discarded() || lj.is_discarded())
                return make_error(origin + ": __metadata__ ef.config/ef.layers is not valid JSON");
            auto cfg = config_from_json(cj);
            if (!cfg) return make_error(origin + ": __metadata__ ef.config: " + cfg.message());
            auto layers = layers_from_json(lj);
            if (!layers) return make_error(origin + ": __metadata__ ef.layers: " + layers.message());
            m.config = *cfg;
            m.layers = *layers;
        } else {
            return make_error(origin + ": no config.json beside the file and no EdgeFusion __metadata__ "
                              "(ef.architecture/ef.config/ef.layers) to describe the model");
        }
        if (auto st = validate_config(*arch, m.config, m.layers); !st) return make_error(origin + ": " + st.message());

        if (auto it = meta.find("ef.metadata"); it != meta.end()) {
            const json mj = json::parse(it->second, nullptr, false);
            if (mj.is_discarded()) return make_error(origin + ": __metadata__ ef.metadata is not valid JSON");
            auto md = metadata_from_json(mj);
            if (!md) return make_error(origin + ": __metadata__ ef.metadata: " + md.message());
            m.metadata = std::move(*md);
        }
        for (const auto& [k, v] : meta)
            if (k.rfind("ef.", 0) != 0 && k != "format") m.metadata["safetensors." + k] = MetaValue::str(v);
    } catch (const json::exception& e) {
        return make_error(origin + ": malformed configuration (" + e.what() + ")");
    }

    // Tensor names and layouts from the architecture row (a fused HF tensor feeds two).
    std::unordered_map<std::string, std::vector<HfTensorMapping>> by_hf;
    for (auto& mp : arch->hf_tensor_map(m.config, m.layers)) by_hf[mp.hf_name].push_back(std::move(mp));
    std::unordered_map<std::string, Shape> canonical_shape;
    for (auto& spec : arch->tensor_specs(m.config, m.layers)) canonical_shape.emplace(spec.name, spec.shape);

    const size_t n_entries = hdr->entries.size();
    for (size_t k = 0; k < n_entries; ++k) {
        if (progress.cancelled()) return make_error(origin + ": loading cancelled");
        progress.report(double(k) / double(std::max<size_t>(n_entries, 1)), "reading tensors");
        const SafetensorsEntry& e = hdr->entries[k];
        auto it = by_hf.find(e.name);
        if (it == by_hf.end()) {
            // Derived buffers some exporters keep; the runtime recomputes them.
            if (e.name.ends_with("rotary_emb.inv_freq")) continue;
            // Tied checkpoints sometimes still store the shared classifier.
            if (e.name == "lm_head.weight" && m.config.tied_embeddings) continue;
            return make_error(origin + ": tensor \"" + e.name + "\" is not part of a " + m.architecture +
                              " model with this config");
        }
        const auto data = bytes.subspan(size_t(hdr->data_start + e.begin), size_t(e.end - e.begin));
        for (const HfTensorMapping& mp : it->second) {
            if (e.shape != mp.hf_shape)
                return make_error(origin + ": tensor \"" + e.name + "\" has shape " + shape_to_string(e.shape) +
                                  " but the config implies " + shape_to_string(mp.hf_shape));
            auto t = canonical_tensor(e, mp, data, storage, m.config, canonical_shape, origin);
            if (!t) return t.error();
            if (m.find(t->name)) return make_error(origin + ": tensor \"" + t->name + "\" appears twice");
            m.add(std::move(*t));
        }
    }

    // Tokenizer beside the file.
    const fs::path tok_path = dir / "tokenizer.json";
    json extras;
    if (auto it = meta.find("ef.vocab"); it != meta.end()) {
        extras = json::parse(it->second, nullptr, false);
        if (extras.is_discarded()) return make_error(origin + ": __metadata__ ef.vocab is not valid JSON");
    }
    const bool says_empty = extras.is_object() && extras.value("n_tokens", json(1)) == json(0);
    if (!says_empty && fs::exists(tok_path, ec)) {
        auto v = read_hf_tokenizer(path_of(tok_path));
        if (!v) return v.error();
        m.vocab = std::move(*v);
        if (extras.is_object()) {
            EF_TRY_STATUS(apply_vocab_extras(extras, m.vocab, origin));
        } else if (config_json.is_object()) {
            // HF keeps the special ids in config.json; eos may be a list.
            auto id_of = [&](const char* key, int32_t& out) {
                json x = config_json.value(key, json());
                if (x.is_array() && !x.empty()) x = x[0];
                if (x.is_number_integer()) out = x.get<int32_t>();
            };
            id_of("bos_token_id", m.vocab.bos_id);
            id_of("eos_token_id", m.vocab.eos_id);
            id_of("pad_token_id", m.vocab.pad_id);
        }
    }

    if (opts.validate) EF_TRY_STATUS(validate_model(m, origin));
    progress.report(1.0, "done");
    return m;
}

// ----- saving ----------------------------------------------------------------------------------

struct Part {
    const Tensor* src;
    const HfTensorMapping* map;
};
struct Planned {
    std::string hf_name;
    Shape hf_shape;
    std::vector<Part> parts;  // one, or two halves of a fused tensor (first half first)
    DType out;
    uint64_t nbytes;
};

// One part's bytes in HF layout and dtype `out`.
Result<std::vector<std::byte>> hf_bytes(const Part& p, DType out, const ModelConfig& cfg) {
    const Tensor& t = *p.src;
    std::vector<std::byte> raw;
    if (out == t.dtype && p.map->transform != HfTransform::NegExpOfLog) {
        raw.assign(t.data.begin(), t.data.end());
    } else {
        auto f = t.to_f32();
        if (!f) return f.error();
        if (p.map->transform == HfTransform::NegExpOfLog) {
            for (float& x : *f) {
                if (!(x < 0.0f))
                    return make_error("tensor \"" + t.name + "\" has a non-negative A (" + std::to_string(x) +
                                      "), which has no A_log = log(-A)");
                x = std::log(-x);
            }
        }
        raw.resize(f->size() * 4);
        std::memcpy(raw.data(), f->data(), raw.size());
    }
    if (p.map->transform == HfTransform::RopePermuteQ || p.map->transform == HfTransform::RopePermuteK) {
        const int64_t n_head = p.map->transform == HfTransform::RopePermuteQ ? cfg.attn.n_heads : cfg.attn.n_kv_heads;
        const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
        EF_TRY_STATUS(check_rope_rows("tensor \"" + t.name + "\"", rows, n_head));
        raw = permute_rope_rows(raw, rows, raw.size() / size_t(rows), n_head, /*to_hf=*/true);
    }
    return raw;
}

bool plain_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// Groups the model's tensors by HF tensor and picks each one's stored dtype.
Result<std::vector<Planned>> plan_tensors(const Model& model, const std::vector<HfTensorMapping>& mapping,
                                          const std::string& origin) {
    std::unordered_map<std::string, const HfTensorMapping*> by_canonical;
    for (const auto& mp : mapping) by_canonical.emplace(mp.canonical, &mp);
    std::vector<Planned> plan;
    std::unordered_map<std::string, size_t> index;
    for (const Tensor& t : model.tensors) {
        auto it = by_canonical.find(t.name);
        if (it == by_canonical.end())
            return make_error(origin + ": tensor \"" + t.name + "\" has no safetensors name in the " +
                              model.architecture + " architecture");
        const HfTensorMapping* mp = it->second;
        auto [slot, fresh] = index.emplace(mp->hf_name, plan.size());
        if (fresh) plan.push_back({mp->hf_name, mp->hf_shape, {}, DType::F32, 0});
        plan[slot->second].parts.push_back({&t, mp});
    }
    for (Planned& p : plan) {
        const bool fused = p.parts.front().map->transform == HfTransform::FusedRowsFirstHalf ||
                           p.parts.front().map->transform == HfTransform::FusedRowsSecondHalf;
        if (fused) {
            if (p.parts.size() != 2)
                return make_error(origin + ": \"" + p.hf_name + "\" fuses two tensors but the model has " +
                                  std::to_string(p.parts.size()) + " of them");
            if (p.parts[0].map->transform == HfTransform::FusedRowsSecondHalf) std::swap(p.parts[0], p.parts[1]);
            if (p.parts[0].map->transform != HfTransform::FusedRowsFirstHalf ||
                p.parts[1].map->transform != HfTransform::FusedRowsSecondHalf)
                return make_error(origin + ": \"" + p.hf_name + "\" needs one first-half and one second-half tensor");
        } else if (p.parts.size() != 1) {
            return make_error(origin + ": tensors \"" + p.parts[0].src->name + "\" and \"" + p.parts[1].src->name +
                              "\" both map to \"" + p.hf_name + "\"");
        }
        int64_t numel = 0;
        bool keep = true;
        for (const Part& part : p.parts) {
            numel += part.src->numel();
            keep = keep && plain_float(part.src->dtype) && part.src->dtype == p.parts[0].src->dtype &&
                   part.map->transform != HfTransform::NegExpOfLog;
        }
        if (shape_numel(p.hf_shape) != numel)
            return make_error(origin + ": tensor \"" + p.parts[0].src->name + "\" has shape " +
                              shape_to_string(p.parts[0].src->shape) + " but its safetensors form " + p.hf_name +
                              " is " + shape_to_string(p.hf_shape));
        p.out = keep ? p.parts[0].src->dtype : DType::F32;
        p.nbytes = uint64_t(numel) * elem_size(p.out);
    }
    return plan;
}

const char* torch_dtype_name(DType t) {
    return t == DType::F16 ? "float16" : t == DType::BF16 ? "bfloat16" : "float32";
}

Status save(const Model& model, const std::string& path_in, const SaveOptions&, Progress& progress) {
    fs::path file = path_in;
    std::error_code ec;
    if (fs::is_directory(file, ec)) file /= "model.safetensors";
    const std::string origin = path_of(file);
    const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
    const ArchitectureInfo* arch = find_architecture(model.architecture);
    if (!arch) return make_error(origin + ": unknown architecture \"" + model.architecture + "\"");

    const auto mapping = arch->hf_tensor_map(model.config, model.layers);
    auto planned = plan_tensors(model, mapping, origin);
    if (!planned) return planned.error();
    std::vector<Planned>& plan = *planned;
    // 4-byte types first, so every tensor starts aligned for its type without gaps.
    std::stable_sort(plan.begin(), plan.end(),
                     [](const Planned& a, const Planned& b) { return elem_size(a.out) > elem_size(b.out); });

    json hdr = json::object();
    uint64_t off = 0;
    for (const Planned& p : plan) {
        hdr[p.hf_name] = {{"dtype", st_dtype_name(p.out)}, {"shape", p.hf_shape},
                               {"data_offsets", {off, off + p.nbytes}}};
        off += p.nbytes;
    }
    json meta = {{"format", "pt"},
                 {"ef.architecture", model.architecture},
                 {"ef.config", config_to_json(model.config).dump()},
                 {"ef.layers", layers_to_json(model.layers).dump()},
                 {"ef.metadata", metadata_to_json(model.metadata).dump(-1, ' ', false, json::error_handler_t::replace)},
                 {"ef.vocab", vocab_extras_to_json(model.vocab).dump()}};
    hdr["__metadata__"] = meta;
    std::string header = hdr.dump(-1, ' ', false, json::error_handler_t::replace);
    while ((8 + header.size()) % 8 != 0) header.push_back(' ');

    json config = json::object();
    arch->write_hf_config(model.config, model.layers, config);
    if (!config.contains("architectures") && !arch->hf_architectures.empty())
        config["architectures"] = {std::string(arch->hf_architectures.front())};
    if (!config.contains("torch_dtype")) config["torch_dtype"] = torch_dtype_name(plan.empty() ? DType::F32 : plan.front().out);
    // Side files are written to temporaries now and renamed only after the weights were written
    // completely, so a failed or cancelled save changes none of the three files.
    std::vector<std::unique_ptr<AtomicFileWriter>> side;
    auto add_side = [&](const fs::path& p, const std::string& text) -> Status {
        auto sw = AtomicFileWriter::create(path_of(p));
        if (!sw) return sw.error();
        EF_TRY_STATUS((*sw)->write(text.data(), text.size()));
        side.push_back(std::move(*sw));
        return {};
    };
    if (!model.vocab.empty()) {
        if (model.vocab.bos_id >= 0 && !config.contains("bos_token_id")) config["bos_token_id"] = model.vocab.bos_id;
        if (model.vocab.eos_id >= 0 && !config.contains("eos_token_id")) config["eos_token_id"] = model.vocab.eos_id;
        if (model.vocab.pad_id >= 0 && !config.contains("pad_token_id")) config["pad_token_id"] = model.vocab.pad_id;
        auto tj = hf_tokenizer_to_json(model.vocab);
        if (!tj) return make_error(origin + ": " + tj.message());
        EF_TRY_STATUS(add_side(dir / "tokenizer.json", tj->dump(1, ' ', false, json::error_handler_t::replace)));
    }
    EF_TRY_STATUS(add_side(dir / "config.json", config.dump(2)));

    auto w = AtomicFileWriter::create(origin);
    if (!w) return w.error();
    uint64_t n = header.size();
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(n >> (8 * i));
    EF_TRY_STATUS((*w)->write(le, 8));
    EF_TRY_STATUS((*w)->write(header.data(), header.size()));
    for (size_t k = 0; k < plan.size(); ++k) {
        if (progress.cancelled()) return make_error(origin + ": saving cancelled");
        progress.report(double(k) / double(plan.size()), "writing tensors");
        uint64_t written = 0;
        for (const Part& part : plan[k].parts) {
            auto b = hf_bytes(part, plan[k].out, model.config);
            if (!b) return make_error(origin + ": " + b.message());
            written += b->size();
            EF_TRY_STATUS((*w)->write(*b));
        }
        if (written != plan[k].nbytes)
            return make_error(origin + ": \"" + plan[k].hf_name + "\" produced " + std::to_string(written) +
                              " bytes, expected " + std::to_string(plan[k].nbytes));
    }
    for (auto& sw : side) EF_TRY_STATUS(sw->commit());
    EF_TRY_STATUS((*w)->commit());
    progress.report(1.0, "done");
    return {};
}

}  // namespace

Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, const std::string& origin) {
    if (file.size() < 8)
        return make_error(origin + ": file is " + std::to_string(file.size()) + " bytes, too short for a safetensors header");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | uint64_t(file[size_t(i)]);
    if (n > file.size() - 8)
        return make_error(origin + ": header length " + std::to_string(n) + " exceeds the file (" +
                          std::to_string(file.size()) + " bytes)");
    if (n > kMaxHeader) return make_error(origin + ": header length " + std::to_string(n) + " exceeds 100 MiB");
    const char* text = reinterpret_cast<const char*>(file.data() + 8);
    json j = json::parse(text, text + n, nullptr, false);
    if (j.is_discarded()) return make_error(origin + ": header is not valid JSON");
    if (!j.is_object()) return make_error(origin + ": header is not a JSON object");

    SafetensorsHeader h;
    h.data_start = 8 + n;
    const uint64_t buffer = file.size() - h.data_start;
    for (const auto& [name, e] : j.items()) {
        const std::string where = origin + ": tensor \"" + name + "\"";
        if (name == "__metadata__") {
            if (!e.is_object()) return make_error(origin + ": __metadata__ is not an object");
            for (const auto& [k, v] : e.items()) {
                if (!v.is_string()) return make_error(origin + ": __metadata__ value \"" + k + "\" is not a string");
                h.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
            return make_error(where + " lacks dtype/shape/data_offsets");
        SafetensorsEntry en;
        en.name = name;
        if (!e["dtype"].is_string()) return make_error(where + ": dtype is not a string");
        en.dtype_name = e["dtype"].get<std::string>();
        auto dt = st_dtype(en.dtype_name);
        if (!dt) {
            if (st_dtype_known(en.dtype_name))
                return make_error(where + ": dtype " + en.dtype_name + " is not supported (F32, F16 and BF16 are)");
            return make_error(where + ": unknown dtype \"" + en.dtype_name + "\"");
        }
        en.dtype = *dt;
        if (!e["shape"].is_array()) return make_error(where + ": shape is not a list");
        for (const auto& d : e["shape"]) {
            if (!d.is_number_integer()) return make_error(where + ": shape has a non-integer dimension");
            if (d.is_number_unsigned() ? d.get<uint64_t>() > uint64_t(INT64_MAX) : d.get<int64_t>() < 0)
                return make_error(where + ": shape " + e["shape"].dump() + " has a negative or huge dimension");
            en.shape.push_back(d.get<int64_t>());
        }
        const auto numel = shape_numel(en.shape);
        if (!numel) return make_error(where + ": shape " + e["shape"].dump() + " overflows");
        const json& o = e["data_offsets"];
        if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned())
            return make_error(where + ": data_offsets is not [begin, end] of non-negative integers");
        en.begin = o[0].get<uint64_t>();
        en.end = o[1].get<uint64_t>();
        if (en.begin > en.end) return make_error(where + ": data_offsets begin > end");
        if (en.end > buffer)
            return make_error(where + ": data_offsets [" + std::to_string(en.begin) + ", " + std::to_string(en.end) +
                              "] run past the data buffer (" + std::to_string(buffer) + " bytes)");
        const auto want = dtype_bytes(en.dtype, *numel);
        if (!want || *want != en.end - en.begin)
            return make_error(where + ": " + en.dtype_name + " " + shape_to_string(en.shape) + " needs " +
                              (want ? std::to_string(*want) : std::string("too many")) + " bytes but data_offsets span " +
                              std::to_string(en.end - en.begin));
        h.entries.push_back(std::move(en));
    }
    // No two tensors may share bytes.
    std::vector<const SafetensorsEntry*> sorted;
    for (const auto& en : h.entries)
        if (en.end > en.begin) sorted.push_back(&en);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    for (size_t i = 1; i < sorted.size(); ++i)
        if (sorted[i]->begin < sorted[i - 1]->end)
            return make_error(origin + ": tensors \"" + sorted[i - 1]->name + "\" and \"" + sorted[i]->name +
                              "\" overlap in the data buffer");
    return h;
}

const FormatHandler& safetensors_format_handler() {
    static const FormatHandler h{"safetensors", {".safetensors"}, probe, load, save};
    return h;
}

}  // namespace ef
