// The bundled demo (resources/demo/edgefusion-demo-q8_0.gguf, the workbench's default model): it must
// be what resources/demo/README.md says — an edgefusion hybrid trained on tinyshakespeare with its own
// tokenizer, gates converged, routing mixed and cheaper than its dense twin — and a trained model, not a random one: on the held-out tail of its
// training text (the trainer's last 5 %) its perplexity is far below the vocabulary size an untrained
// model scores. An independent GGUF reader (@huggingface/gguf) parses the file.
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include <fstream>
#include <sstream>

#include "core/formats/format.h"
#include "runtime/eval/perplexity.h"
#include "runtime/router_analysis.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

using namespace ef;
using ef::test::run_node_script;

namespace {
const std::string kDemo = std::string(EF_SOURCE_DIR) + "/resources/demo/edgefusion-demo-q8_0.gguf";
}

class TestDemoModel : public QObject {
    Q_OBJECT
private slots:
    void loadsAndIsRouted() {
        auto m = load_model(kDemo);
        if (!m.ok()) QFAIL(m.message().c_str());
        QCOMPARE(QString::fromStdString(m->architecture), QString("edgefusion"));
        QCOMPARE(m->config.n_layers, int64_t(6));
        QCOMPARE(int64_t(m->vocab.tokens.size()), int64_t(1024));
        auto r = analyze_router(*m);
        if (!r.ok()) QFAIL(r.message().c_str());
        QCOMPARE(int(r->layers.size()), 6);
        QVERIFY2(r->converged, "the shipped demo's gates are documented as converged (< 0.15 bits)");
        for (const auto& l : r->layers) QVERIFY(l.gate >= 0.0 && l.gate <= 1.0);
        // Documented as mixed routing that is cheaper than the dense twin.
        QVERIFY2(r->ssm_layers > 0 && r->ssm_layers < 6, qPrintable(QString("%1 of 6 layers on the SSM branch").arg(r->ssm_layers)));
        QVERIFY2(r->gflops_per_token < r->dense_gflops_per_token,
                 qPrintable(QString("%1 vs dense %2 GFLOPs/token").arg(r->gflops_per_token).arg(r->dense_gflops_per_token)));
    }

    void isTrained() {
        EF_REQUIRE_SHARED(text_path, "text/tinyshakespeare.txt");
        std::ifstream in(text_path.toStdString(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string text = ss.str();
        const std::string tail = text.substr(text.size() - text.size() / 20);  // the trainer's validation part
        auto m = load_model(kDemo);
        QVERIFY(m.ok());
        auto tok = Tokenizer::create(m->vocab);
        if (!tok.ok()) QFAIL(tok.message().c_str());
        // Its own tokenizer: text comes back unchanged.
        const std::string probe = "ROMEO:\nWhat light through yonder window breaks?";
        QCOMPARE(QString::fromStdString(tok->decode(tok->encode(probe, false))), QString::fromStdString(probe));
        eval::PerplexityOptions po;
        po.n_ctx = 256;
        po.max_chunks = 10;
        auto p = eval::perplexity(*m, *tok, tail, po);
        if (!p.ok()) QFAIL(p.message().c_str());
        qInfo("demo perplexity on the held-out tail: %.2f over %lld tokens", p->ppl, static_cast<long long>(p->count));
        QVERIFY2(p->ppl < 150.0, qPrintable(QString("perplexity %1: not a trained model (uniform = 1024)").arg(p->ppl)));
    }

    void independentReaderParses() {
        auto r = run_node_script("gguf_parse.mjs", {QString::fromStdString(kDemo)});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const auto doc = QJsonDocument::fromJson(r.out.toUtf8());
        QVERIFY(doc.isObject());
        const auto md = doc.object().value("metadata").toObject();
        QCOMPARE(md.value("general.architecture").toObject().value("value").toString(), QString("edgefusion"));
        QCOMPARE(md.value("edgefusion.block_count").toObject().value("value").toVariant().toLongLong(), 6LL);
    }
};

QTEST_GUILESS_MAIN(TestDemoModel)
#include "test_demo_model.moc"
