// Batched evaluation (Session::prefill / eval_batch) against the one-token decode path
// (Session::eval) on synthetic models of every architecture row: every position's logits, prompts
// longer than ubatch (several batches, partial last batch, SSD chunks cut across batches), the
// cache / SSM state handed from a prefill to the evals after it, 1 vs 2 threads, and bad input.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/synth.h"
#include "runtime/session.h"

using namespace ef;

namespace {

// max |a - b| / max(1, max |b|): relative to the scale of the reference logits.
double rel_diff(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size()) return INFINITY;
    double m = 0.0, scale = 1.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(double(a[i]) - double(b[i]));
        if (std::isnan(d)) return INFINITY;
        m = std::max(m, d);
        scale = std::max(scale, std::fabs(double(b[i])));
    }
    return m / scale;
}

std::vector<int32_t> prompt_of(int n, int64_t vocab) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back(int32_t((1 + 37 * i + (i * i) % 11) % vocab));
    return p;
}

struct Case {
    SynthOptions synth;
    Routing routing = Routing::Hard;
};

Case make_case(const QString& arch, DType type, Routing routing) {
    Case c;
    SynthOptions& o = c.synth;
    o.arch = arch.toStdString();
    o.type = type;
    o.dim = 64;
    o.n_layers = 3;
    o.vocab = 300;
    o.seed = 21;
    o.context_length = 128;
    if (arch == "llama") o.n_kv_heads = 1;  // GQA
    if (arch == "mamba2") {
        o.ssm_heads = 4;
        o.ssm_groups = 2;
    }
    if (arch == "granitehybrid" || arch == "jamba") o.n_layers = 4;
    if (arch == "edgefusion-m1") {
        o.arch = "edgefusion";
        o.ssm_version = 1;
    }
    if (o.arch == "edgefusion") o.n_layers = 4;  // gates ~ N(0, 1): a mix of branches when hard
    c.routing = routing;
    return c;
}

// Evaluates r once (it may be a call that changes the session).
#define EF_VERIFY_OK(r)                                              \
    do {                                                             \
        const auto& ef_r_ = (r);                                     \
        QVERIFY2(ef_r_.ok(), ef_r_.ok() ? "" : ef_r_.message().c_str()); \
    } while (0)

}  // namespace

class TestPrefill : public QObject {
    Q_OBJECT

