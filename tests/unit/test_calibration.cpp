// Calibration (runtime/calib/calibration.h) and the model-level quantizer (quant/quantize_model.h)
// on small synthetic models:
//  - the first layer's first projection multiplies rmsnorm(embedding) * attn_norm, so its E[x_c^2]
//    and Hessian (2/N) sum x x^T are computed here independently (double precision, straight from
//    the tensors and the windowing rule) and compared with what calibration collected;
//  - q/k/v and gate/up share one input; every input saw every token;
//  - the projection observer sees the same rows in the decode path and the batched path, and a
//    session with an observer computes the same logits as one without;
//  - too-short text, cancellation, the text split;
//  - quantize_model: imatrix bytes are quantize_rows' bytes with the energies as importance (ggml's
//    own bytes for those are checked in test_ggml_importance), fallback rules, strict errors naming
//    the tensor, kept tensors, bad options.
#include <QtTest>

#include <cmath>
#include <map>
#include <random>

#include "core/synth.h"
#include "quant/ggml_importance.h"
#include "quant/quantize_model.h"
#include "runtime/calib/calibration.h"
#include "runtime/observer.h"
#include "runtime/session.h"

using namespace ef;

namespace {

Model synth(const std::string& arch, int64_t dim = 64, int64_t layers = 2, uint64_t seed = 7) {
    SynthOptions so;
    so.arch = arch;
    so.dim = dim;
    so.n_layers = layers;
    so.vocab = 300;
    so.context_length = 64;
    so.seed = seed;
    auto m = synth_model(so);
    if (!m) qFatal("synth %s: %s", arch.c_str(), m.message().c_str());
    return std::move(*m);
}

std::vector<int32_t> random_tokens(size_t n, int32_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> d(3, vocab - 1);
    std::vector<int32_t> t(n);
    for (auto& v : t) v = d(rng);
    return t;
}

std::vector<float> f32(const Model& m, const std::string& name) {
    const Tensor* t = m.find(name);
    if (!t) qFatal("missing %s", name.c_str());
    auto v = t->to_f32();
    if (!v) qFatal("%s", v.message().c_str());
    return std::move(*v);
}

// Records every projection's rows per weight.
struct Recorder final : rt::ProjectionObserver {
    std::map<std::string, std::vector<float>> rows;
    std::map<std::string, int64_t> count;
    void on_projection(const std::string& w, std::span<const float> x, int64_t T) override {
        rows[w].insert(rows[w].end(), x.begin(), x.end());
        count[w] += T;
    }
};

}  // namespace

