// The reference forward pass (runtime/session.h) against llama.cpp (node-llama-cpp,
// tests/reference/llama_eval.mjs, F32 KV cache) on the same GGUF files: per-position logits within
// 1e-4 and identical greedy continuations, both from the one-token eval loop and from the batched
// path (eval_batch's all-position logits, greedy after a batched prefill), for synthetic models of
// every llama.cpp-supported row in F32 and Q8_0, and for the real stories260K checkpoint (llama2.c
// file and its GGUF conversion).
// EdgeFusion has no llama.cpp counterpart; it is checked by construction: with its gates forced to
// one branch it must equal the same weights arranged as a llama / mamba2 / granitehybrid model
// (which llama.cpp checks in turn), and soft mixing at g = 0.5 is the midpoint of the two branches.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>

#include "core/formats/format.h"
#include "core/synth.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

using namespace ef;

namespace {

const std::vector<int32_t> kPrompt = {1, 300, 42, 77, 260, 511, 5, 123};
constexpr int kGreedy = 8;
constexpr double kTol = 1e-4;

struct Reference {
    std::vector<std::vector<float>> logits;  // per prompt position
    std::vector<int32_t> greedy;
    QString error;  // non-empty when llama.cpp could not be run
};

// llama.cpp's logits after every prompt position and its greedy continuation.
Reference llamacpp(const QString& gguf, const std::vector<int32_t>& prompt, int n_greedy) {
    Reference ref;
    QStringList ids;
    for (int32_t t : prompt) ids << QString::number(t);
    const auto r = test::run_node_script(
        "llama_eval.mjs", {"--model", gguf, "--tokens", ids.join(','), "--logits", "--greedy", QString::number(n_greedy)},
        180000);
    if (r.exit_code != 0) {
        ref.error = QStringLiteral("llama.cpp did not run %1 (exit %2):\n%3").arg(gguf).arg(r.exit_code).arg(r.err.right(3000));
        return ref;
    }
    const auto doc = QJsonDocument::fromJson(r.out.toUtf8());
    if (!doc.isObject()) {
        ref.error = "no JSON from llama_eval.mjs: " + r.out.left(400);
        return ref;
    }
    for (const QJsonValue& row : doc.object().value("logits").toArray()) {
        std::vector<float> v;
        for (const QJsonValue& x : row.toArray()) v.push_back(float(x.toDouble(NAN)));
        ref.logits.push_back(std::move(v));
    }
    for (const QJsonValue& g : doc.object().value("greedy").toArray()) ref.greedy.push_back(int32_t(g.toInt(-1)));
    return ref;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return INFINITY;
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(double(a[i]) - double(b[i]));
        if (std::isnan(d)) return INFINITY;  // a NaN on either side is a mismatch
        m = std::max(m, d);
    }
    return m;
}

struct Run {
    std::vector<std::vector<float>> logits;  // per prompt position, one eval per token
    std::vector<std::vector<float>> batched;  // the same from one eval_batch (all positions)
    std::vector<int32_t> greedy;
    std::vector<int32_t> greedy_after_prefill;  // greedy_generate: batched prefill, then evals
    std::vector<float> hidden;  // after the last prompt token
    std::string error;
};

