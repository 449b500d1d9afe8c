// Corrupt GGUF input: every case is a hand-made byte image (built here byte by byte, not by our
// writer) with one defect; loading it must fail with a message that names the file and the defect,
// quickly and without a huge allocation (the address space is capped for this test).
#include <QTemporaryDir>
#include <QtTest>
#include <cstring>
#include <fstream>
#include <functional>
#include <sys/resource.h>

#include "core/formats/gguf.h"

#if defined(__SANITIZE_ADDRESS__)
#define EF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EF_TEST_ASAN 1
#endif
#endif

namespace {

// Little-endian byte builder.
struct Bytes {
    std::vector<std::byte> b;
    template <class T>
    Bytes& put(T v) {
        const size_t at = b.size();
        b.resize(at + sizeof(T));
        std::memcpy(b.data() + at, &v, sizeof(T));
        return *this;
    }
    Bytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        for (char c : s) b.push_back(std::byte(c));
        return *this;
    }
    Bytes& raw(const Bytes& o) {
        b.insert(b.end(), o.b.begin(), o.b.end());
        return *this;
    }
};

// One key/value as raw bytes (so a case can swap in anything, valid or not).
struct Kv {
    std::string key;
    Bytes value;                      // type id + payload
    std::optional<uint64_t> key_len;  // overrides the encoded key length
};
struct Info {
    std::string name;
    std::vector<uint64_t> ne;  // innermost-first, as on disk
    uint32_t type = 0;         // ggml type id
    uint64_t offset = 0;
    std::optional<uint32_t> n_dims;  // overrides ne.size()
    std::optional<uint64_t> name_len;  // overrides the encoded name length
};
struct Spec {
    uint32_t magic = 0x46554747;
    uint32_t version = 3;
    std::optional<uint64_t> n_tensors, n_kv;  // override the real counts
    std::vector<Kv> kvs;
    std::vector<Info> infos;
    uint64_t data_bytes = 96;
    std::optional<size_t> truncate_at;
};

Kv kv(std::string key, Bytes value) {
    Kv k;
    k.key = std::move(key);
    k.value = std::move(value);
    return k;
}
Info info(std::string name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    Info t;
    t.name = std::move(name);
    t.ne = std::move(ne);
    t.type = type;
    t.offset = offset;
    return t;
}

Bytes u32_value(uint32_t v) { return Bytes().put<uint32_t>(4).put<uint32_t>(v); }
Bytes str_value(const std::string& s) { return Bytes().put<uint32_t>(8).str(s); }

// A small valid file: 3 keys, two F32 tensors "a" (2x8 -> 64 bytes at 0) and "b" (4 -> 16 bytes at 64).
Spec base() {
    Spec s;
    s.kvs.push_back(kv("general.architecture", str_value("llama")));
    s.kvs.push_back(kv("general.alignment", u32_value(32)));
    Bytes arr;
    arr.put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(3).put<int32_t>(1).put<int32_t>(-2).put<int32_t>(3);
    s.kvs.push_back(kv("test.array", arr));
    s.infos.push_back(info("a", {8, 2}, 0, 0));
    s.infos.push_back(info("b", {4}, 0, 64));
    return s;
}

std::vector<std::byte> build(const Spec& s) {
    Bytes out;
    out.put(s.magic).put(s.version);
    out.put<uint64_t>(s.n_tensors.value_or(s.infos.size()));
    out.put<uint64_t>(s.n_kv.value_or(s.kvs.size()));
    for (const auto& kv : s.kvs) {
        if (kv.key_len) {
            out.put<uint64_t>(*kv.key_len);
            for (char c : kv.key) out.b.push_back(std::byte(c));
        } else {
            out.str(kv.key);
        }
        out.raw(kv.value);
    }
    for (const auto& t : s.infos) {
        if (t.name_len) {
            out.put<uint64_t>(*t.name_len);
            for (char c : t.name) out.b.push_back(std::byte(c));
        } else {
            out.str(t.name);
        }
        out.put<uint32_t>(t.n_dims.value_or(uint32_t(t.ne.size())));
        for (uint64_t d : t.ne) out.put(d);
        out.put(t.type).put(t.offset);
    }
    while (out.b.size() % 32) out.b.push_back(std::byte(0));
    for (uint64_t i = 0; i < s.data_bytes; ++i) out.b.push_back(std::byte(i & 0xff));
    if (s.truncate_at && *s.truncate_at < out.b.size()) out.b.resize(*s.truncate_at);
    return out.b;
}

size_t header_size(const Spec& s) {
    Spec t = s;
    t.data_bytes = 0;
    return build(t).size();
}

struct Case {
    const char* name;
    std::function<void(Spec&)> mutate;
    const char* expect;  // substring of the error message
};

