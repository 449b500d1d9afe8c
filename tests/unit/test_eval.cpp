// runtime/eval without real models: task parsing (every shared format, lm-eval's HellaSwag
// preprocessing), accuracy / acc_norm / LAMBADA arithmetic with a fake scorer whose answers are
// forced, perplexity and KL on a synthetic model checked against sums the test computes itself
// from Session logits, the KL base file format (hand-written by the test) and its corruption checks.
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "core/synth.h"
#include "runtime/eval/perplexity.h"
#include "runtime/eval/tasks.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"

using namespace ef;
using namespace ef::eval;

namespace {

// Answers by table: context + "|" + continuation -> loglik.
class FakeScorer : public LoglikScorer {
public:
    std::map<std::string, Loglik> table;
    int calls = 0;
    Result<Loglik> score(const Request& r) override {
        ++calls;
        auto it = table.find(r.context + "|" + r.continuation);
        if (it == table.end()) return make_error("unexpected request " + r.context + "|" + r.continuation);
        return it->second;
    }
};

std::string write_file(const QTemporaryDir& d, const char* name, const std::string& text) {
    const std::string p = d.filePath(name).toStdString();
    std::ofstream(p, std::ios::binary) << text;
    return p;
}

Model synth(DType type = DType::F32, uint64_t seed = 7) {
    SynthOptions o;
    o.arch = "llama";
    o.dim = 64;
    o.n_layers = 2;
    o.vocab = 300;
    o.type = type;
    o.seed = seed;
    o.context_length = 64;
    auto m = synth_model(o);
    if (!m) qFatal("%s", m.message().c_str());
    return std::move(*m);
}

// Log-softmax in double, written here independently of the library.
std::vector<double> log_softmax(const std::vector<float>& z) {
    double mx = z[0];
    for (float v : z) mx = std::max(mx, double(v));
    double s = 0;
    for (float v : z) s += std::exp(double(v) - mx);
    std::vector<double> out;
    for (float v : z) out.push_back(double(v) - mx - std::log(s));
    return out;
}

const char* kText =
    "the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat near the door "
    "and every morning the birds sing songs about rivers mountains and the wide open sea beyond";

}  // namespace

