// GEMM kernels (runtime/kernels/gemm.h) and rt::matmul: every tiled kernel this CPU runs against
// the scalar GEMM (loops of the scalar vec_dot) on random operands with odd shapes (T not a
// multiple of the token tile, rows not a multiple of the row tile, block-count tails), the scalar
// GEMM against an independent double-precision dot, and matmul against T separate matvecs.
#include <QtTest>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "quant/half.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/kernel_check.h"
#include "runtime/kernels/kernels.h"
#include "runtime/matmul.h"
#include "runtime/ops.h"
#include "runtime/thread_pool.h"

using namespace ef;
namespace K = ef::rt::kernels;

namespace {

struct Operands {
    DType type;
    int64_t n, rows, T;
    size_t wrb, arb;
    std::vector<std::byte> w;     // rows x wrb
    std::vector<float> x;         // T x n
    std::vector<uint8_t> a;       // T x arb, in the act type
};

Operands make(DType type, int64_t n, int64_t rows, int64_t T, uint32_t seed) {
    std::mt19937 rng(seed);
    const TypeTraits& tt = type_traits(type);
    const K::KernelTraits* kt = K::kernel_traits(type);
    Operands o{type, n, rows, T, size_t(n / tt.block_size * tt.type_size), K::act_bytes(kt->act, n), {}, {}, {}};
    for (int64_t r = 0; r < rows; ++r) {
        const auto row = K::random_row(rng, type, n, r % 3 == 1);  // every third row raw random blocks
        o.w.insert(o.w.end(), row.begin(), row.end());
    }
    for (int64_t t = 0; t < T; ++t) {
        const auto v = K::random_floats(rng, n, t % 2 ? 30.0f : 1.0f);
        o.x.insert(o.x.end(), v.begin(), v.end());
    }
    o.a.resize(o.arb * size_t(T));
    for (int64_t t = 0; t < T; ++t) K::quantize_act(kt->act, o.x.data() + t * n, o.a.data() + size_t(t) * o.arb, n);
    return o;
}

// y: (T, ldy) with ldy = rows + 3; the 3 padding columns keep a sentinel.
constexpr float kSentinel = -12345.0f;
std::vector<float> run(K::GemmFn fn, const Operands& o) {
    const int64_t ldy = o.rows + 3;
    std::vector<float> y(size_t(o.T * ldy), kSentinel);
    fn(o.n, o.rows, o.T, o.w.data(), o.wrb, o.a.data(), o.arb, y.data(), ldy);
    return y;
}

std::vector<int64_t> lengths(DType t) {
    const int64_t bs = type_traits(t).block_size;
    if (bs == 1) return {1, 7, 16, 33, 100, 1024};
    if (bs == 32) return {32, 96, 1024};
    return {256, 768};
}

}  // namespace

