// The matvec kernels (runtime/kernels): every SIMD kernel against its scalar twin on random
// data, every scalar kernel against the dequantize-and-sum-in-double reference (which rests on
// quant/'s dequantizers, themselves checked against ggml), matvec's fast path against its
// reference path on real-size matrices, and the CPU detection against /proc/cpuinfo.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "quant/dtype.h"
#include "quant/ggml_blocks.h"
#include "quant/half.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/kernels.h"
#include "runtime/ops.h"
#include "runtime/kernels/kernel_check.h"
#include "runtime/thread_pool.h"

using namespace ef;
namespace K = ef::rt::kernels;

Q_DECLARE_METATYPE(ef::DType)
Q_DECLARE_METATYPE(ef::rt::kernels::Isa)

namespace {

using K::is_kquant;
using K::random_floats;
using K::random_row;
using K::reference_dot;
using RefDot = K::ReferenceDot;

std::vector<uint8_t> act_for(DType t, const std::vector<float>& x) {
    const K::KernelTraits* kt = K::kernel_traits(t);
    std::vector<uint8_t> a(K::act_bytes(kt->act, int64_t(x.size())));
    K::quantize_act(kt->act, x.data(), a.data(), int64_t(x.size()));
    return a;
}

QString describe(double got, double want, double scale) {
    return QStringLiteral("got %1, expected %2 (error %3 of sum|w*x| %4)")
        .arg(got, 0, 'g', 10).arg(want, 0, 'g', 10).arg(std::fabs(got - want), 0, 'g', 3).arg(scale, 0, 'g', 4);
}

}  // namespace

