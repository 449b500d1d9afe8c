// TrainModel (core/train/train_model.h) and hybridize (core/train/hybridize.h).
//  - forward_logits against the runtime (the inference reference: Session::eval_batch, all logits,
//    soft routing, reference kernels, exact activations) within 1e-4: synth llama (GQA, tied and
//    untied), synth edgefusion with a Mamba-2 and with a Mamba-1 branch, and stories260K.
//  - Whole-model gradients against finite differences of the loss (float forward: central differences
//    at h = 8e-3 and 4e-3 combined by Richardson extrapolation; bound |numeric - analytic| <=
//    2e-2 * |analytic| + 2e-4): random
//    elements of every parameter of a tiny llama, edgefusion(Mamba-2) and edgefusion(Mamba-1),
//    B = 2 sequences, cross-entropy + router L1 (and KL to a teacher's logits for one row).
//  - 20 plain SGD steps on one repeated sequence lower the LM loss.
//  - Threads change no bit of the loss or gradients; a second forward_backward adds its gradients.
//  - freeze_base: every grad outside the SSM branches and router gates stays zero.
//  - to_model -> save_model (GGUF) -> load_model -> runtime gives forward_logits again.
//  - hybridize(stories260K): shapes follow the options, alpha large (g = 1) gives the dense model's
//    runtime logits, g = 0.5 does not (and TrainModel's forward of it equals the runtime's); x/B rows
//    of the SSM in_proj are copies of V/K; 15 SGD steps of KL distillation with the base frozen
//    lower the KL to the dense teacher; the hybrid saves and reloads as GGUF with the same logits.
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/formats/format.h"
#include "core/synth.h"
#include "core/train/hybridize.h"
#include "core/train/train_model.h"
#include "runtime/session.h"
#include "runtime/thread_pool.h"
#include "tests/support/test_support.h"

using namespace ef;
namespace tr = ef::train;

namespace {

Result<std::vector<float>> runtime_logits(const Model& m, std::span<const int32_t> tokens) {
    SessionOptions o;
    o.routing = Routing::Soft;
    o.rounding = rt::ActRounding::Exact;
    o.kernels = rt::Kernels::Reference;
    auto s = Session::create(m, o);
    if (!s) return s.error();
    return s->eval_batch(tokens, true);
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    float d = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::abs(a[i] - b[i]));
    return a.size() == b.size() ? d : INFINITY;
}

std::vector<int32_t> make_tokens(int64_t n, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& v : t) v = int32_t(rng() % uint32_t(vocab));
    return t;
}

SynthOptions synth(const std::string& kind, int64_t dim, int64_t vocab, uint64_t seed) {
    SynthOptions o;
    o.dim = dim;
    o.vocab = vocab;
    o.seed = seed;
    o.n_layers = 2;
    if (kind == "llama") {
        o.arch = "llama";
    } else if (kind == "llama_gqa_tied") {
        o.arch = "llama";
        o.n_heads = 4;
        o.n_kv_heads = 2;
        o.tied_embeddings = true;
    } else {
        o.arch = "edgefusion";
        o.ssm_version = kind == "edgefusion_m1" ? 1 : 2;
        o.n_heads = 4;
        o.n_kv_heads = 2;
        o.d_state = 8;
    }
    return o;
}

bool is_ssm_or_router(const std::string& n) {
    return n.find(".ssm_") != std::string::npos || n.find(".router_gate") != std::string::npos;
}

}  // namespace

