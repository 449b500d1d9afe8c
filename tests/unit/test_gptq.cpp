// GPTQ (issue 4, quant/gptq.h). Checked against: plain RTN (ef_quantize_matrix / ggml's reference
// Q4_0, Q8_0) on the layer's output error ||W X^T - Q X^T||_F over correlated synthetic activations;
// the exact RTN bytes when H is diagonal (no compensation: the strong structural check); a naive,
// unbatched double-precision GPTQ written here from the paper's formulas (own Cholesky, no Eigen);
// the Hessian accumulator against a plain double loop; dead columns, cancel and bad input.
#include <QtTest>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "quant/ef_format.h"
#include "quant/ef_quantize.h"
#include "quant/ggml_blocks.h"
#include "quant/gptq.h"
#include "quant/half.h"

using namespace ef;

namespace {

struct Synth {
    int64_t rows = 0, cols = 0, n = 0;
    std::vector<float> w;  // (R, C) Student-t
    std::vector<float> x;  // (N, C) = Z M, Z with uneven column scales: H far from diagonal
    std::vector<float> h;  // (C, C)
};

Synth make_synth(int64_t rows, int64_t cols, int64_t n, uint32_t seed, std::vector<int64_t> dead = {}) {
    Synth s{rows, cols, n, {}, {}, {}};
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::student_t_distribution<float> td(3.0f);
    s.w.resize(size_t(rows * cols));
    for (auto& v : s.w) v = 0.02f * td(rng);
    std::vector<float> m(static_cast<size_t>(cols * cols)), sc(static_cast<size_t>(cols)), z(static_cast<size_t>(cols));
    for (auto& v : m) v = nd(rng) / std::sqrt(float(cols));
    for (int64_t c = 0; c < cols; ++c) m[size_t(c * cols + c)] += 1.0f;  // M = I + G/sqrt(C): well-conditioned
    for (auto& v : sc) v = std::exp(0.7f * nd(rng));
    s.x.assign(size_t(n * cols), 0.0f);
    for (int64_t t = 0; t < n; ++t) {
        for (int64_t c = 0; c < cols; ++c) z[size_t(c)] = sc[size_t(c)] * nd(rng);
        float* xr = s.x.data() + t * cols;
        for (int64_t k = 0; k < cols; ++k)
            for (int64_t c = 0; c < cols; ++c) xr[c] += z[size_t(k)] * m[size_t(k * cols + c)];
        for (int64_t d : dead) xr[d] = 0.0f;
    }
    HessianAccumulator acc(cols);
    if (!acc.add(s.x, n).ok()) qFatal("accumulator");
    s.h = acc.finish().value();
    return s;
}

// ||(W - Q) X^T||_F, straight from the activations (not through H).
double output_error(const Synth& s, const std::vector<float>& q) {
    double e = 0;
    std::vector<double> d(static_cast<size_t>(s.cols));
    for (int64_t r = 0; r < s.rows; ++r) {
        for (int64_t c = 0; c < s.cols; ++c) d[size_t(c)] = double(s.w[size_t(r * s.cols + c)]) - q[size_t(r * s.cols + c)];
        for (int64_t t = 0; t < s.n; ++t) {
            double y = 0;
            const float* xr = s.x.data() + t * s.cols;
            for (int64_t c = 0; c < s.cols; ++c) y += d[size_t(c)] * xr[c];
            e += y * y;
        }
    }
    return std::sqrt(e);
}

std::vector<float> deq(const EfQuantized& q) {
    auto r = gptq_dequantize(q);
    if (!r) qFatal("%s", r.message().c_str());
    return *r;
}

// RTN in ggml's reference Q4_0 / Q8_0 (rows of blocks of 32).
std::vector<float> rtn_ggml(GptqTarget t, const std::vector<float>& w, std::vector<std::byte>* bytes = nullptr) {
    const size_t bs = t == GptqTarget::Q4_0 ? sizeof(ggml::block_q4_0) : sizeof(ggml::block_q8_0);
    std::vector<std::byte> b(w.size() / 32 * bs);
    std::vector<float> out(w.size());
    if (t == GptqTarget::Q4_0) {
        ggml::quantize_q4_0(w.data(), b.data(), int64_t(w.size()));
        ggml::dequantize_q4_0(b.data(), out.data(), int64_t(w.size()));
    } else {
        ggml::quantize_q8_0(w.data(), b.data(), int64_t(w.size()));
        ggml::dequantize_q8_0(b.data(), out.data(), int64_t(w.size()));
    }
    if (bytes) *bytes = b;
    return out;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
    return a.dtype == b.dtype && a.shape == b.shape && a.nbytes() == b.nbytes() &&
           std::memcmp(a.data.data(), b.data.data(), a.nbytes()) == 0;
}

// --- naive GPTQ: one row at a time, no lazy batches, double precision, own Cholesky --------------
bool cholesky_lower(std::vector<double>& a, int64_t n) {  // in place, a = L L^T, upper part zeroed
    for (int64_t j = 0; j < n; ++j) {
        double s = a[size_t(j * n + j)];
        for (int64_t k = 0; k < j; ++k) s -= a[size_t(j * n + k)] * a[size_t(j * n + k)];
        if (!(s > 0)) return false;
        const double d = std::sqrt(s);
        a[size_t(j * n + j)] = d;
        for (int64_t i = j + 1; i < n; ++i) {
            double v = a[size_t(i * n + j)];
            for (int64_t k = 0; k < j; ++k) v -= a[size_t(i * n + k)] * a[size_t(j * n + k)];
            a[size_t(i * n + j)] = v / d;
        }
        for (int64_t i = 0; i < j; ++i) a[size_t(i * n + j)] = 0;
    }
    return true;
}
// Upper U with H^-1 = U^T U, for the permuted, damped H (dense inverse via L^-1, then Cholesky).
std::vector<double> upper_chol_of_inverse(std::vector<double> hh, int64_t n) {
    if (!cholesky_lower(hh, n)) qFatal("naive cholesky");
    std::vector<double> li(static_cast<size_t>(n * n), 0.0);  // L^-1 (lower)
    for (int64_t c = 0; c < n; ++c)
        for (int64_t i = c; i < n; ++i) {
            double v = i == c ? 1.0 : 0.0;
            for (int64_t k = c; k < i; ++k) v -= hh[size_t(i * n + k)] * li[size_t(k * n + c)];
            li[size_t(i * n + c)] = v / hh[size_t(i * n + i)];
        }
    std::vector<double> inv(static_cast<size_t>(n * n), 0.0);  // L^-T L^-1
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double v = 0;
            for (int64_t k = std::max(i, j); k < n; ++k) v += li[size_t(k * n + i)] * li[size_t(k * n + j)];
            inv[size_t(i * n + j)] = v;
        }
    if (!cholesky_lower(inv, n)) qFatal("naive cholesky of inverse");
    std::vector<double> u(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) u[size_t(i * n + j)] = inv[size_t(j * n + i)];
    return u;
}
// EF symmetric/affine target without outliers; same block-start and code rule as documented.
std::vector<float> naive_gptq(const Synth& s, const EfLayout& l, bool act_order, double damp_pct, int steps) {
    const int64_t C = s.cols;
    std::vector<double> hd(s.h.begin(), s.h.end());
    std::vector<int64_t> perm(static_cast<size_t>(C)), pos(static_cast<size_t>(C));
    std::iota(perm.begin(), perm.end(), int64_t(0));
    if (act_order)
        std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return hd[size_t(a * C + a)] > hd[size_t(b * C + b)]; });
    for (int64_t p = 0; p < C; ++p) pos[size_t(perm[size_t(p)])] = p;
    std::vector<double> hp(static_cast<size_t>(C * C));
    double mean = 0;
    for (int64_t i = 0; i < C; ++i) {
        for (int64_t j = 0; j < C; ++j) hp[size_t(i * C + j)] = hd[size_t(perm[size_t(i)] * C + perm[size_t(j)])];
        mean += hp[size_t(i * C + i)] / double(C);
    }
    for (int64_t i = 0; i < C; ++i) hp[size_t(i * C + i)] += damp_pct / 100.0 * mean;
    const std::vector<double> u = upper_chol_of_inverse(hp, C);
    std::vector<float> out(s.w.size());
    const int B = l.block;
    for (int64_t r = 0; r < s.rows; ++r) {
        std::vector<double> w(static_cast<size_t>(C));  // permuted order
        for (int64_t p = 0; p < C; ++p) w[size_t(p)] = s.w[size_t(r * C + perm[size_t(p)])];
        std::vector<char> started(static_cast<size_t>(C / B), 0);
        std::vector<float> snap(static_cast<size_t>(C)), d(static_cast<size_t>(C / B)), m(static_cast<size_t>(C / B));
        std::vector<uint8_t> sc(static_cast<size_t>(C));
        for (int64_t i = 0; i < C; ++i) {
            const int64_t c = perm[size_t(i)], b = c / B;
            if (!started[size_t(b)]) {
                started[size_t(b)] = 1;
                std::vector<float> xb(static_cast<size_t>(B));
                for (int j = 0; j < B; ++j) xb[size_t(j)] = snap[size_t(b * B + j)] = float(w[size_t(pos[size_t(b * B + j)])]);
                uint8_t blk[4 + 256];
                ef_quantize_block(l, xb.data(), nullptr, steps, blk);
                uint16_t dh = 0, mh = 0;
                ef_read_block(l, blk, dh, mh, sc.data() + b * B);
                d[size_t(b)] = f16_to_f32(dh);
                m[size_t(b)] = f16_to_f32(mh);
            }
            const float x = float(w[size_t(i)]);
            int code = sc[size_t(c)];
            if (x != snap[size_t(c)]) {
                const int qmax = (1 << l.bits) - 1;
                const double id = d[size_t(b)] != 0 ? 1.0 / d[size_t(b)] : 0.0;
                const double v = l.affine ? (x - m[size_t(b)]) * id : x * id + double(1 << (l.bits - 1));
                code = int(std::clamp(std::nearbyint(v), 0.0, double(qmax)));
            }
            const float q = ef_decode(l, d[size_t(b)], m[size_t(b)], code);
            out[size_t(r * C + c)] = q;
            const double e = (w[size_t(i)] - q) / u[size_t(i * C + i)];
            for (int64_t j = i + 1; j < C; ++j) w[size_t(j)] -= e * u[size_t(i * C + j)];
        }
    }
    return out;
}

