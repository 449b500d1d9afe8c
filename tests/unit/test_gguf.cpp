// GGUF read/write: round trips of every architecture and dtype, metadata of every value type,
// zero-copy mapping, the on-disk layout rules, atomic and cancellable saves, progress.
#include <QDir>
#include <QTemporaryDir>
#include <QtTest>
#include <cstring>
#include <fstream>

#include "core/arch/architecture.h"
#include "core/formats/format.h"
#include "core/formats/gguf.h"
#include "core/synth.h"

using namespace ef;

namespace {

bool meta_equal(const MetaValue& a, const MetaValue& b, std::string* why, const std::string& path) {
    auto fail = [&](const std::string& m) {
        *why = path + ": " + m;
        return false;
    };
    if (a.type != b.type) return fail("type differs");
    if (a.type == MetaType::Array) {
        if (a.elem_type != b.elem_type) return fail("element type differs");
        if (a.array.size() != b.array.size()) return fail("array length differs");
        for (size_t i = 0; i < a.array.size(); ++i)
            if (!meta_equal(a.array[i], b.array[i], why, path + "[" + std::to_string(i) + "]")) return false;
        return true;
    }
    if (const auto* s = a.as_string()) return b.as_string() && *s == *b.as_string() ? true : fail("string differs");
    if (a.is_float()) return a.as_number() == b.as_number() ? true : fail("float differs");
    if (a.type == MetaType::Bool) return std::get<bool>(a.scalar) == std::get<bool>(b.scalar) ? true : fail("bool differs");
    // Integers: compare in the widest form (u64 values above INT64_MAX included).
    return a.to_display_string() == b.to_display_string() ? true : fail("integer differs");
}

bool metadata_equal(const Metadata& a, const Metadata& b, std::string* why) {
    for (const auto& [k, v] : a) {
        auto it = b.find(k);
        if (it == b.end()) return *why = "key '" + k + "' missing after the round trip", false;
        if (!meta_equal(v, it->second, why, k)) return false;
    }
    for (const auto& [k, v] : b)
        if (!a.count(k)) return *why = "key '" + k + "' appeared after the round trip", false;
    return true;
}

void compare_models(const Model& a, const Model& b) {
    QCOMPARE(b.architecture, a.architecture);
    QVERIFY(b.config == a.config);
    QVERIFY(b.layers == a.layers);
    QCOMPARE(b.vocab.model, a.vocab.model);
    QCOMPARE(b.vocab.pre, a.vocab.pre);
    QVERIFY(b.vocab.tokens == a.vocab.tokens);
    QVERIFY(b.vocab.scores == a.vocab.scores);
    QVERIFY(b.vocab.token_types == a.vocab.token_types);
    QVERIFY(b.vocab.merges == a.vocab.merges);
    QCOMPARE(b.vocab.bos_id, a.vocab.bos_id);
    QCOMPARE(b.vocab.eos_id, a.vocab.eos_id);
    QCOMPARE(b.vocab.unk_id, a.vocab.unk_id);
    QCOMPARE(b.vocab.pad_id, a.vocab.pad_id);
    QCOMPARE(b.vocab.add_bos, a.vocab.add_bos);
    std::string why;
    QVERIFY2(metadata_equal(a.metadata, b.metadata, &why), why.c_str());
    QCOMPARE(b.tensors.size(), a.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        const Tensor& x = a.tensors[i];
        const Tensor& y = b.tensors[i];
        QCOMPARE(y.name, x.name);
        QVERIFY2(y.dtype == x.dtype, x.name.c_str());
        QVERIFY2(y.shape == x.shape, x.name.c_str());
        QCOMPARE(y.data.size(), x.data.size());
        QVERIFY2(std::memcmp(y.data.data(), x.data.data(), x.data.size()) == 0, x.name.c_str());
    }
}

std::vector<std::byte> read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::byte> b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
}

void write_all(const std::string& path, const std::vector<std::byte>& b) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

MetaValue arr(MetaType elem, std::vector<MetaValue> items) {
    MetaValue v;
    v.type = MetaType::Array;
    v.elem_type = elem;
    v.array = std::move(items);
    return v;
}
MetaValue scalar(MetaType t, std::variant<uint64_t, int64_t, double, bool, std::string> s) {
    MetaValue v;
    v.type = t;
    v.scalar = std::move(s);
    return v;
}

Model tiny(const std::string& arch, DType dt = DType::F32, bool tied = false) {
    SynthOptions o;
    o.arch = arch;
    o.tied_embeddings = tied;
    o.type = dt;
    o.dim = 64;
    o.n_layers = 2;
    o.vocab = 300;
    o.context_length = 64;
    // synth quantizes ssm_dt.weight too, whose rows are dt_rank long: make them fit a block.
    if (type_traits(dt).quantized && (arch == "mamba" || arch == "jamba")) o.dt_rank = 32;
    auto m = synth_model(o);
    if (!m) {
        qWarning("%s", m.message().c_str());
        return {};
    }
    return std::move(m.value());
}

}  // namespace

