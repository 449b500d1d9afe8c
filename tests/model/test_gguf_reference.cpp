// Our GGUF writer and reader checked against an independent parser, @huggingface/gguf
// (tests/reference/gguf_parse.mjs): every key (name, type, value) and every tensor info (name,
// shape, type, offset) of files we write, the tensor bytes at the offsets it reports, and every key
// of real GGUF files written by llama.cpp's gguf-py (the shared vocab-test files).
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstring>
#include <fstream>

#include "core/formats/gguf.h"
#include "tests/support/test_support.h"
#include "core/synth.h"

using namespace ef;

namespace {

QJsonObject parse_with_reference(const std::string& path, QString* error) {
    const auto r = test::run_node_script("gguf_parse.mjs", {QString::fromStdString(path)}, 180000);
    if (r.exit_code != 0) {
        *error = QStringLiteral("gguf_parse.mjs failed (%1): %2").arg(r.exit_code).arg(r.err);
        return {};
    }
    QJsonParseError pe;
    const auto doc = QJsonDocument::fromJson(r.out.toUtf8(), &pe);
    if (!doc.isObject()) {
        *error = QStringLiteral("gguf_parse.mjs printed no JSON: %1").arg(pe.errorString());
        return {};
    }
    return doc.object();
}

// Decimal text of an integer scalar, as the reference prints 64-bit values (BigInt -> string).
std::string int_text(const MetaValue& v) {
    if (const auto* u = std::get_if<uint64_t>(&v.scalar)) return std::to_string(*u);
    if (const auto* i = std::get_if<int64_t>(&v.scalar)) return std::to_string(*i);
    if (const auto* b = std::get_if<bool>(&v.scalar)) return *b ? "1" : "0";
    return "?";
}

// Compares our value against the reference's JSON value; `why` says where they differ.
bool value_matches(const MetaValue& ours, const QJsonValue& ref, const std::string& where, std::string* why) {
    auto fail = [&](const std::string& m) {
        *why = where + ": " + m;
        return false;
    };
    switch (ours.type) {
        case MetaType::String: {
            if (!ref.isString()) return fail("reference value is not a string");
            const std::string* s = ours.as_string();
            return QString::fromStdString(*s) == ref.toString() ? true
                                                                 : fail("'" + *s + "' vs '" + ref.toString().toStdString() + "'");
        }
        case MetaType::Bool:
            if (!ref.isBool()) return fail("reference value is not a bool");
            return std::get<bool>(ours.scalar) == ref.toBool() ? true : fail("bool differs");
        case MetaType::F32:
        case MetaType::F64: {
            if (!ref.isDouble()) return fail("reference value is not a number");
            const double a = *ours.as_number();
            const double b = ref.toDouble();
            return (a == b || (std::isnan(a) && std::isnan(b))) ? true
                                                                : fail(std::to_string(a) + " vs " + std::to_string(b));
        }
        case MetaType::U64:
        case MetaType::I64: {
            // BigInt in the reference: printed as a decimal string.
            const std::string r = ref.isString() ? ref.toString().toStdString()
                                                 : std::to_string(static_cast<long long>(ref.toDouble()));
            return int_text(ours) == r ? true : fail(int_text(ours) + " vs " + r);
        }
        case MetaType::Array: {
            if (!ref.isArray()) return fail("reference value is not an array");
            const QJsonArray a = ref.toArray();
            if (size_t(a.size()) != ours.array.size())
                return fail("length " + std::to_string(ours.array.size()) + " vs " + std::to_string(a.size()));
            for (size_t i = 0; i < ours.array.size(); ++i)
                if (!value_matches(ours.array[i], a[qsizetype(i)], where + "[" + std::to_string(i) + "]", why))
                    return false;
            return true;
        }
        default: {  // 8..32-bit integers: plain JSON numbers
            if (!ref.isDouble()) return fail("reference value is not a number");
            const std::string r = std::to_string(static_cast<long long>(ref.toDouble()));
            return int_text(ours) == r ? true : fail(int_text(ours) + " vs " + r);
        }
    }
}

// Every key we hold is in the reference output with the same type and value, and nothing else is.
void compare_kv(const std::vector<std::pair<std::string, MetaValue>>& ours, const QJsonObject& ref_md) {
    QCOMPARE(size_t(ref_md.size()), ours.size());
    for (const auto& [key, v] : ours) {
        const QJsonValue e = ref_md.value(QString::fromStdString(key));
        QVERIFY2(e.isObject(), ("reference lacks key " + key).c_str());
        const QJsonObject o = e.toObject();
        QVERIFY2(o.value("type").toInt(-1) == int(gguf::value_type_of(v.type)), ("type of " + key).c_str());
        if (v.type == MetaType::Array)
            QVERIFY2(o.value("subType").toInt(-1) == int(gguf::value_type_of(v.elem_type)), ("subType of " + key).c_str());
        std::string why;
        QVERIFY2(value_matches(v, o.value("value"), key, &why), why.c_str());
    }
}

std::vector<std::byte> read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::byte> b(c.size());
    if (!c.empty()) std::memcpy(b.data(), c.data(), c.size());
    return b;
}

