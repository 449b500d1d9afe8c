// EdgeFusion-format models in the runtime (issue 4): the 48 block types' vec_dot kernels (every
// SIMD kernel against its scalar twin, every scalar kernel against a double-precision dot over
// quant/'s dequantizer), the sparse correction S x against quant/'s reference, and whole models:
// an EF-quantized llama / mamba2 against a twin whose weights are the dense dequant(Q) + S
// matrices (decode and batched), without its companions (must differ), and after a GGUF round trip.
#include <QtTest>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "core/ef_tensors.h"
#include "core/formats/format.h"
#include "core/synth.h"
#include "quant/ef_format.h"
#include "quant/ef_quantize.h"
#include "quant/half.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/kernel_check.h"
#include "runtime/kernels/kernels.h"
#include "runtime/matmul.h"
#include "runtime/outliers.h"
#include "runtime/session.h"

using namespace ef;
namespace K = ef::rt::kernels;

Q_DECLARE_METATYPE(ef::DType)

namespace {

std::vector<uint8_t> act_for(DType t, const std::vector<float>& x) {
    const K::KernelTraits* kt = K::kernel_traits(t);
    std::vector<uint8_t> a(K::act_bytes(kt->act, int64_t(x.size())));
    K::quantize_act(kt->act, x.data(), a.data(), int64_t(x.size()));
    return a;
}

// A random CSR outlier matrix (R, C) with about `density` of its entries set; owns its bytes.
struct RandomOutliers {
    std::vector<int32_t> rowptr;
    std::vector<uint16_t> col, scale;
    std::vector<uint8_t> vals;
    EfOutlierView view;
    RandomOutliers(std::mt19937& rng, int64_t R, int64_t C, double density) {
        std::bernoulli_distribution keep(density);
        std::uniform_int_distribution<int> v6(-31, 31);
        std::vector<int8_t> v;
        rowptr.push_back(0);
        for (int64_t r = 0; r < R; ++r) {
            for (int64_t c = 0; c < C; ++c)
                if (keep(rng)) {
                    col.push_back(uint16_t(c));
                    v.push_back(int8_t(v6(rng)));
                }
            rowptr.push_back(int32_t(col.size()));
            scale.push_back(f32_to_f16(std::uniform_real_distribution<float>(0.001f, 0.05f)(rng)));
        }
        vals.assign(size_t(ef_packed6_bytes(int64_t(v.size()))), 0);
        ef_pack6(v.data(), int64_t(v.size()), vals.data());
        view = EfOutlierView{R, C, int64_t(col.size()), rowptr.data(), col.data(), vals.data(), scale.data()};
    }
};

Model synth(const std::string& arch) {
    SynthOptions o;
    o.arch = arch;
    o.dim = 128;
    o.n_layers = 2;
    o.vocab = 320;
    o.seed = 7;
    auto m = synth_model(o);
    if (!m) qFatal("synth %s: %s", arch.c_str(), m.error().message.c_str());
    return std::move(*m);
}

Model ef_quantized(const Model& m) {
    EfModelQuantOptions o;
    o.tensor.bits = 4;
    o.tensor.block = 64;
    o.tensor.outlier_fraction = 0.005;
    auto q = ef_quantize_model(m, o);
    if (!q) qFatal("ef_quantize_model: %s", q.error().message.c_str());
    return std::move(*q);
}

// The same model with every EF weight replaced by its dense F32 dequant(Q) + S; no companions.
Model dense_twin(const Model& q) {
    Model t = q;
    t.tensors.clear();
    for (const Tensor& w : q.tensors) {
        if (ef_companion_base(w.name)) continue;
        if (!is_ef_dtype(w.dtype)) {
            t.add(w);
            continue;
        }
        auto view = ef_outlier_view(w.name, w.rows(), w.row_length(), ef_find_companions(q, w.name));
        if (!view) qFatal("%s", view.error().message.c_str());
        auto dense = ef_dequantize_matrix(w, *view);
        if (!dense) qFatal("%s", dense.error().message.c_str());
        auto f = Tensor::from_f32(w.name, w.shape, *dense);
        if (!f) qFatal("%s", f.error().message.c_str());
        t.add(std::move(*f));
    }
    return t;
}

Model without_companions(const Model& q) {
    Model t = q;
    t.tensors.clear();
    for (const Tensor& w : q.tensors)
        if (!ef_companion_base(w.name)) t.add(w);
    return t;
}

const std::vector<int32_t> kTokens = {1, 17, 260, 45, 300, 9, 128, 77, 5, 311};

// Logits after every token: eval loop (batched = false) or one eval_batch with all logits.
std::vector<float> run(const Model& m, rt::ActRounding rounding, bool batched, rt::Kernels kernels = rt::Kernels::Fast) {
    SessionOptions so;
    so.rounding = rounding;
    so.kernels = kernels;
    auto s = Session::create(m, so);
    if (!s) qFatal("Session::create: %s", s.error().message.c_str());
    if (batched) {
        auto l = s->eval_batch(kTokens, true);
        if (!l) qFatal("eval_batch: %s", l.error().message.c_str());
        return *l;
    }
    std::vector<float> all;
    for (int32_t t : kTokens) {
        auto l = s->eval(t);
        if (!l) qFatal("eval: %s", l.error().message.c_str());
        all.insert(all.end(), l->begin(), l->end());
    }
    return all;
}

// max |a - b| relative to max |b|.
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0, s = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
        s = std::max(s, std::fabs(double(b[i])));
    }
    return d / std::max(s, 1e-30);
}

}  // namespace

