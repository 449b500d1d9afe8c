// ef::ggml::quantize_rows against ggml itself: node-llama-cpp's prebuilt libggml-base.so is
// dlopen'ed and ggml_quantize_chunk is run on the same rows with the same importance weights
// (imatrix), or none. The quantized bytes must be identical.
#include <QtTest>

#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/dtype.h"
#include "quant/ggml_importance.h"

namespace {

constexpr const char* kGgmlBase =
    EF_REFERENCE_DIR "/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";

using QuantizeChunkFn = size_t (*)(int type, const float* src, void* dst, int64_t start, int64_t nrows,
                                   int64_t n_per_row, const float* imatrix);

const ef::DType kTypes[] = {ef::DType::Q4_0, ef::DType::Q4_1, ef::DType::Q5_0, ef::DType::Q5_1, ef::DType::Q8_0,
                            ef::DType::Q2_K, ef::DType::Q3_K, ef::DType::Q4_K, ef::DType::Q5_K, ef::DType::Q6_K};

constexpr int64_t kRows = 24;
constexpr int64_t kPerRow = 768;  // three k-quant super-blocks, 24 legacy blocks

// Weights: (kRows, kPerRow).
std::vector<float> make_weights(const QString& dist, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<float> x(size_t(kRows * kPerRow));
    for (size_t i = 0; i < x.size(); ++i) {
        const int64_t row = int64_t(i) / kPerRow;
        float v = 0.0f;
        if (dist == "gaussian") v = normal(rng);
        else if (dist == "gaussian_weights") v = 0.02f * normal(rng);  // typical LLM weight scale
        else if (dist == "student_t3") {                               // heavy tails: z / sqrt(chi2_3 / 3)
            float chi2 = 0;
            for (int k = 0; k < 3; ++k) { const float z = normal(rng); chi2 += z * z; }
            v = normal(rng) / std::sqrt(chi2 / 3.0f);
        } else if (dist == "outliers") {
            v = normal(rng);
            if (i % 97 == 13) v = (i % 2 ? 1.0f : -1.0f) * (50.0f + 500.0f * uniform(rng));
        } else if (dist == "constant") v = 0.37f;
        else if (dist == "negative_constant") v = -1.25f;
        else if (dist == "tiny") v = 3.0e-6f * normal(rng);        // scales land in f16 subnormals
        else if (dist == "very_tiny") v = 1.0e-9f * normal(rng);   // scales round to f16 zero
        else if (dist == "zeros") v = 0.0f;
        else if (dist == "zero_rows") v = row % 3 == 1 ? 0.0f : normal(rng);
        else if (dist == "sparse") v = (i % 37 == 0 || (i / 16) % 5 == 0) ? normal(rng) : 0.0f;
        else if (dist == "positive") v = 2.0f * uniform(rng) + 0.1f;
        else if (dist == "ramp") v = float(int(i % 256) - 128) / 64.0f;
        else if (dist == "grid") v = float(int(normal(rng) * 4.0f)) / 8.0f;  // few exact values: ties everywhere
        else if (dist == "non_finite") {  // a corrupt checkpoint: must not crash, same bytes as ggml
            v = normal(rng);
            if (i % 101 == 7) v = NAN;
            else if (i % 131 == 3) v = (i % 2 ? INFINITY : -INFINITY);
        } else qFatal("unknown distribution %s", qPrintable(dist));
        x[i] = v;
    }
    return x;
}

// Importance weights, one per column; empty for "none".
std::vector<float> make_importance(const QString& kind, uint32_t seed) {
    if (kind == "none") return {};
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(kPerRow));
    for (size_t i = 0; i < q.size(); ++i) {
        float v = 0.0f;
        if (kind == "uniform") v = 1.0f;
        else if (kind == "random") v = 0.1f + 2.0f * uniform(rng);
        else if (kind == "activation_energy") v = std::exp(2.0f * normal(rng));  // spans orders of magnitude
        else if (kind == "with_zeros") v = uniform(rng) < 0.3f ? 0.0f : uniform(rng);
        else if (kind == "zero_groups") v = (i / 16) % 4 == 2 ? 0.0f : 0.5f + uniform(rng);  // whole sub-blocks unweighted
        else if (kind == "all_zero") v = 0.0f;
        else qFatal("unknown importance %s", qPrintable(kind));
        q[i] = v;
    }
    return q;
}

