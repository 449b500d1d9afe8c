// Corrupt or inconsistent safetensors checkpoints: each must fail with a clear message naming the
// file and the problem, never crash or allocate absurd amounts.
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "core/formats/format.h"
#include "core/formats/safetensors.h"

using namespace ef;
using nlohmann::json;

namespace {

struct RawTensor {
    std::string name;
    json dtype;
    json shape;
    json offsets;  // null: computed from the byte count
    QByteArray bytes;
};

QByteArray le64(uint64_t n) {
    QByteArray out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
    return out;
}

QByteArray assemble(const std::vector<RawTensor>& ts, const json& metadata) {
    json h = json::object();
    uint64_t off = 0;
    QByteArray data;
    for (const auto& t : ts) {
        json offsets = t.offsets.is_null() ? json{off, off + uint64_t(t.bytes.size())} : t.offsets;
        h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", offsets}};
        off += uint64_t(t.bytes.size());
        data += t.bytes;
    }
    if (!metadata.is_null()) h["__metadata__"] = metadata;
    const std::string s = h.dump();
    return le64(s.size()) + QByteArray(s.data(), qsizetype(s.size())) + data;
}

QByteArray zeros_f32(int64_t n) { return QByteArray(qsizetype(n * 4), '\0'); }

// A valid one-layer tied llama: dim 8, 2 heads, ffn 16, vocab 6.
std::vector<RawTensor> base_tensors() {
    const int64_t d = 8, f = 16, v = 6;
    auto t = [](std::string name, std::vector<int64_t> shape) {
        int64_t n = 1;
        for (auto x : shape) n *= x;
        return RawTensor{std::move(name), "F32", shape, nullptr, zeros_f32(n)};
    };
    return {t("model.embed_tokens.weight", {v, d}), t("model.norm.weight", {d}),
            t("model.layers.0.input_layernorm.weight", {d}), t("model.layers.0.post_attention_layernorm.weight", {d}),
            t("model.layers.0.self_attn.q_proj.weight", {d, d}), t("model.layers.0.self_attn.k_proj.weight", {d, d}),
            t("model.layers.0.self_attn.v_proj.weight", {d, d}), t("model.layers.0.self_attn.o_proj.weight", {d, d}),
            t("model.layers.0.mlp.gate_proj.weight", {f, d}), t("model.layers.0.mlp.up_proj.weight", {f, d}),
            t("model.layers.0.mlp.down_proj.weight", {d, f})};
}

json base_config() {
    return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 8}, {"num_hidden_layers", 1},
            {"num_attention_heads", 2}, {"num_key_value_heads", 2}, {"intermediate_size", 16}, {"vocab_size", 6},
            {"max_position_embeddings", 16}, {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", true},
            {"hidden_act", "silu"}};
}

RawTensor* find(std::vector<RawTensor>& ts, const std::string& suffix) {
    for (auto& t : ts)
        if (t.name.ends_with(suffix)) return &t;
    return nullptr;
}

}  // namespace