class TestEfRuntime : public QObject {
    Q_OBJECT
private slots:
    void every_ef_type_has_kernels() {
        for (int i = 0; i < kEfTypeCount; ++i) {
            const DType t = DType(int(DType::EF_FIRST) + i);
            const K::KernelTraits* kt = K::kernel_traits(t);
            QVERIFY2(kt && kt->act == DType::Q8_0, dtype_name(t).data());
            QVERIFY2(K::gemm_traits(t), dtype_name(t).data());
#if defined(__x86_64__)
            QVERIFY(K::vec_dot_for(t, K::Isa::Avx2) && K::vec_dot_for(t, K::Isa::Avx512));
#elif defined(__aarch64__)
            QVERIFY(K::vec_dot_for(t, K::Isa::Neon));
#endif
        }
    }

    // (a) all 48 types: the scalar kernel against the double reference over the dequantized row;
    // every SIMD kernel of this build against the scalar one.
    void kernels_data() {
        QTest::addColumn<DType>("type");
        for (int i = 0; i < kEfTypeCount; ++i) {
            const DType t = DType(int(DType::EF_FIRST) + i);
            QTest::addRow("%s", dtype_name(t).data()) << t;
        }
    }
    void kernels() {
        QFETCH(DType, type);
        const K::VecDotFn ref = K::kernel_traits(type)->scalar;
        std::mt19937 rng(4242 + int(type));
        for (int64_t n : {256, 768, 4096})
            for (int trial = 0; trial < 6; ++trial) {
                const auto row = K::random_row(rng, type, n, trial % 2 == 1);
                const auto x = K::random_floats(rng, n, trial < 3 ? 1.0f : 20.0f);
                const auto a = act_for(type, x);
                const float want = ref(n, row.data(), a.data());
                const K::ReferenceDot r = K::reference_dot(type, row, x);
                QVERIFY2(std::fabs(double(want) - r.dot) <= 1e-5 * r.absdot,
                         qPrintable(QStringLiteral("scalar n %1 trial %2: %3 vs %4 (scale %5)")
                                        .arg(n).arg(trial).arg(double(want), 0, 'g', 9).arg(r.dot, 0, 'g', 9).arg(r.absdot)));
                for (K::Isa isa : {K::Isa::Avx2, K::Isa::Avx512, K::Isa::Neon}) {
                    const K::VecDotFn f = K::vec_dot_for(type, isa);
                    if (!f || !K::isa_available(isa)) continue;
                    const float got = f(n, row.data(), a.data());
                    QVERIFY2(std::fabs(double(got) - double(want)) <= 1e-5 * (r.absdot + std::fabs(double(want))),
                             qPrintable(QStringLiteral("%1 n %2 trial %3: %4 vs scalar %5")
                                            .arg(K::isa_name(isa).data()).arg(n).arg(trial)
                                            .arg(double(got), 0, 'g', 9).arg(double(want), 0, 'g', 9)));
                }
            }
    }

