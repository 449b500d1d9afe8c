// core/outlier_analysis + the HDF5 checkpoint's /analysis and /quantized groups. Expected values come
// from closed forms, from naive formulas written here (long double, a plain sort for the budget) and
// from h5py + numpy (tests/reference/check_outliers_hdf5.py) -- never from the code under test.
#include <QtTest>

#include <QCryptographicHash>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "core/formats/format.h"
#include <hdf5.h>

#include "core/hdf5/hdf5_checkpoint.h"
#include "core/hdf5/hdf5_format.h"
#include "core/outlier_analysis.h"
#include "core/synth.h"
#include "quant/ef_quantize.h"
#include "tests/support/test_support.h"
#include "tests/unit/hdf5_test_models.h"

using namespace ef;

Q_DECLARE_METATYPE(std::vector<float>)

namespace {

Tensor make(const std::string& name, const std::vector<float>& v, int64_t rows, int64_t cols) {
    auto t = Tensor::from_f32(name, {rows, cols}, v);
    if (!t) qFatal("from_f32: %s", t.message().c_str());
    return std::move(t).value();
}

Model model_of(std::vector<Tensor> ts) {
    Model m;
    m.tensors = std::move(ts);
    return m;
}

OutlierAnalysisPtr analyze(const Model& m, OutlierAnalysisOptions o) {
    auto a = analyze_outliers(m, o);
    if (!a) qFatal("analyze_outliers: %s", a.message().c_str());
    return *a;
}

struct Moments {
    long double max_over_rms, kurtosis;
};
// Textbook two-pass formulas over one block, in long double.
Moments naive_block(const float* x, int64_t n) {
    long double s = 0, sq = 0, mx = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i], sq += (long double)x[i] * x[i], mx = std::max<long double>(mx, std::fabs(x[i]));
    const long double mean = s / n;
    long double m2 = 0, m4 = 0;
    for (int64_t i = 0; i < n; ++i) {
        const long double d = x[i] - mean;
        m2 += d * d, m4 += d * d * d * d;
    }
    m2 /= n, m4 /= n;
    return {sq > 0 ? mx / std::sqrt(sq / n) : NAN, m2 > 0 ? m4 / (m2 * m2) - 3 : NAN};
}

std::vector<float> sample(const QString& dist, size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> uni(-1.0, 1.0);
    std::exponential_distribution<double> expo(1.0);
    std::bernoulli_distribution coin(0.5);
    std::student_t_distribution<double> t3(3.0), t10(10.0);
    std::vector<float> v(n);
    for (float& x : v) {
        double d = 0;
        if (dist == "normal") d = normal(rng);
        else if (dist == "uniform") d = uni(rng);
        else if (dist == "laplace") d = coin(rng) ? expo(rng) : -expo(rng);
        else if (dist == "student_t3") d = t3(rng);
        else if (dist == "student_t10") d = t10(rng);
        x = float(scale * d);
    }
    return v;
}

Tensor to_q8(const Tensor& t) {
    auto v = t.to_f32();
    if (!v) qFatal("to_f32: %s", v.message().c_str());
    auto q = Tensor::from_f32(t.name, t.shape, *v, DType::Q8_0);
    if (!q) qFatal("from_f32: %s", q.message().c_str());
    return std::move(q).value();
}

// First difference between the tensor lists ("" when equal: names, order, dtypes, shapes, bytes).
std::string tensor_difference(const Model& a, const Model& b) {
    Model x = b;
    x.architecture = a.architecture, x.config = a.config, x.layers = a.layers, x.metadata = a.metadata, x.vocab = a.vocab;
    return test::hdf5_model_difference(a, x);
}

Model synth(uint64_t seed) {
    SynthOptions o;
    o.arch = "llama", o.dim = 64, o.n_layers = 2, o.vocab = 300, o.seed = seed;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    return std::move(m).value();
}

bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

}  // namespace

class TestOutlierAnalysis : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;