class TestTrainModel : public QObject {
    Q_OBJECT

private slots:
    void forwardMatchesRuntime_data() {
        QTest::addColumn<QString>("kind");
        QTest::newRow("llama") << "llama";
        QTest::newRow("llama_gqa_tied") << "llama_gqa_tied";
        QTest::newRow("edgefusion_mamba2") << "edgefusion_m2";
        QTest::newRow("edgefusion_mamba1") << "edgefusion_m1";
    }
    void forwardMatchesRuntime() {
        QFETCH(QString, kind);
        auto m = synth_model(synth(kind.toStdString(), 64, 300, 7));
        QVERIFY2(m, m ? "" : m.message().c_str());
        auto tm = tr::TrainModel::from_model(*m);
        QVERIFY2(tm, tm ? "" : tm.message().c_str());
        const auto tokens = make_tokens(37, 300, 1);
        rt::ThreadPool pool(2);
        auto got = tm->forward_logits(tokens, &pool);
        QVERIFY2(got, got ? "" : got.message().c_str());
        auto want = runtime_logits(*m, tokens);
        QVERIFY2(want, want ? "" : want.message().c_str());
        const float d = max_abs_diff(*got, *want);
        qInfo("%s: max |train - runtime| logit = %.3g", qPrintable(kind), double(d));
        QVERIFY2(d <= 1e-4f, qPrintable(QString("max difference %1").arg(double(d))));
        if (kind.startsWith("edgefusion")) QCOMPARE(tm->gates().size(), size_t(2));
    }

    void forwardMatchesRuntimeStories260K() {
        EF_REQUIRE_SHARED(path, "models/stories260K.bin");
        auto m = load_model(path.toStdString());
        QVERIFY2(m, m ? "" : m.message().c_str());
        auto tm = tr::TrainModel::from_model(*m);
        QVERIFY2(tm, tm ? "" : tm.message().c_str());
        const auto tokens = make_tokens(64, m->config.vocab_size, 3);
        auto got = tm->forward_logits(tokens, nullptr);
        QVERIFY2(got, got ? "" : got.message().c_str());
        auto want = runtime_logits(*m, tokens);
        QVERIFY2(want, want ? "" : want.message().c_str());
        const float d = max_abs_diff(*got, *want);
        qInfo("stories260K: max |train - runtime| logit = %.3g", double(d));
        QVERIFY(d <= 1e-4f);
    }

    void unsupportedArchitecture() {
        SynthOptions o;
        o.arch = "mamba2";
        auto m = synth_model(o);
        QVERIFY(m);
        auto tm = tr::TrainModel::from_model(*m);
        QVERIFY(!tm);
        QVERIFY2(tm.message().find("mamba2") != std::string::npos, tm.message().c_str());
    }