    static void add_rows() {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("dtype");
        QTest::addColumn<bool>("soft");
        for (const char* a : {"llama", "mamba", "mamba2", "granitehybrid", "jamba", "edgefusion", "edgefusion-m1"})
            for (DType t : {DType::F32, DType::Q8_0}) {
                const QString tn = t == DType::F32 ? "f32" : "q8_0";
                QTest::newRow(QStringLiteral("%1 %2").arg(a, tn).toUtf8()) << QString(a) << int(t) << false;
                if (std::string(a).starts_with("edgefusion"))
                    QTest::newRow(QStringLiteral("%1 %2 soft").arg(a, tn).toUtf8()) << QString(a) << int(t) << true;
            }
    }

private slots:
    // Every position's logits from eval_batch (in batches of 8, SSD chunks of 4, over a 29-token
    // prompt) equal the eval loop's; prefill returns the last of them; the state left behind lets
    // eval continue exactly like the loop; 2 threads give the same numbers as 1.
    void batched_equals_eval_loop_data() { add_rows(); }
    void batched_equals_eval_loop() {
        QFETCH(QString, arch);
        QFETCH(int, dtype);
        QFETCH(bool, soft);
        const Case cs = make_case(arch, DType(dtype), soft ? Routing::Soft : Routing::Hard);
        auto m = synth_model(cs.synth);
        EF_VERIFY_OK(m);
        const int64_t V = m->config.vocab_size;
        const std::vector<int32_t> prompt = prompt_of(29, V), more = {7, 250, 33, 100, 5};
        // Relative to the largest logit: matrix products round activations per row exactly like
        // matrix-vector products, so only float summation order (and Mamba-2's regrouped SSD) differs.
        const double tol = 2e-5;

        SessionOptions so;
        so.routing = cs.routing;
        so.ubatch = 8;
        so.ssd_chunk = 4;

        // Reference: one token at a time.
        auto ref = Session::create(*m, so);
        EF_VERIFY_OK(ref);
        std::vector<std::vector<float>> want;
        for (int32_t t : prompt) {
            auto l = ref->eval(t);
            EF_VERIFY_OK(l);
            want.push_back(std::move(*l));
        }
        const std::vector<float> hidden_ref = ref->hidden();
        std::vector<std::vector<float>> want_more;
        for (int32_t t : more) {
            auto l = ref->eval(t);
            EF_VERIFY_OK(l);
            want_more.push_back(std::move(*l));
        }

        // All positions in one eval_batch call.
        auto s = Session::create(*m, so);
        EF_VERIFY_OK(s);
        SessionTimings timings;
        s->set_timings(&timings);
        auto all = s->eval_batch(prompt, true);
        s->set_timings(nullptr);
        EF_VERIFY_OK(all);
        QCOMPARE(all->size(), prompt.size() * size_t(V));
        QCOMPARE(s->position(), int64_t(prompt.size()));
        double worst = 0.0;
        for (size_t p = 0; p < prompt.size(); ++p)
            worst = std::max(worst, rel_diff(std::span<const float>(*all).subspan(p * size_t(V), size_t(V)), want[p]));
        qInfo("eval_batch vs eval loop: max rel diff %.3g", worst);
        QVERIFY2(worst <= tol, qPrintable(QStringLiteral("batched logits differ by %1").arg(worst)));
        QVERIFY(rel_diff(s->hidden(), hidden_ref) <= tol);
        QCOMPARE(timings.evals, int64_t(prompt.size()));
        QCOMPARE(timings.batches, int64_t(4));  // 8 + 8 + 8 + 5
        QCOMPARE(timings.layer_s.size(), size_t(m->config.n_layers));

        // prefill: the last position's logits, then eval continues from the state it left.
        auto p = Session::create(*m, so);
        EF_VERIFY_OK(p);
        auto last = p->prefill(prompt);
        EF_VERIFY_OK(last);
        QVERIFY(rel_diff(*last, want.back()) <= tol);
        worst = 0.0;
        for (size_t i = 0; i < more.size(); ++i) {
            auto l = p->eval(more[i]);
            EF_VERIFY_OK(l);
            worst = std::max(worst, rel_diff(*l, want_more[i]));
        }
        qInfo("eval after prefill vs eval loop: max rel diff %.3g", worst);
        QVERIFY2(worst <= tol, qPrintable(QStringLiteral("eval after prefill differs by %1").arg(worst)));

        // A second batch after the first continues too (batched -> batched handoff).
        auto b2 = s->eval_batch(more, true);
        EF_VERIFY_OK(b2);
        worst = 0.0;
        for (size_t i = 0; i < more.size(); ++i)
            worst = std::max(worst, rel_diff(std::span<const float>(*b2).subspan(i * size_t(V), size_t(V)), want_more[i]));
        QVERIFY2(worst <= tol, qPrintable(QStringLiteral("second batch differs by %1").arg(worst)));

        // Threads: rows are split, never summed differently, so 2 threads give the same bits.
        so.threads = 2;
        auto t2 = Session::create(*m, so);
        EF_VERIFY_OK(t2);
        auto all2 = t2->eval_batch(prompt, true);
        EF_VERIFY_OK(all2);
        QVERIFY(*all2 == *all);
    }