GptqOptions gopts(int bits, int block, bool affine, bool act_order, double outliers, int threads = 2) {
    GptqOptions o;
    o.ef.bits = bits;
    o.ef.block = block;
    o.ef.affine = affine;
    o.ef.outlier_fraction = outliers;
    o.ef.threads = threads;
    o.act_order = act_order;
    return o;
}

}  // namespace

class TestGptq : public QObject {
    Q_OBJECT
private slots:
    void hessian_accumulator();
    void beats_rtn_data();
    void beats_rtn();
    void diagonal_h_equals_rtn_data();
    void diagonal_h_equals_rtn();
    void matches_naive_reference_data();
    void matches_naive_reference();
    void dead_columns();
    void threads_do_not_change_result();
    void cancel();
    void bad_input_data();
    void bad_input();
};

void TestGptq::hessian_accumulator() {
    const int64_t C = 9, T1 = 20, T2 = 17;
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    std::vector<float> x(static_cast<size_t>((T1 + T2) * C));
    for (auto& v : x) v = nd(rng);
    HessianAccumulator acc(C);
    QVERIFY(acc.add(std::span<const float>(x).first(size_t(T1 * C)), T1).ok());
    QVERIFY(acc.add(std::span<const float>(x).subspan(size_t(T1 * C)), T2).ok());
    QCOMPARE(acc.count(), T1 + T2);
    auto h = acc.finish();
    QVERIFY(h.ok());
    for (int64_t i = 0; i < C; ++i)
        for (int64_t j = 0; j < C; ++j) {
            double ref = 0;
            for (int64_t t = 0; t < T1 + T2; ++t) ref += double(x[size_t(t * C + i)]) * x[size_t(t * C + j)];
            ref *= 2.0 / double(T1 + T2);
            QVERIFY2(std::fabs((*h)[size_t(i * C + j)] - ref) <= 1e-5 * (1 + std::fabs(ref)), qPrintable(QString("H[%1,%2]").arg(i).arg(j)));
        }
    // Bad input: wrong size, NaN, nothing added.
    QVERIFY(!acc.add(std::span<const float>(x).first(10), 2).ok());
    std::vector<float> bad(static_cast<size_t>(C), 1.0f);
    bad[3] = NAN;
    const auto st = acc.add(bad, 1);
    QVERIFY(!st.ok());
    QVERIFY(st.message().find("non-finite") != std::string::npos);
    QVERIFY(!HessianAccumulator(C).finish().ok());
}