class TestKernels : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        qInfo("CPU features: %s", rt::cpu_features_string(rt::cpu_features()).c_str());
        for (DType t : K::kernel_types()) {
            const K::KernelTraits* kt = K::kernel_traits(t);
            QVERIFY2(kt, dtype_name(t).data());
            qInfo("%-5s best kernel: %s", dtype_name(t).data(), K::isa_name(kt->best_isa).data());
        }
    }

    void cpu_features_match_proc_cpuinfo() {
#if defined(__x86_64__) && defined(__linux__)
        std::ifstream in("/proc/cpuinfo");
        std::string line;
        std::set<std::string> flags;
        while (std::getline(in, line))
            if (line.rfind("flags", 0) == 0) {
                std::istringstream ss(line.substr(line.find(':') + 1));
                for (std::string f; ss >> f;) flags.insert(f);
                break;
            }
        if (flags.empty()) QSKIP("/proc/cpuinfo has no flags line");
        // The kernel lists a flag only when the OS also enables its register state.
        const rt::CpuFeatures& f = rt::cpu_features();
        QCOMPARE(f.avx2, flags.count("avx2") == 1);
        QCOMPARE(f.fma, flags.count("fma") == 1);
        QCOMPARE(f.f16c, flags.count("f16c") == 1);
        QCOMPARE(f.avx512f, flags.count("avx512f") == 1);
        QCOMPARE(f.avx512bw, flags.count("avx512bw") == 1);
        QCOMPARE(f.avx512vl, flags.count("avx512vl") == 1);
#else
        QSKIP("checked against /proc/cpuinfo on x86-64 Linux only");
#endif
    }

    // The kernel set: every kernel type has a kernel for each SIMD ISA of this
    // architecture (AVX2 and AVX-512 on x86-64, NEON on aarch64), so none silently falls back.
    void every_type_has_simd_kernels() {
#if defined(__x86_64__)
        const K::Isa isas[] = {K::Isa::Avx2, K::Isa::Avx512};
#elif defined(__aarch64__)
        const K::Isa isas[] = {K::Isa::Neon};
#else
        QSKIP("no SIMD kernels on this architecture");
        const K::Isa isas[] = {K::Isa::Scalar};
#endif
        for (DType t : K::kernel_types())
            for (K::Isa isa : isas)
                QVERIFY2(K::vec_dot_for(t, isa), qPrintable(QStringLiteral("no %1 kernel for %2")
                                                                .arg(K::isa_name(isa).data(), dtype_name(t).data())));
    }

    // Rows type x ISA: every SIMD kernel of this build.
    void simd_equals_scalar_data() {
        QTest::addColumn<DType>("type");
        QTest::addColumn<K::Isa>("isa");
        for (K::Isa isa : {K::Isa::Avx2, K::Isa::Avx512, K::Isa::Neon})
            for (DType t : K::kernel_types())
                if (K::vec_dot_for(t, isa))
                    QTest::addRow("%s/%s", dtype_name(t).data(), K::isa_name(isa).data()) << t << isa;
    }
    void simd_equals_scalar() {
        QFETCH(DType, type);
        QFETCH(K::Isa, isa);
        if (!K::isa_available(isa))
            QSKIP(qPrintable(QStringLiteral("this CPU lacks %1 (has: %2)")
                                 .arg(K::isa_name(isa).data(), rt::cpu_features_string(rt::cpu_features()).c_str())));
        const K::VecDotFn simd = K::vec_dot_for(type, isa);
        const K::VecDotFn ref = K::kernel_traits(type)->scalar;
        std::mt19937 rng(1234 + int(type));
        // Lengths: one block, odd block counts, real row sizes; float types also get ragged tails.
        std::vector<int64_t> lengths = {256, 768, 4096, 11008};
        if (!type_traits(type).quantized) lengths.insert(lengths.end(), {1, 7, 33, 1000});
        else if (!is_kquant(type)) lengths.insert(lengths.end(), {32, 96});
        std::erase_if(lengths, [&](int64_t n) { return n % type_traits(type).block_size != 0; });
        for (int64_t n : lengths)
            for (int trial = 0; trial < 8; ++trial) {
                const auto row = random_row(rng, type, n, trial % 2 == 1);
                const auto x = random_floats(rng, n, trial < 4 ? 1.0f : 30.0f);
                const auto a = act_for(type, x);
                const float got = simd(n, row.data(), a.data());
                const float want = ref(n, row.data(), a.data());
                if (is_kquant(type)) {
                    // Exact integer sums per super-block, then the same float steps: bitwise equal.
                    QVERIFY2(got == want, qPrintable(QStringLiteral("n %1 trial %2: ").arg(n).arg(trial) + describe(got, want, 0)));
                    continue;
                }
                const RefDot r = reference_dot(type, row, x);
                QVERIFY2(std::fabs(double(got) - double(want)) <= 1e-5 * (r.absdot + std::fabs(double(want))),
                         qPrintable(QStringLiteral("n %1 trial %2: ").arg(n).arg(trial) + describe(got, want, r.absdot)));
            }
    }

    // The scalar kernels (integer dot products on the packed blocks) against dequantizing the
    // row with quant/'s reference and summing in double with ops.h's activation rounding.
    void scalar_equals_dequantized_reference_data() {
        QTest::addColumn<DType>("type");
        for (DType t : K::kernel_types()) QTest::addRow("%s", dtype_name(t).data()) << t;
    }
    void scalar_equals_dequantized_reference() {
        QFETCH(DType, type);
        const K::VecDotFn ref = K::kernel_traits(type)->scalar;
        std::mt19937 rng(99 + int(type));
        for (int64_t n : {256, 4096})
            for (int trial = 0; trial < 8; ++trial) {
                const auto row = random_row(rng, type, n, trial % 2 == 1);
                const auto x = random_floats(rng, n, 2.0f);
                const float got = ref(n, row.data(), act_for(type, x).data());
                const RefDot r = reference_dot(type, row, x);
                QVERIFY2(std::fabs(double(got) - r.dot) <= 1e-5 * r.absdot,
                         qPrintable(QStringLiteral("n %1 trial %2: ").arg(n).arg(trial) + describe(got, r.dot, r.absdot)));
            }
    }

    // rt::matvec: Fast (best SIMD) and Scalar against Reference on real-size matrices, and the
    // same y bit for bit whatever the thread count.
    void matvec_fast_equals_reference_data() {
        QTest::addColumn<DType>("type");
        for (DType t : K::kernel_types()) QTest::addRow("%s", dtype_name(t).data()) << t;
    }
    void matvec_fast_equals_reference() {
        QFETCH(DType, type);
        const int64_t rows = 512, cols = 2048;
        std::mt19937 rng(7 + int(type));
        const auto wf = random_floats(rng, rows * cols, 0.05f);
        auto w = Tensor::from_f32("w", {rows, cols}, wf, type);
        QVERIFY(w.ok());
        const auto x = random_floats(rng, cols, 1.0f);
        auto run = [&](rt::Kernels k, rt::ThreadPool* pool) {
            std::vector<float> y(static_cast<size_t>(rows));
            const Status s = rt::matvec(y, *w, x, rt::MatvecOptions{rt::ActRounding::Ggml, k, pool});
            if (!s) qFatal("matvec: %s", s.error().message.c_str());
            return y;
        };
        const auto ref = run(rt::Kernels::Reference, nullptr);
        const auto fast = run(rt::Kernels::Fast, nullptr);
        const auto scal = run(rt::Kernels::Scalar, nullptr);
        // Per-row scale sum_j |w_j x_j| from the dequantized weights and rounded activations.
        const std::vector<float> xr = rt::round_activations(type, x);
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
            QVERIFY(rt::tensor_row(row, *w, r).ok());
            double absdot = 0;
            for (int64_t j = 0; j < cols; ++j) absdot += std::fabs(double(row[size_t(j)]) * double(xr[size_t(j)]));
            const double tol = 1e-5 * absdot;
            QVERIFY2(std::fabs(double(fast[size_t(r)]) - double(ref[size_t(r)])) <= tol,
                     qPrintable(QStringLiteral("row %1 fast: ").arg(r) + describe(fast[size_t(r)], ref[size_t(r)], absdot)));
            QVERIFY2(std::fabs(double(scal[size_t(r)]) - double(ref[size_t(r)])) <= tol,
                     qPrintable(QStringLiteral("row %1 scalar: ").arg(r) + describe(scal[size_t(r)], ref[size_t(r)], absdot)));
        }
        for (int threads : {2, 3, 4}) {
            rt::ThreadPool pool(threads);
            pool.set_adaptive(false);  // always split (the matrix is above ops.cpp's threshold)
            const auto yt = run(rt::Kernels::Fast, &pool);
            QVERIFY2(std::memcmp(yt.data(), fast.data(), fast.size() * sizeof(float)) == 0,
                     qPrintable(QStringLiteral("%1 threads changed the result").arg(threads)));
            const auto yr = run(rt::Kernels::Reference, &pool);
            QVERIFY(std::memcmp(yr.data(), ref.data(), ref.size() * sizeof(float)) == 0);
        }
    }

    // Weight types without kernels and Exact rounding still take the reference path.
    void matvec_falls_back_to_reference() {
        std::mt19937 rng(5);
        const auto wf = random_floats(rng, 4 * 64, 1.0f);
        const auto x = random_floats(rng, 64, 1.0f);
        for (DType t : {DType::Q4_1, DType::Q5_0, DType::F16}) {
            auto w = Tensor::from_f32("w", {4, 64}, wf, t);
            QVERIFY(w.ok());
            for (rt::ActRounding r : {rt::ActRounding::Exact, rt::ActRounding::Ggml}) {
                if (t == DType::F16 && r == rt::ActRounding::Ggml) continue;  // F16 has a kernel
                std::vector<float> a(4), b(4);
                QVERIFY(rt::matvec(a, *w, x, rt::MatvecOptions{r, rt::Kernels::Fast, nullptr}).ok());
                QVERIFY(rt::matvec(b, *w, x, rt::MatvecOptions{r, rt::Kernels::Reference, nullptr}).ok());
                QVERIFY(std::memcmp(a.data(), b.data(), sizeof(float) * 4) == 0);
            }
        }
    }
};

QTEST_GUILESS_MAIN(TestKernels)
#include "test_kernels.moc"
