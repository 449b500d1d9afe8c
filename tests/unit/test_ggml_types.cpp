// Our ggml block types against ggml itself: the prebuilt libggml-base.so shipped with node-llama-cpp
// is dlopen'ed and its quantizers / dequantizers are run on the same inputs. Quantized bytes must
// be identical and dequantized floats bitwise identical; f16/bf16 conversions and the layout facts
// in quant/dtype.h are checked against the same library.
#include <QtTest>

#include <dlfcn.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "quant/dtype.h"
#include "quant/ggml_blocks.h"
#include "quant/half.h"

namespace {

constexpr const char* kGgmlBase =
    EF_REFERENCE_DIR "/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";

// Mirrors `struct ggml_type_traits` in ggml.h (field for field).
using GgmlToFloat = void (*)(const void* x, float* y, int64_t k);
using GgmlFromFloat = void (*)(const float* x, void* y, int64_t k);
struct GgmlTypeTraits {
    const char* type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    GgmlToFloat to_float;
    GgmlFromFloat from_float_ref;
};
using GetTypeTraitsFn = const GgmlTypeTraits* (*)(int type);
using QuantizeChunkFn = size_t (*)(int type, const float* src, void* dst, int64_t start, int64_t nrows,
                                   int64_t n_per_row, const float* imatrix);
using RequiresImatrixFn = bool (*)(int type);

const ef::DType kQuantTypes[] = {ef::DType::Q4_0, ef::DType::Q4_1, ef::DType::Q5_0, ef::DType::Q5_1,
                                 ef::DType::Q8_0, ef::DType::Q2_K, ef::DType::Q3_K, ef::DType::Q4_K,
                                 ef::DType::Q5_K, ef::DType::Q6_K, ef::DType::Q8_K};

// ggml_quantize_chunk aborts the process on types missing from its switch; q8_K is one of them
// (it is only an intermediate for dot products), so it goes through its row quantizer instead.
bool chunk_supports(ef::DType t) { return t != ef::DType::Q8_K; }

constexpr int64_t kRows = 64;
constexpr int64_t kPerRow = 512;  // two k-quant super-blocks, sixteen 32-blocks

std::vector<float> make_input(const QString& dist, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<float> x(size_t(kRows * kPerRow));
    for (size_t i = 0; i < x.size(); ++i) {
        float v = 0.0f;
        if (dist == "gaussian") v = normal(rng);
        else if (dist == "gaussian_weights") v = 0.02f * normal(rng);  // typical LLM weight scale
        else if (dist == "student_t3") {                               // heavy tails: z / sqrt(chi2_3 / 3)
            float chi2 = 0;
            for (int k = 0; k < 3; ++k) { const float z = normal(rng); chi2 += z * z; }
            v = normal(rng) / std::sqrt(chi2 / 3.0f);
        } else if (dist == "outliers") {
            v = normal(rng);
            if (i % 97 == 13) v = (i % 2 ? 1.0f : -1.0f) * (200.0f + 3000.0f * uniform(rng));
        } else if (dist == "beyond_f16") {                             // scales overflow f16
            v = normal(rng) * 1000.0f;
            if (i % 211 == 5) v = (i % 2 ? 1.0f : -1.0f) * 2.0e6f;
        } else if (dist == "zeros") v = 0.0f;
        else if (dist == "constant") v = 0.37f;
        else if (dist == "negative_constant") v = -1.25f;
        else if (dist == "tiny") v = 3.0e-6f * normal(rng);             // scales land in f16 subnormals
        else if (dist == "very_tiny") v = 1.0e-9f * normal(rng);        // scales round to f16 zero
        else if (dist == "mixed_signs") v = (i % 2 ? 1.0f : -1.0f) * (0.5f + uniform(rng));
        else if (dist == "positive") v = 2.0f * uniform(rng) + 0.1f;
        else if (dist == "sparse") v = (i % 37 == 0 || (i / 16) % 5 == 0) ? normal(rng) : 0.0f;
        else if (dist == "ramp") v = float(int(i % 256) - 128) / 64.0f;
        else if (dist == "non_finite") {  // a corrupt checkpoint: must not crash, same bytes as ggml
            v = normal(rng);
            if (i % 101 == 7) v = NAN;
            else if (i % 131 == 3) v = (i % 2 ? INFINITY : -INFINITY);
        }
        else qFatal("unknown distribution %s", qPrintable(dist));
        x[i] = v;
    }
    return x;
}

// Byte offsets of the f16 scale fields inside one block.
std::vector<size_t> f16_field_offsets(ef::DType t) {
    namespace g = ef::ggml;
    switch (t) {
    case ef::DType::Q4_0: return {offsetof(g::block_q4_0, d)};
    case ef::DType::Q4_1: return {offsetof(g::block_q4_1, d), offsetof(g::block_q4_1, m)};
    case ef::DType::Q5_0: return {offsetof(g::block_q5_0, d)};
    case ef::DType::Q5_1: return {offsetof(g::block_q5_1, d), offsetof(g::block_q5_1, m)};
    case ef::DType::Q8_0: return {offsetof(g::block_q8_0, d)};
    case ef::DType::Q2_K: return {offsetof(g::block_q2_K, d), offsetof(g::block_q2_K, dmin)};
    case ef::DType::Q3_K: return {offsetof(g::block_q3_K, d)};
    case ef::DType::Q4_K: return {offsetof(g::block_q4_K, d), offsetof(g::block_q4_K, dmin)};
    case ef::DType::Q5_K: return {offsetof(g::block_q5_K, d), offsetof(g::block_q5_K, dmin)};
    case ef::DType::Q6_K: return {offsetof(g::block_q6_K, d)};
    default: return {};
    }
}

// Index of the first differing byte, or -1.
int64_t first_byte_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return int64_t(i);
    return a.size() == b.size() ? -1 : int64_t(std::min(a.size(), b.size()));
}