const std::vector<Case>& cases() {
    static const std::vector<Case> c = {
        {"empty file", [](Spec& s) { s.truncate_at = 0; }, "truncated"},
        {"truncated in magic", [](Spec& s) { s.truncate_at = 3; }, "truncated"},
        {"truncated in counts", [](Spec& s) { s.truncate_at = 12; }, "truncated"},
        {"truncated in first key", [](Spec& s) { s.truncate_at = 24 + 8 + 5; }, "truncated"},
        {"truncated in a value", [](Spec& s) { s.truncate_at = 24 + 8 + 20 + 4 + 8 + 2; }, "truncated"},
        {"truncated in tensor infos", [](Spec& s) { s.truncate_at = header_size(s) - 40; }, "truncated"},
        {"truncated before data", [](Spec& s) { s.truncate_at = header_size(s) - 3; }, "truncated"},
        {"truncated in data", [](Spec& s) { s.data_bytes = 70; }, "past the end"},
        {"wrong magic", [](Spec& s) { s.magic = 0x46554748; }, "not a GGUF file"},
        {"version 1", [](Spec& s) { s.version = 1; }, "unsupported GGUF version 1"},
        {"version 4", [](Spec& s) { s.version = 4; }, "unsupported GGUF version 4"},
        {"big-endian", [](Spec& s) { s.version = 0x03000000; }, "big-endian"},
        {"absurd kv count", [](Spec& s) { s.n_kv = uint64_t(1) << 60; }, "key/value count"},
        {"kv count too high", [](Spec& s) { s.n_kv = 5; }, "key/value 4 of 5"},
        {"absurd tensor count", [](Spec& s) { s.n_tensors = ~uint64_t(0); }, "tensor count"},
        {"absurd key length", [](Spec& s) { s.kvs[1].key_len = uint64_t(1) << 62; }, "string length"},
        {"key length past the end", [](Spec& s) { s.kvs[2].key_len = 4096; }, "string length"},
        {"absurd array length",
         [](Spec& s) { s.kvs[2].value = Bytes().put<uint32_t>(9).put<uint32_t>(0).put<uint64_t>(uint64_t(1) << 50); },
         "array length"},
        {"absurd string array length",
         [](Spec& s) { s.kvs[2].value = Bytes().put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1000000); },
         "array length"},
        {"unknown value type", [](Spec& s) { s.kvs[2].value = Bytes().put<uint32_t>(13).put<uint32_t>(0); },
         "unknown value type 13"},
        {"unknown array element type",
         [](Spec& s) { s.kvs[2].value = Bytes().put<uint32_t>(9).put<uint32_t>(77).put<uint64_t>(1).put<uint32_t>(0); },
         "unknown array element type 77"},
        {"deeply nested arrays",
         [](Spec& s) {
             Bytes v;
             v.put<uint32_t>(9);
             for (int i = 0; i < 40; ++i) v.put<uint32_t>(9).put<uint64_t>(1);
             v.put<uint32_t>(0).put<uint64_t>(0);
             s.kvs[2].value = v;
         },
         "nested deeper"},
        {"duplicate key", [](Spec& s) { s.kvs.push_back(kv("general.architecture", str_value("mamba"))); },
         "duplicate key 'general.architecture'"},
        {"alignment not a power of two", [](Spec& s) { s.kvs[1].value = u32_value(48); }, "power of two"},
        {"alignment zero", [](Spec& s) { s.kvs[1].value = u32_value(0); }, "power of two"},
        {"alignment wrong type", [](Spec& s) { s.kvs[1].value = Bytes().put<uint32_t>(10).put<uint64_t>(32); },
         "general.alignment must be a u32"},
        {"unknown ggml type id", [](Spec& s) { s.infos[0].type = 99; }, "ggml type id 99"},
        {"unsupported ggml type id (iq2_xxs)", [](Spec& s) { s.infos[0].type = 16; }, "ggml type id 16"},
        {"five dimensions", [](Spec& s) { s.infos[0].ne = {8, 2, 1, 1, 1}; }, "5 dimensions"},
        {"n_dims absurd", [](Spec& s) { s.infos[0].n_dims = 0xffffffffu; }, "dimensions"},
        {"zero dimension", [](Spec& s) { s.infos[0].ne = {8, 0}; }, "must be positive"},
        {"negative dimension", [](Spec& s) { s.infos[0].ne = {8, ~uint64_t(0)}; }, "must be positive"},
        {"element count overflow",
         [](Spec& s) { s.infos[0].ne = {uint64_t(1) << 40, uint64_t(1) << 40}; }, "overflows"},
        {"byte size overflow", [](Spec& s) { s.infos[0].ne = {uint64_t(1) << 62}; }, "overflows"},
        {"row not a multiple of the block size",
         [](Spec& s) { s.infos[0].type = 8; s.infos[0].ne = {8, 2}; }, "block size"},
        {"tensor data past the end", [](Spec& s) { s.infos[1].offset = 1 << 20; }, "past the end"},
        {"offset near 2^64", [](Spec& s) { s.infos[1].offset = ~uint64_t(31); }, "past the end"},
        {"misaligned offset", [](Spec& s) { s.infos[1].offset = 68; }, "not a multiple of the alignment"},
        {"overlapping tensors", [](Spec& s) { s.infos[1].offset = 32; }, "overlap"},
        {"same offset twice", [](Spec& s) { s.infos[1].offset = 0; }, "overlap"},
        {"duplicate tensor name", [](Spec& s) { s.infos[1].name = "a"; }, "duplicate tensor name 'a'"},
        {"absurd tensor name length", [](Spec& s) { s.infos[1].name_len = ~uint64_t(0); }, "string length"},
    };
    return c;
}

}  // namespace