int64_t first_byte_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return int64_t(i);
    return a.size() == b.size() ? -1 : int64_t(std::min(a.size(), b.size()));
}

}  // namespace

class TestGgmlImportance : public QObject {
    Q_OBJECT

    void* lib_ = nullptr;
    QuantizeChunkFn quantize_chunk_ = nullptr;

    // ggml_quantize_chunk's bytes for rows [start_row, nrows) of x, written where ggml puts them.
    std::vector<uint8_t> ggml_bytes(ef::DType t, const std::vector<float>& x, const std::vector<float>& q,
                                    int64_t start_row = 0) const {
        const auto& tr = ef::type_traits(t);
        std::vector<uint8_t> out(size_t(*ef::dtype_bytes(t, int64_t(x.size()))), 0);
        const size_t written = quantize_chunk_(int(tr.ggml_id), x.data(), out.data(), start_row * kPerRow,
                                               kRows - start_row, kPerRow, q.empty() ? nullptr : q.data());
        if (written != size_t((kRows - start_row) * kPerRow / tr.block_size * tr.type_size)) out.clear();
        return out;
    }

    static QString describe_diff(ef::DType t, int64_t at, const std::vector<uint8_t>& ours,
                                 const std::vector<uint8_t>& theirs) {
        const auto& tr = ef::type_traits(t);
        const int64_t row_bytes = kPerRow / tr.block_size * tr.type_size;
        return QStringLiteral("byte %1 (row %2, block %3, offset %4): ours 0x%5, ggml 0x%6").arg(at)
            .arg(at / row_bytes).arg((at % row_bytes) / tr.type_size).arg(at % tr.type_size)
            .arg(ours[size_t(at)], 2, 16, QChar('0')).arg(theirs[size_t(at)], 2, 16, QChar('0'));
    }

private slots:
    void initTestCase() {
        lib_ = dlopen(kGgmlBase, RTLD_NOW | RTLD_LOCAL);
        if (!lib_)
            QFAIL(qPrintable(QStringLiteral("cannot load the reference ggml (%1): %2 — run `bash scripts/setup.sh`, which installs "
                                            "node-llama-cpp into tests/reference")
                                 .arg(QString::fromUtf8(kGgmlBase), QString::fromUtf8(dlerror()))));
        quantize_chunk_ = reinterpret_cast<QuantizeChunkFn>(dlsym(lib_, "ggml_quantize_chunk"));
        QVERIFY2(quantize_chunk_, "libggml-base.so lacks ggml_quantize_chunk");
    }

    void cleanupTestCase() {
        if (lib_) dlclose(lib_);
    }

    // Every type x weight distribution x importance: our bytes == ggml_quantize_chunk's.
    void matchesGgml_data() {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<QString>("dist");
        QTest::addColumn<QString>("importance");
        const char* dists[] = {"gaussian", "gaussian_weights", "student_t3", "outliers", "constant",
                               "negative_constant", "tiny", "very_tiny", "zeros", "zero_rows", "sparse",
                               "positive", "ramp", "grid", "non_finite"};
        const char* importances[] = {"none", "uniform", "random", "activation_energy", "with_zeros",
                                     "zero_groups", "all_zero"};
        for (ef::DType t : kTypes)
            for (const char* d : dists)
                for (const char* q : importances)
                    QTest::addRow("%s/%s/%s", std::string(ef::dtype_name(t)).c_str(), d, q)
                        << int(t) << QString::fromLatin1(d) << QString::fromLatin1(q);
    }
    void matchesGgml() {
        QFETCH(int, dtype);
        QFETCH(QString, dist);
        QFETCH(QString, importance);
        const ef::DType t = ef::DType(dtype);
        const std::vector<float> x = make_weights(dist, 4321u + uint32_t(dtype));
        const std::vector<float> q = make_importance(importance, 99u + uint32_t(dtype));

        const std::vector<uint8_t> theirs = ggml_bytes(t, x, q);
        QVERIFY2(!theirs.empty(), "ggml_quantize_chunk wrote an unexpected number of bytes");
        std::vector<uint8_t> ours(theirs.size(), 0xA5);
        const auto written = ef::ggml::quantize_rows(t, x.data(), ours.data(), kRows, kPerRow, q.empty() ? nullptr : q.data());
        QVERIFY2(written.ok(), written.ok() ? "" : written.message().c_str());
        QCOMPARE(*written, uint64_t(theirs.size()));
        const int64_t at = first_byte_diff(ours, theirs);
        if (at >= 0) QFAIL(qPrintable(describe_diff(t, at, ours, theirs)));
    }

