// runtime/eval on the real stories260K (../shared/models):
//  - perplexity over a tinyshakespeare slice (n_ctx 64, 3 chunks) equals the value this test
//    computes with llama-perplexity's formula from llama.cpp's own per-position logits
//    (node-llama-cpp on our GGUF conversion, tests/reference/llama_eval.mjs), within 1e-4 relative;
//  - KL of the model against its own saved base is 0 with 100% top-1; a Q8_0 copy of its matrices
//    gives a small positive KL;
//  - SessionScorer's log-likelihood of a request equals the sum over Session logits done here.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <future>

#include "core/formats/format.h"
#include "runtime/eval/perplexity.h"
#include "runtime/eval/tasks.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

using namespace ef;
using namespace ef::eval;

namespace {

double nll_of(const std::vector<double>& z, int32_t target) {
    double mx = z[0];
    for (double v : z) mx = std::max(mx, v);
    double s = 0;
    for (double v : z) s += std::exp(v - mx);
    return mx + std::log(s) - z[size_t(target)];
}

}  // namespace

class TestEvalReference : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    Model model_;
    std::string text_;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        EF_REQUIRE_SHARED(bin, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        EF_REQUIRE_SHARED(txt, "text/tinyshakespeare.txt");
        LoadOptions lo;
        lo.tokenizer_path = tok.toStdString();
        auto m = load_model(bin.toStdString(), lo);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        model_ = std::move(*m);
        std::ifstream in(txt.toStdString(), std::ios::binary);
        text_.resize(1200);  // a short slice: plain ASCII, > 3 * 64 tokens
        in.read(text_.data(), std::streamsize(text_.size()));
        QVERIFY(in.gcount() == 1200);
    }

    void perplexityMatchesLlamaCpp() {
        QString err;
        QVERIFY2(!test::reference_modules(&err).isEmpty(), qPrintable(err));
        auto tok = Tokenizer::create(model_.vocab);
        QVERIFY(tok.ok());
        const int n_ctx = 64, n_chunks = 3;
        PerplexityOptions po;
        po.n_ctx = n_ctx;
        po.max_chunks = n_chunks;
        auto r = perplexity(model_, *tok, text_, po);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        QCOMPARE(r->n_chunks, n_chunks);

        const QString gguf = dir_.filePath("stories260K.gguf");
        Status s = save_model(model_, gguf.toStdString());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        // llama-perplexity tokenizes the whole text with BOS and replaces each chunk's first token by BOS.
        const std::vector<int32_t> tokens = tok->encode(text_, true);
        QVERIFY(tokens.size() >= size_t(n_chunks * n_ctx));
        QCOMPARE(tokens[0], int32_t(1));
        std::vector<std::future<test::ProcessResult>> runs;
        for (int c = 0; c < n_chunks; ++c) {
            QStringList ids;
            for (int j = 0; j < n_ctx - 1; ++j) ids << QString::number(j == 0 ? 1 : tokens[size_t(c * n_ctx + j)]);
            const QStringList args = {"--model", gguf, "--tokens", ids.join(','), "--logits", "--context", QString::number(n_ctx)};
            runs.push_back(std::async(std::launch::async, [args] { return test::run_node_script("llama_eval.mjs", args, 300000); }));
        }
        double sum = 0, sum2 = 0;
        int count = 0;
        for (int c = 0; c < n_chunks; ++c) {
            const auto out = runs[size_t(c)].get();
            QVERIFY2(out.exit_code == 0, qPrintable(out.err + out.out));
            const QJsonArray logits = QJsonDocument::fromJson(out.out.toUtf8()).object()["logits"].toArray();
            QCOMPARE(logits.size(), n_ctx - 1);
            double chunk = 0;
            for (int j = n_ctx / 2; j < n_ctx - 1; ++j) {
                std::vector<double> z;
                for (const QJsonValue& v : logits[j].toArray()) z.push_back(v.toDouble());
                QCOMPARE(z.size(), size_t(512));
                const double nll = nll_of(z, tokens[size_t(c * n_ctx + j + 1)]);
                sum += nll;
                sum2 += nll * nll;
                chunk += nll;
                ++count;
            }
            const double chunk_ppl = std::exp(chunk / (n_ctx - 1 - n_ctx / 2));
            QVERIFY2(std::abs(r->chunk_ppl[size_t(c)] - chunk_ppl) < 1e-4 * chunk_ppl,
                     qPrintable(QString("chunk %1: ours %2, llama.cpp %3").arg(c).arg(r->chunk_ppl[size_t(c)]).arg(chunk_ppl)));
        }
        const double mean = sum / count, ppl = std::exp(mean);
        const double err_ppl = ppl * std::sqrt((sum2 / count - mean * mean) / (count - 1));
        qInfo("stories260K tinyshakespeare[0:1200] n_ctx 64 x3: ours %.6f +/- %.6f, llama.cpp logits %.6f +/- %.6f",
              r->ppl, r->ppl_error, ppl, err_ppl);
        QCOMPARE(r->count, int64_t(count));
        QVERIFY2(std::abs(r->ppl - ppl) < 1e-4 * ppl, qPrintable(QString("%1 vs %2").arg(r->ppl).arg(ppl)));
        QVERIFY2(std::abs(r->ppl_error - err_ppl) < 1e-3 * err_ppl, qPrintable(QString("%1 vs %2").arg(r->ppl_error).arg(err_ppl)));
    }

    void klOfSelfAndQ8() {
        auto tok = Tokenizer::create(model_.vocab);
        QVERIFY(tok.ok());
        KlBaseOptions ko;
        ko.ppl.n_ctx = 64;
        ko.ppl.max_chunks = 3;
        const std::string base = dir_.filePath("f32.klbase").toStdString();
        auto b = write_kl_base(model_, *tok, text_, base, ko);
        QVERIFY2(b.ok(), b.ok() ? "" : b.message().c_str());
        auto self = compare_kl_base(model_, base);
        QVERIFY2(self.ok(), self.ok() ? "" : self.message().c_str());
        QCOMPARE(self->mean_kl, 0.0);
        QCOMPARE(self->max_kl, 0.0);
        QCOMPARE(self->top1_agreement, 1.0);

        // Q8_0 copy: every 2-D weight whose rows fit whole 32-element blocks.
        Model q = model_;
        int converted = 0;
        for (Tensor& t : q.tensors) {
            if (t.shape.size() != 2 || t.row_length() % 32 != 0) continue;
            auto v = t.to_f32();
            QVERIFY(v.ok());
            auto qt = Tensor::from_f32(t.name, t.shape, *v, DType::Q8_0);
            QVERIFY2(qt.ok(), qt.ok() ? "" : qt.message().c_str());
            t = std::move(*qt);
            ++converted;
        }
        QVERIFY(converted >= 5 * 6);  // q, k, v, o, gate, up per layer (down's rows are 172 long)
        auto r = compare_kl_base(q, base);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        qInfo("Q8_0 vs F32: mean KL %.6g +/- %.3g, median %.3g, p99 %.3g, max %.3g, top-1 %.2f%%, PPL %.4f vs %.4f",
              r->mean_kl, r->kl_error, r->median_kl, r->p99_kl, r->max_kl, 100 * r->top1_agreement, r->ppl, r->base_ppl);
        QVERIFY(r->mean_kl > 0);
        QVERIFY(r->mean_kl < 0.01);
        QVERIFY(r->top1_agreement > 0.9);
        QVERIFY(std::abs(r->ppl / r->base_ppl - 1) < 0.02);
    }

    // The scorer's split and sum, redone here from Session logits.
    void scorerLogLikelihood() {
        auto tok = Tokenizer::create(model_.vocab);
        QVERIFY(tok.ok());
        auto sc = SessionScorer::create(model_, *tok);
        QVERIFY(sc.ok());
        const Request req{"Once upon a time, there was a little", " girl named Lily."};
        auto ll = (*sc)->score(req);
        QVERIFY2(ll.ok(), ll.ok() ? "" : ll.message().c_str());
        const auto whole = tok->encode(req.context + req.continuation, true);
        const size_t n_ctx = tok->encode(req.context, true).size();
        QCOMPARE(ll->n_tokens, int64_t(whole.size() - n_ctx));
        auto s = Session::create(model_);
        QVERIFY(s.ok());
        double sum = 0;
        bool greedy = true;
        for (size_t i = 0; i + 1 < whole.size(); ++i) {
            auto z = s->eval(whole[i]);
            QVERIFY(z.ok());
            if (i + 1 < n_ctx) continue;
            sum -= nll_of(std::vector<double>(z->begin(), z->end()), whole[i + 1]);
            greedy = greedy && argmax(*z) == whole[i + 1];
        }
        // The scorer evaluates the continuation batched (eval_batch), this loop one token at a
        // time: the same arithmetic up to float summation order in the GEMM and attention kernels.
        QVERIFY2(std::abs(ll->logprob - sum) < 1e-5 * std::abs(sum), qPrintable(QString("%1 vs %2").arg(ll->logprob).arg(sum)));
        QCOMPARE(ll->greedy, greedy);
        // The story model finds " girl" after this context likelier than " rock".
        auto other = (*sc)->score({req.context, " rock named Lily."});
        QVERIFY(other.ok());
        QVERIFY(other->logprob < ll->logprob);
    }
};

QTEST_GUILESS_MAIN(TestEvalReference)
#include "test_eval_reference.moc"