class TestSafetensorsCorrupt : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    int counter_ = 0;

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void baseIsValid() {
        const QString d = dir_.filePath("base");
        QDir().mkpath(d);
        QFile f(d + "/model.safetensors");
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(assemble(base_tensors(), json()));
        f.close();
        QFile c(d + "/config.json");
        QVERIFY(c.open(QIODevice::WriteOnly));
        c.write(QByteArray::fromStdString(base_config().dump()));
        c.close();
        auto m = load_model((d + "/model.safetensors").toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(m->tensors.size(), size_t(11));
    }

    void rejects_data() {
        QTest::addColumn<QString>("mutation");
        QTest::addColumn<QString>("expect");
        QTest::newRow("file shorter than 8 bytes") << "short" << "too short";
        QTest::newRow("header length beyond the file") << "hugelen" << "exceeds the file";
        QTest::newRow("header not JSON") << "badjson" << "not valid JSON";
        QTest::newRow("header not an object") << "array" << "not a JSON object";
        QTest::newRow("offsets past the buffer") << "offrange" << "past the data buffer";
        QTest::newRow("offsets overlap") << "overlap" << "overlap";
        QTest::newRow("offsets reversed") << "reversed" << "begin > end";
        QTest::newRow("offsets not a pair") << "offsetshape" << "data_offsets";
        QTest::newRow("bytes do not match dtype x shape") << "sizemismatch" << "needs 256 bytes";
        QTest::newRow("unknown dtype") << "unknowndtype" << "unknown dtype";
        QTest::newRow("unsupported dtype") << "i32" << "not supported";
        QTest::newRow("negative dimension") << "negdim" << "negative";
        QTest::newRow("non-integer dimension") << "floatdim" << "non-integer";
        QTest::newRow("entry without dtype") << "nodtype" << "lacks dtype";
        QTest::newRow("metadata value not a string") << "metanum" << "not a string";
        QTest::newRow("no config.json, no __metadata__") << "noconfig" << "no config.json";
        QTest::newRow("config.json not JSON") << "configbad" << "not a valid JSON object";
        QTest::newRow("config contradicts tensor shapes") << "confighidden" << "config implies";
        QTest::newRow("config lacks a size") << "confignokey" << "hidden_size";
        QTest::newRow("unknown HF architecture") << "configarch" << "FooForCausalLM";
        QTest::newRow("unknown tensor") << "extratensor" << "model.layers.0.foo.weight";
        QTest::newRow("missing tensor") << "missingtensor" << "attn_output";
        QTest::newRow("broken __metadata__ config") << "metaconfig" << "ef.config";
        QTest::newRow("sharded directory") << "sharded" << "sharded";
    }
    void rejects() {
        QFETCH(QString, mutation);
        QFETCH(QString, expect);
        const QString d = dir_.filePath(QString::number(++counter_));
        QDir().mkpath(d);
        auto ts = base_tensors();
        json config = base_config();
        json meta;
        QByteArray file;
        bool write_config = true;
        QString load_path = d + "/model.safetensors";
        const std::string m = mutation.toStdString();
        if (m == "offrange") find(ts, "q_proj.weight")->offsets = {0, 1 << 20};
        if (m == "overlap") find(ts, "k_proj.weight")->offsets = {uint64_t(6 * 8 * 4), uint64_t(6 * 8 * 4 + 256)};
        if (m == "reversed") find(ts, "k_proj.weight")->offsets = {256, 0};
        if (m == "offsetshape") find(ts, "k_proj.weight")->offsets = {1, 2, 3};
        if (m == "sizemismatch") find(ts, "q_proj.weight")->bytes = zeros_f32(60);
        if (m == "unknowndtype") find(ts, "q_proj.weight")->dtype = "Q9";
        if (m == "i32") find(ts, "q_proj.weight")->dtype = "I32";
        if (m == "negdim") find(ts, "q_proj.weight")->shape = {-8, -8};
        if (m == "floatdim") find(ts, "q_proj.weight")->shape = {8.5, 8};
        if (m == "metanum") meta = {{"a", 1}};
        if (m == "noconfig") write_config = false;
        if (m == "confighidden") config["intermediate_size"] = 32;
        if (m == "confignokey") config.erase("hidden_size");
        if (m == "configarch") config["architectures"] = {"FooForCausalLM"};
        if (m == "extratensor") ts.push_back({"model.layers.0.foo.weight", "F32", {8}, nullptr, zeros_f32(8)});
        if (m == "missingtensor") ts.erase(ts.begin() + 7);
        if (m == "metaconfig") {
            write_config = false;
            meta = {{"ef.architecture", "llama"}, {"ef.config", "{not json"}, {"ef.layers", "[]"}};
        }
        file = assemble(ts, meta);
        if (m == "short") file = QByteArray(4, '\x10');
        if (m == "hugelen") file = le64(uint64_t(1) << 40) + QByteArray("{}");
        if (m == "badjson") file = le64(5) + QByteArray("{abc}");
        if (m == "array") file = le64(5) + QByteArray("[1,2]");
        if (m == "nodtype") {
            const std::string h = R"({"model.norm.weight": {"shape": [8], "data_offsets": [0, 32]}})";
            file = le64(h.size()) + QByteArray::fromStdString(h) + zeros_f32(8);
        }
        if (m == "sharded") {
            load_path = d;
            QFile idx(d + "/model.safetensors.index.json");
            QVERIFY(idx.open(QIODevice::WriteOnly));
            idx.write("{}");
        } else {
            QFile f(d + "/model.safetensors");
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(file);
        }
        if (write_config) {
            QFile c(d + "/config.json");
            QVERIFY(c.open(QIODevice::WriteOnly));
            c.write(m == "configbad" ? QByteArray("{\"architectures\": [") : QByteArray::fromStdString(config.dump()));
        }
        auto r = safetensors_format_handler().load(load_path.toStdString(), {}, Progress::none());
        QVERIFY2(!r.ok(), qPrintable("loaded although " + mutation));
        const QString msg = QString::fromStdString(r.message());
        QVERIFY2(msg.contains(expect), qPrintable(msg));
        QVERIFY2(msg.contains(d), qPrintable("message does not name the file: " + msg));
    }
};

QTEST_GUILESS_MAIN(TestSafetensorsCorrupt)
#include "test_safetensors_corrupt.moc"