    // A caller may split a matrix into row ranges (threads): rows quantized on their own give the
    // bytes ggml writes for the same rows at a non-zero start.
    void rowRangesMatchGgml_data() {
        QTest::addColumn<int>("dtype");
        for (ef::DType t : kTypes) QTest::newRow(std::string(ef::dtype_name(t)).c_str()) << int(t);
    }
    void rowRangesMatchGgml() {
        QFETCH(int, dtype);
        const ef::DType t = ef::DType(dtype);
        const std::vector<float> x = make_weights("student_t3", 7u);
        const std::vector<float> q = make_importance("activation_energy", 8u);
        const int64_t start_row = 5;
        const std::vector<uint8_t> theirs = ggml_bytes(t, x, q, start_row);
        QVERIFY(!theirs.empty());
        const auto& tr = ef::type_traits(t);
        const int64_t row_bytes = kPerRow / tr.block_size * tr.type_size;
        std::vector<uint8_t> ours(theirs.size(), 0);
        QVERIFY(ef::ggml::quantize_rows(t, x.data() + start_row * kPerRow, ours.data() + start_row * row_bytes,
                                        kRows - start_row, kPerRow, q.data()).ok());
        const int64_t at = first_byte_diff(ours, theirs);
        if (at >= 0) QFAIL(qPrintable(describe_diff(t, at, ours, theirs)));
    }

    // The weights must matter where ggml uses them (else the comparisons above could pass with the
    // plain quantizer), and must not where ggml ignores them (q8_0).
    void importanceChangesTheResult_data() { rowRangesMatchGgml_data(); }
    void importanceChangesTheResult() {
        QFETCH(int, dtype);
        const ef::DType t = ef::DType(dtype);
        const std::vector<float> x = make_weights("gaussian", 11u);
        const std::vector<float> q = make_importance("activation_energy", 12u);
        std::vector<uint8_t> plain(size_t(*ef::dtype_bytes(t, int64_t(x.size())))), weighted(plain.size());
        QVERIFY(ef::ggml::quantize_rows(t, x.data(), plain.data(), kRows, kPerRow, nullptr).ok());
        QVERIFY(ef::ggml::quantize_rows(t, x.data(), weighted.data(), kRows, kPerRow, q.data()).ok());
        if (t == ef::DType::Q8_0) QVERIFY(plain == weighted);
        else QVERIFY(plain != weighted);
    }

    void badInput() {
        std::vector<float> x(512, 1.0f);
        std::vector<uint8_t> out(4096);
        const auto unsupported = ef::ggml::quantize_rows(ef::DType::Q8_K, x.data(), out.data(), 1, 256, nullptr);
        QVERIFY(!unsupported.ok());
        QVERIFY2(unsupported.message().find("q8_K") != std::string::npos, unsupported.message().c_str());
        QVERIFY(!ef::ggml::quantize_rows(ef::DType::F32, x.data(), out.data(), 1, 256, nullptr).ok());
        const auto ragged = ef::ggml::quantize_rows(ef::DType::Q4_K, x.data(), out.data(), 2, 128, nullptr);
        QVERIFY(!ragged.ok());
        QVERIFY2(ragged.message().find("128") != std::string::npos, ragged.message().c_str());
        QVERIFY(!ef::ggml::quantize_rows(ef::DType::Q4_0, x.data(), out.data(), 1, 0, nullptr).ok());
        const auto none = ef::ggml::quantize_rows(ef::DType::Q4_0, x.data(), out.data(), 0, 32, nullptr);
        QVERIFY(none.ok());
        QCOMPARE(*none, uint64_t(0));
    }
};

QTEST_GUILESS_MAIN(TestGgmlImportance)
#include "test_ggml_importance.moc"
