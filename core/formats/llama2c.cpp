#include "core/formats/llama2c.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/arch/architecture.h"

namespace ef {
namespace {

namespace fs = std::filesystem;

constexpr size_t kHeaderBytes = 7 * 4;
constexpr int32_t kUnknown = 2, kControl = 3, kByte = 6, kNormal = 1;
const std::string kSpace = "\xE2\x96\x81";  // "▁"

int32_t rd_i32(std::span<const std::byte> b, size_t off) {
    uint32_t u = 0;
    for (int i = 3; i >= 0; --i) u = u << 8 | uint32_t(b[off + size_t(i)]);
    return int32_t(u);
}

struct Header {
    int64_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    bool shared;
};

// Plausible-size checks first, so a corrupt header never drives a huge computation.
Status check_header(const Header& h, const std::string& origin) {
    auto bad = [&](const std::string& what) { return make_error(origin + ": llama2.c header: " + what); };
    auto in = [](int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; };
    if (!in(h.dim, 1, 1 << 16)) return bad("dim " + std::to_string(h.dim) + " out of range [1, 65536]");
    if (!in(h.hidden, 1, 1 << 18)) return bad("hidden_dim " + std::to_string(h.hidden) + " out of range [1, 262144]");
    if (!in(h.n_layers, 1, 1024)) return bad("n_layers " + std::to_string(h.n_layers) + " out of range [1, 1024]");
    if (!in(h.n_heads, 1, h.dim)) return bad("n_heads " + std::to_string(h.n_heads) + " out of range [1, dim]");
    if (!in(h.n_kv_heads, 1, h.n_heads))
        return bad("n_kv_heads " + std::to_string(h.n_kv_heads) + " out of range [1, n_heads]");
    if (!in(h.vocab, 1, 1 << 22)) return bad("vocab_size " + std::to_string(h.vocab) + " out of range");
    if (!in(h.seq_len, 1, 1 << 22)) return bad("seq_len " + std::to_string(h.seq_len) + " out of range");
    if (h.dim % h.n_heads != 0)
        return bad("n_heads " + std::to_string(h.n_heads) + " does not divide dim " + std::to_string(h.dim));
    if (h.n_heads % h.n_kv_heads != 0)
        return bad("n_kv_heads " + std::to_string(h.n_kv_heads) + " does not divide n_heads " + std::to_string(h.n_heads));
    if ((h.dim / h.n_heads) % 2 != 0) return bad("head size " + std::to_string(h.dim / h.n_heads) + " is odd");
    return {};
}

// The fp32 arrays in file order: (canonical name or "" to skip, shape, layer-stacked count).
struct Block {
    std::string name;  // "%d" replaced by the layer; "" for freq_cis
    Shape shape;       // per layer
    bool per_layer;
};

std::vector<Block> blocks(const Header& h) {
    const int64_t kv_dim = h.dim / h.n_heads * h.n_kv_heads, half = h.dim / h.n_heads / 2;
    std::vector<Block> b = {
        {"token_embd.weight", {h.vocab, h.dim}, false},
        {"attn_norm.weight", {h.dim}, true},
        {"attn_q.weight", {h.dim, h.dim}, true},
        {"attn_k.weight", {kv_dim, h.dim}, true},
        {"attn_v.weight", {kv_dim, h.dim}, true},
        {"attn_output.weight", {h.dim, h.dim}, true},
        {"ffn_norm.weight", {h.dim}, true},
        {"ffn_gate.weight", {h.hidden, h.dim}, true},  // w1
        {"ffn_down.weight", {h.dim, h.hidden}, true},  // w2
        {"ffn_up.weight", {h.hidden, h.dim}, true},    // w3
        {"output_norm.weight", {h.dim}, false},
        {"", {h.seq_len, half}, false},  // freq_cis_real
        {"", {h.seq_len, half}, false},  // freq_cis_imag
    };
    if (!h.shared) b.push_back({"output.weight", {h.vocab, h.dim}, false});
    return b;
}

uint64_t block_floats(const Block& b, const Header& h) {
    uint64_t n = 1;
    for (int64_t d : b.shape) n *= uint64_t(d);
    return b.per_layer ? n * uint64_t(h.n_layers) : n;
}

std::string layer_name(const Block& b, int64_t layer) {
    return b.per_layer ? "blk." + std::to_string(layer) + "." + b.name : b.name;
}

bool probe(std::span<const std::byte> head) {
    if (head.size() < kHeaderBytes) return false;
    Header h{rd_i32(head, 0), rd_i32(head, 4), rd_i32(head, 8), rd_i32(head, 12), rd_i32(head, 16),
             std::abs(int64_t(rd_i32(head, 20))), rd_i32(head, 24), true};
    return check_header(h, "").ok();
}

std::string read_tokenizer_candidates(const fs::path& ckpt, int64_t vocab) {
    const fs::path dir = ckpt.has_parent_path() ? ckpt.parent_path() : fs::path(".");
    std::error_code ec;
    for (const fs::path& p : {dir / (ckpt.stem().string() + ".tok.bin"), dir / "tokenizer.bin",
                              dir / ("tok" + std::to_string(vocab) + ".bin")})
        if (fs::is_regular_file(p, ec)) return p.string();
    return {};
}

Result<Model> load(const std::string& path, const LoadOptions& opts, Progress& progress) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.error();
    std::shared_ptr<const Storage> storage = *mapped;
    const auto bytes = storage->bytes();
    if (bytes.size() < kHeaderBytes)
        return make_error(path + ": " + std::to_string(bytes.size()) + " bytes, too short for a llama2.c header (28)");
    if (rd_i32(bytes, 0) == 0x616b3432)
        return make_error(path + ": llama2.c version-1+ export (magic \"ak42\") is not supported; use the legacy (v0) export");
    const int32_t raw_vocab = rd_i32(bytes, 20);
    Header h{rd_i32(bytes, 0), rd_i32(bytes, 4), rd_i32(bytes, 8), rd_i32(bytes, 12), rd_i32(bytes, 16),
             std::abs(int64_t(raw_vocab)), rd_i32(bytes, 24), raw_vocab > 0};
    EF_TRY_STATUS(check_header(h, path));
    const auto layout = blocks(h);
    uint64_t floats = 0;
    for (const auto& b : layout) floats += block_floats(b, h);
    const uint64_t expected = kHeaderBytes + 4 * floats;
    if (expected != bytes.size())
        return make_error(path + ": llama2.c header implies " + std::to_string(expected) + " bytes but the file has " +
                          std::to_string(bytes.size()));