// Index of the first float whose bits differ, or -1.
int64_t first_float_diff(const std::vector<float>& a, const std::vector<float>& b) {
    for (size_t i = 0; i < a.size(); ++i)
        if (ef::bits_from_f32(a[i]) != ef::bits_from_f32(b[i])) return int64_t(i);
    return -1;
}

}  // namespace

class TestGgmlTypes : public QObject {
    Q_OBJECT

    void* lib_ = nullptr;
    GetTypeTraitsFn get_traits_ = nullptr;
    QuantizeChunkFn quantize_chunk_ = nullptr;
    RequiresImatrixFn requires_imatrix_ = nullptr;

    // ggml's reference quantizer / dequantizer for a type: the traits' entry, else the exported
    // row function (q8_K's traits carry neither in libggml-base).
    GgmlFromFloat ggml_from_float(ef::DType t) const {
        const auto& tr = ef::type_traits(t);
        if (auto* f = get_traits_(int(tr.ggml_id))->from_float_ref) return f;
        const QByteArray sym = "quantize_row_" + QByteArray(tr.name.data(), qsizetype(tr.name.size())) + "_ref";
        return reinterpret_cast<GgmlFromFloat>(dlsym(lib_, sym.constData()));
    }
    GgmlToFloat ggml_to_float(ef::DType t) const {
        const auto& tr = ef::type_traits(t);
        if (auto* f = get_traits_(int(tr.ggml_id))->to_float) return f;
        const QByteArray sym = "dequantize_row_" + QByteArray(tr.name.data(), qsizetype(tr.name.size()));
        return reinterpret_cast<GgmlToFloat>(dlsym(lib_, sym.constData()));
    }

private slots:
    void initTestCase() {
        lib_ = dlopen(kGgmlBase, RTLD_NOW | RTLD_LOCAL);
        if (!lib_)
            QFAIL(qPrintable(QStringLiteral("cannot load the reference ggml (%1): %2 — run `bash scripts/setup.sh`, which installs "
                                            "node-llama-cpp into tests/reference")
                                 .arg(QString::fromUtf8(kGgmlBase), QString::fromUtf8(dlerror()))));
        get_traits_ = reinterpret_cast<GetTypeTraitsFn>(dlsym(lib_, "ggml_get_type_traits"));
        quantize_chunk_ = reinterpret_cast<QuantizeChunkFn>(dlsym(lib_, "ggml_quantize_chunk"));
        requires_imatrix_ = reinterpret_cast<RequiresImatrixFn>(dlsym(lib_, "ggml_quantize_requires_imatrix"));
        QVERIFY2(get_traits_ && quantize_chunk_ && requires_imatrix_,
                 "libggml-base.so lacks ggml_get_type_traits / ggml_quantize_chunk / ggml_quantize_requires_imatrix");
    }

    void cleanupTestCase() {
        if (lib_) dlclose(lib_);
    }

    // Every ggml type we know: same name, block size and block bytes as ggml under the same id (the
    // EdgeFusion types after EF_FIRST are ours alone; tests/unit/test_ef_format.cpp checks them).
    void traitsMatchGgml_data() {
        QTest::addColumn<int>("dtype");
        for (int t = 0; t < int(ef::DType::EF_FIRST); ++t)
            QTest::newRow(std::string(ef::dtype_name(ef::DType(t))).c_str()) << t;
    }
    void traitsMatchGgml() {
        QFETCH(int, dtype);
        const auto& ours = ef::type_traits(ef::DType(dtype));
        const GgmlTypeTraits* theirs = get_traits_(int(ours.ggml_id));
        QVERIFY(theirs && theirs->type_name);
        QCOMPARE(QString::fromUtf8(theirs->type_name), QString::fromUtf8(ours.name.data(), qsizetype(ours.name.size())));
        QCOMPARE(ours.block_size, theirs->blck_size);
        QCOMPARE(ours.type_size, int64_t(theirs->type_size));
        QCOMPARE(ours.quantized, theirs->is_quantized);
    }