// Our session over `prompt` (logits at every position), then n greedy tokens.
Run run_session(const Model& m, const std::vector<int32_t>& prompt, int n_greedy, Routing routing = Routing::Hard) {
    Run out;
    SessionOptions opts;
    opts.routing = routing;
    auto s = Session::create(m, opts);
    if (!s) {
        out.error = s.message();
        return out;
    }
    for (int32_t t : prompt) {
        auto l = s->eval(t);
        if (!l) {
            out.error = l.message();
            return out;
        }
        out.logits.push_back(std::move(l.value()));
    }
    out.hidden = s->hidden();
    // The batched path over the same prompt: every position's logits (in batches of 3 with SSD
    // chunks of 2, so the prompt spans several of both), and greedy decoding that starts from a
    // batched prefill.
    {
        SessionOptions bo = opts;
        bo.ubatch = 3;
        bo.ssd_chunk = 2;
        auto b = Session::create(m, bo);
        if (!b) {
            out.error = b.message();
            return out;
        }
        auto all = b->eval_batch(prompt, /*all_logits=*/true);
        if (!all) {
            out.error = all.message();
            return out;
        }
        const size_t V = size_t(m.config.vocab_size);
        for (size_t p = 0; p < prompt.size(); ++p)
            out.batched.emplace_back(all->begin() + ptrdiff_t(p * V), all->begin() + ptrdiff_t((p + 1) * V));
        b->reset();
        auto g = greedy_generate(*b, prompt, n_greedy);
        if (!g) {
            out.error = g.message();
            return out;
        }
        out.greedy_after_prefill = *g;
    }
    std::vector<float> last = out.logits.back();
    for (int i = 0; i < n_greedy; ++i) {
        out.greedy.push_back(argmax(last));
        if (i + 1 == n_greedy) break;
        auto l = s->eval(out.greedy.back());
        if (!l) {
            out.error = l.message();
            return out;
        }
        last = std::move(l.value());
    }
    return out;
}

QString ids_text(const std::vector<int32_t>& v) {
    QStringList s;
    for (int32_t t : v) s << QString::number(t);
    return s.join(',');
}

// Compares our run with llama.cpp's: QVERIFY-style, returns false with *why on mismatch.
bool matches(const Run& ours, const Reference& ref, const QString& what, QString* why) {
    if (ours.logits.size() != ref.logits.size()) {
        *why = QStringLiteral("%1: %2 positions from us, %3 from llama.cpp").arg(what).arg(ours.logits.size()).arg(ref.logits.size());
        return false;
    }
    if (ours.batched.size() != ref.logits.size()) {
        *why = QStringLiteral("%1: %2 batched positions from us, %3 from llama.cpp").arg(what).arg(ours.batched.size()).arg(ref.logits.size());
        return false;
    }
    double worst = 0.0, worst_batched = 0.0;
    for (size_t p = 0; p < ours.logits.size(); ++p) {
        const double d = max_abs_diff(ours.logits[p], ref.logits[p]);
        const double db = max_abs_diff(ours.batched[p], ref.logits[p]);
        qInfo("%s position %zu: max |logit diff| = %.3g (eval), %.3g (eval_batch)", qPrintable(what), p, d, db);
        worst = std::max(worst, d);
        worst_batched = std::max(worst_batched, db);
    }
    if (!(worst <= kTol)) {
        *why = QStringLiteral("%1: logits differ from llama.cpp's by %2 (> %3)").arg(what).arg(worst).arg(kTol);
        return false;
    }
    if (!(worst_batched <= kTol)) {
        *why = QStringLiteral("%1: batched logits differ from llama.cpp's by %2 (> %3)").arg(what).arg(worst_batched).arg(kTol);
        return false;
    }
    if (ours.greedy != ref.greedy) {
        *why = QStringLiteral("%1: greedy continuation %2, llama.cpp's %3").arg(what, ids_text(ours.greedy), ids_text(ref.greedy));
        return false;
    }
    if (ours.greedy_after_prefill != ref.greedy) {
        *why = QStringLiteral("%1: greedy continuation after a batched prefill %2, llama.cpp's %3")
                   .arg(what, ids_text(ours.greedy_after_prefill), ids_text(ref.greedy));
        return false;
    }
    return true;
}

#define EF_VERIFY_OK(expr)                                                  \
    do {                                                                    \
        const auto& ef_s_ = (expr);                                         \
        QVERIFY2(ef_s_.ok(), ef_s_.ok() ? "" : ef_s_.message().c_str());    \
    } while (0)

