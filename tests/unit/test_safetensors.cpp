// safetensors + config.json + tokenizer.json: round trips of every architecture, dtype handling,
// the files checked by an independent numpy reader (tests/reference/read_safetensors.py), a
// hand-built HF-style checkpoint read back, lone files, directories, tokenizers, cancellation.
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstring>
#include <fstream>

#include "core/formats/format.h"
#include "core/formats/hf_tokenizer.h"
#include "core/formats/safetensors.h"
#include "core/model_json.h"
#include "quant/half.h"
#include "tests/support/test_support.h"
#include "tests/unit/gguf_test_models.h"

using namespace ef;
using nlohmann::json;

namespace {

QString qs(std::string_view s) { return QString::fromUtf8(s.data(), int(s.size())); }

Model tiny(const std::string& arch, DType dt = DType::F32) {
    std::string err;
    Model m = test::gguf_test_model(arch, dt, test::TinyDims{64, 64, 2, 64}, &err);
    if (m.architecture.empty()) qWarning("%s", err.c_str());
    return m;
}

void compare_vocab(const Vocab& a, const Vocab& b) {
    QCOMPARE(b.model, a.model);
    QCOMPARE(b.pre, a.pre);
    QVERIFY(b.tokens == a.tokens);
    QVERIFY(b.scores == a.scores);
    QVERIFY(b.token_types == a.token_types);
    QVERIFY(b.merges == a.merges);
    QCOMPARE(b.bos_id, a.bos_id);
    QCOMPARE(b.eos_id, a.eos_id);
    QCOMPARE(b.unk_id, a.unk_id);
    QCOMPARE(b.pad_id, a.pad_id);
    QCOMPARE(b.add_bos, a.add_bos);
}

// Tensors by name; A = -exp(A_log) passes through log/exp and may move by an ulp or two.
void compare_tensors(const Model& a, const Model& b) {
    QCOMPARE(b.tensors.size(), a.tensors.size());
    for (const Tensor& x : a.tensors) {
        const Tensor* y = b.find(x.name);
        QVERIFY2(y, x.name.c_str());
        QVERIFY2(y->shape == x.shape, x.name.c_str());
        if (x.name.ends_with("ssm_a")) {
            auto fx = x.to_f32(), fy = y->to_f32();
            QVERIFY(fx.ok() && fy.ok());
            for (size_t i = 0; i < fx->size(); ++i)
                QVERIFY2(std::abs((*fx)[i] - (*fy)[i]) <= 1e-6f * std::abs((*fx)[i]),
                         qPrintable(QString("%1[%2]: %3 vs %4").arg(x.name.c_str()).arg(i).arg((*fx)[i]).arg((*fy)[i])));
            continue;
        }
        QVERIFY2(y->dtype == x.dtype, x.name.c_str());
        QCOMPARE(y->data.size(), x.data.size());
        QVERIFY2(std::memcmp(y->data.data(), x.data.data(), x.data.size()) == 0, x.name.c_str());
    }
}

void write_file(const QString& path, const QByteArray& bytes) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    QCOMPARE(f.write(bytes), bytes.size());
}

QByteArray f32_bytes(const std::vector<float>& v) {
    return QByteArray(reinterpret_cast<const char*>(v.data()), qsizetype(v.size() * 4));
}