class TestGguf : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    std::string path(const char* name) { return dir_.filePath(name).toStdString(); }

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void roundTrip_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("dtype");
        QTest::addColumn<bool>("tied");
        for (const ArchitectureInfo* a : architectures()) {
            const QString name = QString::fromUtf8(a->name.data(), int(a->name.size()));
            for (DType t : {DType::F32, DType::F16, DType::Q8_0})
                QTest::newRow(QStringLiteral("%1 %2").arg(name, QString::fromUtf8(dtype_name(t).data())).toUtf8())
                    << name << int(t) << false;
            QTest::newRow(QStringLiteral("%1 f32 tied").arg(name).toUtf8()) << name << int(DType::F32) << true;
        }
    }
    void roundTrip() {
        QFETCH(QString, arch);
        QFETCH(int, dtype);
        QFETCH(bool, tied);
        Model m = tiny(arch.toStdString(), DType(dtype), tied);
        QCOMPARE(m.find("output.weight") == nullptr, tied);
        QVERIFY(!m.architecture.empty());
        m.metadata["general.license"] = MetaValue::str("mit");
        m.metadata["custom.unknown.key"] = MetaValue::u64(~uint64_t(0));
        const std::string p = path("rt.gguf");
        Status s = gguf_format_handler().save(m, p, {}, Progress::none());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        auto back = gguf_format_handler().load(p, {}, Progress::none());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        compare_models(m, back.value());
        QCOMPARE(back->source_format, std::string("gguf"));
        // Row and tokenizer keys live in config/vocab, not duplicated in metadata.
        for (const auto& [k, v] : back->metadata) {
            QVERIFY2(k.rfind(arch.toStdString() + ".", 0) != 0, k.c_str());
            QVERIFY2(k.rfind("tokenizer.ggml.", 0) != 0, k.c_str());
            QVERIFY2(k != "general.architecture" && k != "general.alignment", k.c_str());
        }
        // Saving what was read gives the identical file.
        const std::string p2 = path("rt2.gguf");
        QVERIFY(gguf_format_handler().save(back.value(), p2, {}, Progress::none()).ok());
        QVERIFY(read_all(p) == read_all(p2));
    }

    void metadataOfEveryType() {
        Model m = tiny("llama");
        QVERIFY(!m.architecture.empty());
        Metadata& md = m.metadata;
        md["t.u8"] = scalar(MetaType::U8, uint64_t(255));
        md["t.i8"] = scalar(MetaType::I8, int64_t(-128));
        md["t.u16"] = scalar(MetaType::U16, uint64_t(65535));
        md["t.i16"] = scalar(MetaType::I16, int64_t(-32768));
        md["t.u32"] = MetaValue::u32(4000000000u);
        md["t.i32"] = MetaValue::i32(-2000000000);
        md["t.u64"] = MetaValue::u64(18446744073709551615ull);
        md["t.i64"] = scalar(MetaType::I64, int64_t(-9223372036854775807ll - 1));
        md["t.f32"] = MetaValue::f32(3.14159274f);
        md["t.f64"] = scalar(MetaType::F64, 2.718281828459045);
        md["t.bool"] = MetaValue::boolean(false);
        md["t.string"] = MetaValue::str(std::string("h\xc3\xa9llo\0world", 12));
        md["t.empty_string"] = MetaValue::str("");
        md["t.empty_array"] = arr(MetaType::F32, {});
        md["t.array_i16"] = arr(MetaType::I16, {scalar(MetaType::I16, int64_t(-5)), scalar(MetaType::I16, int64_t(7))});
        md["t.array_bool"] = arr(MetaType::Bool, {MetaValue::boolean(true), MetaValue::boolean(false)});
        md["t.nested"] = arr(MetaType::Array, {arr(MetaType::String, {MetaValue::str("a"), MetaValue::str("b")}),
                                               arr(MetaType::U32, {MetaValue::u32(1)})});
        md["t.nested3"] = arr(MetaType::Array, {arr(MetaType::Array, {arr(MetaType::F64, {scalar(MetaType::F64, 0.5)})})});
        const std::string p = path("types.gguf");
        QVERIFY(gguf::write_model(m, p, Progress::none()).ok());
        auto back = gguf::read_model(p, {}, Progress::none());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        std::string why;
        QVERIFY2(metadata_equal(md, back->metadata, &why), why.c_str());
    }

    void vocabEdgeCases() {
        Model m = tiny("llama");
        m.vocab.bos_id = -1;
        m.vocab.pad_id = 5;
        m.vocab.add_bos = false;
        m.vocab.model = "gpt2";
        m.vocab.pre = "gpt-2";
        m.vocab.scores.clear();
        m.vocab.merges = {"a b", "\xc4\xa0 t", "ab c"};
        const std::string p = path("vocab.gguf");
        QVERIFY(gguf::write_model(m, p, Progress::none()).ok());
        auto back = gguf::read_model(p, {}, Progress::none());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        compare_models(m, back.value());
    }

    void tensorsPointIntoTheMapping() {
        Model m = tiny("llama");
        const std::string p = path("map.gguf");
        QVERIFY(gguf::write_model(m, p, Progress::none()).ok());
        auto back = gguf::read_model(p, {}, Progress::none());
        QVERIFY(back.ok());
        for (const Tensor& t : back->tensors) {
            auto mapped = std::dynamic_pointer_cast<const MappedFile>(t.owner);
            QVERIFY2(mapped, "tensor data is not owned by the mapped file");
            const auto all = mapped->bytes();
            QVERIFY(t.data.data() >= all.data() && t.data.data() + t.data.size() <= all.data() + all.size());
            QCOMPARE(uintptr_t(t.data.data() - all.data()) % 32, uintptr_t(0));
        }
    }

    // llama.cpp's rule: offsets follow info order, each tensor padded to the alignment, no gaps.
    void writerLayout() {
        Model m = tiny("mamba2", DType::Q8_0);
        const std::string p = path("layout.gguf");
        QVERIFY(gguf::write_model(m, p, Progress::none()).ok());
        const auto bytes = read_all(p);
        auto h = gguf::parse_header(bytes, p);
        QVERIFY2(h.ok(), h.ok() ? "" : h.message().c_str());
        QCOMPARE(h->version, 3u);
        QCOMPARE(h->alignment, uint64_t(32));
        QCOMPARE(h->data_offset % 32, uint64_t(0));
        uint64_t expect = 0;
        for (const auto& t : h->tensors) {
            QCOMPARE(t.offset, expect);
            expect += (t.nbytes + 31) / 32 * 32;
        }
        QCOMPARE(uint64_t(bytes.size()), h->data_offset + expect);
        QCOMPARE(h->key_order.front(), std::string("general.architecture"));
    }

    void version2IsAccepted() {
        Model m = tiny("llama");
        const std::string p = path("v2.gguf");
        QVERIFY(gguf::write_model(m, p, Progress::none()).ok());
        auto bytes = read_all(p);
        const uint32_t v2 = 2;
        std::memcpy(bytes.data() + 4, &v2, 4);
        write_all(p, bytes);
        auto back = gguf::read_model(p, {}, Progress::none());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        compare_models(m, back.value());
    }

    // A hand-made file with general.alignment 64 and one without the key (default 32).
    void alignmentKey_data() {
        QTest::addColumn<int>("alignment");
        QTest::newRow("64") << 64;
        QTest::newRow("default") << 0;
    }
    void alignmentKey() {
        QFETCH(int, alignment);
        std::vector<std::byte> b;
        auto put = [&](const void* p, size_t n) {
            const auto* c = static_cast<const std::byte*>(p);
            b.insert(b.end(), c, c + n);
        };
        auto u32 = [&](uint32_t v) { put(&v, 4); };
        auto u64 = [&](uint64_t v) { put(&v, 8); };
        auto str = [&](const std::string& s) { u64(s.size()); put(s.data(), s.size()); };
        put("GGUF", 4);
        u32(3);
        u64(2);
        u64(alignment ? 1 : 0);
        if (alignment) { str("general.alignment"); u32(4); u32(uint32_t(alignment)); }
        str("x"); u32(1); u64(3); u32(0); u64(0);   // F32 (3): 12 bytes
        str("y"); u32(1); u64(2); u32(0); u64(alignment ? 64 : 32);  // F32 (2)
        const size_t a = alignment ? size_t(alignment) : 32;
        while (b.size() % a) b.push_back(std::byte(0));
        const size_t data = b.size();
        const float xs[3] = {1, 2, 3}, ys[2] = {4, 5};
        put(xs, 12);
        while (b.size() < data + (alignment ? 64 : 32)) b.push_back(std::byte(0));
        put(ys, 8);
        auto h = gguf::parse_header(b, "align.gguf");
        QVERIFY2(h.ok(), h.ok() ? "" : h.message().c_str());
        QCOMPARE(h->alignment, uint64_t(a));
        QCOMPARE(h->data_offset, uint64_t(data));
        float got[2];
        std::memcpy(got, b.data() + h->data_offset + h->tensors[1].offset, 8);
        QCOMPARE(got[1], 5.0f);
    }

    void unknownArchitecture() {
        Model m = tiny("llama");
        const std::string p = path("unknown-arch.gguf");
        QVERIFY(gguf::write_model(m, p, Progress::none()).ok());
        auto bytes = read_all(p);
        // "general.architecture" is the first key; its value "llama" sits right after the type id.
        const std::string needle = "llama";
        auto it = std::search(bytes.begin(), bytes.end(), reinterpret_cast<const std::byte*>(needle.data()),
                              reinterpret_cast<const std::byte*>(needle.data()) + needle.size());
        QVERIFY(it != bytes.end());
        std::memcpy(&*it, "zorro", 5);
        write_all(p, bytes);
        auto back = gguf::read_model(p, {}, Progress::none());
        QVERIFY(!back.ok());
        QVERIFY2(back.message().find(p) != std::string::npos, back.message().c_str());
        QVERIFY2(back.message().find("unsupported architecture 'zorro'") != std::string::npos, back.message().c_str());
    }

    void writerRejectsBadModels_data() {
        QTest::addColumn<int>("what");
        QTest::newRow("name too long") << 0;
        QTest::newRow("data size mismatch") << 1;
        QTest::newRow("duplicate tensor") << 2;
        QTest::newRow("five dims") << 3;
        QTest::newRow("unknown architecture") << 4;
    }
    void writerRejectsBadModels() {
        QFETCH(int, what);
        Model m = tiny("llama");
        Tensor t = m.tensors.back();
        if (what == 0) { t.name = std::string(64, 'x'); m.add(t); }
        if (what == 1) m.tensors.back().data = m.tensors.back().data.first(m.tensors.back().data.size() - 4);
        if (what == 2) m.add(t);
        if (what == 3) {
            auto five = Tensor::from_f32("five", {1, 1, 1, 1, 2}, std::vector<float>{1, 2});
            QVERIFY(five.ok());
            m.add(five.value());
        }
        if (what == 4) m.architecture = "nope";
        const std::string p = path("rejected.gguf");
        Status s = gguf::write_model(m, p, Progress::none());
        QVERIFY(!s.ok());
        QVERIFY2(s.message().find(p) != std::string::npos, s.message().c_str());
        QVERIFY(!QFileInfo::exists(QString::fromStdString(p)));
    }

    void progressPerTensor() {
        Model m = tiny("llama");
        std::vector<double> fractions;
        Progress pr([&](double f, const std::string&) { fractions.push_back(f); });
        QVERIFY(gguf::write_model(m, path("progress.gguf"), pr).ok());
        QVERIFY(fractions.size() >= m.tensors.size());
        for (size_t i = 1; i < fractions.size(); ++i) QVERIFY(fractions[i] >= fractions[i - 1]);
        QCOMPARE(fractions.back(), 1.0);
        fractions.clear();
        QVERIFY(gguf::read_model(path("progress.gguf"), {}, pr).ok());
        QVERIFY(fractions.size() >= m.tensors.size());
        QCOMPARE(fractions.back(), 1.0);
    }

    // Cancelling mid-save leaves nothing under the target name (and no temporary file), and an
    // existing file under that name is left as it was.
    void cancelLeavesNoFile_data() {
        QTest::addColumn<bool>("existing");
        QTest::newRow("new file") << false;
        QTest::newRow("over an existing file") << true;
    }
    void cancelLeavesNoFile() {
        QFETCH(bool, existing);
        QTemporaryDir d;
        const std::string p = d.filePath("cancel.gguf").toStdString();
        const std::vector<std::byte> old = {std::byte('o'), std::byte('l'), std::byte('d')};
        if (existing) write_all(p, old);
        Model m = tiny("llama");
        int calls = 0;
        Progress pr([&](double, const std::string&) {
            if (++calls == 3) pr.cancel();
        });
        Status s = gguf::write_model(m, p, pr);
        QVERIFY(!s.ok());
        QVERIFY2(s.message().find("cancel") != std::string::npos, s.message().c_str());
        if (existing)
            QVERIFY(read_all(p) == old);
        else
            QVERIFY(!QFileInfo::exists(QString::fromStdString(p)));
        const QStringList left = QDir(d.path()).entryList(QDir::Files);
        QCOMPARE(left.size(), existing ? 1 : 0);
    }

    void registryFindsGguf() {
        Model m = tiny("llama");
        const std::string p = path("registry.GGUF");
        QVERIFY(save_model(m, p).ok());
        auto back = load_model(p);
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        compare_models(m, back.value());
        const std::byte head[4] = {std::byte('G'), std::byte('G'), std::byte('U'), std::byte('F')};
        QVERIFY(gguf_format_handler().probe(std::span<const std::byte>(head, 4)));
        QVERIFY(!gguf_format_handler().probe(std::span<const std::byte>(head, 3)));
    }
};

QTEST_GUILESS_MAIN(TestGguf)
#include "test_gguf.moc"