    // The default ubatch (one batch) and a ubatch of 1 (a batch per token) agree with a ubatch
    // that cuts the prompt unevenly; a bigger model so the 2-thread pool really splits rows.
    void batch_sizes_agree_data() {
        QTest::addColumn<QString>("arch");
        QTest::newRow("mamba2") << "mamba2";
        QTest::newRow("granitehybrid") << "granitehybrid";
        QTest::newRow("jamba") << "jamba";
    }
    void batch_sizes_agree() {
        QFETCH(QString, arch);
        SynthOptions o;
        o.arch = arch.toStdString();
        o.dim = 256;
        o.n_layers = 2;
        o.vocab = 512;
        o.seed = 3;
        o.context_length = 256;
        if (arch == "mamba2") {
            o.ssm_heads = 8;
            o.ssm_groups = 2;
        }
        auto m = synth_model(o);
        EF_VERIFY_OK(m);
        const std::vector<int32_t> prompt = prompt_of(150, 512);
        std::vector<std::vector<float>> outs;
        for (int64_t ub : {int64_t(512), int64_t(1), int64_t(37)}) {
            SessionOptions so;
            so.ubatch = ub;
            so.threads = ub == 37 ? 2 : 1;
            auto s = Session::create(*m, so);
            EF_VERIFY_OK(s);
            auto l = s->eval_batch(prompt, true);
            EF_VERIFY_OK(l);
            outs.push_back(std::move(*l));
        }
        const double d1 = rel_diff(outs[1], outs[0]), d2 = rel_diff(outs[2], outs[0]);
        qInfo("ubatch 1 vs 512: %.3g; ubatch 37 (2 threads) vs 512: %.3g", d1, d2);
        QVERIFY(d1 <= 2e-5);
        QVERIFY(d2 <= 2e-5);
    }

    // Bad requests fail before anything runs, so the session goes on as if they never happened.
    void bad_input_leaves_state() {
        SynthOptions o;
        o.arch = "granitehybrid";
        o.n_layers = 4;
        o.vocab = 300;
        o.context_length = 16;
        auto m = synth_model(o);
        EF_VERIFY_OK(m);
        SessionOptions so;
        so.ubatch = 4;
        auto s = Session::create(*m, so);
        EF_VERIFY_OK(s);
        auto ref = Session::create(*m, so);
        EF_VERIFY_OK(ref);
        const std::vector<int32_t> head = {1, 2, 3, 4, 5, 6};
        EF_VERIFY_OK(s->prefill(head));
        EF_VERIFY_OK(ref->prefill(head));

        auto empty = s->eval_batch({}, true);
        QVERIFY(!empty.ok());
        QVERIFY(!s->prefill({}).ok());
        // An out-of-range id in the middle of a batch: nothing of the batch may run.
        const std::vector<int32_t> bad = {7, 8, 300, 9};
        auto r = s->eval_batch(bad, true);
        QVERIFY(!r.ok());
        QVERIFY2(r.message().find("300") != std::string::npos, r.message().c_str());
        const std::vector<int32_t> neg = {7, -1};
        QVERIFY(!s->prefill(neg).ok());
        QCOMPARE(s->position(), int64_t(6));
        // Longer than the room left (16 - 6 = 10): a clear error, nothing consumed.
        const std::vector<int32_t> long_one = prompt_of(11, 300);
        auto full = s->prefill(long_one);
        QVERIFY(!full.ok());
        QVERIFY2(full.message().find("room for 10") != std::string::npos, full.message().c_str());
        QCOMPARE(s->position(), int64_t(6));
        // Exactly the room left fits, and equals the untouched session.
        const std::vector<int32_t> fits = prompt_of(10, 300);
        auto a = s->prefill(fits);
        EF_VERIFY_OK(a);
        auto b = ref->prefill(fits);
        EF_VERIFY_OK(b);
        QVERIFY(*a == *b);
        QCOMPARE(s->position(), int64_t(16));
        QVERIFY(!s->eval(1).ok());  // now full
    }
};

QTEST_GUILESS_MAIN(TestPrefill)
#include "test_prefill.moc"