class TestGgufCorrupt : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;

    std::string write_file(const std::string& name, const std::vector<std::byte>& bytes) {
        const std::string path = dir_.filePath(QString::fromStdString(name)).toStdString();
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        return path;
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        // A corrupt header must never make us allocate gigabytes: cap the address space so such a
        // bug aborts this test instead of passing. (AddressSanitizer reserves terabytes of shadow
        // memory, so there the cap is left off; ASan itself aborts on absurd allocation sizes.)
#if !defined(EF_TEST_ASAN)
        rlimit lim{};
        lim.rlim_cur = lim.rlim_max = rlim_t(4) << 30;
        QCOMPARE(setrlimit(RLIMIT_AS, &lim), 0);
#endif
    }

    // The unmodified image is valid, so each case below fails because of its one defect.
    void baseImageParses() {
        const auto bytes = build(base());
        auto h = ef::gguf::parse_header(bytes, "base.gguf");
        QVERIFY2(h.ok(), h.ok() ? "" : h.message().c_str());
        QCOMPARE(h->tensors.size(), size_t(2));
        QCOMPARE(h->tensors[0].shape, (ef::Shape{2, 8}));
        QCOMPARE(h->kv.at("test.array").array.size(), size_t(3));
    }

    void corrupt_data() {
        QTest::addColumn<int>("index");
        for (size_t i = 0; i < cases().size(); ++i) QTest::newRow(cases()[i].name) << int(i);
    }
    void corrupt() {
        QFETCH(int, index);
        const Case& c = cases()[size_t(index)];
        Spec s = base();
        c.mutate(s);
        const std::string path = write_file("case" + std::to_string(index) + ".gguf", build(s));
        QElapsedTimer timer;
        timer.start();
        auto m = ef::gguf_format_handler().load(path, ef::LoadOptions{}, ef::Progress::none());
        QVERIFY2(!m.ok(), "a corrupt file loaded");
        const std::string& msg = m.message();
        qInfo("%s", msg.c_str());
        QVERIFY2(msg.find(path) != std::string::npos, ("message does not name the file: " + msg).c_str());
        QVERIFY2(msg.find(c.expect) != std::string::npos,
                 ("expected '" + std::string(c.expect) + "' in: " + msg).c_str());
        QVERIFY2(timer.elapsed() < 2000, "took too long");
    }

    // Cutting the valid image at every length, or flipping any byte, never crashes or hangs; an
    // image cut anywhere before the end of the last tensor's data always fails.
    void everyTruncationFails() {
        const auto bytes = build(base());
        const size_t end_of_data = header_size(base()) + 64 + 16;  // "b" ends 16 bytes after "a"
        for (size_t n = 0; n < end_of_data; ++n) {
            std::span<const std::byte> part(bytes.data(), n);
            auto h = ef::gguf::parse_header(part, "cut.gguf");
            QVERIFY2(!h.ok(), ("truncated to " + std::to_string(n) + " bytes still parses").c_str());
            QVERIFY(h.message().rfind("cut.gguf: ", 0) == 0);
        }
        QVERIFY(ef::gguf::parse_header(std::span(bytes.data(), end_of_data), "cut.gguf").ok());
    }
    void byteFlipsNeverCrash() {
        const auto bytes = build(base());
        const size_t header = header_size(base());
        int failures = 0;
        for (size_t i = 0; i < header; ++i)
            for (uint8_t x : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
                auto copy = bytes;
                copy[i] ^= std::byte(x);
                auto h = ef::gguf::parse_header(copy, "flip.gguf");
                if (!h.ok()) {
                    ++failures;
                    QVERIFY(h.message().rfind("flip.gguf: ", 0) == 0);
                }
            }
        QVERIFY(failures > 0);
    }
};

QTEST_GUILESS_MAIN(TestGgufCorrupt)
#include "test_gguf_corrupt.moc"