void TestGptq::beats_rtn_data() {
    QTest::addColumn<int>("target");
    QTest::addColumn<int>("bits");
    QTest::addColumn<int>("block");
    QTest::addColumn<bool>("affine");
    QTest::addColumn<bool>("act_order");
    QTest::addColumn<double>("outliers");
    for (int bits : {3, 4})
        for (bool ao : {false, true})
            for (double p : {0.0, 0.005})
                QTest::addRow("ef%d_b128 act_order=%d p=%g", bits, int(ao), p) << int(GptqTarget::Ef) << bits << 128 << false << ao << p;
    QTest::addRow("ef3a_b64 act_order=1 p=0.005") << int(GptqTarget::Ef) << 3 << 64 << true << true << 0.005;
    QTest::addRow("ef2_b32") << int(GptqTarget::Ef) << 2 << 32 << false << false << 0.0;
    QTest::addRow("q4_0") << int(GptqTarget::Q4_0) << 4 << 32 << false << false << 0.0;
    QTest::addRow("q4_0 act_order") << int(GptqTarget::Q4_0) << 4 << 32 << false << true << 0.0;
    QTest::addRow("q8_0") << int(GptqTarget::Q8_0) << 8 << 32 << false << false << 0.0;
}

void TestGptq::beats_rtn() {
    QFETCH(int, target);
    QFETCH(int, bits);
    QFETCH(int, block);
    QFETCH(bool, affine);
    QFETCH(bool, act_order);
    QFETCH(double, outliers);
    static const Synth s = make_synth(96, 256, 1024, 42);
    GptqOptions o = gopts(bits, block, affine, act_order, outliers);
    o.target = GptqTarget(target);
    auto g = gptq_quantize_matrix("w", s.w, s.rows, s.cols, s.h, o);
    QVERIFY2(g.ok(), g.ok() ? "" : g.message().c_str());
    std::vector<float> rq;
    if (o.target == GptqTarget::Ef) {
        auto r = ef_quantize_matrix("w", s.w, s.rows, s.cols, o.ef);
        QVERIFY(r.ok());
        QCOMPARE(g->stats.bytes, r->stats.bytes);  // same layout and outlier count: same size
        QCOMPARE(g->stats.nnz, r->stats.nnz);
        rq = deq(*r);
    } else {
        rq = rtn_ggml(o.target, s.w);
    }
    const double eg = output_error(s, deq(*g)), er = output_error(s, rq);
    qInfo("%s: output error ||(W-Q)X^T||_F  GPTQ %.4f  RTN %.4f  ratio %.3f  (weight rmse GPTQ %.5f)",
          QTest::currentDataTag(), eg, er, eg / er, g->stats.rmse);
    QVERIFY2(std::isfinite(eg), "GPTQ output error is not finite");
    QVERIFY2(eg < 0.9 * er, qPrintable(QString("GPTQ %1 is not clearly below RTN %2").arg(eg).arg(er)));
}

