// edgefusion-run, the board runner, end to end on the real stories260K against llama.cpp
// (node-llama-cpp): greedy generation equals llama.cpp's greedy continuation, and perplexity equals
// llama-perplexity's estimate computed here from llama.cpp's own logits on the same windows. bench
// and profile print well-formed JSON with positive numbers; bad input exits non-zero with a message.
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "core/formats/format.h"
#include "core/synth.h"
#include "tests/support/test_support.h"

using namespace ef;
using ef::test::run_node_script;
using ef::test::run_process;

namespace {

QString runner() { return QStringLiteral(EF_BINARY_DIR "/app/edgefusion-run"); }

bool write_file(const QString& path, const QByteArray& data) {
    QFile f(path);
    return f.open(QIODevice::WriteOnly) && f.write(data) == data.size();
}

}  // namespace

class TestRunner : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString bin_, gguf_;
    QString mismatch_, bigvocab_;  // bad model files (badInput)
    int bos_ = -1, eos_ = -1;

    // llama.cpp's token ids for a text (no BOS), via llama_tokenize.mjs on our GGUF.
    std::vector<int> llama_tokens(const QByteArray& text, QString* err) {
        const QString txt = dir_.filePath("tok-in.txt"), out = dir_.filePath("tok-out.txt");
        if (!write_file(txt, text)) {
            *err = "cannot write " + txt;
            return {};
        }
        const auto r = run_node_script("llama_tokenize.mjs", {"--model", gguf_, "--text", txt, "--out", out});
        if (r.exit_code != 0) {
            *err = r.err + r.out;
            return {};
        }
        QFile f(out);
        if (!f.open(QIODevice::ReadOnly)) {
            *err = "no output from llama_tokenize.mjs";
            return {};
        }
        std::vector<int> ids;
        for (const QByteArray& s : f.readAll().simplified().split(' '))
            if (!s.isEmpty()) ids.push_back(s.toInt());
        return ids;
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        QVERIFY2(QFile::exists(runner()), qPrintable(runner() + " is not built"));
        EF_REQUIRE_SHARED(bin, "models/stories260K.bin");
        QString err;
        QVERIFY2(!test::reference_modules(&err).isEmpty(), qPrintable(err));
        bin_ = bin;
        auto m = load_model(bin.toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        bos_ = m->vocab.bos_id;
        eos_ = m->vocab.eos_id;
        QVERIFY(m->vocab.add_bos && bos_ >= 0);
        gguf_ = dir_.filePath("stories260K.gguf");
        Status s = save_model(*m, gguf_.toStdString());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());

        // A GGUF whose metadata disagrees with its tensors: feed_forward_length says 32 more than
        // the FFN matrices have (the writer stores the config as given; only loading checks).
        SynthOptions so;
        so.arch = "llama";
        so.dim = 64;
        so.n_layers = 2;
        so.vocab = 300;
        so.seed = 3;
        so.context_length = 64;
        auto bad = synth_model(so);
        QVERIFY2(bad.ok(), bad.ok() ? "" : bad.message().c_str());
        bad->config.ffn_hidden += 32;
        mismatch_ = dir_.filePath("mismatch.gguf");
        s = save_model(*bad, mismatch_.toStdString());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        // A tokenizer with more tokens (400) than the embedding has rows (300): text can tokenize to
        // ids the model has no row for.
        auto big = synth_model(so);
        QVERIFY(big.ok());
        auto v = synth_vocab(400);
        QVERIFY(v.ok());
        big->vocab = *v;
        bigvocab_ = dir_.filePath("bigvocab.gguf");
        s = save_model(*big, bigvocab_.toStdString());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        auto back = load_model(bigvocab_.toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QCOMPARE(back->config.vocab_size, int64_t(300));
        QCOMPARE(int(back->vocab.tokens.size()), 400);
    }

    // Greedy from "Once upon a time" equals llama.cpp's temperature-0 continuation, from the llama2.c
    // file and from the GGUF (mmap). node-llama-cpp's own greedy loop costs ~1.5 s a token here, so it
    // runs for the first kShort tokens (text compared); the whole kLong-token continuation is checked
    // by feeding it to llama.cpp in one batch: at every step llama.cpp's argmax is our next token.
    void greedyMatchesLlamaCpp() {
        const QByteArray prompt = "Once upon a time";
        const int kShort = 8, kLong = 40;
        QString err;
        std::vector<int> ids = llama_tokens(prompt, &err);
        QVERIFY2(!ids.empty(), qPrintable(err));
        ids.insert(ids.begin(), bos_);
        QStringList list;
        for (int id : ids) list << QString::number(id);
        const auto ref = run_node_script("llama_eval.mjs", {"--model", gguf_, "--tokens", list.join(','), "--greedy", QString::number(kShort)});
        QVERIFY2(ref.exit_code == 0, qPrintable(ref.err + ref.out));
        const QJsonObject o = QJsonDocument::fromJson(ref.out.toUtf8()).object();
        QCOMPARE(o["greedy"].toArray().size(), kShort);
        const QString want_short = o["text"].toString().trimmed();
        QVERIFY(want_short.size() > 10);

        std::vector<int> ours;
        for (const QString& model : {bin_, gguf_}) {
            // Streamed text of the short run equals llama.cpp's detokenized greedy tokens.
            const auto r = run_process(runner(), {"generate", "-m", model, "-p", prompt, "-n", QString::number(kShort), "--temp", "0"});
            QVERIFY2(r.exit_code == 0, qPrintable(r.err));
            QVERIFY2(r.out.startsWith(prompt), qPrintable(r.out));
            QCOMPARE(r.out.mid(prompt.size()).trimmed(), want_short);
            // The long run's ids (prompt tokenized as llama.cpp does).
            const auto j = run_process(runner(), {"generate", "-m", model, "-p", prompt, "-n", QString::number(kLong), "--temp", "0", "--json"});
            QVERIFY2(j.exit_code == 0, qPrintable(j.err));
            const QJsonObject g = QJsonDocument::fromJson(j.out.toUtf8()).object();
            std::vector<int> p, t;
            for (const auto& v : g["prompt_tokens"].toArray()) p.push_back(v.toInt());
            for (const auto& v : g["tokens"].toArray()) t.push_back(v.toInt());
            QVERIFY(p == ids);
            QCOMPARE(int(t.size()), kLong);
            for (int i = 0; i < kShort; ++i) QCOMPARE(t[size_t(i)], o["greedy"].toArray()[i].toInt());
            qInfo("%s: %s", qPrintable(QFileInfo(model).fileName()), qPrintable(g["text"].toString()));
            if (ours.empty()) ours = t;
            QVERIFY(t == ours);  // llama2.c and GGUF agree
        }
        QStringList all = list;
        for (size_t i = 0; i + 1 < ours.size(); ++i) all << QString::number(ours[i]);
        const auto lr = run_node_script("llama_eval.mjs", {"--model", gguf_, "--tokens", all.join(','), "--logits"});
        QVERIFY2(lr.exit_code == 0, qPrintable(lr.err));
        const QJsonArray logits = QJsonDocument::fromJson(lr.out.toUtf8()).object()["logits"].toArray();
        QCOMPARE(logits.size(), all.size());
        for (int i = 0; i < kLong; ++i) {
            const QJsonArray row = logits[int(ids.size()) - 1 + i].toArray();
            int best = 0;
            for (int v = 1; v < row.size(); ++v)
                if (row[v].toDouble() > row[best].toDouble()) best = v;
            QVERIFY2(best == ours[size_t(i)], qPrintable(QString("step %1: llama.cpp %2, ours %3").arg(i).arg(best).arg(ours[size_t(i)])));
        }
    }

    // Sampling with a seed is reproducible; different seeds differ.
    void seededSampling() {
        auto gen = [&](const QString& seed) {
            return run_process(runner(), {"generate", "-m", bin_, "-p", "Once", "-n", "30", "--temp", "1.0", "--top-k", "0",
                                          "--top-p", "1", "--min-p", "0", "--seed", seed});
        };
        const auto a = gen("5"), b = gen("5"), c = gen("6");
        QVERIFY2(a.exit_code == 0, qPrintable(a.err));
        QCOMPARE(a.out, b.out);
        QVERIFY(a.out != c.out);
        // --threads reaches the session and does not change what is computed.
        const auto t = run_process(runner(), {"generate", "-m", bin_, "-p", "Once", "-n", "30", "--temp", "1.0", "--top-k", "0",
                                              "--top-p", "1", "--min-p", "0", "--seed", "5", "--threads", "2"}, 30000);
        QVERIFY2(t.exit_code == 0, qPrintable("with --threads 2: " + t.err));
        QCOMPARE(t.out, a.out);
        QVERIFY2(t.err.contains("threads: 2"), qPrintable(t.err));
    }

    // llama-perplexity's estimate, with llama.cpp's logits on the same windows, here.
    void perplexityMatchesLlamaCpp() {
        EF_REQUIRE_SHARED(shakespeare, "text/tinyshakespeare.txt");
        QFile f(shakespeare);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray text = f.read(3000);  // ASCII: any cut is valid text
        const QString slice = dir_.filePath("slice.txt");
        QVERIFY(write_file(slice, text));
        const int n_ctx = 128, n_chunks = 4;

        QString err;
        std::vector<int> tokens = llama_tokens(text, &err);
        QVERIFY2(!tokens.empty(), qPrintable(err));
        tokens.insert(tokens.begin(), bos_);  // llama-perplexity tokenizes with add_special
        QVERIFY2(int(tokens.size()) >= n_ctx * n_chunks, qPrintable(QString("only %1 tokens").arg(tokens.size())));

        const auto r = run_process(runner(), {"perplexity", "-m", bin_, "-f", slice, "-c", QString::number(n_ctx), "--chunks",
                                              QString::number(n_chunks)});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        // Same tokenization as llama.cpp's (the runner reports its count).
        QVERIFY2(r.err.contains(QString("perplexity: %1 tokens").arg(tokens.size())), qPrintable(r.err));

        const int first = n_ctx / 2;
        double nll = 0.0, nll2 = 0.0;
        int count = 0;
        std::vector<double> running;
        for (int i = 0; i < n_chunks; ++i) {
            std::vector<int> w(tokens.begin() + i * n_ctx, tokens.begin() + (i + 1) * n_ctx);
            w[0] = bos_;
            QStringList list;
            for (int id : w) list << QString::number(id);
            const auto ref = run_node_script("llama_eval.mjs", {"--model", gguf_, "--tokens", list.join(','), "--logits"});
            QVERIFY2(ref.exit_code == 0, qPrintable(ref.err));
            const QJsonArray logits = QJsonDocument::fromJson(ref.out.toUtf8()).object()["logits"].toArray();
            QCOMPARE(logits.size(), n_ctx);
            for (int k = first; k < n_ctx - 1; ++k) {
                const QJsonArray row = logits[k].toArray();
                double mx = -1e300;
                for (const auto& v : row) mx = std::max(mx, v.toDouble());
                double sum = 0.0;
                for (const auto& v : row) sum += std::exp(v.toDouble() - mx);
                const double v = mx + std::log(sum) - row[w[size_t(k + 1)]].toDouble();
                nll += v;
                nll2 += v * v;
                ++count;
            }
            running.push_back(std::exp(nll / count));
        }
        const double mean = nll / count;
        const double ppl = std::exp(mean);
        const double err_ppl = ppl * std::sqrt((nll2 / count - mean * mean) / (count - 1));

        const auto m = QRegularExpression(R"(Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+))").match(r.out);
        QVERIFY2(m.hasMatch(), qPrintable(r.out));
        const double got = m.captured(1).toDouble(), got_err = m.captured(2).toDouble();
        qInfo("PPL ours %.4f +/- %.5f, llama.cpp's logits %.4f +/- %.5f", got, got_err, ppl, err_ppl);
        QVERIFY2(std::abs(got - ppl) <= 1e-3 * ppl, qPrintable(QString("%1 vs %2").arg(got).arg(ppl)));
        QVERIFY2(std::abs(got_err - err_ppl) <= 1e-3 * err_ppl + 1e-5, qPrintable(QString("%1 vs %2").arg(got_err).arg(err_ppl)));
        // The per-chunk running values.
        auto it = QRegularExpression(R"(\[(\d+)\]([0-9.]+),)").globalMatch(r.out);
        int seen = 0;
        while (it.hasNext()) {
            const auto c = it.next();
            const int i = c.captured(1).toInt() - 1;
            QVERIFY(i >= 0 && i < n_chunks);
            QVERIFY2(std::abs(c.captured(2).toDouble() - running[size_t(i)]) <= 1e-3 * running[size_t(i)],
                     qPrintable(QString("chunk %1: %2 vs %3").arg(i + 1).arg(c.captured(2)).arg(running[size_t(i)])));
            ++seen;
        }
        QCOMPARE(seen, n_chunks);
    }

    void benchJson() {
        const auto r = run_process(runner(), {"bench", "-m", gguf_, "--pp", "32", "--tg", "16", "-r", "2", "--threads", "1", "--json"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QJsonParseError pe;
        const QJsonArray a = QJsonDocument::fromJson(r.out.toUtf8(), &pe).array();
        QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString() + "\n" + r.out));
        QCOMPARE(a.size(), 2);
        QCOMPARE(a[0].toObject()["test"].toString(), QString("pp32"));
        QCOMPARE(a[1].toObject()["test"].toString(), QString("tg16"));
        for (const auto& v : a) {
            const QJsonObject o = v.toObject();
            for (const char* k : {"model_type", "model_size", "model_n_params", "n_threads", "avg_ts", "stddev_ts", "samples_ts"})
                QVERIFY2(o.contains(k), k);
            QVERIFY(o["avg_ts"].toDouble() > 0);
            QVERIFY(o["stddev_ts"].toDouble() >= 0);
            QCOMPARE(o["samples_ts"].toArray().size(), 2);
            QCOMPARE(o["model_n_params"].toInteger(), 260032);  // shared/README.md's stories260K
            // Memory: K and V in F32 for 5 layers x 4 KV heads x head_dim 8 x n_ctx 512; a decode step
            // reads every weight but the looked-up embedding rows, except that the tied head reads it whole.
            QCOMPARE(o["n_ctx"].toInteger(), 512);
            QCOMPARE(o["kv_cache_bytes"].toInteger(), 2LL * 5 * 4 * 8 * 512 * 4);
            QCOMPARE(o["ssm_state_bytes"].toInteger(), 0);
            QCOMPARE(o["decode_weight_bytes"].toInteger(), o["model_size"].toInteger());  // tied: all of it
            QVERIFY(o["peak_rss_bytes"].toInteger() > 0);
            QVERIFY(!o["kernel_isa"].toString().isEmpty());
            QVERIFY(o["model_size"].toInteger() > 1000000);
        }
        // The Markdown table.
        const auto t = run_process(runner(), {"bench", "-m", bin_, "-p", "16", "-n", "8", "-r", "1"});
        QVERIFY2(t.exit_code == 0, qPrintable(t.err));
        QVERIFY2(t.out.contains("| model") && t.out.contains("| pp16 |") && t.out.contains("| tg8 |"), qPrintable(t.out));
    }

    // membw: well-formed JSON with a plausible rate (GB/s: more than a floppy, less than any RAM made),
    // and its flags checked.
    void membwJson() {
        const auto r = run_process(runner(), {"membw", "--size", "64", "-r", "2", "-t", "2", "--json"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QJsonParseError pe;
        const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8(), &pe).object();
        QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString() + "\n" + r.out));
        QCOMPARE(o["size_mib"].toInt(), 64);
        QCOMPARE(o["n_threads"].toInt(), 2);
        QCOMPARE(o["samples_gbps"].toArray().size(), 2);
        const double best = o["best_gbps"].toDouble(), mean = o["mean_gbps"].toDouble();
        qInfo("membw: %.2f GB/s best (%s loop)", best, qPrintable(o["loop"].toString()));
        QVERIFY2(best > 0.1 && best < 10000, qPrintable(r.out));
        QVERIFY(mean > 0 && mean <= best * (1 + 1e-3));
        const auto bad = run_process(runner(), {"membw", "--size", "0"});
        QVERIFY2(bad.exit_code == 2 && bad.err.contains("--size"), qPrintable(bad.err));
    }

    void profileJson() {
        const auto r = run_process(runner(), {"profile", "-m", bin_, "--pp", "32", "--tg", "16", "-r", "2", "--json"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        QJsonParseError pe;
        const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8(), &pe).object();
        QVERIFY2(pe.error == QJsonParseError::NoError, qPrintable(pe.errorString() + "\n" + r.out));
        for (const char* k : {"weight_bytes", "kv_cache_bytes", "peak_rss_bytes", "gflops_per_token"})
            QVERIFY2(o[k].toDouble() > 0, k);
        QCOMPARE(o["ssm_state_bytes"].toInteger(), 0);  // pure attention
        QCOMPARE(o["weight_bytes"].toInteger(), 4 * 260032);  // F32
        // K and V in F32 for 5 layers x 4 KV heads x head_dim 8 x n_ctx 512.
        QCOMPARE(o["kv_cache_bytes"].toInteger(), 2LL * 5 * 4 * 8 * 512 * 4);
        // 2 FLOPs per weight on the path (all but the tied embedding's lookup; the head reuses it) plus attention.
        const double gf = o["gflops_per_token"].toDouble();
        QVERIFY2(gf > 2.0 * 260032 * 1e-9 && gf < 2.0 * 260032 * 1e-9 * 1.2, qPrintable(QString::number(gf)));
        for (const char* k : {"prefill", "decode"}) {
            QVERIFY2(o[k].toObject()["avg_ts"].toDouble() > 0, k);
            QCOMPARE(o[k].toObject()["samples_ts"].toArray().size(), 2);
        }
        const QJsonArray layers = o["layers"].toArray();
        QCOMPARE(layers.size(), 5);
        for (const auto& l : layers) {
            QCOMPARE(l.toObject()["path"].toString(), QString("attention+ffn"));
            QVERIFY(l.toObject()["ms_per_token"].toDouble() > 0);
        }
        const QJsonObject ops = o["ops_ms_per_token"].toObject();
        for (const char* k : {"attention", "ffn", "output"}) QVERIFY2(ops[k].toDouble() > 0, k);
    }

    // A routed (edgefusion) model: the memory numbers follow the config and the hard-routed path
    // (gate = sigmoid(alpha / T) >= 0.5 runs attention, else the SSM branch), computed here.
    void profileRoutedModel() {
        SynthOptions so;
        so.arch = "edgefusion";
        so.dim = 64;
        so.n_layers = 4;
        so.vocab = 300;
        so.seed = 21;
        so.context_length = 256;
        auto m = synth_model(so);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        const QString path = dir_.filePath("routed.gguf");
        QVERIFY(save_model(*m, path.toStdString()).ok());
        const auto r = run_process(runner(), {"profile", "-m", path, "--pp", "8", "--tg", "8", "-r", "1", "--json"});
        QVERIFY2(r.exit_code == 0, qPrintable(r.err));
        const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object();
        const ModelConfig& c = m->config;
        qint64 kv = 0, ssm = 0;
        int n_attn = 0, n_ssm = 0;
        for (size_t il = 0; il < m->layers.size(); ++il) {
            const LayerDesc& d = m->layers[il];
            bool attn = d.mixer == MixerKind::Attention;
            MixerKind branch = d.mixer;
            if (d.mixer == MixerKind::Routed) {
                const Tensor* g = m->find("blk." + std::to_string(il) + ".router_gate");
                QVERIFY(g);
                const auto alpha_v = g->to_f32();
                QVERIFY(alpha_v.ok() && alpha_v->size() == 1);
                const float alpha = (*alpha_v)[0];
                attn = 1.0 / (1.0 + std::exp(-double(alpha) / c.router_temperature)) >= 0.5;
                branch = attn ? MixerKind::Attention : d.ssm_branch;
            }
            if (attn) {
                kv += 2LL * c.attn.n_kv_heads * c.attn.head_dim * c.context_length * 4;
                ++n_attn;
            } else if (branch == MixerKind::Mamba2) {
                ssm += 4LL * ((c.ssm.d_inner + 2 * c.ssm.n_groups * c.ssm.d_state) * (c.ssm.d_conv - 1) + c.ssm.d_inner * c.ssm.d_state);
                ++n_ssm;
            } else if (branch == MixerKind::Mamba1) {
                ssm += 4LL * (c.ssm.d_inner * (c.ssm.d_conv - 1) + c.ssm.d_inner * c.ssm.d_state);
                ++n_ssm;
            }
        }
        qInfo("routed path: %d attention, %d SSM layers", n_attn, n_ssm);
        QVERIFY(n_ssm > 0);
        QCOMPARE(o["kv_cache_bytes"].toInteger(), kv);
        QCOMPARE(o["ssm_state_bytes"].toInteger(), ssm);
        QCOMPARE(o["layers"].toArray().size(), 4);
        QVERIFY(o["gflops_per_token"].toDouble() > 0);
        QVERIFY(o["decode"].toObject()["avg_ts"].toDouble() > 0);
    }

    void badInput_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        const QString model = QStringLiteral(EF_SHARED_DIR "/models/stories260K.bin");
        QTest::newRow("no command") << QStringList{} << "usage";
        QTest::newRow("unknown command") << QStringList{"fly"} << "unknown command";
        QTest::newRow("missing model") << QStringList{"generate", "-m", "/nonexistent/m.gguf", "-p", "x"} << "cannot open model";
        QTest::newRow("no -m") << QStringList{"generate", "-p", "x"} << "-m MODEL";
        QTest::newRow("bad flag") << QStringList{"generate", "-m", model, "-p", "x", "--bogus"} << "unknown option";
        QTest::newRow("-n -1") << QStringList{"generate", "-m", model, "-p", "x", "-n", "-1"} << "out of range";
        QTest::newRow("-n text") << QStringList{"generate", "-m", model, "-p", "x", "-n", "many"} << "integer";
        QTest::newRow("top-p 2") << QStringList{"generate", "-m", model, "-p", "x", "--top-p", "2"} << "out of range";
        QTest::newRow("temp nan") << QStringList{"generate", "-m", model, "-p", "x", "--temp", "nan"} << "temp";
        QTest::newRow("threads 0") << QStringList{"bench", "-m", model, "-t", "0"} << "threads";
        QTest::newRow("pp > context") << QStringList{"bench", "-m", model, "--pp", "4096", "--tg", "0"} << "context";
        QTest::newRow("missing text") << QStringList{"perplexity", "-m", model, "-f", "/nonexistent/t.txt"} << "cannot open text";
        QTest::newRow("short text") << QStringList{"perplexity", "-m", model, "-f", "SHORT", "-c", "128"} << "needs at least";
        QTest::newRow("empty text") << QStringList{"perplexity", "-m", model, "-f", "EMPTY", "-c", "128"} << "needs at least";
        QTest::newRow("corrupt model") << QStringList{"generate", "-m", "CORRUPT", "-p", "x"} << "CORRUPT";
        QTest::newRow("long prompt") << QStringList{"generate", "-m", model, "-p", "LONG"} << "context";
        // Tensors that disagree with the config: every command names the tensor.
        const QString shape = "tensor blk.0.ffn_";
        QTest::newRow("mismatch generate") << QStringList{"generate", "-m", "MISMATCH", "-p", "x"} << shape;
        QTest::newRow("mismatch bench") << QStringList{"bench", "-m", "MISMATCH", "-p", "8", "-n", "8", "-r", "1"} << shape;
        QTest::newRow("mismatch profile") << QStringList{"profile", "-m", "MISMATCH", "--json"} << shape;
        QTest::newRow("mismatch perplexity") << QStringList{"perplexity", "-m", "MISMATCH", "-f", "SHORT"} << shape;
        // Out-of-range token ids: the prompt and the text use pieces past the embedding's 300 rows.
        QTest::newRow("token id generate") << QStringList{"generate", "-m", "BIGVOCAB", "-p", "zq xj", "-n", "4"}
                                           << "outside the vocabulary";
        QTest::newRow("token id perplexity") << QStringList{"perplexity", "-m", "BIGVOCAB", "-f", "ZQTEXT", "-c", "16"}
                                             << "outside the";
        // Sampling values.
        QTest::newRow("top-k -1") << QStringList{"generate", "-m", model, "-p", "x", "--top-k", "-1"} << "out of range";
        QTest::newRow("min-p 1.5") << QStringList{"generate", "-m", model, "-p", "x", "--min-p", "1.5"} << "out of range";
        QTest::newRow("temp -1") << QStringList{"generate", "-m", model, "-p", "x", "--temp", "-1"} << "out of range";
        QTest::newRow("repeat-penalty 0") << QStringList{"generate", "-m", model, "-p", "x", "--repeat-penalty", "0"} << "out of range";
        QTest::newRow("seed text") << QStringList{"generate", "-m", model, "-p", "x", "--seed", "abc"} << "seed";
    }
    void badInput() {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        const QString shortf = dir_.filePath("short.txt"), empty = dir_.filePath("empty.txt"), corrupt = dir_.filePath("corrupt.gguf");
        QVERIFY(write_file(shortf, "Once upon a time there was a short text.\n"));
        QVERIFY(write_file(empty, ""));
        QVERIFY(write_file(corrupt, QByteArray("GGUF\x03\0\0\0", 8) + QByteArray(64, '\xff')));
        const QString zq = dir_.filePath("zq.txt");
        QVERIFY(write_file(zq, QByteArray("zq xj qz jx ").repeated(40)));
        for (QString& a : args) {
            if (a == "SHORT") a = shortf;
            else if (a == "EMPTY") a = empty;
            else if (a == "CORRUPT") a = corrupt;
            else if (a == "LONG") a = QString("once upon a time ").repeated(300);
            else if (a == "MISMATCH") a = mismatch_;
            else if (a == "BIGVOCAB") a = bigvocab_;
            else if (a == "ZQTEXT") a = zq;
        }
        const auto r = run_process(runner(), args, 60000);
        QVERIFY2(r.exit_code > 0, qPrintable(QString("exit %1: %2").arg(r.exit_code).arg(r.err)));  // -1: crashed
        qInfo("%s", qPrintable(r.err.trimmed().left(300)));
        if (message == "CORRUPT") message = "corrupt.gguf";
        QVERIFY2(r.err.contains(message, Qt::CaseInsensitive), qPrintable(r.err));
    }
};

QTEST_GUILESS_MAIN(TestRunner)
#include "test_runner.moc"