    // (b) the correction: matvec form bitwise equal to quant/'s reference; the batched form equals
    // it token by token; the row form equals the dense S.
    void apply_outliers_matches_reference() {
        std::mt19937 rng(11);
        for (const auto& [R, C, dens] : {std::tuple{1, 32, 0.5}, std::tuple{37, 300, 0.01}, std::tuple{256, 1024, 0.005},
                                         std::tuple{64, 65536, 0.0005}}) {
            RandomOutliers s(rng, R, C, dens);
            QVERIFY(!ef_check_outliers(s.view));
            const int64_t T = 5;
            const auto x = K::random_floats(rng, T * C, 1.0f);
            const auto y0 = K::random_floats(rng, T * R, 1.0f);
            std::vector<float> want = y0, got = y0, batch = y0;
            for (int64_t t = 0; t < T; ++t) {
                sparse_outliers_apply(want.data() + t * R, s.view, x.data() + t * C);
                rt::apply_outliers(std::span<float>(got.data() + t * R, size_t(R)), s.view,
                                   std::span<const float>(x.data() + t * C, size_t(C)));
            }
            rt::apply_outliers_batch(batch, s.view, x, T);
            QVERIFY(std::memcmp(want.data(), got.data(), want.size() * 4) == 0);
            QVERIFY(std::memcmp(want.data(), batch.data(), want.size() * 4) == 0);
            if (int64_t(R) * C <= 300000) {
                std::vector<float> dense(size_t(R * C), 0.0f);
                sparse_outliers_add_dense(dense.data(), s.view);
                for (int64_t r = 0; r < R; ++r) {
                    std::vector<float> row(size_t(C), 0.0f);
                    rt::apply_outliers_row(row, s.view, r);
                    QVERIFY(std::memcmp(row.data(), dense.data() + r * C, size_t(C) * 4) == 0);
                }
            }
        }
    }

    // matvec / matmul of an EF weight plus the correction against the dense dequant(Q) + S matrix.
    void project_matches_dense() {
        std::mt19937 rng(5);
        const int64_t R = 96, C = 512, T = 6;
        const auto wf = K::random_floats(rng, R * C, 0.5f);
        EfQuantOptions o;
        o.bits = 3;
        o.block = 128;
        o.outlier_fraction = 0.01;
        auto q = ef_quantize_matrix("w", wf, R, C, o);
        QVERIFY2(q, q ? "" : q.error().message.c_str());
        QVERIFY(q->stats.nnz > 0);
        auto dense = ef_dequantize_matrix(*q);
        QVERIFY(dense);
        const rt::Weight w{&q->blocks, q->outliers()};
        const auto x = K::random_floats(rng, T * C, 1.0f);
        std::vector<float> y(size_t(T * R)), yb(size_t(T * R));
        QVERIFY(rt::project(yb, w, x, T, rt::MatvecOptions{}));
        for (int64_t t = 0; t < T; ++t) {
            const std::span<const float> xt(x.data() + t * C, size_t(C));
            QVERIFY(rt::project(std::span<float>(y.data() + t * R, size_t(R)), w, xt, rt::MatvecOptions{}));
            for (int64_t r = 0; r < R; ++r) {
                double want = 0, scale = 0;
                for (int64_t c = 0; c < C; ++c) {
                    want += double((*dense)[size_t(r * C + c)]) * x[size_t(t * C + c)];
                    scale += std::fabs(double((*dense)[size_t(r * C + c)]) * x[size_t(t * C + c)]);
                }
                // Q8_0 rounding of the activations (relative 1/254 per value) bounds the difference.
                const double tol = scale / 200.0 + 1e-6;
                QVERIFY2(std::fabs(y[size_t(t * R + r)] - want) <= tol,
                         qPrintable(QStringLiteral("t %1 r %2: %3 vs %4").arg(t).arg(r).arg(y[size_t(t * R + r)]).arg(want)));
                QVERIFY(std::fabs(yb[size_t(t * R + r)] - y[size_t(t * R + r)]) <= 1e-5 * scale + 1e-7);
            }
        }
    }