void TestGptq::diagonal_h_equals_rtn_data() {
    QTest::addColumn<int>("target");
    QTest::addColumn<int>("bits");
    QTest::addColumn<int>("block");
    QTest::addColumn<bool>("affine");
    QTest::addColumn<bool>("identity");  // else a random positive diagonal
    QTest::addColumn<bool>("act_order");
    QTest::addColumn<double>("outliers");
    QTest::addColumn<bool>("saliency");
    for (int bits : {2, 3, 4, 5, 6, 8})
        QTest::addRow("I ef%d_b64", bits) << int(GptqTarget::Ef) << bits << 64 << false << true << false << 0.0 << false;
    QTest::addRow("I ef3a_b128 p=0.01") << int(GptqTarget::Ef) << 3 << 128 << true << true << false << 0.01 << false;
    QTest::addRow("I ef4_b32 p=0.005 act_order") << int(GptqTarget::Ef) << 4 << 32 << false << true << true << 0.005 << false;
    QTest::addRow("diag ef3_b128 act_order") << int(GptqTarget::Ef) << 3 << 128 << false << false << true << 0.0 << false;
    QTest::addRow("diag ef2a_b32 act_order p=0.02 saliency") << int(GptqTarget::Ef) << 2 << 32 << true << false << true << 0.02 << true;
    QTest::addRow("I q4_0") << int(GptqTarget::Q4_0) << 4 << 32 << false << true << false << 0.0 << false;
    QTest::addRow("diag q8_0 act_order") << int(GptqTarget::Q8_0) << 8 << 32 << false << false << true << 0.0 << false;
}