class TestEval : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private slots:
    void parsesEveryFormat() {
        const std::string arc = write_file(dir_, "arc.jsonl",
            "{\"query\": \"Question: Q1?\\nAnswer:\", \"choices\": [\"a\", \"b\", \"c\"], \"gold\": 2}\r\n\n"
            "{\"query\": \"Q2\", \"choices\": [\"x\", \"y\"], \"gold\": \"1\"}\n");
        auto a = load_task(Task::ArcEasy, arc);
        QVERIFY2(a.ok(), a.ok() ? "" : a.message().c_str());
        QCOMPARE(a->size(), size_t(2));
        QCOMPARE((*a)[0].choices.size(), size_t(3));
        QCOMPARE((*a)[0].choices[1].context, std::string("Question: Q1?\nAnswer:"));
        QCOMPARE((*a)[0].choices[1].continuation, std::string(" b"));
        QCOMPARE((*a)[0].gold, 2);
        QCOMPARE((*a)[1].gold, 1);
        auto lim = load_task(Task::Piqa, arc, 1);
        QVERIFY(lim.ok());
        QCOMPARE(lim->size(), size_t(1));

        const std::string wg = write_file(dir_, "wg.jsonl",
            "{\"context_options\": [\"A so A\", \"A so B\"], \"continuation\": \"won.\", \"gold\": 1}\n");
        auto w = load_task(Task::Winogrande, wg);
        QVERIFY(w.ok());
        QCOMPARE((*w)[0].choices[0].context, std::string("A so A"));
        QCOMPARE((*w)[0].choices[1].continuation, std::string(" won."));

        // lm-eval: query = preprocess(label + ": " + ctx_a + " " + ctx_b.capitalize()).
        const std::string hs = write_file(dir_, "hs.jsonl",
            "{\"activity_label\": \"Cooking\", \"ctx_a\": \"A man [header] cooks.\", \"ctx_b\": \"tHE pan\", "
            "\"ctx\": \"ignored\", \"endings\": [\"is hot [title] ok.\", \"is  cold\"], \"label\": 1}\n");
        auto h = load_task(Task::Hellaswag, hs);
        QVERIFY2(h.ok(), h.ok() ? "" : h.message().c_str());
        QCOMPARE((*h)[0].choices[0].context, std::string("Cooking: A man cooks. The pan"));
        QCOMPARE((*h)[0].choices[0].continuation, std::string(" is hot. ok."));
        QCOMPARE((*h)[0].choices[1].continuation, std::string(" is cold"));
        QCOMPARE((*h)[0].norm_bytes, (std::vector<double>{11, 7}));

        const std::string lb = write_file(dir_, "lb.jsonl", "{\"context\": \"He said\", \"continuation\": \"hello\"}\n");
        auto l = load_task(Task::Lambada, lb);
        QVERIFY(l.ok());
        QCOMPARE((*l)[0].choices.size(), size_t(1));
        QCOMPARE((*l)[0].choices[0].continuation, std::string(" hello"));
    }

    void rejectsBadFiles_data() {
        QTest::addColumn<QString>("content");
        QTest::addColumn<QString>("expect");
        QTest::newRow("not json") << "{\"query\": \"q\", \"choices\": [\"a\"], \"gold\": 0}\n{oops\n" << ":2: not a JSON object";
        QTest::newRow("gold out of range") << "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n" << "gold index 2";
        QTest::newRow("missing choices") << "{\"query\": \"q\", \"gold\": 0}\n" << "choices";
        QTest::newRow("empty") << "\n\n" << "no items";
    }
    void rejectsBadFiles() {
        QFETCH(QString, content);
        QFETCH(QString, expect);
        const std::string p = write_file(dir_, "bad.jsonl", content.toStdString());
        auto r = load_task(Task::ArcChallenge, p);
        QVERIFY(!r.ok());
        QVERIFY2(QString::fromStdString(r.message()).contains(expect), r.message().c_str());
        QVERIFY(!load_task(Task::ArcEasy, dir_.filePath("missing.jsonl").toStdString()).ok());
    }

    // Accuracy, first-wins ties and acc_norm with forced scores.
    void accuracyArithmetic() {
        std::vector<McItem> items(3);
        items[0].choices = {{"q0", " a"}, {"q0", " b"}};
        items[0].gold = 1;  // b wins: correct
        items[1].choices = {{"q1", " a"}, {"q1", " b"}};
        items[1].gold = 1;  // tie: the first choice wins, so wrong
        items[2].choices = {{"q2", " a"}, {"q2", " b"}, {"q2", " c"}};
        items[2].gold = 0;  // c wins: wrong
        FakeScorer f;
        f.table = {{"q0| a", {-5, false, 1}}, {"q0| b", {-2, false, 1}}, {"q1| a", {-3, false, 1}},
                   {"q1| b", {-3, false, 1}}, {"q2| a", {-4, false, 1}}, {"q2| b", {-9, false, 1}},
                   {"q2| c", {-1, false, 1}}};
        auto r = run_task(Task::ArcEasy, items, f);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        QCOMPARE(f.calls, 7);
        QCOMPARE(r->n, int64_t(3));
        QCOMPARE(r->acc, 1.0 / 3);
        QVERIFY(std::abs(r->acc_stderr - std::sqrt((1.0 / 3) * (2.0 / 3) / 2)) < 1e-12);
        QVERIFY(!r->acc_norm);

        // HellaSwag: by log-likelihood the short ending wins, per byte the long one.
        std::vector<McItem> hs(2);
        hs[0].choices = {{"c", " long ending here...."}, {"c", " short"}};
        hs[0].norm_bytes = {20, 5};
        hs[0].gold = 0;
        hs[1].choices = {{"d", " x"}, {"d", " y"}};
        hs[1].norm_bytes = {1, 1};
        hs[1].gold = 1;
        FakeScorer g;
        g.table = {{"c| long ending here....", {-10, false, 4}}, {"c| short", {-6, false, 1}},
                   {"d| x", {-2, false, 1}}, {"d| y", {-1, false, 1}}};
        auto h = run_task(Task::Hellaswag, hs, g);
        QVERIFY(h.ok());
        QCOMPARE(h->acc, 0.5);    // item 0 wrong (short wins), item 1 right
        QVERIFY(h->acc_norm.has_value());
        QCOMPARE(*h->acc_norm, 1.0);  // -10/20 > -6/5

        // LAMBADA: correct when greedy; perplexity over items' log-likelihoods.
        std::vector<McItem> lb(2);
        lb[0].choices = {{"e", " w"}};
        lb[1].choices = {{"f", " v"}};
        FakeScorer k;
        k.table = {{"e| w", {-1.5, true, 2}}, {"f| v", {-2.5, false, 1}}};
        auto l = run_task(Task::Lambada, lb, k);
        QVERIFY(l.ok());
        QCOMPARE(l->acc, 0.5);
        QVERIFY(l->ppl.has_value());
        QVERIFY(std::abs(*l->ppl - std::exp(2.0)) < 1e-12);

        const std::string md = to_markdown({*r, *h, *l});
        QVERIFY(md.find("| hellaswag | 2 | 0.5000") != std::string::npos);
        QVERIFY(to_json({*h}).find("\"acc_norm\": 1.0") != std::string::npos);
    }

    // Perplexity on a synthetic model equals llama-perplexity's formula applied here to Session logits.
    void perplexityMatchesFormula() {
        Model m = synth();
        auto tok = Tokenizer::create(m.vocab);
        QVERIFY(tok.ok());
        const int n_ctx = 16;
        std::vector<int32_t> tokens = tok->encode(kText, true);
        QVERIFY(tokens.size() >= 3 * n_ctx);
        QCOMPARE(tokens[0], tok->bos_id());
        PerplexityOptions po;
        po.n_ctx = n_ctx;
        po.max_chunks = 3;
        auto r = perplexity(m, *tok, kText, po);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());

        auto s = Session::create(m);
        QVERIFY(s.ok());
        double sum = 0, sum2 = 0;
        int count = 0;
        std::vector<double> chunk_ppl;
        for (int c = 0; c < 3; ++c) {
            s->reset();
            double cs = 0;
            for (int j = 0; j < n_ctx - 1; ++j) {
                const int32_t t = j == 0 ? tok->bos_id() : tokens[size_t(c * n_ctx + j)];
                auto z = s->eval(t);
                QVERIFY(z.ok());
                if (j < n_ctx / 2) continue;
                const double nll = -log_softmax(*z)[size_t(tokens[size_t(c * n_ctx + j + 1)])];
                sum += nll;
                sum2 += nll * nll;
                cs += nll;
                ++count;
            }
            chunk_ppl.push_back(std::exp(cs / (n_ctx - 1 - n_ctx / 2)));
        }
        const double mean = sum / count, ppl = std::exp(mean);
        const double err = ppl * std::sqrt((sum2 / count - mean * mean) / (count - 1));
        QCOMPARE(r->count, int64_t(count));
        QCOMPARE(count, 3 * 7);
        // perplexity() runs the windows batched (Session::eval_batch), which equals this eval loop
        // to float rounding (~1e-6 relative on the logits), not bit for bit.
        QVERIFY2(std::abs(r->ppl - ppl) < 1e-5 * ppl, qPrintable(QString("%1 vs %2").arg(r->ppl).arg(ppl)));
        QVERIFY(std::abs(r->ppl_error - err) < 1e-4 * err);
        QCOMPARE(r->chunk_ppl.size(), size_t(3));
        for (int c = 0; c < 3; ++c) QVERIFY(std::abs(r->chunk_ppl[size_t(c)] - chunk_ppl[size_t(c)]) < 1e-5 * chunk_ppl[size_t(c)]);
        QVERIFY(std::abs(r->cumulative_ppl.back() - ppl) < 1e-5 * ppl);

        // Too short a text, a window too small: errors, not crashes.
        PerplexityOptions big;
        big.n_ctx = 64;
        auto e = perplexity(m, *tok, "tiny", big);
        QVERIFY(!e.ok());
        QVERIFY2(QString::fromStdString(e.message()).contains("needs at least 128"), e.message().c_str());
        big.n_ctx = 2;
        QVERIFY(!perplexity(m, *tok, kText, big).ok());
    }

    // A KL base file written by hand in the documented format (uniform base distribution): the
    // library must read it and give KL(uniform || model) and top-1 agreement as computed here.
    void klAgainstHandWrittenBase() {
        Model m = synth();
        auto tok = Tokenizer::create(m.vocab);
        QVERIFY(tok.ok());
        const uint32_t V = uint32_t(m.config.vocab_size), n_ctx = 8, n_chunks = 2;
        std::vector<int32_t> tokens = tok->encode(kText, true);
        tokens.resize(n_ctx * n_chunks);
        const int32_t bos = tok->bos_id();
        const std::string path = dir_.filePath("uniform.klbase").toStdString();
        {
            std::ofstream f(path, std::ios::binary);
            f.write("EFKLBASE", 8);
            const uint32_t h[5] = {1, V, n_ctx, n_chunks, 0};
            f.write(reinterpret_cast<const char*>(h), sizeof h);
            f.write(reinterpret_cast<const char*>(&bos), 4);
            f.write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(tokens.size() * 4));
            const float lu = float(-std::log(double(V)));
            std::vector<float> row(V, lu);
            for (uint32_t p = 0; p < n_chunks * (n_ctx - 1 - n_ctx / 2); ++p) {
                const float nll = -lu;
                f.write(reinterpret_cast<const char*>(&nll), 4);
                f.write(reinterpret_cast<const char*>(row.data()), std::streamsize(V * 4));
            }
        }
        auto s = Session::create(m);
        QVERIFY(s.ok());
        std::vector<double> kls;
        int same = 0;
        for (uint32_t c = 0; c < n_chunks; ++c) {
            s->reset();
            for (uint32_t j = 0; j + 1 < n_ctx; ++j) {
                auto z = s->eval(j == 0 ? bos : tokens[c * n_ctx + j]);
                QVERIFY(z.ok());
                if (j < n_ctx / 2) continue;
                const auto lp = log_softmax(*z);
                double kl = 0;
                for (double v : lp) kl += (1.0 / V) * (double(float(-std::log(double(V)))) - v);
                kls.push_back(kl);
                same += argmax(*z) == 0;  // the uniform base's top-1 is the first id
            }
        }
        double mean = 0;
        for (double k : kls) mean += k;
        mean /= double(kls.size());
        auto r = compare_kl_base(m, path);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        QCOMPARE(r->count, int64_t(kls.size()));
        QVERIFY2(std::abs(r->mean_kl - mean) < 1e-5 * mean, qPrintable(QString("%1 vs %2").arg(r->mean_kl).arg(mean)));
        std::sort(kls.begin(), kls.end());
        QVERIFY(std::abs(r->max_kl - kls.back()) < 1e-5 * kls.back());
        QVERIFY(std::abs(r->median_kl - 0.5 * (kls[kls.size() / 2 - 1] + kls[kls.size() / 2])) < 1e-5 * mean);
        QCOMPARE(r->top1_agreement, double(same) / double(kls.size()));
        QVERIFY(std::abs(r->base_ppl - double(V)) < 1e-3 * V);

        // Corruptions: each is a clear error naming the file.
        std::string bytes;
        {
            std::ifstream f(path, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(f), {});
        }
        const auto broken = [&](const std::string& b, const char* expect) {
            const std::string p = dir_.filePath("broken.klbase").toStdString();
            std::ofstream(p, std::ios::binary | std::ios::trunc) << b;
            auto e = compare_kl_base(m, p);
            QVERIFY2(!e.ok(), expect);
            QVERIFY2(e.message().find(expect) != std::string::npos && e.message().find(p) != std::string::npos, e.message().c_str());
        };
        broken(bytes.substr(0, bytes.size() - 1), "the header implies");
        broken(bytes.substr(0, 20), "too short");
        std::string b2 = bytes;
        b2[0] = 'X';
        broken(b2, "wrong magic");
        std::string b3 = bytes;
        const uint32_t huge = 0xFFFFFFFFu;
        std::memcpy(&b3[12], &huge, 4);  // n_vocab
        broken(b3, "out of range");
        std::string b4 = bytes;
        const int32_t bad_tok = int32_t(V) + 5;
        std::memcpy(&b4[8 + 20 + 4 + 4], &bad_tok, 4);
        broken(b4, "token id");
        QVERIFY(!compare_kl_base(m, dir_.filePath("nope.klbase").toStdString()).ok());
        Model other = synth();
        other.config.vocab_size = 999;  // a model with another vocabulary is refused before running
        auto e = compare_kl_base(other, path);
        QVERIFY(!e.ok());
        QVERIFY2(QString::fromStdString(e.message()).contains("999"), e.message().c_str());
    }

    // write_kl_base + compare: a model against itself gives 0 and 100%, full or top-k; another seed
    // gives KL > 0; the top-k figure is a lower bound of the full one.
    void klRoundTrip() {
        Model m = synth();
        auto tok = Tokenizer::create(m.vocab);
        QVERIFY(tok.ok());
        KlBaseOptions ko;
        ko.ppl.n_ctx = 16;
        ko.ppl.max_chunks = 2;
        const std::string full = dir_.filePath("full.klbase").toStdString();
        const std::string topk = dir_.filePath("top8.klbase").toStdString();
        auto b = write_kl_base(m, *tok, kText, full, ko);
        QVERIFY2(b.ok(), b.ok() ? "" : b.message().c_str());
        ko.top_k = 8;
        QVERIFY(write_kl_base(m, *tok, kText, topk, ko).ok());
        for (const std::string& p : {full, topk}) {
            auto r = compare_kl_base(m, p);
            QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
            QCOMPARE(r->mean_kl, 0.0);
            QCOMPARE(r->max_kl, 0.0);
            QCOMPARE(r->top1_agreement, 1.0);
            QCOMPARE(r->count, int64_t(2 * 7));
            QVERIFY(std::abs(r->ppl - b->ppl) < 1e-9 * b->ppl);
            QVERIFY(std::abs(r->base_ppl - b->ppl) < 1e-5 * b->ppl);
        }
        Model other = synth(DType::F32, 8);
        auto rf = compare_kl_base(other, full);
        auto rk = compare_kl_base(other, topk);
        QVERIFY(rf.ok() && rk.ok());
        QVERIFY(rf->mean_kl > 0);
        QVERIFY(rk->mean_kl > 0);
        QVERIFY2(rk->mean_kl <= rf->mean_kl + 1e-6, qPrintable(QString("%1 %2").arg(rk->mean_kl).arg(rf->mean_kl)));
        QVERIFY(rf->p99_kl <= rf->max_kl && rf->median_kl <= rf->p99_kl);
        // A bad top-k and a cancelled run leave no file behind.
        ko.top_k = 100000;
        const std::string nofile = dir_.filePath("none.klbase").toStdString();
        QVERIFY(!write_kl_base(m, *tok, kText, nofile, ko).ok());
        ko.top_k = 0;
        Progress p;
        p.cancel();
        auto c = write_kl_base(m, *tok, kText, nofile, ko, p);
        QVERIFY(!c.ok());
        QVERIFY(!QFile::exists(QString::fromStdString(nofile)));
        QCOMPARE(QDir(dir_.path()).entryList(QStringList() << "none.klbase*").size(), 0);
    }
};

QTEST_GUILESS_MAIN(TestEval)
#include "test_eval.moc"
