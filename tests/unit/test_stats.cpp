// core/stats: tensor statistics and magnitude heatmaps. Expected values come from closed-form
// hand computations and from a naive long-double reference written here, never from core/stats.
#include <QtTest>

#include <cmath>
#include <random>

#include "core/stats.h"

using ef::DType;
using ef::Shape;
using ef::Tensor;

Q_DECLARE_METATYPE(std::vector<float>)
Q_DECLARE_METATYPE(ef::Shape)
Q_DECLARE_METATYPE(ef::DType)

namespace {

struct Naive {
    long double mean = 0, std = 0, kurt = 0, rms = 0, min = 0, max = 0;
    int64_t n = 0;
};

// Textbook two-pass formulas in long double over the finite values.
Naive naive(const std::vector<float>& v) {
    Naive r;
    long double s = 0, sq = 0;
    r.min = INFINITY;
    r.max = -INFINITY;
    for (float f : v) {
        if (!std::isfinite(f)) continue;
        ++r.n;
        s += f;
        sq += (long double)f * f;
        r.min = std::min<long double>(r.min, f);
        r.max = std::max<long double>(r.max, f);
    }
    r.mean = s / r.n;
    long double m2 = 0, m4 = 0;
    for (float f : v) {
        if (!std::isfinite(f)) continue;
        const long double d = f - r.mean;
        m2 += d * d;
        m4 += d * d * d * d;
    }
    m2 /= r.n;
    m4 /= r.n;
    r.std = std::sqrt(m2);
    r.kurt = m4 / (m2 * m2) - 3;
    r.rms = std::sqrt(sq / r.n);
    return r;
}

Tensor make(const std::vector<float>& v, Shape shape, DType dt = DType::F32) {
    auto t = Tensor::from_f32("t", std::move(shape), v, dt);
    if (!t) qFatal("from_f32: %s", t.message().c_str());
    return std::move(t).value();
}

bool close(double a, double b, double rel) { return std::fabs(a - b) <= rel * std::max(1.0, std::fabs(b)); }

}  // namespace

class TestStats : public QObject {
    Q_OBJECT
private slots:
    void knownVectors_data();
    void knownVectors();
    void randomAgainstNaive_data();
    void randomAgainstNaive();
    void nanAndInfCounted();
    void quantizedEqualsDequantized_data();
    void quantizedEqualsDequantized();
    void cancelAndProgress();
    void heatmapOutlier_data();
    void heatmapOutlier();
};

void TestStats::knownVectors_data() {
    QTest::addColumn<std::vector<float>>("values");
    QTest::addColumn<bool>("column");  // view as (n, 1) so every row is its own chunk
    QTest::addColumn<double>("mean");
    QTest::addColumn<double>("stddev");
    QTest::addColumn<double>("kurtosis");
    QTest::addColumn<double>("rms");
    // 1..4: mean 5/2, var = (2.25+0.25+0.25+2.25)/4 = 1.25, m4 = (5.0625*2+0.0625*2)/4 = 2.5625,
    // excess kurtosis 2.5625/1.5625 - 3 = -1.36, rms = sqrt(30/4).
    for (bool col : {false, true}) {
        const char* tag = col ? " (n,1)" : " (n)";
        QTest::addRow("1..4%s", tag) << std::vector<float>{1, 2, 3, 4} << col << 2.5 << std::sqrt(1.25) << -1.36
                                     << std::sqrt(7.5);
        // ±1 alternating: var 1, m4 1 -> kurtosis 1 - 3 = -2.
        QTest::addRow("pm1%s", tag) << std::vector<float>{-1, 1, -1, 1} << col << 0.0 << 1.0 << -2.0 << 1.0;
        // nine zeros and a 10: mean 1, var (9*1 + 81)/10 = 9, m4 (9 + 6561)/10 = 657,
        // kurtosis 657/81 - 3, rms sqrt(100/10).
        QTest::addRow("outlier%s", tag) << std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 0, 10} << col << 1.0 << 3.0
                                        << 657.0 / 81.0 - 3.0 << std::sqrt(10.0);
        // A large offset must not cost precision (naive sum-of-squares formulas fail here).
        QTest::addRow("offset%s", tag) << std::vector<float>{1e6f + 1, 1e6f + 2, 1e6f + 3, 1e6f + 4} << col
                                       << 1e6 + 2.5 << std::sqrt(1.25) << -1.36
                                       << std::sqrt(((1e6 + 1) * (1e6 + 1) + (1e6 + 2) * (1e6 + 2) +
                                                     (1e6 + 3) * (1e6 + 3) + (1e6 + 4) * (1e6 + 4)) / 4);
    }
}