void TestGptq::diagonal_h_equals_rtn() {
    QFETCH(int, target);
    QFETCH(int, bits);
    QFETCH(int, block);
    QFETCH(bool, affine);
    QFETCH(bool, identity);
    QFETCH(bool, act_order);
    QFETCH(double, outliers);
    QFETCH(bool, saliency);
    const int64_t R = 40, C = 256;
    const Synth s = make_synth(R, C, 8, 7);  // only W is used
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> ud(0.1f, 5.0f);
    std::vector<float> h(static_cast<size_t>(C * C), 0.0f);
    for (int64_t i = 0; i < C; ++i) h[size_t(i * C + i)] = identity ? 1.0f : ud(rng);
    GptqOptions o = gopts(bits, block, affine, act_order, outliers);
    o.target = GptqTarget(target);
    if (saliency) o.ef.selection = OutlierSelection::Saliency;  // energy from H: H_cc / 2
    auto g = gptq_quantize_matrix("w", s.w, R, C, h, o);
    QVERIFY2(g.ok(), g.ok() ? "" : g.message().c_str());
    if (o.target == GptqTarget::Ef) {
        EfQuantOptions ro = o.ef;
        if (saliency) {
            ro.activation_energy.resize(size_t(C));
            for (int64_t c = 0; c < C; ++c) ro.activation_energy[size_t(c)] = 0.5f * h[size_t(c * C + c)];
        }
        auto r = ef_quantize_matrix("w", s.w, R, C, ro);
        QVERIFY(r.ok());
        QVERIFY2(same_bytes(g->blocks, r->blocks), "GPTQ blocks differ from RTN's with a diagonal Hessian");
        QCOMPARE(g->companions.size(), r->companions.size());
        if (outliers > 0) QVERIFY(!g->companions.empty());
        for (size_t i = 0; i < g->companions.size(); ++i) QVERIFY(same_bytes(g->companions[i], r->companions[i]));
        QCOMPARE(g->stats.rmse, r->stats.rmse);
    } else {
        std::vector<std::byte> ref;
        rtn_ggml(o.target, s.w, &ref);
        QCOMPARE(g->blocks.nbytes(), uint64_t(ref.size()));
        QVERIFY2(std::memcmp(g->blocks.data.data(), ref.data(), ref.size()) == 0, "GPTQ differs from ggml's reference quantizer");
    }
}