    // All 65536 halves widen to the same f32 bits (NaN payloads included).
    void f16ToF32AllHalves() {
        const auto to_float = get_traits_(1)->to_float;
        QVERIFY(to_float);
        std::vector<uint16_t> h(65536);
        for (int i = 0; i < 65536; ++i) h[size_t(i)] = uint16_t(i);
        std::vector<float> theirs(65536), ours(65536);
        to_float(h.data(), theirs.data(), 65536);
        for (int i = 0; i < 65536; ++i) ours[size_t(i)] = ef::f16_to_f32(uint16_t(i));
        const int64_t at = first_float_diff(ours, theirs);
        QVERIFY2(at < 0, qPrintable(QStringLiteral("half 0x%1: ours 0x%2, ggml 0x%3").arg(at, 4, 16, QChar('0'))
                                        .arg(ef::bits_from_f32(ours[size_t(std::max<int64_t>(at, 0))]), 8, 16, QChar('0'))
                                        .arg(ef::bits_from_f32(theirs[size_t(std::max<int64_t>(at, 0))]), 8, 16, QChar('0'))));
    }

    // f32 -> f16 and f32 -> bf16 narrowing on every rounding boundary (each half's midpoint to its
    // neighbour, and one ulp either side), specials, and a million random bit patterns.
    void narrowingMatchesGgml() {
        std::vector<float> x;
        for (uint32_t h = 0; h < 0x7c00; ++h) {
            const float lo = ef::f16_to_f32(uint16_t(h)), hi = ef::f16_to_f32(uint16_t(h + 1));
            const uint32_t mid = ef::bits_from_f32(0.5f * lo + 0.5f * hi);  // exact: halves have 11 bits
            for (uint32_t b : {mid - 1, mid, mid + 1, ef::bits_from_f32(lo)})
                for (uint32_t sign : {0u, 0x80000000u}) x.push_back(ef::f32_from_bits(b | sign));
        }
        for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 3e-8f,
                        2.9802322e-8f, 1e30f, -1e30f, 1.0f / 3.0f, 0.1f})
            x.push_back(v);
        x.push_back(ef::f32_from_bits(0x7f800001u));  // signalling NaN
        x.push_back(ef::f32_from_bits(0xffbfffffu));
        std::mt19937 rng(7);
        for (int i = 0; i < 1000000; ++i) x.push_back(ef::f32_from_bits(uint32_t(rng())));

        std::vector<uint16_t> theirs(x.size()), ours(x.size());
        for (const auto& [id, name] : {std::pair{1, "f16"}, std::pair{30, "bf16"}}) {
            const auto from_float = get_traits_(id)->from_float_ref;
            QVERIFY2(from_float, name);
            from_float(x.data(), theirs.data(), int64_t(x.size()));
            for (size_t i = 0; i < x.size(); ++i) ours[i] = id == 1 ? ef::f32_to_f16(x[i]) : ef::f32_to_bf16(x[i]);
            for (size_t i = 0; i < x.size(); ++i)
                if (ours[i] != theirs[i])
                    QFAIL(qPrintable(QStringLiteral("%1 of f32 0x%2: ours 0x%3, ggml 0x%4").arg(name)
                                         .arg(ef::bits_from_f32(x[i]), 8, 16, QChar('0'))
                                         .arg(ours[i], 4, 16, QChar('0')).arg(theirs[i], 4, 16, QChar('0'))));
        }
    }

    // Quantize with ggml and with us: same bytes; dequantize ggml's bytes both ways: same float bits.
    void quantizeMatchesGgml_data() {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<QString>("dist");
        const char* dists[] = {"gaussian", "gaussian_weights", "student_t3", "outliers", "beyond_f16",
                               "zeros", "constant", "negative_constant", "tiny", "very_tiny",
                               "mixed_signs", "positive", "sparse", "ramp", "non_finite"};
        for (ef::DType t : kQuantTypes)
            for (const char* d : dists)
                QTest::addRow("%s/%s", std::string(ef::dtype_name(t)).c_str(), d) << int(t) << QString::fromLatin1(d);
    }
    void quantizeMatchesGgml() {
        QFETCH(int, dtype);
        QFETCH(QString, dist);
        const ef::DType t = ef::DType(dtype);
        const auto& tr = ef::type_traits(t);
        const int id = int(tr.ggml_id);
        const std::vector<float> x = make_input(dist, 1234u + uint32_t(dtype));
        const int64_t n = int64_t(x.size());
        const size_t bytes = size_t(*ef::dtype_bytes(t, n));

        // ggml's bytes: the whole-tensor path where ggml has it, else (q8_K) its row quantizer.
        std::vector<uint8_t> theirs(bytes, 0), ours(bytes, 0);
        if (chunk_supports(t)) {
            QVERIFY2(!requires_imatrix_(id), "ggml wants an importance matrix for this type");
            const size_t written = quantize_chunk_(id, x.data(), theirs.data(), 0, kRows, kPerRow, nullptr);
            QCOMPARE(written, bytes);
        } else {
            const GgmlFromFloat from_float = ggml_from_float(t);
            QVERIFY2(from_float, "libggml-base.so has no reference quantizer for this type");
            from_float(x.data(), theirs.data(), n);
        }
        tr.from_float_ref(x.data(), ours.data(), n);
        const int64_t at = first_byte_diff(ours, theirs);
        if (at >= 0)
            QFAIL(qPrintable(QStringLiteral("byte %1 (block %2, offset %3): ours 0x%4, ggml 0x%5").arg(at)
                                 .arg(at / tr.type_size).arg(at % tr.type_size)
                                 .arg(ours[size_t(at)], 2, 16, QChar('0')).arg(theirs[size_t(at)], 2, 16, QChar('0'))));

        const GgmlToFloat to_float = ggml_to_float(t);
        QVERIFY2(to_float, "libggml-base.so has no dequantizer for this type");
        std::vector<float> ref(static_cast<size_t>(n)), got(static_cast<size_t>(n));
        to_float(theirs.data(), ref.data(), n);
        tr.to_float(theirs.data(), got.data(), n);
        const int64_t fat = first_float_diff(got, ref);
        if (fat >= 0)
            QFAIL(qPrintable(QStringLiteral("dequantized element %1: ours %2 (0x%3), ggml %4 (0x%5)").arg(fat)
                                 .arg(double(got[size_t(fat)]), 0, 'g', 9).arg(ef::bits_from_f32(got[size_t(fat)]), 8, 16, QChar('0'))
                                 .arg(double(ref[size_t(fat)]), 0, 'g', 9).arg(ef::bits_from_f32(ref[size_t(fat)]), 8, 16, QChar('0'))));
    }

    // Dequantizing arbitrary blocks (bit patterns no quantizer emits, e.g. odd hmask/scale mixes)
    // still matches ggml. f16 scales are kept finite so the comparison stays about layout.
    void dequantizeRandomBlocks_data() {
        QTest::addColumn<int>("dtype");
        for (ef::DType t : kQuantTypes) QTest::newRow(std::string(ef::dtype_name(t)).c_str()) << int(t);
    }
    void dequantizeRandomBlocks() {
        QFETCH(int, dtype);
        const ef::DType t = ef::DType(dtype);
        const auto& tr = ef::type_traits(t);
        const int64_t blocks = 64, n = blocks * tr.block_size;
        std::vector<uint8_t> data(size_t(blocks * tr.type_size));
        std::mt19937 rng(99u + uint32_t(dtype));
        for (auto& b : data) b = uint8_t(rng());
        // Clear bit 14 of each f16 scale so none is inf/NaN (exponent < 16); q8_K's f32 d gets a
        // sane value instead.
        for (int64_t b = 0; b < blocks; ++b) {
            uint8_t* block = &data[size_t(b * tr.type_size)];
            for (size_t off : f16_field_offsets(t)) block[off + 1] &= 0xbf;
            if (t == ef::DType::Q8_K) {
                const float d = 1e-3f * float(b + 1);
                std::memcpy(block, &d, 4);
            }
        }
        const GgmlToFloat to_float = ggml_to_float(t);
        QVERIFY(to_float);
        std::vector<float> ref(static_cast<size_t>(n)), got(static_cast<size_t>(n));
        to_float(data.data(), ref.data(), n);
        tr.to_float(data.data(), got.data(), n);
        const int64_t at = first_float_diff(got, ref);
        if (at >= 0)
            QFAIL(qPrintable(QStringLiteral("element %1: ours %2, ggml %3").arg(at)
                                 .arg(double(got[size_t(at)]), 0, 'g', 9).arg(double(ref[size_t(at)]), 0, 'g', 9)));
    }
};

QTEST_GUILESS_MAIN(TestGgmlTypes)
#include "test_ggml_types.moc"