    Model m;
    m.architecture = "llama";
    m.source_path = path;
    m.source_format = "llama2c";
    ModelConfig& c = m.config;
    c.vocab_size = h.vocab;
    c.dim = h.dim;
    c.n_layers = h.n_layers;
    c.context_length = h.seq_len;
    c.ffn_hidden = h.hidden;
    c.norm_eps = 1e-5f;  // llama2.c's RMSNorm epsilon
    c.tied_embeddings = h.shared;
    c.attn.n_heads = h.n_heads;
    c.attn.n_kv_heads = h.n_kv_heads;
    c.attn.head_dim = h.dim / h.n_heads;
    c.attn.rope_dim = c.attn.head_dim;
    c.attn.rope_theta = 10000.0f;
    m.layers.assign(size_t(h.n_layers), LayerDesc{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU});
    m.metadata["general.name"] = MetaValue::str(fs::path(path).stem().string());

    uint64_t off = kHeaderBytes;
    for (size_t k = 0; k < layout.size(); ++k) {
        if (progress.cancelled()) return make_error(path + ": loading cancelled");
        progress.report(double(k) / double(layout.size()), "reading tensors");
        const Block& b = layout[k];
        const uint64_t per = block_floats(b, h) / uint64_t(b.per_layer ? h.n_layers : 1) * 4;
        for (int64_t l = 0; l < (b.per_layer ? h.n_layers : 1); ++l) {
            if (!b.name.empty()) {
                Tensor t;
                t.name = layer_name(b, l);
                t.dtype = DType::F32;
                t.shape = b.shape;
                t.data = bytes.subspan(size_t(off), size_t(per));
                t.owner = storage;
                m.add(std::move(t));
            }
            off += per;
        }
    }