void TestGptq::matches_naive_reference_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<bool>("affine");
    QTest::addColumn<bool>("act_order");
    QTest::addColumn<int>("lazy");
    QTest::addRow("ef3 lazy 128") << 3 << false << false << 128;
    QTest::addRow("ef3 lazy 7 act_order") << 3 << false << true << 7;
    QTest::addRow("ef4a lazy 1 act_order") << 4 << true << true << 1;
    QTest::addRow("ef4 lazy 48 act_order") << 4 << false << true << 48;
    QTest::addRow("ef3 lazy 500 act_order") << 3 << false << true << 500;
}

// Our lazy-batched float GPTQ against the naive double one: float rounding may flip a few codes, and
// GPTQ carries a flip on, so the check is that almost all weights agree and the output errors match.
void TestGptq::matches_naive_reference() {
    QFETCH(int, bits);
    QFETCH(bool, affine);
    QFETCH(bool, act_order);
    QFETCH(int, lazy);
    static const Synth s = make_synth(24, 192, 512, 3);
    const EfLayout l{bits, 64, affine};
    GptqOptions o = gopts(bits, 64, affine, act_order, 0.0);
    o.lazy_batch = lazy;
    auto g = gptq_quantize_matrix("w", s.w, s.rows, s.cols, s.h, o);
    QVERIFY2(g.ok(), g.ok() ? "" : g.message().c_str());
    const std::vector<float> ours = deq(*g), ref = naive_gptq(s, l, act_order, o.damp_percent, o.ef.search_steps);
    int64_t same = 0;
    for (size_t i = 0; i < ours.size(); ++i) same += ours[i] == ref[i];
    const double agree = double(same) / double(ours.size());
    const double eo = output_error(s, ours), er = output_error(s, ref);
    qInfo("%s: %.2f%% of weights identical; output error ours %.5f naive %.5f", QTest::currentDataTag(), 100 * agree, eo, er);
    QVERIFY2(agree > 0.97, qPrintable(QString("only %1 of the weights match the naive GPTQ").arg(agree)));
    QVERIFY(std::fabs(eo - er) <= 0.02 * er);
}

void TestGptq::dead_columns() {
    const std::vector<int64_t> dead = {0, 5, 77, 130, 255};
    const Synth s = make_synth(48, 256, 1024, 9, dead);
    for (int64_t d : dead) QCOMPARE(s.h[size_t(d * 256 + d)], 0.0f);
    for (bool ao : {false, true}) {
        GptqOptions o = gopts(3, 128, false, ao, 0.005);
        auto g = gptq_quantize_matrix("w", s.w, s.rows, s.cols, s.h, o);
        QVERIFY2(g.ok(), g.ok() ? "" : g.message().c_str());
        const std::vector<float> q = deq(*g);
        for (int64_t r = 0; r < s.rows; ++r) {
            for (int64_t d : dead) QCOMPARE(q[size_t(r * s.cols + d)], 0.0f);  // W[:, dead] = 0 (symmetric: code 2^(k-1))
            for (int64_t c = 0; c < s.cols; ++c) QVERIFY(std::isfinite(q[size_t(r * s.cols + c)]));
        }
        auto r = ef_quantize_matrix("w", s.w, s.rows, s.cols, o.ef);
        QVERIFY(r.ok());
        QVERIFY(output_error(s, q) < output_error(s, deq(*r)));
    }
}

void TestGptq::threads_do_not_change_result() {
    static const Synth s = make_synth(100, 128, 256, 21);
    GptqOptions o = gopts(3, 64, false, true, 0.005, 1);
    auto a = gptq_quantize_matrix("w", s.w, s.rows, s.cols, s.h, o);
    o.ef.threads = 3;
    auto b = gptq_quantize_matrix("w", s.w, s.rows, s.cols, s.h, o);
    QVERIFY(a.ok() && b.ok());
    QVERIFY(same_bytes(a->blocks, b->blocks));
    for (size_t i = 0; i < a->companions.size(); ++i) QVERIFY(same_bytes(a->companions[i], b->companions[i]));
}