// A synthetic model of `arch` (core/synth.h); an empty Model and *error on failure.
Model synth(const std::string& arch, DType type, int64_t vocab, int64_t dim, int64_t layers, std::string* error) {
    SynthOptions o;
    o.arch = arch;
    o.type = type;
    o.vocab = vocab;
    o.dim = dim;
    o.n_layers = layers;
    o.context_length = 256;
    // synth quantizes ssm_dt.weight too, whose rows are dt_rank long: make them fit a block.
    if (type_traits(type).quantized && (arch == "mamba" || arch == "jamba")) o.dt_rank = 32;
    auto m = synth_model(o);
    if (!m) {
        *error = m.message();
        return {};
    }
    return std::move(m.value());
}

uint64_t big(const QJsonValue& v) { return v.isString() ? v.toString().toULongLong() : uint64_t(v.toDouble()); }

}  // namespace

class TestGgufReference : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        QString err;
        if (test::reference_modules(&err).isEmpty()) QFAIL(qPrintable(err));
    }

    void writtenFilesMatch_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("dtype");
        for (const char* a : {"llama", "mamba", "mamba2", "granitehybrid", "jamba", "edgefusion"})
            for (DType t : {DType::F32, DType::F16, DType::Q8_0})
                QTest::newRow(QStringLiteral("%1 %2").arg(a, QString::fromUtf8(dtype_name(t).data())).toUtf8())
                    << QString(a) << int(t);
    }
    void writtenFilesMatch() {
        QFETCH(QString, arch);
        QFETCH(int, dtype);
        std::string err;
        Model m = synth(arch.toStdString(), DType(dtype), 300, 64, 4, &err);
        QVERIFY2(!m.architecture.empty(), err.c_str());
        m.metadata["general.name"] = MetaValue::str("reference check \xe2\x9c\x93");
        m.metadata["general.file_type"] = MetaValue::u32(uint32_t(dtype));
        m.metadata["custom.big"] = MetaValue::u64(18446744073709551557ull);
        const std::string p = dir_.filePath(arch + ".gguf").toStdString();
        Status s = gguf::write_model(m, p, Progress::none());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());

        QString rerr;
        const QJsonObject ref = parse_with_reference(p, &rerr);
        QVERIFY2(!ref.isEmpty(), qPrintable(rerr));
        QCOMPARE(ref.value("version").toInt(), 3);
        QVERIFY(ref.value("littleEndian").toBool());

        auto kv = gguf::model_kv(m);
        QVERIFY(kv.ok());
        QCOMPARE(big(ref.value("kv_count")), uint64_t(kv->size()));
        compare_kv(kv.value(), ref.value("metadata").toObject());

        auto infos = gguf::model_tensor_infos(m);
        QVERIFY(infos.ok());
        const QJsonArray ti = ref.value("tensorInfos").toArray();
        QCOMPARE(big(ref.value("tensor_count")), uint64_t(infos->size()));
        QCOMPARE(size_t(ti.size()), infos->size());
        const auto bytes = read_all(p);
        const uint64_t data_offset = big(ref.value("tensorDataOffset"));
        QCOMPARE(data_offset % 32, uint64_t(0));
        for (size_t i = 0; i < infos->size(); ++i) {
            const auto& ours = infos.value()[i];
            const QJsonObject t = ti[qsizetype(i)].toObject();
            QCOMPARE(t.value("name").toString().toStdString(), ours.name);
            QCOMPARE(size_t(t.value("n_dims").toInt()), ours.shape.size());
            const QJsonArray shape = t.value("shape").toArray();
            QCOMPARE(size_t(shape.size()), ours.shape.size());
            for (size_t d = 0; d < ours.shape.size(); ++d)  // reference lists ne, innermost first
                QCOMPARE(big(shape[qsizetype(d)]), uint64_t(ours.shape[ours.shape.size() - 1 - d]));
            QCOMPARE(uint32_t(t.value("dtype").toInt()), type_traits(ours.dtype).ggml_id);
            QCOMPARE(big(t.value("offset")), ours.offset);
            // The bytes at the reference's offsets are the model's tensor bytes.
            const Tensor& mt = m.tensors[i];
            QVERIFY(data_offset + ours.offset + mt.data.size() <= bytes.size());
            QVERIFY2(std::memcmp(bytes.data() + data_offset + ours.offset, mt.data.data(), mt.data.size()) == 0,
                     ours.name.c_str());
        }
    }

    // Real files written by llama.cpp's gguf-py: our parser sees exactly the reference's keys.
    void realFilesParseAlike_data() {
        QTest::addColumn<QString>("file");
        for (const char* n : {"llama-spm", "gpt-2", "llama-bpe", "qwen2"})
            QTest::newRow(n) << QStringLiteral("vocab-tests/ggml-vocab-%1.gguf").arg(n);
    }
    void realFilesParseAlike() {
        QFETCH(QString, file);
        EF_REQUIRE_SHARED(path, file);
        const std::string p = path.toStdString();
        const auto bytes = read_all(p);
        auto h = gguf::parse_header(bytes, p);
        QVERIFY2(h.ok(), h.ok() ? "" : h.message().c_str());
        QString rerr;
        const QJsonObject ref = parse_with_reference(p, &rerr);
        QVERIFY2(!ref.isEmpty(), qPrintable(rerr));
        QCOMPARE(int(h->version), ref.value("version").toInt());
        QCOMPARE(uint64_t(h->tensors.size()), big(ref.value("tensor_count")));
        std::vector<std::pair<std::string, MetaValue>> kv;
        for (const auto& k : h->key_order) kv.emplace_back(k, h->kv.at(k));
        compare_kv(kv, ref.value("metadata").toObject());

        // The direct vocabulary path gives the same tokens, scores, types and merges.
        Vocab v;
        auto h2 = gguf::parse_header(bytes, p, gguf::ParseOptions{&v});
        QVERIFY(h2.ok());
        QVERIFY(gguf::vocab_from_kv(h2->kv, v, p).ok());
        const QJsonObject md = ref.value("metadata").toObject();
        const QJsonArray tokens = md.value("tokenizer.ggml.tokens").toObject().value("value").toArray();
        QCOMPARE(size_t(tokens.size()), v.tokens.size());
        for (size_t i = 0; i < v.tokens.size(); ++i)
            QVERIFY2(QString::fromStdString(v.tokens[i]) == tokens[qsizetype(i)].toString(), v.tokens[i].c_str());
        const QJsonArray merges = md.value("tokenizer.ggml.merges").toObject().value("value").toArray();
        QCOMPARE(size_t(merges.size()), v.merges.size());
        const QJsonArray types = md.value("tokenizer.ggml.token_type").toObject().value("value").toArray();
        QCOMPARE(size_t(types.size()), v.token_types.size());
        for (size_t i = 0; i < v.token_types.size(); ++i) QCOMPARE(v.token_types[i], types[qsizetype(i)].toInt());
        QCOMPARE(v.model, md.value("tokenizer.ggml.model").toObject().value("value").toString().toStdString());
        if (md.contains("tokenizer.ggml.bos_token_id"))
            QCOMPARE(v.bos_id, md.value("tokenizer.ggml.bos_token_id").toObject().value("value").toInt());
        if (md.contains("tokenizer.ggml.eos_token_id"))
            QCOMPARE(v.eos_id, md.value("tokenizer.ggml.eos_token_id").toObject().value("value").toInt());
    }
};

QTEST_GUILESS_MAIN(TestGgufReference)
#include "test_gguf_reference.moc"