    std::string tok = opts.tokenizer_path.empty() ? read_tokenizer_candidates(path, h.vocab) : opts.tokenizer_path;
    if (!tok.empty()) {
        auto v = read_llama2c_tokenizer(tok, h.vocab);
        if (!v) return v.error();
        m.vocab = std::move(*v);
    }
    if (opts.validate) EF_TRY_STATUS(validate_model(m, path));
    progress.report(1.0, "done");
    return m;
}

// ----- saving ----------------------------------------------------------------------------------

Status write_tokenizer_to(const Vocab& v, AtomicFileWriter& w) {
    if (v.model != "llama")
        return make_error(w.path() + ": llama2.c tokenizers hold SentencePiece (llama) vocabularies, not \"" + v.model + "\"");
    if (v.tokens.size() < 3 || v.bos_id != 1 || v.eos_id != 2)
        return make_error(w.path() + ": llama2.c tokenizers need BOS id 1 and EOS id 2");
    std::vector<std::string> texts;
    int32_t max_len = 0;
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        std::string t = v.tokens[i];
        if (i == 1) t = "\n<s>\n";
        else if (i == 2) t = "\n</s>\n";
        else {
            std::string plain;
            for (size_t p = 0; p < t.size();) {
                if (t.compare(p, kSpace.size(), kSpace) == 0) {
                    plain += ' ';
                    p += kSpace.size();
                } else {
                    plain += t[p++];
                }
            }
            t = std::move(plain);
        }
        max_len = std::max<int32_t>(max_len, int32_t(t.size()));
        texts.push_back(std::move(t));
    }
    if (v.max_token_length > max_len) max_len = v.max_token_length;
    EF_TRY_STATUS(w.write(&max_len, 4));
    for (size_t i = 0; i < texts.size(); ++i) {
        const float score = i < v.scores.size() ? v.scores[i] : 0.0f;
        const int32_t len = int32_t(texts[i].size());
        EF_TRY_STATUS(w.write(&score, 4));
        EF_TRY_STATUS(w.write(&len, 4));
        EF_TRY_STATUS(w.write(texts[i].data(), texts[i].size()));
    }
    return {};
}

Status save(const Model& m, const std::string& path, const SaveOptions&, Progress& progress) {
    if (m.architecture != "llama")
        return make_error(path + ": llama2.c holds llama models only, not \"" + m.architecture + "\"");
    const ModelConfig& c = m.config;
    for (const auto& l : m.layers)
        if (l.mixer != MixerKind::Attention || l.ffn != FfnKind::SwiGLU)
            return make_error(path + ": llama2.c needs attention + SwiGLU in every layer");
    if (c.attn.head_dim * c.attn.n_heads != c.dim || c.attn.rope_dim != c.attn.head_dim)
        return make_error(path + ": llama2.c needs head_dim * n_heads == dim and full-head RoPE");
    if (c.embedding_scale != 1.0f || c.residual_scale != 1.0f || c.logit_scale != 1.0f)
        return make_error(path + ": llama2.c has no embedding/residual/logit multipliers");
    auto fits = [](int64_t v) { return v > 0 && v <= INT32_MAX; };
    if (!fits(c.dim) || !fits(c.ffn_hidden) || !fits(c.n_layers) || !fits(c.attn.n_heads) || !fits(c.attn.n_kv_heads) ||
        !fits(c.vocab_size) || !fits(c.context_length))
        return make_error(path + ": config sizes do not fit llama2.c's int32 header");
    const bool shared = c.tied_embeddings || !m.find("output.weight");
    Header h{c.dim, c.ffn_hidden, c.n_layers, c.attn.n_heads, c.attn.n_kv_heads, c.vocab_size, c.context_length, shared};
    EF_TRY_STATUS(check_header(h, path));
    const auto layout = blocks(h);

    // The tokenizer goes to a temporary now and is renamed only after the checkpoint was
    // written completely, so a failed or cancelled save changes neither file.
    std::unique_ptr<AtomicFileWriter> tok;
    if (!m.vocab.empty()) {
        const fs::path p = fs::path(path);
        auto tw = AtomicFileWriter::create(
            ((p.has_parent_path() ? p.parent_path() : fs::path(".")) / (p.stem().string() + ".tok.bin")).string());
        if (!tw) return tw.error();
        tok = std::move(*tw);
        EF_TRY_STATUS(write_tokenizer_to(m.vocab, *tok));
    }

    auto w = AtomicFileWriter::create(path);
    if (!w) return w.error();
    const int32_t hdr[7] = {int32_t(h.dim), int32_t(h.hidden), int32_t(h.n_layers), int32_t(h.n_heads),
                            int32_t(h.n_kv_heads), int32_t(shared ? h.vocab : -h.vocab), int32_t(h.seq_len)};
    EF_TRY_STATUS((*w)->write(hdr, sizeof hdr));  // the targets we build for are little-endian
    int freq_table = 0;
    for (size_t k = 0; k < layout.size(); ++k) {
        const Block& b = layout[k];
        progress.report(double(k) / double(layout.size()), "writing tensors");
        if (b.name.empty()) {
            // freq_cis_real / imag: cos / sin of pos * theta^(-2i/head_dim), in float like the
            // reference exporter computes them.
            const int64_t half = b.shape[1];
            std::vector<float> table(size_t(b.shape[0] * half));
            for (int64_t pos = 0; pos < b.shape[0]; ++pos)
                for (int64_t i = 0; i < half; ++i) {
                    const float freq = 1.0f / std::pow(c.attn.rope_theta, float(2 * i) / float(c.attn.head_dim));
                    const float angle = float(pos) * freq;
                    table[size_t(pos * half + i)] = freq_table == 0 ? std::cos(angle) : std::sin(angle);
                }
            ++freq_table;
            EF_TRY_STATUS((*w)->write(table.data(), table.size() * 4));
            continue;
        }
        for (int64_t l = 0; l < (b.per_layer ? h.n_layers : 1); ++l) {
            if (progress.cancelled()) return make_error(path + ": saving cancelled");
            const std::string name = layer_name(b, l);
            const Tensor* t = m.find(name);
            if (!t) return make_error(path + ": model has no tensor \"" + name + "\"");
            if (shape_numel(t->shape) != shape_numel(b.shape) || t->shape.back() != b.shape.back())
                return make_error(path + ": tensor \"" + name + "\" has shape " + shape_to_string(t->shape) +
                                  ", llama2.c needs " + shape_to_string(b.shape));
            if (t->dtype == DType::F32) {
                EF_TRY_STATUS((*w)->write(t->data));
            } else {
                auto f = t->to_f32();
                if (!f) return make_error(path + ": " + f.message());
                EF_TRY_STATUS((*w)->write(f->data(), f->size() * 4));
            }
        }
    }
    if (tok) EF_TRY_STATUS(tok->commit());
    EF_TRY_STATUS((*w)->commit());
    progress.report(1.0, "done");
    return {};
}

}  // namespace