// A safetensors file assembled by hand: tensors as (name, dtype, shape, raw bytes).
struct RawTensor {
    std::string name, dtype;
    std::vector<int64_t> shape;
    QByteArray bytes;
};
QByteArray assemble(const std::vector<RawTensor>& ts, const json& metadata = json()) {
    json h = json::object();
    uint64_t off = 0;
    QByteArray data;
    for (const auto& t : ts) {
        h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + uint64_t(t.bytes.size())}}};
        off += uint64_t(t.bytes.size());
        data += t.bytes;
    }
    if (!metadata.is_null()) h["__metadata__"] = metadata;
    const std::string s = h.dump();
    QByteArray out(8, '\0');
    const uint64_t n = s.size();
    for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
    return out + QByteArray(s.data(), qsizetype(s.size())) + data;
}

}  // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    int counter_ = 0;
    // A fresh sub-directory per case: config.json and tokenizer.json sit beside the weights.
    QString fresh_dir() {
        const QString d = dir_.filePath(QString::number(++counter_));
        QDir().mkpath(d);
        return d;
    }

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void roundTrip_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("dtype");
        for (const ArchitectureInfo* a : architectures())
            for (DType t : {DType::F32, DType::F16, DType::BF16})
                QTest::newRow((qs(a->name) + " " + qs(dtype_name(t))).toUtf8()) << qs(a->name) << int(t);
    }
    void roundTrip() {
        QFETCH(QString, arch);
        QFETCH(int, dtype);
        Model m = tiny(arch.toStdString(), DType(dtype));
        QVERIFY(!m.architecture.empty());
        m.metadata["general.license"] = MetaValue::str("mit");
        m.metadata["custom.count"] = MetaValue::u64(~uint64_t(0));
        const QString d = fresh_dir();
        const std::string p = (d + "/model.safetensors").toStdString();
        Status s = save_model(m, p);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        QVERIFY(QFile::exists(d + "/config.json"));
        QVERIFY(QFile::exists(d + "/tokenizer.json"));
        QCOMPARE(QDir(d).entryList(QDir::Files).size(), 3);  // no temporaries left over
        auto back = load_model(p);
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QCOMPARE(back->architecture, m.architecture);
        // config.json may spell a default out (granite's attention_multiplier = 1/sqrt(head_dim)
        // comes back as an explicit scale); compare with the default made explicit.
        auto normalized = [](ModelConfig c) {
            if (c.attn.scale == 0.0f && c.attn.head_dim > 0) c.attn.scale = 1.0f / std::sqrt(float(c.attn.head_dim));
            return c;
        };
        QVERIFY2(normalized(back->config) == normalized(m.config),
                 (config_to_json(back->config).dump() + " vs " + config_to_json(m.config).dump()).c_str());
        QVERIFY(back->layers == m.layers);
        QCOMPARE(back->source_format, std::string("safetensors"));
        compare_vocab(m.vocab, back->vocab);
        QCOMPARE(back->metadata.size(), m.metadata.size());
        QCOMPARE(back->metadata.at("custom.count").to_display_string(), m.metadata.at("custom.count").to_display_string());
        compare_tensors(m, back.value());

        // The file follows the public spec, read by numpy code that knows nothing of ours.
        const auto r = test::run_process("/usr/bin/python3", {test::source_path("tests/reference/read_safetensors.py"),
                                                              QString::fromStdString(p)});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const QJsonObject info = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(info["header_length"].toInteger() % 8, 0);  // data buffer starts 8-aligned
        QCOMPARE(info["metadata"].toObject()["ef.architecture"].toString(), arch);
        for (const QJsonValue& t : info["tensors"].toObject()) {
            const QString dt = t.toObject()["dtype"].toString();
            QVERIFY2(dt == "F32" || dt == qs(dtype_name(DType(dtype))).toUpper(), qPrintable(dt));
        }
    }

    // q/k leave in HF's rotate-half order: undoing it with llama.cpp's published permutation in numpy
    // must give back the canonical (GGUF-order) tensors.
    void ropePermutationMatchesReference() {
        // GQA (k uses the kv head count), 4 heads of 16.
        Model m;
        m.architecture = "llama";
        const ArchitectureInfo* arch = find_architecture("llama");
        QVERIFY(arch);
        m.config.vocab_size = 64;
        m.config.dim = 64;
        m.config.n_layers = 2;
        m.config.context_length = 64;
        m.config.attn.n_heads = 4;
        m.config.attn.n_kv_heads = 2;
        arch->complete_config(m.config);
        m.layers = arch->default_layers(m.config);
        m.vocab = test::gguf_test_vocab(64);
        int salt = 0;
        for (const TensorSpec& spec : arch->tensor_specs(m.config, m.layers)) {
            std::vector<float> v(size_t(shape_numel(spec.shape).value()));
            ++salt;
            for (size_t i = 0; i < v.size(); ++i) v[i] = float((i * 7 + size_t(salt) * 13) % 977) * 0.001f - 0.3f;
            m.add(Tensor::from_f32(spec.name, spec.shape, v).value());
        }
        Status valid = validate_model(m, "test");
        QVERIFY2(valid.ok(), valid.ok() ? "" : valid.message().c_str());
        const QString d = fresh_dir();
        const std::string p = (d + "/model.safetensors").toStdString();
        QVERIFY(save_model(m, p).ok());
        const QString q = "model.layers.1.self_attn.q_proj.weight", k = "model.layers.1.self_attn.k_proj.weight";
        const auto r = test::run_process(
            "/usr/bin/python3",
            {test::source_path("tests/reference/read_safetensors.py"), QString::fromStdString(p), "--permute",
             q + ":" + QString::number(m.config.attn.n_heads), "--permute",
             k + ":" + QString::number(m.config.attn.n_kv_heads), "--values"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const QJsonObject ts = QJsonDocument::fromJson(r.out.toUtf8()).object()["tensors"].toObject();
        auto check = [&](const QString& hf, const char* canonical) {
            const QJsonArray vals = ts[hf].toObject()["values"].toArray();
            const auto want = m.find(canonical)->to_f32().value();
            QCOMPARE(size_t(vals.size()), want.size());
            for (size_t i = 0; i < want.size(); ++i) QCOMPARE(float(vals[qsizetype(i)].toDouble()), want[i]);
        };
        check(q, "blk.1.attn_q.weight");
        check(k, "blk.1.attn_k.weight");
        // Unpermuted tensors come out as they are.
        const QJsonArray v = ts["model.layers.1.self_attn.v_proj.weight"].toObject()["values"].toArray();
        const auto want_v = m.find("blk.1.attn_v.weight")->to_f32().value();
        for (size_t i = 0; i < want_v.size(); ++i) QCOMPARE(float(v[qsizetype(i)].toDouble()), want_v[i]);
        // And the config.json says what HF's LlamaConfig expects.
        QFile cf(d + "/config.json");
        QVERIFY(cf.open(QIODevice::ReadOnly));
        const QJsonObject cfg = QJsonDocument::fromJson(cf.readAll()).object();
        QCOMPARE(cfg["architectures"].toArray().first().toString(), QString("LlamaForCausalLM"));
        QCOMPARE(cfg["hidden_size"].toInteger(), m.config.dim);
        QCOMPARE(cfg["num_key_value_heads"].toInteger(), m.config.attn.n_kv_heads);
        QCOMPARE(cfg["bos_token_id"].toInteger(), 1);
    }

    // A checkpoint laid out by hand the way HF writes one: q/k halves, BF16 weights, an
    // inv_freq buffer, tied embeddings, a config.json and an HF-style Llama tokenizer.json.
    void readsHandBuiltHfCheckpoint() {
        const int64_t dim = 8, heads = 2, kv = 1, hd = 4, ffn = 16, vocab = 6;
        auto val = [](int64_t tensor, int64_t r, int64_t c) { return float(tensor * 1000 + r * 10 + c) / 256.0f; };
        auto mat = [&](int64_t id, int64_t rows, int64_t cols) {
            std::vector<float> v;
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < cols; ++c) v.push_back(val(id, r, c));
            return v;
        };
        auto bf16 = [](const std::vector<float>& v) {
            QByteArray b;
            for (float x : v) {
                const uint16_t h = f32_to_bf16(x);
                b.append(char(h & 0xff)).append(char(h >> 8));
            }
            return b;
        };
        std::vector<RawTensor> ts = {
            {"model.embed_tokens.weight", "F32", {vocab, dim}, f32_bytes(mat(1, vocab, dim))},
            {"model.norm.weight", "F32", {dim}, f32_bytes(mat(2, 1, dim))},
            {"model.layers.0.input_layernorm.weight", "F32", {dim}, f32_bytes(mat(3, 1, dim))},
            {"model.layers.0.post_attention_layernorm.weight", "F32", {dim}, f32_bytes(mat(4, 1, dim))},
            {"model.layers.0.self_attn.q_proj.weight", "F32", {heads * hd, dim}, f32_bytes(mat(5, heads * hd, dim))},
            {"model.layers.0.self_attn.k_proj.weight", "F32", {kv * hd, dim}, f32_bytes(mat(6, kv * hd, dim))},
            {"model.layers.0.self_attn.v_proj.weight", "F32", {kv * hd, dim}, f32_bytes(mat(7, kv * hd, dim))},
            {"model.layers.0.self_attn.o_proj.weight", "F32", {dim, heads * hd}, f32_bytes(mat(8, dim, heads * hd))},
            {"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", {hd / 2}, f32_bytes({1.0f, 0.01f})},
            {"model.layers.0.mlp.gate_proj.weight", "BF16", {ffn, dim}, bf16(mat(9, ffn, dim))},
            {"model.layers.0.mlp.up_proj.weight", "BF16", {ffn, dim}, bf16(mat(10, ffn, dim))},
            {"model.layers.0.mlp.down_proj.weight", "BF16", {dim, ffn}, bf16(mat(11, dim, ffn))},
        };
        const QString d = fresh_dir();
        write_file(d + "/model.safetensors", assemble(ts, {{"format", "pt"}}));
        const json config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", dim},
                             {"num_hidden_layers", 1}, {"num_attention_heads", heads}, {"num_key_value_heads", kv},
                             {"intermediate_size", ffn}, {"vocab_size", vocab}, {"max_position_embeddings", 32},
                             {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", true}, {"hidden_act", "silu"},
                             {"bos_token_id", 1}, {"eos_token_id", 2}, {"torch_dtype", "bfloat16"}};
        write_file(d + "/config.json", QByteArray::fromStdString(config.dump()));
        // HF's fast Llama tokenizer: BPE with byte_fallback, special tokens as added_tokens.
        const json tok = {
            {"version", "1.0"},
            {"added_tokens", {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                              {{"id", 1}, {"content", "<s>"}, {"special", true}},
                              {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
            {"post_processor", {{"type", "TemplateProcessing"},
                                {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                            {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                                {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
            {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}}}}},
            {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"unk_token", "<unk>"},
                       {"vocab", {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"<0x0A>", 3}, {"\xe2\x96\x81", 4}, {"a", 5}}},
                       {"merges", json::array({json::array({"\xe2\x96\x81", "a"})})}}}};
        write_file(d + "/tokenizer.json", QByteArray::fromStdString(tok.dump()));

        auto m = load_model(d.toStdString());  // the directory form
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(m->architecture, std::string("llama"));
        QCOMPARE(m->config.dim, dim);
        QCOMPARE(m->config.attn.n_kv_heads, kv);
        QVERIFY(m->config.tied_embeddings);
        QCOMPARE(m->config.norm_eps, 1e-6f);
        QVERIFY(!m->find("output.weight"));
        // GGUF/canonical order interleaves each rotated pair: canonical row h*hd + 2j + i holds
        // HF row h*hd + i*hd/2 + j (convert_hf_to_gguf's permute).
        auto check_perm = [&](const char* name, int64_t id, int64_t n_head) {
            const Tensor* t = m->find(name);
            QVERIFY2(t, name);
            const auto v = t->to_f32().value();
            for (int64_t h = 0; h < n_head; ++h)
                for (int64_t j = 0; j < hd / 2; ++j)
                    for (int64_t i = 0; i < 2; ++i)
                        for (int64_t c = 0; c < dim; ++c)
                            QCOMPARE(v[size_t((h * hd + 2 * j + i) * dim + c)], val(id, h * hd + i * hd / 2 + j, c));
        };
        check_perm("blk.0.attn_q.weight", 5, heads);
        check_perm("blk.0.attn_k.weight", 6, kv);
        const Tensor* gate = m->find("blk.0.ffn_gate.weight");
        QVERIFY(gate && gate->dtype == DType::BF16);  // kept as stored, no conversion
        QCOMPARE(gate->to_f32().value()[size_t(3 * dim + 5)], bf16_to_f32(f32_to_bf16(val(9, 3, 5))));
        QCOMPARE(m->find("blk.0.ffn_down.weight")->to_f32().value()[size_t(2 * ffn + 7)],
                 bf16_to_f32(f32_to_bf16(val(11, 2, 7))));
        QCOMPARE(m->find("blk.0.ffn_up.weight")->shape, (Shape{ffn, dim}));
        QCOMPARE(m->find("token_embd.weight")->to_f32().value()[size_t(5 * dim + 7)], val(1, 5, 7));
        // The tokenizer: SentencePiece-like, scores from the piece order, types from the roles.
        const Vocab& v = m->vocab;
        QCOMPARE(v.model, std::string("llama"));
        QCOMPARE(int(v.tokens.size()), 6);
        QCOMPARE(v.token_types, (std::vector<int32_t>{2, 3, 3, 6, 1, 1}));
        QCOMPARE(v.bos_id, 1);
        QCOMPARE(v.eos_id, 2);
        QCOMPARE(v.unk_id, 0);
        QVERIFY(v.add_bos);
        QCOMPARE(v.merges.size(), size_t(1));
        QCOMPARE(v.merges[0], std::string("\xe2\x96\x81 a"));
        QVERIFY(v.scores.size() == 6 && v.scores[5] < v.scores[4]);
    }

    void quantizedIsDequantizedToF32() {
        Model m = tiny("llama", DType::Q8_0);
        QVERIFY(!m.architecture.empty());
        QCOMPARE(m.find("blk.0.attn_q.weight")->dtype, DType::Q8_0);
        const QString d = fresh_dir();
        QVERIFY(save_model(m, (d + "/m.safetensors").toStdString()).ok());
        auto back = load_model((d + "/m.safetensors").toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        for (const Tensor& t : m.tensors) {
            const Tensor* b = back->find(t.name);
            QVERIFY(b);
            QCOMPARE(b->dtype, DType::F32);
            QVERIFY2(b->to_f32().value() == t.to_f32().value(), t.name.c_str());
        }
    }

    // Without config.json (and tokenizer.json) a file we wrote still opens from its __metadata__.
    void loneFileReopens() {
        Model m = tiny("mamba2");
        QVERIFY(!m.architecture.empty());
        const QString d = fresh_dir();
        const std::string p = (d + "/lone.safetensors").toStdString();
        QVERIFY(save_model(m, p).ok());
        QVERIFY(QFile::remove(d + "/config.json"));
        QVERIFY(QFile::remove(d + "/tokenizer.json"));
        auto back = load_model(p);
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QVERIFY(back->config == m.config);
        QVERIFY(back->layers == m.layers);
        QVERIFY(back->vocab.empty());
        compare_tensors(m, back.value());
    }

    void savesIntoDirectory() {
        Model m = tiny("llama");
        m.vocab = Vocab{};  // no tokenizer.json then
        const QString d = fresh_dir();
        Status s = safetensors_format_handler().save(m, d.toStdString(), {}, Progress::none());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        QVERIFY(QFile::exists(d + "/model.safetensors"));
        QVERIFY(!QFile::exists(d + "/tokenizer.json"));
        auto back = load_model(d.toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QVERIFY(back->vocab.empty());
        compare_tensors(m, back.value());
    }

    void tokenizerRoundTrip_data() {
        QTest::addColumn<QString>("kind");
        QTest::newRow("spm") << "spm";
        QTest::newRow("gpt2") << "gpt2";
    }
    void tokenizerRoundTrip() {
        QFETCH(QString, kind);
        Vocab v = test::gguf_test_vocab(300);
        if (kind == "gpt2") {
            v.model = "gpt2";
            v.pre = "qwen2";
            v.scores.clear();
            v.tokens = {"<|endoftext|>", "a", "b", "ab", "\xc4\xa0", "\xc4\xa0" "ab", "<|pad|>", "user"};
            v.token_types = {3, 1, 1, 1, 1, 1, 3, 4};
            v.merges = {"a b", "\xc4\xa0 ab"};
            v.bos_id = v.eos_id = 0;
            v.unk_id = -1;
            v.pad_id = 6;
            v.add_bos = false;
        } else {
            v.token_types[299] = 5;  // unused: kept only via the extras
            v.max_token_length = 9;
        }
        const QString path = fresh_dir() + "/tokenizer.json";
        QVERIFY(write_hf_tokenizer(v, path.toStdString()).ok());
        // tokenizer.json alone gives tokens, scores, merges and the special ids (no types beyond
        // what it can express)...
        auto plain = read_hf_tokenizer(path.toStdString());
        QVERIFY2(plain.ok(), plain.ok() ? "" : plain.message().c_str());
        QVERIFY(plain->tokens == v.tokens);
        QVERIFY(plain->scores == v.scores);
        QVERIFY(plain->merges == v.merges);
        QCOMPARE(plain->model, v.model);
        QCOMPARE(plain->eos_id, v.eos_id);
        // ...and with the extras the vocabulary comes back exactly.
        QVERIFY(apply_vocab_extras(vocab_extras_to_json(v), *plain, "t").ok());
        compare_vocab(v, *plain);
        QCOMPARE(plain->max_token_length, v.max_token_length);
        // The JSON is the HF layout.
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject j = QJsonDocument::fromJson(f.readAll()).object();
        QCOMPARE(j["model"].toObject()["type"].toString(), kind == "gpt2" ? QString("BPE") : QString("Unigram"));
    }

    void cancelledSaveLeavesNothing() {
        Model m = tiny("llama");
        const QString d = fresh_dir();
        Progress p;
        p.cancel();
        Status s = safetensors_format_handler().save(m, (d + "/x.safetensors").toStdString(), {}, p);
        QVERIFY(!s.ok());
        QVERIFY2(s.message().find("cancel") != std::string::npos, s.message().c_str());
        QCOMPARE(QDir(d).entryList(QDir::Files | QDir::Hidden).size(), 0);
    }

    void progressReported() {
        Model m = tiny("llama");
        const QString d = fresh_dir();
        double last = -1;
        bool monotone = true;
        Progress p([&](double f, const std::string&) {
            monotone = monotone && f >= last;
            last = f;
        });
        QVERIFY(safetensors_format_handler().save(m, (d + "/x.safetensors").toStdString(), {}, p).ok());
        QVERIFY(monotone);
        QCOMPARE(last, 1.0);
        last = -1;
        QVERIFY(safetensors_format_handler().load((d + "/x.safetensors").toStdString(), {}, p).ok());
        QVERIFY(monotone);
        QCOMPARE(last, 1.0);
    }

    void tensorsAreMapped() {
        Model m = tiny("llama");
        const QString d = fresh_dir();
        QVERIFY(save_model(m, (d + "/x.safetensors").toStdString()).ok());
        auto back = load_model((d + "/x.safetensors").toStdString());
        QVERIFY(back.ok());
        const Tensor* emb = back->find("token_embd.weight");
        const Tensor* norm = back->find("output_norm.weight");
        QVERIFY(emb && norm);
        QVERIFY(emb->owner == norm->owner);  // both views into the one mapped file
        QVERIFY(back->find("blk.0.attn_q.weight")->owner != emb->owner);  // un-permuted copy
    }
};

QTEST_GUILESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