class TestCalibration : public QObject {
    Q_OBJECT

private slots:
    void firstLayerStatistics_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("first");  // the first layer's first projection (input: normed embedding)
        QTest::addColumn<int>("n_ctx");
        QTest::addColumn<int>("tokens");
        QTest::newRow("llama, full windows") << "llama" << "blk.0.attn_q.weight" << 32 << 96;
        QTest::newRow("llama, short last window") << "llama" << "blk.0.attn_q.weight" << 16 << 40;
        QTest::newRow("mamba") << "mamba" << "blk.0.ssm_in.weight" << 24 << 48;
        QTest::newRow("mamba2") << "mamba2" << "blk.0.ssm_in.weight" << 32 << 64;
    }
    void firstLayerStatistics() {
        QFETCH(QString, arch);
        QFETCH(QString, first);
        QFETCH(int, n_ctx);
        QFETCH(int, tokens);
        const Model m = synth(arch.toStdString());
        const auto ids = random_tokens(size_t(tokens) + 10, int32_t(m.config.vocab_size), 11);
        const int32_t bos = 1;
        CalibrationOptions o;
        o.tokens = tokens;
        o.n_ctx = n_ctx;
        o.hessian = true;
        auto r = calibrate_tokens(m, ids, bos, o);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        QCOMPARE(r->tokens, int64_t(tokens));
        QCOMPARE(r->windows, (tokens + n_ctx - 1) / n_ctx);
        QVERIFY(r->warning.empty());

        // Independent: x_t = rmsnorm(embedding row of token t) * attn_norm, with each window's first token BOS.
        const int64_t D = m.config.dim;
        const auto emb = f32(m, "token_embd.weight"), norm = f32(m, "blk.0.attn_norm.weight");
        std::vector<double> e(size_t(D), 0.0), H(size_t(D * D), 0.0);
        std::vector<double> x(static_cast<size_t>(D));
        for (int t = 0; t < tokens; ++t) {
            const int32_t tok = t % n_ctx == 0 ? bos : ids[size_t(t)];
            double ss = 0;
            for (int64_t c = 0; c < D; ++c) {
                const double v = double(emb[size_t(tok * D + c)]) * m.config.embedding_scale;
                x[size_t(c)] = v;
                ss += v * v;
            }
            const double inv = 1.0 / std::sqrt(ss / double(D) + double(m.config.norm_eps));
            for (int64_t c = 0; c < D; ++c) x[size_t(c)] *= inv * double(norm[size_t(c)]);
            for (int64_t a = 0; a < D; ++a) {
                e[size_t(a)] += x[size_t(a)] * x[size_t(a)];
                for (int64_t b = 0; b < D; ++b) H[size_t(a * D + b)] += x[size_t(a)] * x[size_t(b)];
            }
        }
        const ActivationStats::Input* in = r->stats.find(first.toStdString());
        QVERIFY(in);
        QCOMPARE(in->rows, int64_t(tokens));
        QCOMPARE(in->cols, D);
        QCOMPARE(int64_t(in->energy.size()), D);
        QCOMPARE(int64_t(in->hessian.size()), D * D);
        double hmax = 0;
        for (double v : H) hmax = std::max(hmax, std::abs(2.0 * v / tokens));
        for (int64_t c = 0; c < D; ++c) {
            const double want = e[size_t(c)] / tokens;
            QVERIFY2(std::abs(in->energy[size_t(c)] - want) <= 1e-4 * want + 1e-9,
                     qPrintable(QString("E[x^2] col %1: %2 vs %3").arg(c).arg(in->energy[size_t(c)]).arg(want)));
        }
        for (int64_t i = 0; i < D * D; ++i) {
            const double want = 2.0 * H[size_t(i)] / tokens;
            QVERIFY2(std::abs(in->hessian[size_t(i)] - want) <= 1e-4 * hmax,
                     qPrintable(QString("H[%1]: %2 vs %3").arg(i).arg(in->hessian[size_t(i)]).arg(want)));
        }
        // Every input saw every token; shared inputs are shared.
        for (const auto& inp : r->stats.inputs) QCOMPARE(inp.rows, int64_t(tokens));
        if (arch == "llama") {
            const auto* q = r->stats.find("blk.1.attn_q.weight");
            QVERIFY(q && q == r->stats.find("blk.1.attn_k.weight") && q == r->stats.find("blk.1.attn_v.weight"));
            QVERIFY(q != r->stats.find("blk.1.attn_output.weight"));
            const auto* g = r->stats.find("blk.0.ffn_gate.weight");
            QVERIFY(g && g == r->stats.find("blk.0.ffn_up.weight") && g != r->stats.find("blk.0.ffn_down.weight"));
            QCOMPARE(int(r->stats.inputs.size()), 4 * int(m.layers.size()));
            QCOMPARE(int(q->weights.size()), 3);
        }
        QVERIFY(!r->stats.find("output.weight"));  // the head is not collected by default
    }

    void observerDecodeAndBatch_data() {
        QTest::addColumn<QString>("arch");
        for (const char* a : {"llama", "mamba", "mamba2", "jamba", "edgefusion"}) QTest::newRow(a) << a;
    }
    void observerDecodeAndBatch() {
        QFETCH(QString, arch);
        const Model m = synth(arch.toStdString());
        const auto ids = random_tokens(20, int32_t(m.config.vocab_size), 5);
        Recorder dec, bat;
        SessionOptions so;
        so.observer = &dec;
        auto s1 = Session::create(m, so);
        QVERIFY(s1.ok());
        std::vector<float> last;
        for (int32_t t : ids) {
            auto l = s1->eval(t);
            QVERIFY(l.ok());
            last = *l;
        }
        so.observer = &bat;
        auto s2 = Session::create(m, so);
        QVERIFY(s2.ok());
        auto all = s2->eval_batch(ids, true);
        QVERIFY(all.ok());
        QVERIFY(!dec.rows.empty());
        QCOMPARE(dec.count.size(), bat.count.size());
        for (const auto& [name, n] : dec.count) {
            QVERIFY2(bat.count.count(name), name.c_str());
            QCOMPARE(bat.count[name], n);
            QCOMPARE(n, int64_t(ids.size()));
            const auto &a = dec.rows[name], &b = bat.rows[name];
            QCOMPARE(a.size(), b.size());
            double mx = 0, err = 0;
            for (size_t i = 0; i < a.size(); ++i) {
                mx = std::max(mx, double(std::abs(a[i])));
                err = std::max(err, double(std::abs(a[i] - b[i])));
            }
            QVERIFY2(err <= 1e-3 * mx + 1e-6, qPrintable(QString("%1: %2 of %3").arg(name.c_str()).arg(err).arg(mx)));
        }
        // No observer: the very same logits (the hook changes nothing).
        auto s3 = Session::create(m, SessionOptions{});
        QVERIFY(s3.ok());
        auto plain = s3->eval_batch(ids, true);
        QVERIFY(plain.ok());
        QVERIFY(*plain == *all);
    }

    void badInput() {
        const Model m = synth("llama");
        const auto ids = random_tokens(40, int32_t(m.config.vocab_size), 3);
        CalibrationOptions o;
        o.n_ctx = 32;
        o.tokens = 1000;
        auto few = calibrate_tokens(m, std::span(ids).first(10), 1, o);
        QVERIFY(!few.ok());
        QVERIFY2(few.message().find("too short") != std::string::npos, few.message().c_str());
        auto warn = calibrate_tokens(m, ids, 1, o);  // 40 < 1000 but a full window: all used, with a warning
        QVERIFY(warn.ok());
        QCOMPARE(warn->tokens, int64_t(40));
        QVERIFY(!warn->warning.empty());
        o.n_ctx = 1000;
        auto big = calibrate_tokens(m, ids, 1, o);
        QVERIFY(!big.ok());
        QVERIFY2(big.message().find("context length") != std::string::npos, big.message().c_str());
        o.n_ctx = 16;
        Progress p;
        p.cancel();
        auto c = calibrate_tokens(m, ids, 1, o, p);
        QVERIFY(!c.ok());
        QCOMPARE(QString::fromStdString(c.message()), QString("cancelled"));
    }

    void textSplit_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("calib");
        QTest::newRow("10 lines") << "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n" << "9\n";
        QTest::newRow("20 lines, no final newline") << "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\np\nq\nr\ns\nt" << "s\nt";
        QTest::newRow("one line") << "only" << "only";
    }
    void textSplit() {
        QFETCH(QString, text);
        QFETCH(QString, calib);
        const std::string s = text.toStdString();
        const TextSplit sp = split_calibration_text(s);
        QCOMPARE(QString::fromStdString(std::string(sp.calib)), calib);
        QCOMPARE(std::string(sp.eval) + std::string(sp.calib), s);
    }

    // quantize_model with the statistics of a calibration run.
    void quantizeModelImatrix_data() {
        QTest::addColumn<QString>("type");
        for (const char* t : {"q4_K", "q3_K", "q2_K", "q6_K", "q4_0", "q8_0"}) QTest::newRow(t) << t;
    }
    void quantizeModelImatrix() {
        QFETCH(QString, type);
        const Model m = synth("llama", 256, 1);
        const auto ids = random_tokens(64, int32_t(m.config.vocab_size), 9);
        CalibrationOptions co;
        co.n_ctx = 32;
        co.tokens = 64;
        auto cal = calibrate_tokens(m, ids, 1, co);
        QVERIFY(cal.ok());
        ModelQuantOptions o;
        o.ggml_type = *dtype_from_name(type.toStdString());
        o.method = QuantMethod::Imatrix;
        o.threads = 2;
        ModelQuantReport rep;
        auto q = quantize_model(m, o, &cal->stats, &rep);
        QVERIFY2(q.ok(), q.ok() ? "" : q.message().c_str());
        for (const char* name : {"blk.0.attn_q.weight", "blk.0.ffn_down.weight"}) {
            const Tensor* t = q->find(name);
            QVERIFY(t);
            QCOMPARE(t->dtype, o.ggml_type);
            const auto w = f32(m, name);
            std::vector<std::byte> want(t->nbytes());
            const auto* in = cal->stats.find(name);
            QVERIFY(in);
            QVERIFY(ggml::quantize_rows(t->dtype, w.data(), want.data(), t->rows(), t->row_length(), in->energy.data()).ok());
            QVERIFY(std::equal(want.begin(), want.end(), t->data.begin()));
        }
        // Kept by default: embeddings, output, norms.
        for (const char* name : {"token_embd.weight", "output.weight", "blk.0.attn_norm.weight", "output_norm.weight"})
            if (const Tensor* t = m.find(name)) QCOMPARE(q->find(name)->dtype, t->dtype);
        QCOMPARE(rep.fallbacks, 0);
        QVERIFY(rep.quantized_params > 0 && rep.params == m.parameter_count());
    }

    void quantizeModelRules() {
        const Model m = synth("llama", 64, 1);  // rows of 64 (and ffn_down's of ffn_hidden)
        ModelQuantOptions o;
        o.ggml_type = DType::Q4_K;
        ModelQuantReport rep;
        auto q = quantize_model(m, o, nullptr, &rep);
        QVERIFY(q.ok());
        QCOMPARE(q->find("blk.0.attn_q.weight")->dtype, DType::Q5_0);  // llama.cpp: q4_K -> q5_0
        QVERIFY(rep.fallbacks > 0);
        o.allow_fallback = false;
        auto strict = quantize_model(m, o, nullptr);
        QVERIFY(!strict.ok());
        QVERIFY2(strict.message().find("blk.0.attn_q.weight") != std::string::npos, strict.message().c_str());
        // EF: block 128 does not divide 64 -> 64 with the fallback, an error naming the tensor without.
        o = {};
        o.ef_format = true;
        o.ef.bits = 4;
        o.ef.block = 128;
        auto ef = quantize_model(m, o, nullptr);
        QVERIFY(ef.ok());
        QCOMPARE(ef->find("blk.0.attn_q.weight")->dtype, *ef_dtype(4, 64, false));
        o.allow_fallback = false;
        auto bad = quantize_model(m, o, nullptr);
        QVERIFY(!bad.ok());
        QVERIFY2(bad.message().find("blk.0.attn_q.weight") != std::string::npos, bad.message().c_str());
        // Keep globs; outliers outside [0, 5%]; imatrix and gptq without statistics.
        o = {};
        o.keep = {"*ffn_*"};
        auto kept = quantize_model(m, o, nullptr);
        QVERIFY(kept.ok());
        QCOMPARE(kept->find("blk.0.ffn_up.weight")->dtype, DType::F32);
        QCOMPARE(kept->find("blk.0.attn_v.weight")->dtype, DType::Q8_0);
        o = {};
        o.ef_format = true;
        o.ef.block = 32;
        o.ef.outlier_fraction = 0.06;
        QVERIFY(!quantize_model(m, o, nullptr).ok());
        o = {};
        o.method = QuantMethod::Imatrix;
        QVERIFY(!quantize_model(m, o, nullptr).ok());
        const auto ids = random_tokens(32, int32_t(m.config.vocab_size), 2);
        CalibrationOptions co;
        co.n_ctx = 32;
        co.tokens = 32;
        auto cal = calibrate_tokens(m, ids, 1, co);
        QVERIFY(cal.ok());
        o.method = QuantMethod::Gptq;
        auto g = quantize_model(m, o, &cal->stats);
        QVERIFY(!g.ok());
        QVERIFY2(g.message().find("Hessian") != std::string::npos, g.message().c_str());
        o.ggml_type = DType::Q4_K;
        QVERIFY(!quantize_model(m, o, &cal->stats).ok());  // GPTQ makes EF, q4_0, q8_0 only
    }

    void globs_data() {
        QTest::addColumn<QString>("pattern");
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("match");
        QTest::newRow("star") << "*ffn_*" << "blk.0.ffn_up.weight" << true;
        QTest::newRow("exact") << "output.weight" << "output.weight" << true;
        QTest::newRow("question") << "blk.?.attn_q.weight" << "blk.3.attn_q.weight" << true;
        QTest::newRow("question too short") << "blk.?.attn_q.weight" << "blk.12.attn_q.weight" << false;
        QTest::newRow("no match") << "*attn_k*" << "blk.0.attn_q.weight" << false;
        QTest::newRow("two stars") << "blk.*.ffn_*.weight" << "blk.10.ffn_down.weight" << true;
    }
    void globs() {
        QFETCH(QString, pattern);
        QFETCH(QString, name);
        QFETCH(bool, match);
        QCOMPARE(glob_match(pattern.toStdString(), name.toStdString()), match);
    }
};

QTEST_GUILESS_MAIN(TestCalibration)
#include "test_calibration.moc"