void TestStats::knownVectors() {
    QFETCH(std::vector<float>, values);
    QFETCH(bool, column);
    QFETCH(double, mean);
    QFETCH(double, stddev);
    QFETCH(double, kurtosis);
    QFETCH(double, rms);
    const int64_t n = int64_t(values.size());
    const Tensor t = make(values, column ? Shape{n, 1} : Shape{n});
    auto s = ef::tensor_stats(t, ef::Progress::none(), 1);
    QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
    QCOMPARE(s->count, n);
    QCOMPARE(s->nan_count, int64_t(0));
    QVERIFY2(close(s->mean, mean, 1e-12), qPrintable(QString::number(s->mean, 'g', 17)));
    QVERIFY2(close(s->std, stddev, 1e-9), qPrintable(QString::number(s->std, 'g', 17)));
    QVERIFY2(close(s->kurtosis, kurtosis, 1e-9), qPrintable(QString::number(s->kurtosis, 'g', 17)));
    QVERIFY(close(s->rms, rms, 1e-12));
    const double lo = *std::min_element(values.begin(), values.end());
    const double hi = *std::max_element(values.begin(), values.end());
    QCOMPARE(s->min, lo);
    QCOMPARE(s->max, hi);
    QVERIFY(close(s->max_abs_over_rms, std::max(std::fabs(lo), std::fabs(hi)) / rms, 1e-12));
}

void TestStats::randomAgainstNaive_data() {
    QTest::addColumn<Shape>("shape");
    QTest::addColumn<qint64>("chunk");
    QTest::addColumn<double>("offset");
    QTest::newRow("100x100 chunk 777") << Shape{100, 100} << qint64(777) << 0.0;
    QTest::newRow("100x100 one chunk") << Shape{100, 100} << qint64(1 << 20) << 0.0;
    QTest::newRow("3x7x50 chunk 1 row") << Shape{3, 7, 50} << qint64(1) << 0.0;
    QTest::newRow("offset 1000 chunk 333") << Shape{64, 96} << qint64(333) << 1000.0;
}

void TestStats::randomAgainstNaive() {
    QFETCH(Shape, shape);
    QFETCH(qint64, chunk);
    QFETCH(double, offset);
    std::mt19937 rng(42);
    std::student_t_distribution<float> dist(5.0f);  // heavy-ish tails: non-zero kurtosis
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = float(offset) + dist(rng);
    const Naive ref = naive(v);
    auto s = ef::tensor_stats(make(v, shape), ef::Progress::none(), chunk);
    QVERIFY(s.ok());
    QCOMPARE(s->finite, ref.n);
    QVERIFY(close(s->mean, double(ref.mean), 1e-12));
    QVERIFY(close(s->std, double(ref.std), 1e-9));
    QVERIFY2(close(s->kurtosis, double(ref.kurt), 1e-7),
             qPrintable(QString("%1 vs %2").arg(s->kurtosis).arg(double(ref.kurt))));
    QVERIFY(close(s->rms, double(ref.rms), 1e-12));
    QCOMPARE(s->min, double(ref.min));
    QCOMPARE(s->max, double(ref.max));
}

void TestStats::nanAndInfCounted() {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> v{1, NAN, 2, inf, -inf, 3, NAN, NAN};
    auto s = ef::tensor_stats(make(v, Shape{2, 4}), ef::Progress::none(), 4);
    QVERIFY(s.ok());
    QCOMPARE(s->count, int64_t(8));
    QCOMPARE(s->nan_count, int64_t(3));
    QCOMPARE(s->inf_count, int64_t(2));
    QCOMPARE(s->finite, int64_t(3));
    QCOMPARE(s->mean, 2.0);
    QCOMPARE(s->min, 1.0);
    QCOMPARE(s->max, 3.0);
    QVERIFY(close(s->std, std::sqrt(2.0 / 3.0), 1e-12));

    // All non-finite: no moments, but nothing crashes.
    auto e = ef::tensor_stats(make({NAN, NAN}, Shape{2}));
    QVERIFY(e.ok());
    QCOMPARE(e->nan_count, int64_t(2));
    QVERIFY(std::isnan(e->mean));
}

void TestStats::quantizedEqualsDequantized_data() {
    QTest::addColumn<DType>("dtype");
    for (DType d : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
        QTest::newRow(std::string(ef::dtype_name(d)).c_str()) << d;
}

void TestStats::quantizedEqualsDequantized() {
    QFETCH(DType, dtype);
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 0.05f);
    std::vector<float> v(16 * 512);
    for (auto& x : v) x = dist(rng);
    v[1234] = 1.5f;  // an outlier survives quantization roughly, and must show in max
    const Tensor q = make(v, Shape{16, 512}, dtype);
    auto deq = q.to_f32();
    QVERIFY2(deq.ok(), deq.ok() ? "" : deq.message().c_str());
    const Naive ref = naive(*deq);
    auto s = ef::tensor_stats(q, ef::Progress::none(), 1000);  // chunks of 1 row
    QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
    QCOMPARE(s->count, int64_t(v.size()));
    QVERIFY(close(s->mean, double(ref.mean), 1e-12));
    QVERIFY(close(s->std, double(ref.std), 1e-10));
    QVERIFY(close(s->kurtosis, double(ref.kurt), 1e-8));
    QCOMPARE(s->max, double(ref.max));
    QCOMPARE(s->min, double(ref.min));
}

