// Sampling (runtime/sampler.h): each filter on hand-made logits against survivors computed here by
// the filter's definition; the chain's order; seeded reproducibility; temperature 0 == argmax; and
// the draw's frequencies against the softmax. The generation loop (runtime/generate.h) on a synth
// model: greedy equals greedy_generate, and it stops at EOG tokens, the context end, the callback
// and cancellation.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "core/synth.h"
#include "runtime/generate.h"
#include "runtime/sampler.h"

using namespace ef;

Q_DECLARE_METATYPE(std::vector<float>)
Q_DECLARE_METATYPE(std::vector<int32_t>)

namespace {

std::set<int32_t> ids(const std::vector<Candidate>& c) {
    std::set<int32_t> s;
    for (const auto& x : c) s.insert(x.id);
    return s;
}

// Token ids by descending logit, ties by id.
std::vector<int32_t> order_desc(const std::vector<float>& l) {
    std::vector<int32_t> o(l.size());
    std::iota(o.begin(), o.end(), 0);
    std::stable_sort(o.begin(), o.end(), [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
    return o;
}

std::vector<double> softmax_d(const std::vector<float>& l) {
    const double mx = *std::max_element(l.begin(), l.end());
    std::vector<double> p(l.size());
    double s = 0.0;
    for (size_t i = 0; i < l.size(); ++i) s += (p[i] = std::exp(double(l[i]) - mx));
    for (double& x : p) x /= s;
    return p;
}

std::string show(const std::set<int32_t>& s) {
    std::string o = "{";
    for (int32_t x : s) o += std::to_string(x) + " ";
    return o + "}";
}

const std::vector<float> kMixed = {1.5f, -0.5f, 3.0f, 0.0f, 2.25f, -4.0f, 0.75f, 2.9f};

}  // namespace

class TestSampler : public QObject {
    Q_OBJECT
private slots:
    void topK_data() {
        QTest::addColumn<std::vector<float>>("logits");
        QTest::addColumn<int>("k");
        QTest::newRow("k=1") << kMixed << 1;
        QTest::newRow("k=3") << kMixed << 3;
        QTest::newRow("k=all") << kMixed << 8;
        QTest::newRow("k>size") << kMixed << 20;
        QTest::newRow("k=0 off") << kMixed << 0;
        QTest::newRow("negative") << std::vector<float>{-3.0f, -1.0f, -2.0f, -0.5f} << 2;
    }
    void topK() {
        QFETCH(std::vector<float>, logits);
        QFETCH(int, k);
        auto c = sampling::candidates(logits);
        sampling::top_k(c, k);
        const auto o = order_desc(logits);
        const size_t keep = k <= 0 ? logits.size() : std::min(size_t(k), logits.size());
        const std::set<int32_t> want(o.begin(), o.begin() + long(keep));
        QCOMPARE(show(ids(c)), show(want));
        if (k > 0)
            for (size_t i = 1; i < c.size(); ++i) QVERIFY(c[i - 1].logit >= c[i].logit);  // sorted descending
    }

    void topP_data() {
        QTest::addColumn<std::vector<float>>("logits");
        QTest::addColumn<float>("p");
        QTest::newRow("p=0.5") << kMixed << 0.5f;
        QTest::newRow("p=0.8") << kMixed << 0.8f;
        QTest::newRow("p=0.95") << kMixed << 0.95f;
        QTest::newRow("p=0.999") << kMixed << 0.999f;
        QTest::newRow("p=0 keeps one") << kMixed << 0.0f;
        QTest::newRow("p=1 off") << kMixed << 1.0f;
        QTest::newRow("flat") << std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f} << 0.6f;
    }
    void topP() {
        QFETCH(std::vector<float>, logits);
        QFETCH(float, p);
        auto c = sampling::candidates(logits);
        sampling::top_p(c, p);
        // The shortest prefix (by descending probability) whose mass reaches p; everything for p >= 1.
        const auto o = order_desc(logits);
        const auto prob = softmax_d(logits);
        std::set<int32_t> want;
        double cum = 0.0;
        for (int32_t id : o) {
            want.insert(id);
            cum += prob[size_t(id)];
            if (p < 1.0f && cum >= p) break;
        }
        QCOMPARE(show(ids(c)), show(want));
    }

    void minP_data() {
        QTest::addColumn<std::vector<float>>("logits");
        QTest::addColumn<float>("p");
        QTest::newRow("p=0.05") << kMixed << 0.05f;
        QTest::newRow("p=0.3") << kMixed << 0.3f;
        QTest::newRow("p=0.9") << kMixed << 0.9f;
        QTest::newRow("p=1 keeps the max") << kMixed << 1.0f;
        QTest::newRow("p=0 off") << kMixed << 0.0f;
    }
    void minP() {
        QFETCH(std::vector<float>, logits);
        QFETCH(float, p);
        auto c = sampling::candidates(logits);
        sampling::min_p(c, p);
        // Survivors: probability at least p times the largest probability.
        const auto prob = softmax_d(logits);
        const double pmax = *std::max_element(prob.begin(), prob.end());
        std::set<int32_t> want;
        for (size_t i = 0; i < prob.size(); ++i)
            if (p <= 0.0f || prob[i] >= double(p) * pmax * (1 - 1e-6)) want.insert(int32_t(i));
        QCOMPARE(show(ids(c)), show(want));
    }

    void repetitionPenalty_data() {
        QTest::addColumn<float>("penalty");
        QTest::addColumn<std::vector<int32_t>>("history");
        QTest::newRow("1.3") << 1.3f << std::vector<int32_t>{0, 1, 3, 3, 3};
        QTest::newRow("2.0") << 2.0f << std::vector<int32_t>{2, 5, 7};
        QTest::newRow("0.5 (reward)") << 0.5f << std::vector<int32_t>{1, 2};
        QTest::newRow("none seen") << 1.5f << std::vector<int32_t>{};
    }
    void repetitionPenalty() {
        QFETCH(float, penalty);
        QFETCH(std::vector<int32_t>, history);
        auto c = sampling::candidates(kMixed);
        sampling::repetition_penalty(c, history, penalty);
        const std::set<int32_t> seen(history.begin(), history.end());
        for (size_t i = 0; i < kMixed.size(); ++i) {
            const float l = kMixed[i];
            // llama.cpp: once per seen token however often; positive logits divided, others multiplied.
            const float want = !seen.count(int32_t(i)) ? l : (l <= 0.0f ? l * penalty : l / penalty);
            QCOMPARE(c[i].id, int32_t(i));
            QCOMPARE(c[i].logit, want);
        }
    }

    void temperatureScales() {
        auto c = sampling::candidates(kMixed);
        sampling::temperature(c, 0.5f);
        for (size_t i = 0; i < kMixed.size(); ++i) QCOMPARE(c[i].logit, kMixed[i] / 0.5f);
    }

    // The sampler's history is the last N accepted tokens.
    void penaltyWindow() {
        SamplerParams p;
        p.temperature = 0.0f;
        p.repeat_penalty = 100.0f;
        p.repeat_last_n = 2;
        auto s = Sampler::create(p);
        QVERIFY(s.ok());
        const std::vector<float> l = {5.0f, 4.0f, 3.0f};
        QCOMPARE(s->sample(l), 0);
        s->accept(0);
        QCOMPARE(s->sample(l), 1);  // 0 penalized to 0.05
        s->accept(1);
        QCOMPARE(s->sample(l), 2);
        s->accept(2);               // window now {1, 2}: 0 is free again
        QCOMPARE(s->sample(l), 0);
    }

    void temperatureZeroIsArgmax_data() {
        QTest::addColumn<int>("seed");
        for (int i = 0; i < 6; ++i) QTest::newRow(qPrintable(QString("seed %1").arg(i))) << i;
    }
    void temperatureZeroIsArgmax() {
        QFETCH(int, seed);
        Rng rng(uint64_t(seed) + 100);
        std::vector<float> l(1000);
        for (float& x : l) x = float(rng.uniform() * 20.0 - 10.0);
        if (seed == 0) l[17] = l[900] = 50.0f;  // a tie: the first wins, as in llama.cpp
        SamplerParams p;
        p.temperature = 0.0f;
        p.top_k = 5;
        p.top_p = 0.3f;
        p.min_p = 0.2f;
        p.seed = uint64_t(seed);
        auto s = Sampler::create(p);
        QVERIFY(s.ok());
        const int32_t want = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        for (int i = 0; i < 5; ++i) QCOMPARE(s->sample(l), want);
    }

    void seededReproducibility() {
        SamplerParams p;
        p.temperature = 1.5f;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        std::vector<float> l(64);
        for (size_t i = 0; i < l.size(); ++i) l[i] = float(std::sin(double(i)));
        auto draw = [&](uint64_t seed) {
            p.seed = seed;
            auto s = Sampler::create(p);
            std::vector<int32_t> out;
            for (int i = 0; i < 300; ++i) out.push_back(s->sample(l));
            return out;
        };
        QVERIFY(draw(42) == draw(42));
        QVERIFY(draw(42) != draw(43));
        // reset() restarts the same sequence.
        p.seed = 9;
        auto s = Sampler::create(p);
        std::vector<int32_t> a, b;
        for (int i = 0; i < 50; ++i) a.push_back(s->sample(l));
        s->reset();
        for (int i = 0; i < 50; ++i) b.push_back(s->sample(l));
        QVERIFY(a == b);
    }

    // 10k draws from a 3-token softmax: each frequency within 0.02 (> 4 sigma) of its probability.
    void distribution_data() {
        QTest::addColumn<std::vector<float>>("logits");
        QTest::addColumn<float>("temp");
        QTest::newRow("t=1") << std::vector<float>{1.0f, 2.0f, 0.5f} << 1.0f;
        QTest::newRow("t=2") << std::vector<float>{1.0f, 2.0f, 0.5f} << 2.0f;
        QTest::newRow("t=0.5") << std::vector<float>{0.0f, 0.3f, 0.6f} << 0.5f;
    }
    void distribution() {
        QFETCH(std::vector<float>, logits);
        QFETCH(float, temp);
        SamplerParams p;
        p.temperature = temp;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        p.seed = 1234;
        auto s = Sampler::create(p);
        QVERIFY(s.ok());
        std::vector<int> n(3, 0);
        const int N = 10000;
        for (int i = 0; i < N; ++i) ++n[size_t(s->sample(logits))];
        std::vector<float> scaled;
        for (float x : logits) scaled.push_back(x / temp);
        const auto prob = softmax_d(scaled);
        for (size_t i = 0; i < 3; ++i)
            QVERIFY2(std::abs(double(n[i]) / N - prob[i]) < 0.02,
                     qPrintable(QString("token %1: %2 vs %3").arg(i).arg(double(n[i]) / N).arg(prob[i])));
    }

    // The chain's filters really act: draws never leave top-k / min-p survivors.
    void chainRespectsFilters() {
        SamplerParams p;
        p.temperature = 5.0f;  // flat enough that every survivor is drawn
        p.top_k = 3;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        auto s = Sampler::create(p);
        std::set<int32_t> seen;
        for (int i = 0; i < 2000; ++i) seen.insert(s->sample(kMixed));
        const auto o = order_desc(kMixed);
        QCOMPARE(show(seen), show(std::set<int32_t>(o.begin(), o.begin() + 3)));
        // min-p before temperature: with p = 0.5 only ids whose unscaled probability is >= half the max.
        p.top_k = 0;
        p.min_p = 0.5f;
        s = Sampler::create(p);
        seen.clear();
        for (int i = 0; i < 2000; ++i) seen.insert(s->sample(kMixed));
        QCOMPARE(show(seen), show(std::set<int32_t>{2, 7}));  // 3.0 and 2.9; 2.25 is below 3 + ln 0.5
    }

    void rngUniform() {
        Rng r(7);
        double sum = 0.0;
        for (int i = 0; i < 100000; ++i) {
            const double u = r.uniform();
            QVERIFY(u >= 0.0 && u < 1.0);
            sum += u;
        }
        QVERIFY(std::abs(sum / 100000 - 0.5) < 0.01);
        QVERIFY(Rng(1).next() != Rng(2).next());
    }

    void invalidParams_data() {
        QTest::addColumn<float>("temp");
        QTest::addColumn<float>("top_p");
        QTest::addColumn<float>("min_p");
        QTest::addColumn<float>("penalty");
        QTest::newRow("nan temp") << std::nanf("") << 0.9f << 0.0f << 1.0f;
        QTest::newRow("top-p > 1") << 1.0f << 1.5f << 0.0f << 1.0f;
        QTest::newRow("min-p < 0") << 1.0f << 0.9f << -0.1f << 1.0f;
        QTest::newRow("penalty 0") << 1.0f << 0.9f << 0.0f << 0.0f;
        QTest::newRow("penalty inf") << 1.0f << 0.9f << 0.0f << INFINITY;
    }
    void invalidParams() {
        QFETCH(float, temp);
        QFETCH(float, top_p);
        QFETCH(float, min_p);
        QFETCH(float, penalty);
        SamplerParams p;
        p.temperature = temp;
        p.top_p = top_p;
        p.min_p = min_p;
        p.repeat_penalty = penalty;
        auto s = Sampler::create(p);
        QVERIFY(!s.ok());
        QVERIFY(!s.message().empty());
    }

    void generateLoop() {
        SynthOptions so;
        so.arch = "llama";
        so.dim = 64;
        so.n_layers = 2;
        so.vocab = 300;
        so.seed = 11;
        so.context_length = 24;
        auto m = synth_model(so);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        auto tok = Tokenizer::create(m->vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        auto s = Session::create(*m);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());

        GenerateOptions go;
        go.n_predict = 8;
        go.sampling.temperature = 0.0f;
        go.stop_at_eog = false;
        std::string streamed;
        std::vector<int32_t> seen;
        auto r = generate(*s, *tok, "abc", go, [&](int32_t id, const std::string& piece) {
            seen.push_back(id);
            streamed += piece;
            return true;
        });
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        QCOMPARE(r->tokens.size(), size_t(8));
        QVERIFY(r->tokens == seen);
        QCOMPARE(r->text, streamed);
        QVERIFY(r->stop == StopReason::Count);
        QCOMPARE(r->prompt_tokens.front(), m->vocab.bos_id);
        // The same tokens as the session's own greedy loop.
        s->reset();
        auto g = greedy_generate(*s, r->prompt_tokens, 8);
        QVERIFY(g.ok());
        QVERIFY(*g == r->tokens);

        // Stop at an end-of-generation token: make the first greedy token the EOS.
        Model m2 = *m;
        m2.vocab.eos_id = r->tokens[0];
        const auto eog = eog_tokens(m2.vocab);
        QVERIFY(std::find(eog.begin(), eog.end(), r->tokens[0]) != eog.end());
        auto s2 = Session::create(m2);
        QVERIFY(s2.ok());
        go.stop_at_eog = true;
        auto e = generate(*s2, *tok, "abc", go);
        QVERIFY(e.ok());
        QVERIFY(e->stop == StopReason::EndOfGeneration);
        QVERIFY(e->tokens.empty());

        // The callback stops it; then the context end (24 positions).
        go.stop_at_eog = false;
        auto c = generate(*s, *tok, "abc", go, [](int32_t, const std::string&) { return false; });
        QVERIFY(c.ok() && c->stop == StopReason::Callback && c->tokens.size() == 1);
        go.n_predict = 100;
        auto f = generate(*s, *tok, "abc", go);
        QVERIFY2(f.ok(), f.ok() ? "" : f.message().c_str());
        QVERIFY(f->stop == StopReason::ContextFull);
        QCOMPARE(int64_t(f->prompt_tokens.size() + f->tokens.size()), int64_t(24) + 1);  // the last token is never fed back

        // Cancellation, a prompt longer than the context, bad values: errors or a clean stop.
        Progress p;
        p.cancel();
        auto x = generate(*s, *tok, "abc", go, {}, p);
        QVERIFY(x.ok() && x->stop == StopReason::Cancelled && x->tokens.empty());
        auto longp = generate(*s, *tok, std::string(200, 'a') + " b c d e f g h i j k l m n o p q r s t u v w x y z", go);
        QVERIFY(!longp.ok());
        QVERIFY2(longp.message().find("context") != std::string::npos, longp.message().c_str());
        go.n_predict = -1;
        QVERIFY(!generate(*s, *tok, "abc", go).ok());
        go.n_predict = 4;
        go.sampling.top_p = 7.0f;
        QVERIFY(!generate(*s, *tok, "abc", go).ok());
    }
};

QTEST_APPLESS_MAIN(TestSampler)
#include "test_sampler.moc"