Result<Vocab> read_llama2c_tokenizer(const std::string& path, int64_t vocab_size) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.error();
    const auto b = (*mapped)->bytes();
    if (b.size() < 4) return make_error(path + ": llama2.c tokenizer is truncated (no header)");
    Vocab v;
    v.model = "llama";
    v.max_token_length = rd_i32(b, 0);
    if (v.max_token_length < 1 || v.max_token_length > (1 << 16))
        return make_error(path + ": llama2.c tokenizer max_token_length " + std::to_string(v.max_token_length) +
                          " out of range");
    // Each token takes at least 8 bytes: bound the count by the file before allocating.
    if (vocab_size < 3 || uint64_t(vocab_size) > (b.size() - 4) / 8)
        return make_error(path + ": a tokenizer of " + std::to_string(b.size()) + " bytes cannot hold " +
                          std::to_string(vocab_size) + " tokens");
    v.tokens.reserve(size_t(vocab_size));
    size_t off = 4;
    for (int64_t i = 0; i < vocab_size; ++i) {
        if (b.size() - off < 8)
            return make_error(path + ": llama2.c tokenizer is truncated at token " + std::to_string(i) + " of " +
                              std::to_string(vocab_size));
        float score;
        std::memcpy(&score, b.data() + off, 4);
        const int32_t len = rd_i32(b, off + 4);
        off += 8;
        if (len < 0)
            return make_error(path + ": llama2.c tokenizer token " + std::to_string(i) + " has length " +
                              std::to_string(len));
        if (uint64_t(len) > b.size() - off)
            return make_error(path + ": llama2.c tokenizer is truncated: token " + std::to_string(i) + " has length " +
                              std::to_string(len) + " but only " + std::to_string(b.size() - off) + " bytes are left");
        std::string text(reinterpret_cast<const char*>(b.data() + off), size_t(len));
        off += size_t(len);
        int32_t type = kNormal;
        if (i == 0) {
            type = kUnknown;
        } else if (i == 1 || i == 2) {
            text = i == 1 ? "<s>" : "</s>";  // stored as "\n<s>\n" / "\n</s>\n"
            type = kControl;
        } else if (text.empty()) {
            type = kControl;
        } else if (text.size() == 6 && text.starts_with("<0x") && text.back() == '>') {
            type = kByte;
        } else {
            std::string sp;
            for (char ch : text) sp += ch == ' ' ? kSpace : std::string(1, ch);
            text = std::move(sp);
        }
        v.tokens.push_back(std::move(text));
        v.scores.push_back(score);
        v.token_types.push_back(type);
    }
    if (off != b.size())
        return make_error(path + ": " + std::to_string(b.size() - off) + " unexpected bytes after " +
                          std::to_string(vocab_size) + " tokens (wrong vocabulary size?)");
    v.unk_id = 0;
    v.bos_id = 1;
    v.eos_id = 2;
    v.add_bos = true;
    return v;
}

Status write_llama2c_tokenizer(const Vocab& v, const std::string& path) {
    auto w = AtomicFileWriter::create(path);
    if (!w) return w.error();
    EF_TRY_STATUS(write_tokenizer_to(v, **w));
    return (*w)->commit();
}

const FormatHandler& llama2c_format_handler() {
    static const FormatHandler h{"llama2c", {".bin"}, probe, load, save};
    return h;
}

}  // namespace ef