void TestStats::cancelAndProgress() {
    std::vector<float> v(64 * 64, 1.0f);
    const Tensor t = make(v, Shape{64, 64});
    double last = -1;
    int calls = 0;
    ef::Progress p([&](double f, const std::string&) {
        QVERIFY(f >= last);
        last = f;
        ++calls;
    });
    QVERIFY(ef::tensor_stats(t, p, 64 * 8).ok());
    QCOMPARE(calls, 8);
    QCOMPARE(last, 1.0);

    ef::Progress cancelled;
    cancelled.cancel();
    auto s = ef::tensor_stats(t, cancelled);
    QVERIFY(!s.ok());
    QVERIFY(s.message().find("cancel") != std::string::npos);
    QVERIFY(!ef::magnitude_heatmap(t, 8, 8, cancelled).ok());
}

void TestStats::heatmapOutlier_data() {
    QTest::addColumn<Shape>("shape");
    QTest::addColumn<int>("maxCells");
    QTest::addColumn<qint64>("outlierRow");
    QTest::addColumn<qint64>("outlierCol");
    QTest::newRow("64x64 exact 16") << Shape{64, 64} << 16 << qint64(37) << qint64(5);
    QTest::newRow("1000x300 uneven") << Shape{1000, 300} << 16 << qint64(999) << qint64(131);
    QTest::newRow("7x5 smaller than grid") << Shape{7, 5} << 16 << qint64(3) << qint64(4);
    QTest::newRow("1-D 1000") << Shape{1000} << 16 << qint64(0) << qint64(500);
    QTest::newRow("3-D 4x10x30") << Shape{4, 10, 30} << 8 << qint64(25) << qint64(0);
    QTest::newRow("Q8_0-sized 32x256") << Shape{32, 256} << 10 << qint64(31) << qint64(255);
}

void TestStats::heatmapOutlier() {
    QFETCH(Shape, shape);
    QFETCH(int, maxCells);
    QFETCH(qint64, outlierRow);
    QFETCH(qint64, outlierCol);
    const int64_t cols = shape.back();
    int64_t n = 1;
    for (auto d : shape) n *= d;
    const int64_t rows = n / cols;
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> dist(-0.01f, 0.01f);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = dist(rng);
    v[size_t(outlierRow * cols + outlierCol)] = -50.0f;

    auto h = ef::magnitude_heatmap(make(v, shape), maxCells, maxCells, ef::Progress::none());
    QVERIFY(h.ok());
    QCOMPARE(h->src_rows, rows);
    QCOMPARE(h->src_cols, cols);
    QCOMPARE(h->rows, int(std::min<int64_t>(rows, maxCells)));
    QCOMPARE(h->cols, int(std::min<int64_t>(cols, maxCells)));
    // Documented partition: cell i covers [floor(i*N/cells), floor((i+1)*N/cells)).
    auto cell_of = [](int64_t x, int64_t N, int cells) {
        for (int i = 0; i < cells; ++i)
            if (x >= N * i / cells && x < N * (i + 1) / cells) return i;
        return -1;
    };
    const int er = cell_of(outlierRow, rows, h->rows), ec = cell_of(outlierCol, cols, h->cols);
    QCOMPARE(h->row_range(er).first, rows * er / h->rows);
    QCOMPARE(h->col_range(ec).second, cols * (ec + 1) / h->cols);
    QCOMPARE(h->cell_of_row(outlierRow), er);
    QCOMPARE(h->cell_of_col(outlierCol), ec);
    for (int r = 0; r < h->rows; ++r) {
        for (int c = 0; c < h->cols; ++c) {
            // Independent per-cell reference straight from the values.
            float mx = 0;
            double sum = 0;
            int64_t cnt = 0;
            for (int64_t i = rows * r / h->rows; i < rows * (r + 1) / h->rows; ++i)
                for (int64_t j = cols * c / h->cols; j < cols * (c + 1) / h->cols; ++j) {
                    const float a = std::fabs(v[size_t(i * cols + j)]);
                    mx = std::max(mx, a);
                    sum += a;
                    ++cnt;
                }
            QCOMPARE(h->max_at(r, c), mx);
            QVERIFY(std::fabs(h->mean_at(r, c) - sum / double(cnt)) < 1e-6);
            if (r == er && c == ec) QCOMPARE(h->max_at(r, c), 50.0f);
            else QVERIFY(h->max_at(r, c) <= 0.01f);
        }
    }
    QCOMPARE(h->max_value, 50.0f);
    QVERIFY(h->min_positive > 0 && h->min_positive <= 0.01f);
}

QTEST_GUILESS_MAIN(TestStats)
#include "test_stats.moc"