private slots:
    void initTestCase() {
        register_hdf5_format();
        QVERIFY(dir_.isValid());
    }

    // Per-block max|w|/rms and excess kurtosis on hand-made blocks: closed forms where they exist,
    // the naive formula for every block.
    void blockStatistics_data() {
        QTest::addColumn<std::vector<float>>("w");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("block");
        QTest::addColumn<double>("mor0");   // closed form for block (0, 0); NaN: none given
        QTest::addColumn<double>("kurt0");
        QTest::newRow("constant") << std::vector<float>(8, 2.0f) << 1 << 8 << 1.0 << double(NAN);
        QTest::newRow("two-point +-1") << std::vector<float>{1, -1, 1, -1, 1, -1, 1, -1} << 1 << 8 << 1.0 << -2.0;
        // 7 zeros and one 8: mean 1, m2 = 7, m4 = 301 -> 301/49 - 3; rms = sqrt(8).
        QTest::newRow("one spike") << std::vector<float>{0, 0, 0, 8, 0, 0, 0, 0} << 1 << 8 << 8.0 / std::sqrt(8.0)
                                   << 301.0 / 49.0 - 3.0;
        // 1..8, a discrete uniform distribution: excess kurtosis -6 (n^2 + 1) / (5 (n^2 - 1)); rms = sqrt(204 / 8).
        QTest::newRow("ramp 1..8") << std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8} << 1 << 8
                                   << 8.0 / std::sqrt(204.0 / 8.0) << -6.0 * 65.0 / (5.0 * 63.0);
        QTest::newRow("all zero") << std::vector<float>(16, 0.0f) << 2 << 8 << double(NAN) << double(NAN);
        QTest::newRow("random 4x24, B=8") << sample("laplace", 96, 7) << 4 << 8 << double(NAN) << double(NAN);
        QTest::newRow("short last block 3x20, B=8") << sample("normal", 60, 8) << 3 << 8 << double(NAN) << double(NAN);
    }
    void blockStatistics() {
        QFETCH(std::vector<float>, w);
        QFETCH(int, rows);
        QFETCH(int, block);
        QFETCH(double, mor0);
        QFETCH(double, kurt0);
        const int64_t cols = int64_t(w.size()) / rows;
        OutlierAnalysisOptions o;
        o.block = block;
        auto a = analyze(model_of({make("blk.0.ffn_up.weight", w, rows, cols)}), o);
        QCOMPARE(a->tensors.size(), size_t(1));
        const TensorOutliers& t = a->tensors[0];
        const int64_t nb = (cols + block - 1) / block;
        QCOMPARE(t.blocks_per_row, nb);
        QCOMPARE(t.layer, 0);
        QCOMPARE(t.block_max_over_rms.size(), size_t(rows * nb));
        if (!std::isnan(mor0)) QVERIFY(std::fabs(t.block_max_over_rms[0] - mor0) <= 1e-6 * mor0);
        if (!std::isnan(kurt0)) QVERIFY2(std::fabs(t.block_kurtosis[0] - kurt0) <= 1e-5, qPrintable(QString::number(t.block_kurtosis[0])));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t b = 0; b < nb; ++b) {
                const int64_t c0 = b * block, n = std::min<int64_t>(block, cols - c0);
                const Moments m = naive_block(w.data() + r * cols + c0, n);
                const float got_m = t.block_max_over_rms[t.index(r, b)], got_k = t.block_kurtosis[t.index(r, b)];
                QCOMPARE(std::isnan(got_m), std::isnan(double(m.max_over_rms)));
                QCOMPARE(std::isnan(got_k), std::isnan(double(m.kurtosis)));
                if (!std::isnan(got_m)) QVERIFY(std::fabs(got_m - double(m.max_over_rms)) <= 1e-6 * double(m.max_over_rms));
                if (!std::isnan(got_k))
                    QVERIFY2(std::fabs(got_k - double(m.kurtosis)) <= 1e-5 * std::max(1.0, std::fabs(double(m.kurtosis))),
                             qPrintable(QString("block (%1,%2): %3 vs %4").arg(r).arg(b).arg(got_k).arg(double(m.kurtosis))));
            }
    }

    // Tensor excess kurtosis of large samples from known distributions: normal 0, uniform -1.2,
    // Laplace 3, Student-t(10) 6/(10-4) = 1.
    void kurtosisOfKnownDistributions_data() {
        QTest::addColumn<QString>("dist");
        QTest::addColumn<double>("expected");
        QTest::addColumn<double>("tolerance");
        QTest::newRow("normal") << "normal" << 0.0 << 0.05;
        QTest::newRow("uniform") << "uniform" << -1.2 << 0.02;
        QTest::newRow("laplace") << "laplace" << 3.0 << 0.25;
        QTest::newRow("student_t10") << "student_t10" << 1.0 << 0.35;
    }
    void kurtosisOfKnownDistributions() {
        QFETCH(QString, dist);
        QFETCH(double, expected);
        QFETCH(double, tolerance);
        const int64_t R = 512, C = 1024;
        auto a = analyze(model_of({make("w", sample(dist, size_t(R * C), 11, 0.02f), R, C)}), {});
        const double k = a->tensors[0].kurtosis;
        QVERIFY2(std::fabs(k - expected) <= tolerance, qPrintable(QString("%1: kurtosis %2").arg(dist).arg(k)));
        QCOMPARE(a->tensors[0].layer, -1);
    }

    // Counts beyond k sigma (tensor sigma) on crafted data: +-1 alternating with spikes at known places.
    void beyondKSigma_data() {
        QTest::addColumn<QList<int>>("spikes");  // flat positions of value 20 in a 4 x 16 matrix
        QTest::addColumn<double>("k");
        QTest::newRow("none") << QList<int>{} << 3.0;
        QTest::newRow("one") << QList<int>{5} << 3.0;
        QTest::newRow("three in two blocks") << QList<int>{0, 3, 60} << 3.0;
        QTest::newRow("same block") << QList<int>{17, 18} << 3.0;
        QTest::newRow("k=0.5 counts the +-1 too") << QList<int>{9} << 0.5;
    }
    void beyondKSigma() {
        QFETCH(QList<int>, spikes);
        QFETCH(double, k);
        std::vector<float> w(64);
        for (size_t i = 0; i < w.size(); ++i) w[i] = (i % 2) ? -1.0f : 1.0f;
        for (int s : spikes) w[size_t(s)] = 20.0f;
        // Direct formula: population mean and sigma of the tensor.
        long double mu = 0, var = 0;
        for (float x : w) mu += x;
        mu /= w.size();
        for (float x : w) var += (x - mu) * (x - mu);
        const long double sigma = std::sqrt(var / w.size());
        std::vector<int> expected(8, 0);  // (4, 2) blocks of 8
        for (size_t i = 0; i < w.size(); ++i)
            if (std::fabs(w[i] - mu) > k * sigma) ++expected[(i / 16) * 2 + (i % 16) / 8];
        if (k == 3.0) {  // the spikes and nothing else
            std::vector<int> spike_blocks(8, 0);
            for (int s : spikes) ++spike_blocks[size_t((s / 16) * 2 + (s % 16) / 8)];
            QCOMPARE(expected, spike_blocks);
        }
        OutlierAnalysisOptions o;
        o.block = 8;
        o.k = k;
        auto a = analyze(model_of({make("m", w, 4, 16)}), o);
        const auto& t = a->tensors[0];
        QCOMPARE(std::vector<int>(t.block_beyond_k_sigma.begin(), t.block_beyond_k_sigma.end()), expected);
        QCOMPARE(t.beyond_k_sigma, int64_t(std::accumulate(expected.begin(), expected.end(), 0)));
    }

    // The outlier budget: a plain stable sort of all scores in model order is the reference.
    void budget_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<double>("p");
        QTest::addColumn<bool>("saliency");
        QTest::newRow("random t3, p=0.5%") << "random" << 0.005 << false;
        QTest::newRow("random t3, p=5%") << "random" << 0.05 << false;
        QTest::newRow("random t3, p=0") << "random" << 0.0 << false;
        QTest::newRow("random, saliency") << "random" << 0.01 << true;
        QTest::newRow("all ties") << "ties" << 0.03 << false;
        QTest::newRow("quantized q8_0 source") << "q8" << 0.02 << false;
    }
    void budget() {
        QFETCH(QString, kind);
        QFETCH(double, p);
        QFETCH(bool, saliency);
        const int64_t R = 16, C = 64;
        std::vector<Tensor> ts;
        std::vector<std::vector<float>> energies;
        for (int i = 0; i < 4; ++i) {
            std::vector<float> w = kind == "ties" ? std::vector<float>(size_t(R * C), 0.5f)
                                                  : sample("student_t3", size_t(R * C), 100 + i, 0.01f * float(i + 1));
            auto t = make("blk." + std::to_string(i / 2) + ".w" + std::to_string(i) + ".weight", w, R, C);
            if (kind == "q8") t = to_q8(t);
            ts.push_back(std::move(t));
            energies.push_back(sample("uniform", size_t(C), 200 + i));
            for (float& e : energies.back()) e = e * e * 4.0f;
        }
        const Model m = model_of(std::move(ts));
        OutlierAnalysisOptions o;
        o.block = 16;
        o.fraction = p;
        o.threads = 3;
        if (saliency) {
            o.selection = OutlierSelection::Saliency;
            o.energy = [&](const std::string& name) -> const std::vector<float>* {
                return &energies[size_t(name[name.find(".w") + 2] - '0')];
            };
        }
        auto a = analyze(m, o);
        // Reference: every score in model order, stable sort descending, first N.
        std::vector<float> scores;
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            auto v = m.tensors[i].to_f32();
            QVERIFY(v);
            for (size_t j = 0; j < v->size(); ++j) {
                const float x = (*v)[j];
                scores.push_back(saliency ? x * x * energies[i][j % size_t(C)] : std::fabs(x));
            }
        }
        std::vector<size_t> order(scores.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return scores[x] > scores[y]; });
        const int64_t N = int64_t(std::floor(p * double(scores.size())));
        QCOMPARE(a->budget, N);
        QCOMPARE(a->total_weights, int64_t(scores.size()));
        std::vector<int32_t> expected(scores.size() / 16, 0);  // blocks of 16, tensors concatenated
        for (int64_t i = 0; i < N; ++i) ++expected[order[size_t(i)] / 16];
        std::vector<int32_t> got;
        int64_t sum = 0;
        for (const auto& t : a->tensors) {
            got.insert(got.end(), t.block_budget.begin(), t.block_budget.end());
            sum += t.budget;
        }
        QCOMPARE(got, expected);
        QCOMPARE(sum, N);
        // Layers: blk.0 holds tensors 0, 1; blk.1 tensors 2, 3.
        QCOMPARE(a->layers.size(), size_t(2));
        const int64_t l0 = a->tensors[0].budget + a->tensors[1].budget;
        QCOMPARE(a->layers[0].budget, l0);
        if (N > 0) QCOMPARE(a->layers[0].budget_share, double(l0) / double(N));
        QCOMPARE(a->layers[1].weight_share, 0.5);
        if (kind == "ties") QCOMPARE(a->tensors[0].budget, N);  // model order, first tensor first
    }

    // Heavy tails rank above a Gaussian on every statistic; the t tensor takes most of the budget.
    void heavyTailedRanksAboveGaussian_data() {
        QTest::addColumn<QString>("heavy");
        QTest::newRow("student_t3") << "student_t3";
        QTest::newRow("laplace") << "laplace";
    }
    void heavyTailedRanksAboveGaussian() {
        QFETCH(QString, heavy);
        const int64_t R = 128, C = 512;
        // Same standard deviation: Student-t(3) has variance 3, Laplace(1) 2.
        const float hs = heavy == "student_t3" ? 1.0f / std::sqrt(3.0f) : 1.0f / std::sqrt(2.0f);
        const Model m = model_of({make("blk.0.ffn_down.weight", sample("normal", size_t(R * C), 1, 0.02f), R, C),
                                  make("blk.1.ffn_down.weight", sample(heavy, size_t(R * C), 2, 0.02f * hs), R, C)});
        OutlierAnalysisOptions o;
        o.fraction = 0.005;
        auto a = analyze(m, o);
        const auto &g = a->tensors[0], &h = a->tensors[1];
        QVERIFY(h.kurtosis > g.kurtosis + 1.0);
        QVERIFY(h.max_over_rms > g.max_over_rms);
        QVERIFY(h.beyond_k_sigma > g.beyond_k_sigma);
        auto mean = [](const std::vector<float>& v) {
            double s = 0;
            for (float x : v) s += x;
            return s / double(v.size());
        };
        QVERIFY(mean(h.block_kurtosis) > mean(g.block_kurtosis));
        QVERIFY(mean(h.block_max_over_rms) > mean(g.block_max_over_rms));
        QVERIFY2(h.budget_share > 0.8, qPrintable(QString::number(h.budget_share)));
        QCOMPARE(a->layers[1].budget_share, h.budget_share);
        QVERIFY(std::fabs(g.kurtosis) < 0.1);
    }

    void threadsAgree() {
        std::vector<Tensor> ts;
        for (int i = 0; i < 7; ++i)
            ts.push_back(make("blk." + std::to_string(i) + ".w", sample("student_t3", 40 * 96, 50 + i), 40, 96));
        const Model m = model_of(std::move(ts));
        OutlierAnalysisOptions o;
        o.block = 32;
        o.fraction = 0.02;
        o.threads = 1;
        auto one = analyze(m, o);
        o.threads = 4;
        auto four = analyze(m, o);
        QCOMPARE(one->threshold, four->threshold);
        for (size_t i = 0; i < one->tensors.size(); ++i) {
            const auto &x = one->tensors[i], &y = four->tensors[i];
            QCOMPARE(x.name, y.name);
            QCOMPARE(x.block_budget, y.block_budget);
            QCOMPARE(x.block_beyond_k_sigma, y.block_beyond_k_sigma);
            QVERIFY(std::equal(x.block_kurtosis.begin(), x.block_kurtosis.end(), y.block_kurtosis.begin(), same_float));
        }
    }

    void cancelAndBadOptions_data() {
        QTest::addColumn<int>("block");
        QTest::addColumn<double>("k");
        QTest::addColumn<double>("p");
        QTest::addColumn<bool>("saliency");
        QTest::addColumn<QString>("message");
        QTest::newRow("B=0") << 0 << 3.0 << 0.005 << false << "block size B = 0";
        QTest::newRow("k=0") << 128 << 0.0 << 0.005 << false << "k = 0";
        QTest::newRow("p=6%") << 128 << 3.0 << 0.06 << false << "outside [0, 0.05]";
        QTest::newRow("saliency without energy") << 128 << 3.0 << 0.005 << true << "no activation energy";
    }
    void cancelAndBadOptions() {
        QFETCH(int, block);
        QFETCH(double, k);
        QFETCH(double, p);
        QFETCH(bool, saliency);
        QFETCH(QString, message);
        const Model m = model_of({make("w", sample("normal", 64, 1), 2, 32)});
        OutlierAnalysisOptions o;
        o.block = block, o.k = k, o.fraction = p;
        if (saliency) o.selection = OutlierSelection::Saliency;
        auto a = analyze_outliers(m, o);
        QVERIFY(!a);
        QVERIFY2(QString::fromStdString(a.message()).contains(message), a.message().c_str());

        Progress cancelled;
        cancelled.cancel();
        auto c = analyze_outliers(m, {}, cancelled);
        QVERIFY(!c);
        QCOMPARE(QString::fromStdString(c.message()), QString("cancelled"));
    }

    // Master + analysis + two variants in one file; everything reads back exactly; add_to_checkpoint
    // adds a third variant and replaces the analysis; the plain model load is unchanged.
    void hdf5RoundTrip() {
        const std::optional<Model> master = synth(5);
        OutlierAnalysisOptions ao;
        ao.block = 32;
        ao.fraction = 0.01;
        auto a = analyze(*master, ao);
        EfModelQuantOptions qo;
        qo.tensor.bits = 3;
        qo.tensor.block = 32;
        qo.tensor.outlier_fraction = 0.01;
        auto q3 = ef_quantize_model(*master, qo);
        QVERIFY2(q3, q3 ? "" : q3.message().c_str());
        qo.tensor.bits = 4;
        qo.tensor.outlier_fraction = 0.0;
        auto q4 = ef_quantize_model(*master, qo);
        QVERIFY(q4);
        CheckpointExtras x;
        x.outliers = a;
        x.variants.push_back(make_variant("ef3_b32", "ef3 B=32 p=1%", *master, *q3));
        x.variants.push_back(make_variant("ef4_b32", "ef4 B=32", *master, *q4));
        QVERIFY(x.variants[0].tensors.size() > 4);
        const std::string path = (dir_.path() + "/ckpt.h5").toStdString();
        auto s = save_checkpoint(*master, path, x);
        QVERIFY2(s, s ? "" : s.message().c_str());

        auto back = load_model(path);
        QVERIFY2(back, back ? "" : back.message().c_str());
        const std::string diff = test::hdf5_model_difference(*master, *back);
        QVERIFY2(diff.empty(), diff.c_str());

        auto names = list_variants(path);
        QVERIFY(names);
        QCOMPARE(*names, (std::vector<std::string>{"ef3_b32", "ef4_b32"}));
        auto v = load_variant(path, "ef3_b32");
        QVERIFY2(v, v ? "" : v.message().c_str());
        QCOMPARE(v->description, std::string("ef3 B=32 p=1%"));
        auto applied = apply_variant(*back, *v);
        QVERIFY(applied);
        const std::string d2 = tensor_difference(*q3, *applied);
        QVERIFY2(d2.empty(), d2.c_str());
        QVERIFY(!load_variant(path, "nope"));

        auto b = load_outlier_analysis(path);
        QVERIFY2(b, b ? "" : b.message().c_str());
        const OutlierAnalysis &x0 = *a, &x1 = **b;
        QCOMPARE(x1.block, x0.block);
        QCOMPARE(x1.k, x0.k);
        QCOMPARE(x1.fraction, x0.fraction);
        QCOMPARE(x1.budget, x0.budget);
        QCOMPARE(x1.threshold, x0.threshold);
        QCOMPARE(x1.total_weights, x0.total_weights);
        QCOMPARE(x1.tensors.size(), x0.tensors.size());
        for (size_t i = 0; i < x0.tensors.size(); ++i) {
            const auto &p0 = x0.tensors[i], &p1 = x1.tensors[i];
            QCOMPARE(p1.name, p0.name);
            QCOMPARE(p1.layer, p0.layer);
            QCOMPARE(p1.budget_share, p0.budget_share);
            QVERIFY(same_float(float(p1.kurtosis), float(p0.kurtosis)));
            QCOMPARE(p1.block_budget, p0.block_budget);
            QCOMPARE(p1.block_beyond_k_sigma, p0.block_beyond_k_sigma);
            QVERIFY(std::equal(p0.block_kurtosis.begin(), p0.block_kurtosis.end(), p1.block_kurtosis.begin(), same_float));
            QVERIFY(std::equal(p0.block_max_over_rms.begin(), p0.block_max_over_rms.end(), p1.block_max_over_rms.begin(), same_float));
        }
        QCOMPARE(x1.layers.size(), x0.layers.size());
        for (size_t i = 0; i < x0.layers.size(); ++i) {
            QCOMPARE(x1.layers[i].layer, x0.layers[i].layer);
            QCOMPARE(x1.layers[i].budget, x0.layers[i].budget);
            QCOMPARE(x1.layers[i].budget_share, x0.layers[i].budget_share);
        }

        // Add a variant and a new analysis to the existing file.
        ao.fraction = 0.002;
        auto a2 = analyze(*master, ao);
        CheckpointExtras more{a2, {make_variant("ef3_again", "", *master, *q3)}};
        s = add_to_checkpoint(path, more);
        QVERIFY2(s, s ? "" : s.message().c_str());
        names = list_variants(path);
        QVERIFY(names);
        QCOMPARE(names->size(), size_t(3));
        auto b2 = load_outlier_analysis(path);
        QVERIFY(b2);
        QCOMPARE((*b2)->budget, a2->budget);
        QVERIFY(test::hdf5_model_difference(*master, *load_model(path)).empty());

        // A cancelled save leaves nothing under the target name.
        Progress cancel;
        cancel.cancel();
        const std::string p2 = (dir_.path() + "/cancelled.h5").toStdString();
        QVERIFY(!save_checkpoint(*master, p2, x, {}, cancel));
        QVERIFY(!QFile::exists(QString::fromStdString(p2)));
        // A plain model file has no analysis or variants.
        const std::string plain = (dir_.path() + "/plain.h5").toStdString();
        QVERIFY(save_model(*master, plain));
        QVERIFY(!has_outlier_analysis(plain));
        QVERIFY(list_variants(plain)->empty());
        auto none = load_outlier_analysis(plain);
        QVERIFY(!none);
        QVERIFY(QString::fromStdString(none.message()).contains("no outlier analysis"));
        // Bad variant names are refused before anything is written.
        CheckpointExtras bad;
        bad.variants.push_back({"a/b", "", {}});
        QVERIFY(!save_checkpoint(*master, (dir_.path() + "/bad.h5").toStdString(), bad));
    }

    // Damaged analysis data is an error naming the file and the object, not a crash or a wild allocation.
    void corruptAnalysis_data() {
        QTest::addColumn<QString>("damage");
        QTest::addColumn<QString>("message");
        QTest::newRow("wrong extent") << "extent" << "expected extent";
        QTest::newRow("missing dataset") << "missing" << "budget";
        QTest::newRow("bad selection") << "selection" << "unknown selection";
        QTest::newRow("missing layers") << "layers" << "layers";
    }
    void corruptAnalysis() {
        QFETCH(QString, damage);
        QFETCH(QString, message);
        const Model master = synth(3);
        OutlierAnalysisOptions ao;
        ao.block = 32;
        CheckpointExtras x;
        x.outliers = analyze(master, ao);
        const std::string path = (dir_.path() + "/damaged_" + damage + ".h5").toStdString();
        QVERIFY(save_checkpoint(master, path, x));
        {
            hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
            QVERIFY(f >= 0);
            const std::string t = "/analysis/outliers/tensors/blk.0.attn_q.weight";
            if (damage == "extent" || damage == "missing") {
                QVERIFY(H5Ldelete(f, (t + "/budget").c_str(), H5P_DEFAULT) >= 0);
                if (damage == "extent") {
                    const hsize_t dims[2] = {3, 1};
                    hid_t sp = H5Screate_simple(2, dims, nullptr);
                    hid_t d = H5Dcreate2(f, (t + "/budget").c_str(), H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                    const int32_t v[3] = {1, 2, 3};
                    QVERIFY(d >= 0 && H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
                    H5Dclose(d);
                    H5Sclose(sp);
                }
            } else if (damage == "selection") {
                hid_t g = H5Gopen2(f, "/analysis/outliers", H5P_DEFAULT);
                QVERIFY(H5Adelete(g, "selection") >= 0);
                hid_t st = H5Tcopy(H5T_C_S1);
                H5Tset_size(st, 5);
                hid_t sp = H5Screate(H5S_SCALAR);
                hid_t a = H5Acreate2(g, "selection", st, sp, H5P_DEFAULT, H5P_DEFAULT);
                QVERIFY(a >= 0 && H5Awrite(a, st, "bogus") >= 0);
                H5Aclose(a), H5Sclose(sp), H5Tclose(st), H5Gclose(g);
            } else {
                QVERIFY(H5Ldelete(f, "/analysis/outliers/layers", H5P_DEFAULT) >= 0);
            }
            H5Fclose(f);
        }
        auto b = load_outlier_analysis(path);
        QVERIFY(!b);
        const QString msg = QString::fromStdString(b.message());
        QVERIFY2(msg.contains(QString::fromStdString(path)) && msg.contains(message), qPrintable(msg));
    }

    // h5py + numpy recompute the per-block arrays and the budget from /tensors; the variant's bytes
    // equal the same tensors' bytes in a GGUF of the quantized model (located by @huggingface/gguf).
    void h5pyIndependentCheck_data() {
        QTest::addColumn<bool>("saliency");
        QTest::newRow("magnitude") << false;
        QTest::newRow("saliency") << true;
    }
    void h5pyIndependentCheck() {
        QFETCH(bool, saliency);
        const std::optional<Model> master = synth(9);
        OutlierAnalysisOptions ao;
        ao.block = 32;
        ao.fraction = 0.004;
        ao.k = 2.5;
        std::map<std::string, std::vector<float>> energy;
        if (saliency) {
            uint32_t seed = 300;
            for (const auto& t : master->tensors) {
                auto e = sample("laplace", size_t(t.row_length()), seed++);
                for (float& x : e) x = x * x;
                energy[t.name] = e;
            }
            ao.selection = OutlierSelection::Saliency;
            ao.energy = [&](const std::string& n) { return &energy.at(n); };
        }
        auto a = analyze(*master, ao);
        EfModelQuantOptions qo;
        qo.tensor.bits = 3;
        qo.tensor.block = 32;
        qo.tensor.outlier_fraction = 0.01;
        auto q = ef_quantize_model(*master, qo);
        QVERIFY(q);
        // A ggml-type variant too: Q8_0 of every 2-D weight that EF quantized.
        Model q8 = *master;
        for (auto& t : q8.tensors)
            if (is_ef_dtype(q->find(t.name)->dtype)) t = to_q8(t);
        CheckpointExtras x{a, {make_variant("ef3_b32", "ef", *master, *q), make_variant("q8_0", "q8", *master, q8)}};
        const std::string path = (dir_.path() + (saliency ? "/h5py_sal.h5" : "/h5py.h5")).toStdString();
        QVERIFY(save_checkpoint(*master, path, x));

        const auto r = test::run_process("/usr/bin/python3",
                                         {test::source_path("tests/reference/check_outliers_hdf5.py"),
                                          QString::fromStdString(path)},
                                         120000, {"HDF5_PLUGIN_PATH=" + test::hdf5_plugin_path()});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(j["attrs"].toObject()["selection"].toString(), QString(saliency ? "saliency" : "magnitude"));
        QCOMPARE(qint64(j["budget_numpy"].toInteger()), a->budget);
        const QJsonArray ts = j["tensors"].toArray();
        QCOMPARE(size_t(ts.size()), a->tensors.size());
        QVERIFY(a->budget > 0);
        for (const auto& v : ts) {
            const QJsonObject t = v.toObject();
            const QString name = t["name"].toString();
            QCOMPARE(t["shape"].toArray(), t["expected_shape"].toArray());
            QVERIFY2(t["max_rel_err_max_over_rms"].toDouble() < 2e-6, qPrintable(name));
            QVERIFY2(t["max_abs_err_kurtosis"].toDouble() < 1e-4, qPrintable(name));
            QCOMPARE(t["nan_mismatch"].toInt(), 0);
            QVERIFY2(t["beyond_equal"].toBool(), qPrintable(name));
            QVERIFY2(t["budget_equal"].toBool(), qPrintable(name));
            QVERIFY(std::fabs(t["tensor_kurtosis"].toDouble() - t["tensor_kurtosis_numpy"].toDouble()) < 1e-9);
        }
        const QJsonArray lb = j["layers"].toObject()["budget"].toArray();
        QCOMPARE(size_t(lb.size()), a->layers.size());
        for (size_t i = 0; i < a->layers.size(); ++i) QCOMPARE(qint64(lb[qsizetype(i)].toInteger()), a->layers[i].budget);

        auto back = load_outlier_analysis(path);
        QVERIFY2(back, back ? "" : back.message().c_str());
        QCOMPARE((*back)->selection, ao.selection);
        for (size_t i = 0; i < a->tensors.size(); ++i) {
            QCOMPARE((*back)->tensors[i].activation_energy, a->tensors[i].activation_energy);
            QCOMPARE(a->tensors[i].activation_energy.empty(), !saliency);
        }

        // Variant bytes vs the GGUF of the same quantized models.
        const QJsonObject variants = j["variants"].toObject();
        QCOMPARE(variants.size(), 2);
        for (const auto& [vname, qm] : {std::pair{QString("ef3_b32"), &*q}, std::pair{QString("q8_0"), &q8}}) {
            const std::string gpath = (dir_.path() + "/" + vname + ".gguf").toStdString();
            QVERIFY(save_model(*qm, gpath));
            const auto g = test::run_node_script("gguf_parse.mjs", {QString::fromStdString(gpath)});
            QVERIFY2(g.exit_code == 0, qPrintable(g.err));
            const QJsonObject gj = QJsonDocument::fromJson(g.out.toUtf8()).object();
            const qint64 base = qint64(gj["tensorDataOffset"].toVariant().toLongLong());
            QHash<QString, qint64> offset;
            for (const auto& ti : gj["tensorInfos"].toArray())
                offset[ti.toObject()["name"].toString()] = ti.toObject()["offset"].toVariant().toLongLong();
            QFile f(QString::fromStdString(gpath));
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QByteArray all = f.readAll();
            const QJsonArray vts = variants[vname].toObject()["tensors"].toArray();
            QVERIFY(!vts.isEmpty());
            int companions = 0;
            for (const auto& e : vts) {
                const QJsonObject t = e.toObject();
                const QString tn = t["name"].toString();
                const Tensor* qt = qm->find(tn.toStdString());
                QVERIFY2(qt && offset.contains(tn), qPrintable(tn));
                QCOMPARE(t["dtype"].toString(), QString::fromLatin1(dtype_name(qt->dtype).data()));
                const QByteArray bytes = all.mid(base + offset[tn], qsizetype(qt->data.size()));
                QCOMPARE(bytes.size(), qsizetype(qt->data.size()));
                QCOMPARE(t["sha256"].toString(),
                         QString::fromLatin1(QCryptographicHash::hash(bytes, QCryptographicHash::Sha256).toHex()));
                companions += tn.contains(".outlier_");
            }
            if (vname == "ef3_b32") QVERIFY(companions > 0);
        }
    }
};

QTEST_GUILESS_MAIN(TestOutlierAnalysis)
#include "test_outlier_analysis.moc"