// Replaces (or adds) tensor `name` with F32 `values` of `shape`.
void set_tensor(Model& m, const std::string& name, Shape shape, const std::vector<float>& values) {
    auto t = Tensor::from_f32(name, std::move(shape), values);
    QVERIFY2(t.ok(), t.ok() ? "" : t.message().c_str());
    if (Tensor* old = m.find(name)) *old = std::move(t.value());
    else m.add(std::move(t.value()));
}

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

class TestRuntimeVsLlamacpp : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

    QString save(const Model& m, const QString& name) {
        const QString path = dir_.filePath(name);
        Status s = save_model(m, path.toStdString());
        if (!s) qWarning("save %s: %s", qPrintable(path), s.message().c_str());
        return s ? path : QString();
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        QString err;
        if (test::reference_modules(&err).isEmpty()) QFAIL(qPrintable(err));
    }

    void synth_matches_llamacpp_data() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("dim");
        QTest::addColumn<int>("layers");
        QTest::addColumn<bool>("variant");  // llama: GQA; granitehybrid: RoPE + multipliers; mamba2: 2 groups
        for (const char* a : {"llama", "mamba", "mamba2", "granitehybrid", "jamba"}) {
            const bool hybrid = std::string(a) == "granitehybrid" || std::string(a) == "jamba";
            QTest::newRow(QStringLiteral("%1 f32").arg(a).toUtf8()) << QString(a) << int(DType::F32) << 64 << (hybrid ? 4 : 2) << false;
            QTest::newRow(QStringLiteral("%1 q8_0").arg(a).toUtf8()) << QString(a) << int(DType::Q8_0) << 128 << (hybrid ? 4 : 3) << true;
        }
        QTest::newRow("granitehybrid f32 rope+scales") << QString("granitehybrid") << int(DType::F32) << 64 << 4 << true;
    }
    void synth_matches_llamacpp() {
        QFETCH(QString, arch);
        QFETCH(int, dtype);
        QFETCH(int, dim);
        QFETCH(int, layers);
        QFETCH(bool, variant);
        SynthOptions o;
        o.arch = arch.toStdString();
        o.type = DType(dtype);
        o.dim = dim;
        o.n_layers = layers;
        o.vocab = 512;
        o.seed = 7;
        o.context_length = 256;
        // Quantized Mamba-1 rows: dt_rank 32 so ssm_dt's rows fill a Q8_0 block too.
        if (o.type != DType::F32 && (arch == "mamba" || arch == "jamba")) o.dt_rank = 32;
        if (variant && arch == "llama") o.n_kv_heads = 1;  // GQA: 2 query heads per KV head
        if (variant && arch == "mamba2") {
            o.ssm_heads = 4;
            o.ssm_groups = 2;
        }
        if (variant && arch == "granitehybrid") o.rope_dim = dim / 2;  // = head_dim with 2 heads
        if (variant && arch == "granitehybrid") o.n_heads = 2;
        auto synth = synth_model(o);
        QVERIFY2(synth.ok(), synth.ok() ? "" : synth.message().c_str());
        if (variant && arch == "granitehybrid") {
            synth->config.embedding_scale = 2.0f;
            synth->config.residual_scale = 0.5f;
            synth->config.logit_scale = 4.0f;
            synth->config.attn.scale = 0.3f;
        }
        const QString path = save(*synth, QStringLiteral("%1-%2-%3.gguf").arg(arch).arg(dtype).arg(variant));
        QVERIFY(!path.isEmpty());
        // Run what the file holds (the same bytes llama.cpp reads).
        auto m = load_model(path.toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());

        const Run ours = run_session(*m, kPrompt, kGreedy);
        QVERIFY2(ours.error.empty(), ours.error.c_str());
        const Reference ref = llamacpp(path, kPrompt, kGreedy);
        QVERIFY2(ref.error.isEmpty(), qPrintable(ref.error));
        QString why;
        QVERIFY2(matches(ours, ref, QTest::currentDataTag(), &why), qPrintable(why));
    }

    // stories260K (llama2.c) and its GGUF conversion: same greedy story as llama.cpp's from
    // BOS + "Once upon a time".
    void stories260k_greedy() {
        EF_REQUIRE_SHARED(bin, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        LoadOptions lo;
        lo.tokenizer_path = tok.toStdString();
        auto l2c = load_model(bin.toStdString(), lo);
        QVERIFY2(l2c.ok(), l2c.ok() ? "" : l2c.message().c_str());
        const QString gguf = save(*l2c, "stories260K.gguf");
        QVERIFY(!gguf.isEmpty());
        auto g = load_model(gguf.toStdString());
        QVERIFY2(g.ok(), g.ok() ? "" : g.message().c_str());

        // The prompt's ids come from llama.cpp's tokenizer on the GGUF (no BOS: we add id 1).
        const QString text_file = dir_.filePath("prompt.txt"), ids_file = dir_.filePath("prompt.ids");
        {
            QFile f(text_file);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("Once upon a time");
        }
        const auto r = test::run_node_script("llama_tokenize.mjs", {"--model", gguf, "--text", text_file, "--out", ids_file});
        QVERIFY2(r.exit_code == 0, qPrintable("llama_tokenize.mjs failed: " + r.err.right(2000)));
        QFile idf(ids_file);
        QVERIFY(idf.open(QIODevice::ReadOnly));
        std::vector<int32_t> prompt{1};
        for (const QByteArray& s : idf.readAll().simplified().split(' '))
            if (!s.isEmpty()) prompt.push_back(s.toInt());
        QVERIFY2(prompt.size() >= 2, "llama.cpp gave no ids for the prompt");
        // Our own tokenizer must agree (BOS included, as the vocab asks for it).
        auto tk = Tokenizer::create(l2c->vocab);
        QVERIFY2(tk.ok(), tk.ok() ? "" : tk.message().c_str());
        QCOMPARE(ids_text(tk->encode("Once upon a time", true)), ids_text(prompt));
        qInfo("prompt ids: %s", qPrintable(ids_text(prompt)));

        constexpr int n = 24;
        const Run a = run_session(*l2c, prompt, n);
        QVERIFY2(a.error.empty(), a.error.c_str());
        const Run b = run_session(*g, prompt, n);
        QVERIFY2(b.error.empty(), b.error.c_str());
        QCOMPARE(ids_text(a.greedy), ids_text(b.greedy));
        for (size_t p = 0; p < a.logits.size(); ++p) QCOMPARE(max_abs_diff(a.logits[p], b.logits[p]), 0.0);
        const Reference ref = llamacpp(gguf, prompt, n);
        QVERIFY2(ref.error.isEmpty(), qPrintable(ref.error));
        QString why;
        QVERIFY2(matches(b, ref, "stories260K", &why), qPrintable(why));
        qInfo("story: %s", tk->decode(a.greedy).c_str());
    }

    // EdgeFusion with every gate at attention == the same weights as a llama model (checked
    // against llama.cpp too); with every gate at the SSM and the FFN zeroed == a mamba2 model;
    // with the FFN kept == a granitehybrid model whose layers are all Mamba-2.
    void edgefusion_by_construction() {
        SynthOptions o;
        o.arch = "edgefusion";
        o.dim = 64;
        o.n_layers = 2;
        o.vocab = 512;
        o.seed = 11;
        o.context_length = 256;
        auto ef = synth_model(o);
        QVERIFY2(ef.ok(), ef.ok() ? "" : ef.message().c_str());
        const int L = int(ef->config.n_layers);
        auto with_gates = [&](float alpha) {
            Model m = *ef;
            for (int i = 0; i < L; ++i) set_tensor(m, "blk." + std::to_string(i) + ".router_gate", {1}, {alpha});
            return m;
        };
        // Tensors of `m` minus those whose name (after "blk.N.") starts with one of `drop`.
        auto keep = [](const Model& m, std::initializer_list<std::string_view> drop) {
            std::vector<Tensor> out;
            for (const Tensor& t : m.tensors) {
                std::string base = t.name;
                if (starts_with(base, "blk.")) base = base.substr(base.find('.', 4) + 1);
                bool d = false;
                for (auto p : drop) d = d || starts_with(base, p);
                if (!d) out.push_back(t);
            }
            return out;
        };

        // --- all attention vs llama ------------------------------------------------------------
        const Model to_attn = with_gates(40.0f);
        Model llama;
        llama.architecture = "llama";
        llama.config = ef->config;
        llama.config.ssm = SsmConfig{};
        llama.layers.assign(size_t(L), LayerDesc{MixerKind::Attention, MixerKind::Mamba2, FfnKind::SwiGLU});
        llama.tensors = keep(*ef, {"ssm_", "router_gate"});
        llama.vocab = ef->vocab;
        const Run ra = run_session(to_attn, kPrompt, kGreedy);
        QVERIFY2(ra.error.empty(), ra.error.c_str());
        const Run ra_soft = run_session(to_attn, kPrompt, kGreedy, Routing::Soft);
        QVERIFY2(ra_soft.error.empty(), ra_soft.error.c_str());
        const Run rl = run_session(llama, kPrompt, kGreedy);
        QVERIFY2(rl.error.empty(), rl.error.c_str());
        for (size_t p = 0; p < kPrompt.size(); ++p) {
            QVERIFY(max_abs_diff(ra.logits[p], rl.logits[p]) <= 1e-5);
            QVERIFY(max_abs_diff(ra_soft.logits[p], rl.logits[p]) <= 1e-5);
        }
        QCOMPARE(ids_text(ra.greedy), ids_text(rl.greedy));
        {
            const QString path = save(llama, "ef-as-llama.gguf");
            QVERIFY(!path.isEmpty());
            const Reference ref = llamacpp(path, kPrompt, kGreedy);
            QVERIFY2(ref.error.isEmpty(), qPrintable(ref.error));
            QString why;
            QVERIFY2(matches(ra, ref, "edgefusion all-attention vs llama.cpp llama", &why), qPrintable(why));
        }

        // --- all SSM, FFN zeroed, vs mamba2 ----------------------------------------------------
        Model to_ssm = with_gates(-40.0f);
        for (int i = 0; i < L; ++i) {
            const std::string n = "blk." + std::to_string(i) + ".ffn_down.weight";
            const Tensor* t = to_ssm.find(n);
            QVERIFY(t);
            set_tensor(to_ssm, n, t->shape, std::vector<float>(size_t(t->numel()), 0.0f));
        }
        Model mamba2;
        mamba2.architecture = "mamba2";
        mamba2.config = ef->config;
        mamba2.config.attn = AttentionConfig{};
        mamba2.config.ffn_hidden = 0;
        mamba2.layers.assign(size_t(L), LayerDesc{MixerKind::Mamba2, MixerKind::Mamba2, FfnKind::None});
        mamba2.tensors = keep(*ef, {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_", "router_gate"});
        mamba2.vocab = ef->vocab;
        const Run rs = run_session(to_ssm, kPrompt, kGreedy);
        QVERIFY2(rs.error.empty(), rs.error.c_str());
        const Run rm = run_session(mamba2, kPrompt, kGreedy);
        QVERIFY2(rm.error.empty(), rm.error.c_str());
        for (size_t p = 0; p < kPrompt.size(); ++p) QVERIFY(max_abs_diff(rs.logits[p], rm.logits[p]) <= 1e-5);
        QCOMPARE(ids_text(rs.greedy), ids_text(rm.greedy));
        {
            const QString path = save(mamba2, "ef-as-mamba2.gguf");
            QVERIFY(!path.isEmpty());
            const Reference ref = llamacpp(path, kPrompt, kGreedy);
            QVERIFY2(ref.error.isEmpty(), qPrintable(ref.error));
            QString why;
            QVERIFY2(matches(rs, ref, "edgefusion all-SSM vs llama.cpp mamba2", &why), qPrintable(why));
        }

        // --- all SSM with the FFN vs granitehybrid (every layer Mamba-2) ------------------------
        const Model to_ssm_ffn = with_gates(-40.0f);
        Model gh;
        gh.architecture = "granitehybrid";
        gh.config = ef->config;
        gh.layers.assign(size_t(L), LayerDesc{MixerKind::Mamba2, MixerKind::Mamba2, FfnKind::SwiGLU});
        gh.tensors = keep(*ef, {"attn_q", "attn_k", "attn_v", "attn_output", "router_gate"});
        gh.vocab = ef->vocab;
        const Run rf = run_session(to_ssm_ffn, kPrompt, kGreedy);
        QVERIFY2(rf.error.empty(), rf.error.c_str());
        const Run rg = run_session(gh, kPrompt, kGreedy);
        QVERIFY2(rg.error.empty(), rg.error.c_str());
        for (size_t p = 0; p < kPrompt.size(); ++p) QVERIFY(max_abs_diff(rf.logits[p], rg.logits[p]) <= 1e-5);
        QCOMPARE(ids_text(rf.greedy), ids_text(rg.greedy));
        // The branches really differ, so the comparisons above could fail.
        QVERIFY(max_abs_diff(ra.logits.back(), rf.logits.back()) > 1e-2);
    }

    // Soft routing at g = 0.5 on one layer with the FFN zeroed: the residual stream is exactly the
    // midpoint of the all-attention and all-SSM streams (x + (attn + ssm) / 2), so it lies between.
    void edgefusion_soft_mix_between() {
        SynthOptions o;
        o.arch = "edgefusion";
        o.dim = 64;
        o.n_layers = 1;
        o.vocab = 512;
        o.seed = 5;
        o.context_length = 256;
        auto ef = synth_model(o);
        QVERIFY2(ef.ok(), ef.ok() ? "" : ef.message().c_str());
        const Tensor* down = ef->find("blk.0.ffn_down.weight");
        QVERIFY(down);
        set_tensor(*ef, "blk.0.ffn_down.weight", down->shape, std::vector<float>(size_t(down->numel()), 0.0f));
        auto gated = [&](float alpha) {
            Model m = *ef;
            set_tensor(m, "blk.0.router_gate", {1}, {alpha});
            return m;
        };
        const Model ma = gated(40.0f), ms = gated(-40.0f), mh = gated(0.0f);
        // One layer: both branches only ever see (normalized) embeddings, so the mix stays linear.
        const std::vector<int32_t> one = {300};
        const Run a = run_session(ma, one, 1), s = run_session(ms, one, 1), h = run_session(mh, one, 1, Routing::Soft);
        QVERIFY2(a.error.empty() && s.error.empty() && h.error.empty(), (a.error + s.error + h.error).c_str());
        double spread = 0.0;
        for (size_t i = 0; i < h.hidden.size(); ++i) {
            const float lo = std::min(a.hidden[i], s.hidden[i]), hi = std::max(a.hidden[i], s.hidden[i]);
            QVERIFY2(h.hidden[i] >= lo - 1e-6f && h.hidden[i] <= hi + 1e-6f, qPrintable(QStringLiteral("element %1 outside").arg(i)));
            QVERIFY(std::fabs(h.hidden[i] - 0.5f * (a.hidden[i] + s.hidden[i])) <= 1e-5f);
            spread = std::max(spread, double(hi - lo));
        }
        QVERIFY(spread > 1e-3);  // the two branches disagree, so "between" says something
        // Hard routing at g = 0.5 takes attention (g >= 0.5).
        const Run hh = run_session(mh, one, 1);
        QCOMPARE(max_abs_diff(hh.hidden, a.hidden), 0.0);
    }
};

QTEST_GUILESS_MAIN(TestRuntimeVsLlamacpp)
#include "test_runtime_vs_llamacpp.moc"