void TestGptq::cancel() {
    static const Synth s = make_synth(512, 128, 256, 4);
    GptqOptions o = gopts(4, 128, false, false, 0.0, 2);
    Progress* self = nullptr;
    double last = -1;
    Progress p([&](double f, const std::string&) {
        last = f;
        if (f > 0 && self) self->cancel();  // after the first finished rows
    });
    self = &p;
    auto g = gptq_quantize_matrix("w", s.w, s.rows, s.cols, s.h, o, p);
    QVERIFY(!g.ok());
    QVERIFY2(g.message().find("cancelled") != std::string::npos, g.message().c_str());
    QVERIFY(last < 1.0);
    Progress pre;
    pre.cancel();
    auto g2 = gptq_quantize_matrix("w", s.w, s.rows, s.cols, s.h, o, pre);
    QVERIFY(!g2.ok());
    QVERIFY(g2.message().find("cancelled") != std::string::npos);
}

void TestGptq::bad_input_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QString>("expect");
    QTest::newRow("H of the wrong size") << "hsize" << "Hessian";
    QTest::newRow("NaN in H") << "hnan" << "non-finite Hessian";
    QTest::newRow("inf in W") << "winf" << "non-finite weight";
    QTest::newRow("B does not divide C") << "block" << "does not divide";
    QTest::newRow("asymmetric H") << "asym" << "not symmetric";
    QTest::newRow("negative diagonal") << "negdiag" << "negative";
    QTest::newRow("outliers with Q4_0") << "q4out" << "outlier";
    QTest::newRow("lazy batch 0") << "lazy" << "lazy batch";
    QTest::newRow("dampening 150%") << "damp" << "dampening";
    QTest::newRow("singular H, no dampening") << "singular" << "not positive definite";
    QTest::newRow("importance weights") << "importance" << "importance";
    QTest::newRow("p = 6%") << "p" << "outside [0, 0.05]";
    QTest::newRow("W of the wrong size") << "wsize" << "weight values";
    QTest::newRow("bits 7") << "bits" << "k in {2, 3, 4, 5, 6, 8}";
}

void TestGptq::bad_input() {
    QFETCH(QString, kind);
    QFETCH(QString, expect);
    int64_t R = 8, C = 64;
    std::vector<float> w(static_cast<size_t>(R * C), 0.01f), h(static_cast<size_t>(C * C), 0.0f);
    for (int64_t i = 0; i < C; ++i) h[size_t(i * C + i)] = 1.0f;
    GptqOptions o = gopts(3, 32, false, false, 0.0);
    const std::string k = kind.toStdString();
    if (k == "hsize") h.resize(size_t((C - 1) * (C - 1)));
    if (k == "hnan") h[5] = NAN;
    if (k == "winf") w[17] = INFINITY;
    if (k == "block") o.ef.block = 128;
    if (k == "asym") h[1] = 0.5f;
    if (k == "negdiag") h[size_t(3 * C + 3)] = -1.0f;
    if (k == "q4out") { o.target = GptqTarget::Q4_0; o.ef.outlier_fraction = 0.01; }
    if (k == "lazy") o.lazy_batch = 0;
    if (k == "damp") o.damp_percent = 150;
    if (k == "singular") {  // columns 0 and 1 always equal: rank-deficient, no dead column
        h[0] = h[1] = h[size_t(C)] = h[size_t(C + 1)] = 1.0f;
        o.damp_percent = 0;
    }
    if (k == "importance") o.ef.importance.assign(size_t(C), 1.0f);
    if (k == "p") o.ef.outlier_fraction = 0.06;
    if (k == "wsize") w.pop_back();
    if (k == "bits") o.ef.bits = 7;
    auto g = gptq_quantize_matrix("blk.0.ffn_up.weight", w, R, C, h, o);
    QVERIFY(!g.ok());
    qInfo("%s", g.message().c_str());
    QVERIFY2(g.message().find(expect.toStdString()) != std::string::npos, g.message().c_str());
    QVERIFY(g.message().find("blk.0.ffn_up.weight") != std::string::npos);
}

QTEST_GUILESS_MAIN(TestGptq)
#include "test_gptq.moc"