    // (c) whole models: EF (Fast kernels, Ggml rounding) against the dense twin (Exact rounding).
    void model_matches_dense_twin_data() {
        QTest::addColumn<QString>("arch");
        QTest::newRow("llama") << "llama";
        QTest::newRow("mamba2") << "mamba2";
    }
    void model_matches_dense_twin() {
        QFETCH(QString, arch);
        const Model base = synth(arch.toStdString());
        const Model q = ef_quantized(base);
        const EfModelBits bits = ef_model_bits(q);
        QVERIFY(!bits.tensors.empty());
        int64_t nnz = 0;
        for (const auto& t : bits.tensors) nnz += t.nnz;
        QVERIFY(nnz > 0);
        const Model twin = dense_twin(q), bare = without_companions(q);
        const auto want = run(twin, rt::ActRounding::Exact, false);
        // The plumbing alone: with exact activations and the reference matvec (dequantized rows in
        // double) the EF model is the twin up to float summation order.
        const double dref = rel_diff(run(q, rt::ActRounding::Exact, false, rt::Kernels::Reference), want);
        qInfo("%s reference / exact: %.3g", qPrintable(arch), dref);
        QVERIFY2(dref < 1e-4, qPrintable(QStringLiteral("relative difference %1").arg(dref)));
        for (bool batched : {false, true}) {
            const auto got = run(q, rt::ActRounding::Ggml, batched);
            QCOMPARE(got.size(), want.size());
            const double d = rel_diff(got, want);
            qInfo("%s %s: max |EF - dense twin| / max |logit| = %.3g", qPrintable(arch), batched ? "batched" : "decode", d);
            QVERIFY2(d < 0.05, qPrintable(QStringLiteral("relative difference %1").arg(d)));
            // Without its companions the model must be further from the twin: the correction runs.
            const auto nocorr = run(bare, rt::ActRounding::Ggml, batched);
            const double dn = rel_diff(nocorr, want);
            qInfo("  without companions: %.3g", dn);
            QVERIFY2(dn > 2 * d, qPrintable(QStringLiteral("without outliers %1, with %2").arg(dn).arg(d)));
        }
        // Decode and batched agree closely with each other (same kernels, same rounding).
        QVERIFY(rel_diff(run(q, rt::ActRounding::Ggml, true), run(q, rt::ActRounding::Ggml, false)) < 1e-3);
    }

    // (d) the native GGUF (writer, reader) keeps the EF blocks and companions: same logits.
    void gguf_round_trip_runs() {
        const Model q = ef_quantized(synth("llama"));
        const std::string path = (std::filesystem::temp_directory_path() /
                                  ("ef_runtime_" + std::to_string(QCoreApplication::applicationPid()) + ".gguf")).string();
        QVERIFY(save_model(q, path));
        auto back = load_model(path);
        // EF_TEST_KEEP_GGUF=FILE keeps the file (for a by-hand `edgefusion-run generate` smoke run).
        if (const char* keep = std::getenv("EF_TEST_KEEP_GGUF")) std::filesystem::copy_file(path, keep, std::filesystem::copy_options::overwrite_existing);
        std::filesystem::remove(path);
        QVERIFY2(back, back ? "" : back.error().message.c_str());
        QVERIFY(ef_model_bits(*back).tensors.size() == ef_model_bits(q).tensors.size());
        const auto a = run(q, rt::ActRounding::Ggml, false), b = run(*back, rt::ActRounding::Ggml, false);
        QVERIFY(a == b);
    }

    void broken_companion_is_an_error() {
        Model q = ef_quantized(synth("llama"));
        std::erase_if(q.tensors, [](const Tensor& t) { return t.name == "blk.0.attn_q.weight.outlier_scale"; });
        if (!ef_find_companions(q, "blk.0.attn_q.weight").any()) QSKIP("attn_q has no outliers");
        auto s = Session::create(q, {});
        QVERIFY(!s);
        QVERIFY2(s.error().message.find("outlier_scale") != std::string::npos, s.error().message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestEfRuntime)
#include "test_ef_runtime.moc"