    void gradientCheck_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<bool>("teacher");
        QTest::newRow("llama") << "llama" << false;
        QTest::newRow("llama_gqa_tied") << "llama_gqa_tied" << false;
        QTest::newRow("edgefusion_mamba2") << "edgefusion_m2" << false;
        QTest::newRow("edgefusion_mamba1") << "edgefusion_m1" << false;
        QTest::newRow("edgefusion_mamba2_kl") << "edgefusion_m2" << true;
    }
    void gradientCheck() {
        QFETCH(QString, kind);
        QFETCH(bool, teacher);
        SynthOptions so = synth(kind.toStdString(), 16, 264, 11);
        so.ffn_hidden = 24;
        if (kind.startsWith("edgefusion")) {
            so.n_heads = 2;
            so.n_kv_heads = 1;
            so.d_state = 4;
            so.d_inner = 32;
            if (kind == "edgefusion_m2") {
                so.ssm_heads = 4;
                so.ssm_groups = 2;
            } else {
                so.dt_rank = 4;
            }
        }
        auto m = synth_model(so);
        QVERIFY2(m, m ? "" : m.message().c_str());
        auto tmr = tr::TrainModel::from_model(*m);
        QVERIFY2(tmr, tmr ? "" : tmr.message().c_str());
        tr::TrainModel& tm = *tmr;
        // Synth weights are small; scale the non-SSM matrices up so every path carries signal (the
        // SSM's dt path is already steep: scaled, float differences stop resolving its curvature).
        for (auto& p : tm.params())
            if (p.shape.size() == 2 && !is_ssm_or_router(p.name))
                for (float& v : p.value) v *= 2.0f;
        const int64_t B = 2, T = 6, V = tm.config().vocab_size;
        const auto tokens = make_tokens(B * (T + 1), V, 5);
        std::vector<float> tl;
        tr::LossSpec loss;
        loss.lambda = 0.3f;
        loss.entropy = 0.25f;  // the gate-entropy term's gradient is checked with the rest
        if (teacher) {
            std::mt19937 rng(9);
            std::normal_distribution<float> nd(0.0f, 2.0f);
            tl.resize(size_t(B * T * V));
            for (float& v : tl) v = nd(rng);
            loss.teacher_logits = tl;
        }
        tm.zero_grad();
        auto r = tm.forward_backward(tokens, B, T, loss, nullptr);
        QVERIFY2(r, r ? "" : r.message().c_str());
        QVERIFY(std::isfinite(r->loss));
        if (tm.routed()) QVERIFY(r->router_loss > 0);
        double want_router = 0;  // sum_l lambda g + entropy H(g), H in bits, written out here
        for (float gf : tm.gates()) {
            const double g = gf;
            want_router += 0.3 * g - 0.25 * (g * std::log(g) + (1 - g) * std::log(1 - g)) / std::log(2.0);
        }
        QVERIFY2(std::abs(r->router_loss - want_router) < 1e-6, qPrintable(QString("router loss %1 vs %2").arg(r->router_loss).arg(want_router)));

        std::mt19937 rng(17);
        const float h = 8e-3f;
        int checked = 0, strong = 0;  // strong: |analytic| >= 10x the absolute slack, so a real test
        double worst = 0;
        std::string worst_name;
        for (auto& p : tm.params()) {
            const size_t n = p.value.size();
            for (int s = 0; s < 4; ++s) {
                const size_t i = n <= 4 ? size_t(s) % n : size_t(rng() % n);
                auto central = [&](float step) {  // (L(v + step) - L(v - step)) / (2 step)
                    const float v0 = p.value[i];
                    p.value[i] = v0 + step;
                    auto lp = tm.forward_loss(tokens, B, T, loss, nullptr);
                    p.value[i] = v0 - step;
                    auto lm = tm.forward_loss(tokens, B, T, loss, nullptr);
                    p.value[i] = v0;
                    return lp && lm ? (lp->loss - lm->loss) / (2.0 * double(step)) : NAN;
                };
                // Richardson: the h^2 error terms of the two steps cancel.
                const double num = (4.0 * central(h / 2) - central(h)) / 3.0;
                const double ana = p.grad[i];
                const double err = std::abs(num - ana), bound = 2e-2 * std::abs(ana) + 2e-4;
                if (err / bound > worst) {
                    worst = err / bound;
                    worst_name = p.name + "[" + std::to_string(i) + "] numeric " + std::to_string(num) + " analytic " +
                                 std::to_string(ana);
                }
                ++checked;
                strong += std::abs(ana) >= 2e-3;
            }
        }
        qInfo("%s%s: %d elements checked (%d with |grad| >= 2e-3), worst error/bound %.3g at %s", qPrintable(kind),
              teacher ? " (KL)" : "", checked, strong, worst, worst_name.c_str());
        QVERIFY(strong * 3 >= checked);
        QVERIFY2(worst <= 1.0, worst_name.c_str());
    }

    void sgdLowersLoss() {
        auto m = synth_model(synth("edgefusion_m2", 32, 280, 3));
        QVERIFY(m);
        auto tm = tr::TrainModel::from_model(*m);
        QVERIFY(tm);
        const int64_t T = 16;
        const auto tokens = make_tokens(T + 1, 280, 21);
        rt::ThreadPool pool(2);
        double first = 0, last = 0;
        for (int step = 0; step < 20; ++step) {
            tm->zero_grad();
            auto r = tm->forward_backward(tokens, 1, T, {}, &pool);
            QVERIFY2(r, r ? "" : r.message().c_str());
            if (step == 0) first = r->loss;
            last = r->loss;
            for (auto& p : tm->params())
                if (p.trainable)
                    for (size_t i = 0; i < p.value.size(); ++i) p.value[i] -= 0.5f * p.grad[i];
        }
        qInfo("LM loss %.4f -> %.4f over 20 SGD steps", first, last);
        QVERIFY(last < first - 1.0);
    }

    // The trainer relies on both: threads change nothing, and a second batch adds its gradients.
    void threadsAndAccumulation() {
        auto m = synth_model(synth("edgefusion_m2", 32, 280, 5));
        QVERIFY(m);
        auto a = tr::TrainModel::from_model(*m);
        QVERIFY(a);
        tr::TrainModel b = *a;
        const auto tokens = make_tokens(3 * 13, 280, 8);
        tr::LossSpec loss;
        loss.lambda = 0.2f;
        rt::ThreadPool pool(2);
        auto ra = a->forward_backward(tokens, 3, 12, loss, nullptr);
        auto rb = b.forward_backward(tokens, 3, 12, loss, &pool);
        QVERIFY(ra && rb);
        QCOMPARE(ra->loss, rb->loss);
        QCOMPARE(ra->positions, int64_t(36));
        for (size_t i = 0; i < a->params().size(); ++i) QVERIFY2(a->params()[i].grad == b.params()[i].grad, a->params()[i].name.c_str());
        auto again = a->forward_backward(tokens, 3, 12, loss, nullptr);
        QVERIFY(again);
        for (size_t i = 0; i < a->params().size(); ++i)
            for (size_t j = 0; j < a->params()[i].grad.size(); ++j)
                QCOMPARE(a->params()[i].grad[j], 2.0f * b.params()[i].grad[j]);
        // Bad batches are errors, not crashes.
        QVERIFY(!a->forward_backward(tokens, 3, 11, loss, nullptr));
        std::vector<int32_t> bad = tokens;
        bad[4] = 280;
        QVERIFY(!a->forward_backward(bad, 3, 12, loss, nullptr));
    }

    void freezeBase() {
        auto m = synth_model(synth("edgefusion_m1", 32, 280, 4));
        QVERIFY(m);
        auto tm = tr::TrainModel::from_model(*m);
        QVERIFY(tm);
        tm->freeze_base();
        QVERIFY(tm->trainable_count() > 0 && tm->trainable_count() < tm->parameter_count());
        const auto tokens = make_tokens(2 * 9, 280, 2);
        tr::LossSpec loss;
        loss.lambda = 0.1f;
        auto r = tm->forward_backward(tokens, 2, 8, loss, nullptr);
        QVERIFY(r);
        int nonzero_trainable = 0;
        for (const auto& p : tm->params()) {
            const bool any = std::any_of(p.grad.begin(), p.grad.end(), [](float g) { return g != 0.0f; });
            QCOMPARE(p.trainable, is_ssm_or_router(p.name));
            if (!p.trainable) QVERIFY2(!any, p.name.c_str());
            else nonzero_trainable += any;
        }
        QVERIFY(nonzero_trainable >= 10);
    }

    void toModelRoundTrip_data() {
        QTest::addColumn<QString>("kind");
        QTest::newRow("llama") << "llama";
        QTest::newRow("edgefusion_mamba2") << "edgefusion_m2";
        QTest::newRow("edgefusion_mamba1") << "edgefusion_m1";
    }
    void toModelRoundTrip() {
        QFETCH(QString, kind);
        auto m = synth_model(synth(kind.toStdString(), 32, 280, 8));
        QVERIFY(m);
        auto tm = tr::TrainModel::from_model(*m);
        QVERIFY(tm);
        const auto tokens = make_tokens(2 * 11, 280, 6);
        tr::LossSpec loss;
        loss.lambda = 0.5f;
        auto r = tm->forward_backward(tokens, 2, 10, loss, nullptr);  // one SGD step: the weights differ from m's
        QVERIFY(r);
        for (auto& p : tm->params())
            for (size_t i = 0; i < p.value.size(); ++i) p.value[i] -= 0.2f * p.grad[i];
        tm->set_router_temperature(0.7f);
        const std::vector<int32_t> probe(tokens.begin(), tokens.begin() + 15);
        auto want = tm->forward_logits(probe, nullptr);
        QVERIFY(want);

        auto out = tm->to_model();
        QVERIFY2(out, out ? "" : out.message().c_str());
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string path = dir.filePath("trained.gguf").toStdString();
        auto st = save_model(*out, path);
        QVERIFY2(st, st ? "" : st.message().c_str());
        auto back = load_model(path);
        QVERIFY2(back, back ? "" : back.message().c_str());
        QCOMPARE(QString::fromStdString(back->architecture), QString::fromStdString(m->architecture));
        QCOMPARE(back->layers, m->layers);
        if (tm->routed()) QCOMPARE(back->config.router_temperature, 0.7f);
        auto got = runtime_logits(*back, probe);
        QVERIFY2(got, got ? "" : got.message().c_str());
        const float d = max_abs_diff(*got, *want);
        qInfo("%s: saved and reloaded, max logit difference %.3g", qPrintable(kind), double(d));
        QVERIFY(d <= 1e-4f);
        auto orig = runtime_logits(*m, probe);
        QVERIFY(orig && max_abs_diff(*orig, *want) > 1e-3f);  // the step changed something
    }

    void hybridizeStories260K() {
        EF_REQUIRE_SHARED(path, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        LoadOptions lo;
        lo.tokenizer_path = tok.toStdString();
        auto dense = load_model(path.toStdString(), lo);
        QVERIFY2(dense, dense ? "" : dense.message().c_str());
        const ModelConfig& dc = dense->config;
        tr::HybridizeOptions ho;
        auto hy = tr::hybridize(*dense, ho);
        QVERIFY2(hy, hy ? "" : hy.message().c_str());
        QCOMPARE(QString::fromStdString(hy->architecture), QString("edgefusion"));
        const auto& sc = hy->config.ssm;
        QCOMPARE(sc.d_inner, dc.attn.n_heads * dc.attn.head_dim);
        QCOMPARE(sc.n_heads, dc.attn.n_heads);
        QCOMPARE(sc.n_groups, dc.attn.n_kv_heads);
        QCOMPARE(sc.d_state, dc.attn.head_dim);
        QCOMPARE(hy->find("blk.0.ssm_in.weight")->shape, (Shape{2 * sc.d_inner + 2 * sc.n_groups * sc.d_state + sc.n_heads, dc.dim}));
        QCOMPARE(hy->find("blk.0.ssm_out.weight")->shape, (Shape{dc.dim, sc.d_inner}));
        auto tmh = tr::TrainModel::from_model(*hy);
        QVERIFY(tmh);
        for (float g : tmh->gates()) QVERIFY(std::abs(g - 0.5f) < 1e-6f);
        {  // the SSM's x rows of head 1 are V's rows of its KV head (GQA: head 1 -> KV head 0), B's rows are K's
            const auto in = *hy->find("blk.2.ssm_in.weight")->to_f32();
            const auto wv = *dense->find("blk.2.attn_v.weight")->to_f32();
            const auto wk = *dense->find("blk.2.attn_k.weight")->to_f32();
            const int64_t D = dc.attn.head_dim, rep = dc.attn.n_heads / dc.attn.n_kv_heads, C = dc.dim;
            for (int64_t j = 0; j < D * C; ++j) {
                QCOMPARE(in[size_t((sc.d_inner + D) * C + j)], wv[size_t((1 / rep) * D * C + j)]);
                QCOMPARE(in[size_t(2 * sc.d_inner * C + j)], wk[size_t(j)]);
            }
        }

        // Other shapes: heads/groups/state as asked.
        tr::HybridizeOptions h2;
        h2.ssm_heads = 4;
        h2.n_groups = 1;
        h2.d_state = 16;
        h2.gate_init = 0.8f;
        auto hy2 = tr::hybridize(*dense, h2);
        QVERIFY2(hy2, hy2 ? "" : hy2.message().c_str());
        QCOMPARE(hy2->config.ssm.n_heads, int64_t(4));
        QCOMPARE(hy2->find("blk.1.ssm_a")->shape, (Shape{4, 1}));
        QCOMPARE(hy2->find("blk.1.ssm_in.weight")->shape, (Shape{2 * sc.d_inner + 2 * 16 + 4, dc.dim}));
        h2.ssm_heads = 5;  // 64 does not divide into 5 heads
        QVERIFY(!tr::hybridize(*dense, h2));
        QVERIFY(!tr::hybridize(*hy, ho));  // not a dense llama

        const auto tokens = make_tokens(40, dc.vocab_size, 12);
        auto want = runtime_logits(*dense, tokens);
        QVERIFY(want);
        // g = 0.5: the SSM branch changes the output; its TrainModel forward equals the runtime.
        auto half = runtime_logits(*hy, tokens);
        QVERIFY2(half, half ? "" : half.message().c_str());
        QVERIFY(max_abs_diff(*half, *want) > 1e-2f);
        auto tr_half = tmh->forward_logits(tokens, nullptr);
        QVERIFY(tr_half && max_abs_diff(*tr_half, *half) <= 1e-4f);

        // alpha large: g = 1, the dense model's logits.
        Model hard = *hy;
        for (auto& t : hard.tensors)
            if (t.name.find("router_gate") != std::string::npos) {
                const float a = 40.0f;
                t = *Tensor::from_f32(t.name, t.shape, std::span<const float>(&a, 1));
            }
        auto got = runtime_logits(hard, tokens);
        QVERIFY2(got, got ? "" : got.message().c_str());
        const float d = max_abs_diff(*got, *want);
        qInfo("hybridized stories260K with g = 1: max logit difference to the dense model %.3g", double(d));
        QVERIFY(d <= 1e-4f);

        // Distillation with the base frozen lowers the KL to the dense teacher.
        auto teacher = tr::TrainModel::from_model(*dense);
        QVERIFY(teacher);
        const int64_t T = 32;
        const std::vector<int32_t> window(tokens.begin(), tokens.begin() + T + 1);
        auto tl = teacher->forward_logits(std::span<const int32_t>(window).first(size_t(T)), nullptr);
        QVERIFY(tl);
        tr::LossSpec kl;
        kl.teacher_logits = *tl;
        {  // initialised from the attention, the hybrid starts nearer the teacher than from random projections
            tr::HybridizeOptions hr;
            hr.init_from_attention = false;
            auto rnd = tr::hybridize(*dense, hr);
            QVERIFY(rnd);
            auto tmr = tr::TrainModel::from_model(*rnd);
            QVERIFY(tmr);
            auto kr = tmr->forward_loss(window, 1, T, kl, nullptr);
            auto ka = tmh->forward_loss(window, 1, T, kl, nullptr);
            QVERIFY(kr && ka);
            qInfo("hybridized stories260K at g = 0.5: KL to the dense model %.4f (from attention), %.4f (random)", ka->task_loss,
                  kr->task_loss);
            QVERIFY(ka->task_loss < 0.5 * kr->task_loss);
        }
        tmh->freeze_base();
        double first = 0, last = 0;
        for (int step = 0; step < 15; ++step) {
            tmh->zero_grad();
            auto r = tmh->forward_backward(window, 1, T, kl, nullptr);
            QVERIFY(r);
            (step == 0 ? first : last) = r->task_loss;
            for (auto& p : tmh->params())
                if (p.trainable)
                    for (size_t i = 0; i < p.value.size(); ++i) p.value[i] -= 0.05f * p.grad[i];
        }
        qInfo("hybridized stories260K, base frozen: KL to the dense model %.4f -> %.4f over 15 SGD steps", first, last);
        QVERIFY(last < 0.8 * first);

        QTemporaryDir dir;
        const std::string out = dir.filePath("hybrid.gguf").toStdString();
        auto st = save_model(*hy, out);
        QVERIFY2(st, st ? "" : st.message().c_str());
        auto back = load_model(out);
        QVERIFY2(back, back ? "" : back.message().c_str());
        QCOMPARE(back->config, hy->config);
        QCOMPARE(back->layers, hy->layers);
        QCOMPARE(back->tensors.size(), hy->tensors.size());
        auto again = runtime_logits(*back, tokens);
        QVERIFY(again && max_abs_diff(*again, *half) == 0.0f);
    }
};

QTEST_GUILESS_MAIN(TestTrainModel)
#include "test_train_model.moc"