class TestGemm : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        QVERIFY(K::gemm_traits(DType::Q8_0));
        qInfo("gemm best: Q8_0 %s, F16 %s, F32 %s", K::gemm_isa_name(K::gemm_traits(DType::Q8_0)->best_isa).data(),
              K::gemm_isa_name(K::gemm_traits(DType::F16)->best_isa).data(),
              K::gemm_isa_name(K::gemm_traits(DType::F32)->best_isa).data());
    }

    void kernel_vs_scalar_data() {
        QTest::addColumn<int>("type");
        QTest::addColumn<int>("isa");
        QTest::addColumn<int>("T");
        int rows_added = 0;
        for (DType t : K::kernel_types())
            for (int i = int(K::GemmIsa::Generic); i < int(K::GemmIsa::Count); ++i) {
                const auto isa = K::GemmIsa(i);
                if (!K::gemm_for(t, isa) || !K::gemm_isa_available(isa)) continue;
                for (int T : {1, 3, 7, 16, 33}) {
                    QTest::addRow("%s/%s/T%d", dtype_name(t).data(), K::gemm_isa_name(isa).data(), T) << int(t) << i << T;
                    ++rows_added;
                }
            }
        QVERIFY(rows_added > 0);
    }

    // Integer-block types sum exactly per block; only the float accumulation order differs, so
    // every kernel must equal the scalar GEMM within 1e-5 of sum |w * a| (k-quant generic: bitwise).
    void kernel_vs_scalar() {
        QFETCH(int, type);
        QFETCH(int, isa);
        QFETCH(int, T);
        const DType t = DType(type);
        const K::GemmFn fn = K::gemm_for(t, K::GemmIsa(isa));
        const K::GemmFn ref = K::gemm_traits(t)->scalar;
        for (int64_t rows : {1, 5, 17, 45})
            for (int64_t n : lengths(t)) {
                const Operands o = make(t, n, rows, T, uint32_t(type * 1000 + T * 10 + rows + n));
                const std::vector<float> got = run(fn, o), want = run(ref, o);
                const int64_t ldy = rows + 3;
                for (int64_t tt = 0; tt < T; ++tt) {
                    const std::span<const float> x(o.x.data() + tt * n, size_t(n));
                    for (int64_t r = 0; r < ldy; ++r) {
                        const float g = got[size_t(tt * ldy + r)], w = want[size_t(tt * ldy + r)];
                        if (r >= rows) {
                            QCOMPARE(g, kSentinel);  // nothing written past `rows`
                            continue;
                        }
                        const std::span<const std::byte> wrow(o.w.data() + size_t(r) * o.wrb, o.wrb);
                        const double scale = K::reference_dot(t, wrow, x).absdot + std::fabs(double(w));
                        if (!(std::fabs(double(g) - double(w)) <= 1e-5 * scale))
                            QFAIL(qPrintable(QString("n %1 rows %2: y[%3][%4] = %5, scalar %6 (scale %7)")
                                                 .arg(n).arg(rows).arg(tt).arg(r).arg(double(g), 0, 'g', 9)
                                                 .arg(double(w), 0, 'g', 9).arg(scale)));
                    }
                }
            }
    }

    // The f32-activation kernels (activations rounded by round_act_f32) against the scalar GEMM
    // on act-type rows, with the same tolerance and shapes as kernel_vs_scalar.
    void f32act_vs_scalar() {
        int checked = 0;
        for (DType t : {DType::F32, DType::F16, DType::BF16}) {
            const K::GemmTraits* gt = K::gemm_traits(t);
            if (!gt || !gt->f32act) continue;
            for (int64_t T : {1, 5, 8, 19})
                for (int64_t rows : {1, 16, 47, 49, 100})
                    for (int64_t n : lengths(t)) {
                        const Operands o = make(t, n, rows, T, uint32_t(int(t) * 77 + T * 13 + rows + n));
                        std::vector<float> af(size_t(T * n));
                        K::round_act_f32(gt->act, o.x.data(), af.data(), T * n);
                        const int64_t ldy = rows + 3;
                        std::vector<float> got(size_t(T * ldy), kSentinel);
                        gt->f32act(n, rows, T, o.w.data(), o.wrb, af.data(), size_t(n) * sizeof(float), got.data(), ldy);
                        const std::vector<float> want = run(gt->scalar, o);
                        for (int64_t tt = 0; tt < T; ++tt)
                            for (int64_t r = 0; r < ldy; ++r) {
                                const float g = got[size_t(tt * ldy + r)], w = want[size_t(tt * ldy + r)];
                                if (r >= rows) {
                                    QCOMPARE(g, kSentinel);
                                    continue;
                                }
                                const std::span<const std::byte> wrow(o.w.data() + size_t(r) * o.wrb, o.wrb);
                                const std::span<const float> x(o.x.data() + tt * n, size_t(n));
                                const double scale = K::reference_dot(t, wrow, x).absdot + std::fabs(double(w));
                                if (!(std::fabs(double(g) - double(w)) <= 1e-5 * scale))
                                    QFAIL(qPrintable(QString("%1 T %2 n %3 rows %4: y[%5][%6] = %7, scalar %8")
                                                         .arg(dtype_name(t).data()).arg(T).arg(n).arg(rows).arg(tt).arg(r)
                                                         .arg(double(g), 0, 'g', 9).arg(double(w), 0, 'g', 9)));
                            }
                        ++checked;
                    }
        }
        if (checked == 0) QSKIP("no f32-activation GEMM on this CPU");
    }

    // round_act_f32 = quantize_act into F16/BF16 and back, bit for bit (NaN stays NaN), on
    // rounding ties, subnormals, overflow and random values.
    void round_act_f32_exact() {
        std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.0f, 65520.0f, -1e30f, 1e-8f, -3e-6f, 6.1e-5f,
                                5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-40f, std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()};
        for (uint32_t bits : {0x3f801000u, 0x3f803000u, 0x3f808000u, 0x3f818000u, 0x7f7f8000u, 0x00008000u, 0x387fe000u})
            x.push_back(std::bit_cast<float>(bits));  // f16 / bf16 halfway cases
        std::mt19937 rng(5);
        for (int i = 0; i < 997; ++i) x.push_back(std::bit_cast<float>(uint32_t(rng())));
        for (DType act : {DType::F16, DType::BF16}) {
            std::vector<float> got(x.size());
            K::round_act_f32(act, x.data(), got.data(), int64_t(x.size()));
            std::vector<uint16_t> q(x.size());
            K::quantize_act(act, x.data(), q.data(), int64_t(x.size()));
            for (size_t i = 0; i < x.size(); ++i) {
                const float want = act == DType::F16 ? f16_to_f32(q[i]) : bf16_to_f32(q[i]);
                const bool same = std::isnan(want) ? std::isnan(got[i]) : std::bit_cast<uint32_t>(got[i]) == std::bit_cast<uint32_t>(want);
                if (!same)
                    QFAIL(qPrintable(QString("%1: x %2 (0x%3) -> %4, quantize_act %5").arg(dtype_name(act).data())
                                         .arg(double(x[i]), 0, 'g', 9).arg(std::bit_cast<uint32_t>(x[i]), 8, 16, QChar('0'))
                                         .arg(double(got[i]), 0, 'g', 9).arg(double(want), 0, 'g', 9)));
            }
        }
    }

    // The scalar GEMM itself against an independent double-precision dot of the dequantized rows.
    void scalar_vs_reference() {
        for (DType t : K::kernel_types()) {
            const int64_t n = lengths(t).back();
            const Operands o = make(t, n, 9, 5, 77 + uint32_t(t));
            const std::vector<float> y = run(K::gemm_traits(t)->scalar, o);
            for (int64_t tt = 0; tt < o.T; ++tt)
                for (int64_t r = 0; r < o.rows; ++r) {
                    const std::span<const std::byte> wrow(o.w.data() + size_t(r) * o.wrb, o.wrb);
                    const K::ReferenceDot d = K::reference_dot(t, wrow, std::span<const float>(o.x.data() + tt * n, size_t(n)));
                    const double err = std::fabs(double(y[size_t(tt * (o.rows + 3) + r)]) - d.dot);
                    if (!(err <= 1e-5 * (d.absdot + 1e-30)))
                        QFAIL(qPrintable(QString("%1: y[%2][%3] off by %4 (sum |w*a| %5)").arg(dtype_name(t).data()).arg(tt).arg(r).arg(err).arg(d.absdot)));
                }
        }
    }

    void matmul_vs_matvec_data() {
        QTest::addColumn<int>("type");
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("threads");
        for (DType t : K::kernel_types())
            for (int T : {1, 3, 7, 16, 33})
                for (int threads : {1, 2}) QTest::addRow("%s/T%d/%dt", dtype_name(t).data(), T, threads) << int(t) << T << threads;
    }

    // matmul over T rows against T matvecs: Fast within float reordering, Scalar and Reference
    // bit for bit (the same per-row code). Row slices and thread splits must not change results.
    void matmul_vs_matvec() {
        QFETCH(int, type);
        QFETCH(int, T);
        QFETCH(int, threads);
        const DType t = DType(type);
        const int64_t n = lengths(t).back(), rows = 150;
        const Operands o = make(t, n, rows, T, 4242 + uint32_t(type * 7 + T));
        auto w = Tensor::from_bytes("w", t, {rows, n}, o.w);
        QVERIFY2(w.ok(), w.ok() ? "" : w.message().c_str());
        rt::ThreadPool pool(threads);
        for (rt::Kernels k : {rt::Kernels::Fast, rt::Kernels::Scalar, rt::Kernels::Reference})
            for (auto [row0, nr] : {std::pair<int64_t, int64_t>{0, rows}, {7, 133}}) {
                const rt::MatvecOptions opt{rt::ActRounding::Ggml, k, &pool};
                std::vector<float> y(size_t(T * nr), kSentinel);
                std::vector<float> yv(static_cast<size_t>(nr));
                const Status s = rt::matmul(y, *w, o.x, T, opt, row0, nr);
                QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
                for (int64_t tt = 0; tt < T; ++tt) {
                    const std::span<const float> x(o.x.data() + tt * n, size_t(n));
                    QVERIFY(rt::matvec(yv, *w, x, opt, row0, nr).ok());
                    for (int64_t r = 0; r < nr; ++r) {
                        const float g = y[size_t(tt * nr + r)], v = yv[size_t(r)];
                        bool ok = g == v;
                        double scale = 0;
                        if (!ok && k == rt::Kernels::Fast) {
                            const std::span<const std::byte> wrow(o.w.data() + size_t(row0 + r) * o.wrb, o.wrb);
                            scale = K::reference_dot(t, wrow, x).absdot + std::fabs(double(v));
                            ok = std::fabs(double(g) - double(v)) <= 1e-5 * scale;
                        }
                        if (!ok)
                            QFAIL(qPrintable(QString("kernels %1 rows [%2,+%3): y[%4][%5] = %6, matvec %7 (scale %8)")
                                                 .arg(int(k)).arg(row0).arg(nr).arg(tt).arg(r).arg(double(g), 0, 'g', 9)
                                                 .arg(double(v), 0, 'g', 9).arg(scale)));
                    }
                }
            }
    }

    // A prefill-sized product (split across 2 threads without the pool's timing) against matvec.
    void matmul_big_split() {
        for (DType t : {DType::F16, DType::Q8_0, DType::BF16}) {
            const int64_t n = 1024, rows = 300, T = 64;
            const Operands o = make(t, n, rows, T, 99 + uint32_t(t));
            auto w = Tensor::from_bytes("w", t, {rows, n}, o.w);
            QVERIFY(w.ok());
            rt::ThreadPool pool(2);
            const rt::MatvecOptions opt{rt::ActRounding::Ggml, rt::Kernels::Fast, &pool};
            std::vector<float> y(size_t(T * rows)), yv(static_cast<size_t>(rows));
            QVERIFY(rt::matmul(y, *w, o.x, T, opt).ok());
            QVERIFY(pool.split_jobs() >= 1);
            QCOMPARE(pool.solo_jobs(), int64_t(0));
            for (int64_t tt = 0; tt < T; ++tt) {
                const std::span<const float> x(o.x.data() + tt * n, size_t(n));
                QVERIFY(rt::matvec(yv, *w, x, opt).ok());
                for (int64_t r = 0; r < rows; ++r) {
                    const std::span<const std::byte> wrow(o.w.data() + size_t(r) * o.wrb, o.wrb);
                    const double scale = K::reference_dot(t, wrow, x).absdot + std::fabs(double(yv[size_t(r)]));
                    if (!(std::fabs(double(y[size_t(tt * rows + r)]) - double(yv[size_t(r)])) <= 1e-5 * scale))
                        QFAIL(qPrintable(QString("%1: y[%2][%3] = %4, matvec %5").arg(dtype_name(t).data()).arg(tt).arg(r)
                                             .arg(double(y[size_t(tt * rows + r)]), 0, 'g', 9).arg(double(yv[size_t(r)]), 0, 'g', 9)));
                }
            }
        }
    }

    void matmul_errors() {
        auto w = Tensor::from_f32("w", {4, 32}, std::vector<float>(128, 0.5f), DType::Q8_0);
        QVERIFY(w.ok());
        std::vector<float> x(3 * 32, 1.0f), y(3 * 4);
        QVERIFY(rt::matmul(y, *w, x, 3, {}).ok());
        QVERIFY(std::fabs(y[5] - 16.0f) < 0.01f);  // 32 x 0.5 x 1, up to the f16 scale of 0.5 / 127
        QVERIFY(!rt::matmul(y, *w, std::span<const float>(x).first(95), 3, {}).ok());
        QVERIFY(!rt::matmul(y, *w, x, 2, {}).ok());
        QVERIFY(!rt::matmul(std::span<float>(y).first(6), *w, x, 3, {}, 3, 2).ok());  // rows past the end
    }
};

QTEST_APPLESS_MAIN(TestGemm)
#include "test_gemm.moc"
