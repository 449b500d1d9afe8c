// The real llama2.c model stories260K (shared/models) end to end: read with its tokenizer,
// converted to GGUF and run by llama.cpp (node-llama-cpp, tests/reference/llama_eval.mjs), whose
// greedy story must be the one shared/README.md describes; and converted through safetensors
// and back without changing a single weight.
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cstring>
#include <map>

#include "core/formats/format.h"
#include "tests/support/test_support.h"

using namespace ef;

namespace {

QString sha256(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    QCryptographicHash h(QCryptographicHash::Sha256);
    h.addData(&f);
    return QString::fromLatin1(h.result().toHex());
}

const std::string kSpace = "\xe2\x96\x81";  // "▁"

// SentencePiece BPE encoding as llama2.c's run.c describes it: a dummy-prefix space, one piece
// per UTF-8 character (bytes as <0xXX> tokens when absent), then repeatedly merge the adjacent
// pair whose concatenation is a piece with the best score.
std::vector<int> spm_encode(const Vocab& v, const std::string& text) {
    std::map<std::string, int> id;
    for (size_t i = 0; i < v.tokens.size(); ++i) id.emplace(v.tokens[i], int(i));
    std::string s = kSpace;
    for (char c : text) s += c == ' ' ? kSpace : std::string(1, c);
    std::vector<int> out;
    for (size_t i = 0; i < s.size();) {
        size_t len = 1;
        while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
        auto it = id.find(s.substr(i, len));
        if (it != id.end()) {
            out.push_back(it->second);
        } else {
            for (size_t k = 0; k < len; ++k) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "<0x%02X>", static_cast<unsigned char>(s[i + k]));
                out.push_back(id.at(buf));
            }
        }
        i += len;
    }
    for (;;) {
        float best = -1e30f;
        int best_i = -1, best_id = -1;
        for (size_t i = 0; i + 1 < out.size(); ++i) {
            auto it = id.find(v.tokens[size_t(out[i])] + v.tokens[size_t(out[i + 1])]);
            if (it != id.end() && v.scores[size_t(it->second)] > best) {
                best = v.scores[size_t(it->second)];
                best_i = int(i);
                best_id = it->second;
            }
        }
        if (best_i < 0) break;
        out[size_t(best_i)] = best_id;
        out.erase(out.begin() + best_i + 1);
    }
    return out;
}

std::string decode(const Vocab& v, const std::vector<int>& ids) {
    std::string out;
    for (int i : ids) {
        const std::string& t = v.tokens.at(size_t(i));
        if (v.token_types[size_t(i)] == 6) {
            out += char(std::stoi(t.substr(3, 2), nullptr, 16));
        } else if (v.token_types[size_t(i)] == 1) {
            for (size_t p = 0; p < t.size();) {
                if (t.compare(p, kSpace.size(), kSpace) == 0) {
                    out += ' ';
                    p += kSpace.size();
                } else {
                    out += t[p++];
                }
            }
        }
    }
    return out;
}

void same_tensors(const Model& a, const Model& b, const char* what) {
    QCOMPARE(b.tensors.size(), a.tensors.size());
    for (const Tensor& x : a.tensors) {
        const Tensor* y = b.find(x.name);
        QVERIFY2(y, qPrintable(QString("%1: %2 missing").arg(what, x.name.c_str())));
        QVERIFY2(y->dtype == x.dtype && y->shape == x.shape, qPrintable(QString("%1: %2").arg(what, x.name.c_str())));
        QVERIFY2(y->data.size() == x.data.size() && std::memcmp(y->data.data(), x.data.data(), x.data.size()) == 0,
                 qPrintable(QString("%1: %2 differs").arg(what, x.name.c_str())));
    }
}

}  // namespace

class TestStories260K : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString model_path_, tok_path_;
    Model model_;

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void sharedFilesAreTheListedOnes() {
        EF_REQUIRE_SHARED(model, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        QCOMPARE(sha256(model), QString("b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"));
        QCOMPARE(sha256(tok), QString("037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"));
        model_path_ = model;
        tok_path_ = tok;
    }

    void loads() {
        QVERIFY2(!model_path_.isEmpty(), "shared files missing");
        // No tokenizer path: tok512.bin beside the checkpoint is found (tok<vocab_size>.bin).
        auto m = load_model(model_path_.toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        // shared/README.md: dim 64, hidden 172, 5 layers, 8 heads / 4 KV heads, vocab 512, context 512.
        const ModelConfig& c = m->config;
        QCOMPARE(c.dim, 64);
        QCOMPARE(c.ffn_hidden, 172);
        QCOMPARE(c.n_layers, 5);
        QCOMPARE(c.attn.n_heads, 8);
        QCOMPARE(c.attn.n_kv_heads, 4);
        QCOMPARE(c.vocab_size, 512);
        QCOMPARE(c.context_length, 512);
        QVERIFY(c.tied_embeddings);
        QCOMPARE(m->tensors.size(), size_t(2 + 9 * 5));
        QCOMPARE(m->vocab.tokens.size(), size_t(512));
        QCOMPARE(m->vocab.bos_id, 1);
        QCOMPARE(m->vocab.eos_id, 2);
        QCOMPARE(m->vocab.tokens[1], std::string("<s>"));
        // An explicit tokenizer path gives the same vocabulary.
        LoadOptions opts;
        opts.tokenizer_path = tok_path_.toStdString();
        auto m2 = load_model(model_path_.toStdString(), opts);
        QVERIFY(m2.ok());
        QVERIFY(m2->vocab.tokens == m->vocab.tokens);
        model_ = std::move(*m);
    }

    // Converted to GGUF, llama.cpp itself runs it and tells the README's story.
    void llamaCppTellsTheStory() {
        QVERIFY2(!model_.tensors.empty(), "model did not load");
        QString err;
        QVERIFY2(!test::reference_modules(&err).isEmpty(), qPrintable(err));
        const QString gguf = dir_.filePath("stories260K.gguf");
        Status s = save_model(model_, gguf.toStdString());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());

        std::vector<int> prompt = {1};
        for (int id : spm_encode(model_.vocab, "Once upon a time")) prompt.push_back(id);
        QVERIFY(prompt.size() >= 3);
        QStringList ids;
        for (int id : prompt) ids << QString::number(id);
        const auto r = test::run_node_script("llama_eval.mjs", {"--model", gguf, "--tokens", ids.join(','), "--greedy", "24"}, 600000);
        QVERIFY2(r.exit_code == 0, qPrintable(r.err + r.out));
        const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object();
        std::vector<int> greedy;
        for (const QJsonValue& v : o["greedy"].toArray()) greedy.push_back(v.toInt());
        QCOMPARE(greedy.size(), size_t(24));
        const QString story = QString::fromStdString(decode(model_.vocab, greedy));
        qInfo("prompt ids %s -> %s", qPrintable(ids.join(',')), qPrintable(story));
        QVERIFY2(story.contains("girl"), qPrintable(story));
        QVERIFY2(story.contains("Lily"), qPrintable(story));
        // llama.cpp's own detokenizer agrees with our reading of the vocabulary.
        QCOMPARE(o["text"].toString().trimmed(), story.trimmed());

        // GGUF back into a model: the same weights.
        auto back = load_model(gguf.toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        same_tensors(model_, *back, "llama2c -> gguf");
        QVERIFY(back->vocab.tokens == model_.vocab.tokens);
        QVERIFY(back->vocab.scores == model_.vocab.scores);
        QVERIFY(back->vocab.token_types == model_.vocab.token_types);
    }

    // llama2.c -> safetensors (q/k permuted to HF order) -> model, and GGUF -> safetensors -> model.
    void safetensorsRoundTrip() {
        QVERIFY2(!model_.tensors.empty(), "model did not load");
        const QString d1 = dir_.filePath("st1");
        QDir().mkpath(d1);
        Status s = save_model(model_, (d1 + "/model.safetensors").toStdString());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        auto st = load_model(d1.toStdString());
        QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
        QVERIFY(st->config == model_.config);
        same_tensors(model_, *st, "llama2c -> safetensors");
        QVERIFY(st->vocab.tokens == model_.vocab.tokens);
        QVERIFY(st->vocab.scores == model_.vocab.scores);
        QVERIFY(st->vocab.token_types == model_.vocab.token_types);
        // The q weights on disk really are in HF's order (differ from the canonical bytes).
        const Tensor* q = model_.find("blk.0.attn_q.weight");
        QFile f(d1 + "/model.safetensors");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray all = f.readAll();
        QVERIFY(!all.contains(QByteArray(reinterpret_cast<const char*>(q->data.data()), qsizetype(q->data.size()))));

        const QString gguf = dir_.filePath("rt.gguf");
        QVERIFY(save_model(model_, gguf.toStdString()).ok());
        auto g = load_model(gguf.toStdString());
        QVERIFY(g.ok());
        const QString d2 = dir_.filePath("st2");
        QDir().mkpath(d2);
        QVERIFY(save_model(*g, (d2 + "/model.safetensors").toStdString()).ok());
        auto st2 = load_model((d2 + "/model.safetensors").toStdString());
        QVERIFY2(st2.ok(), st2.ok() ? "" : st2.message().c_str());
        same_tensors(*g, *st2, "gguf -> safetensors");
        same_tensors(model_, *st2, "llama2c -> gguf -> safetensors");
    }

    // Writing llama2.c again gives the published file and tokenizer back, byte for byte.
    void llama2cRoundTrip() {
        QVERIFY2(!model_.tensors.empty(), "model did not load");
        const QString out = dir_.filePath("again.bin");
        Status s = save_model(model_, out.toStdString());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        QCOMPARE(sha256(dir_.filePath("again.tok.bin")), sha256(tok_path_));
        QFile a(out), b(model_path_);
        QVERIFY(a.open(QIODevice::ReadOnly) && b.open(QIODevice::ReadOnly));
        const QByteArray x = a.readAll(), y = b.readAll();
        QCOMPARE(x.size(), y.size());
        // The RoPE tables are recomputed; everything else is copied. Compare the weights exactly
        // and the tables to float precision.
        const qsizetype freq_start = 28 + 4 * (512 * 64 + 5 * (64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 3 * 172 * 64) + 64);
        const qsizetype freq_floats = 2 * 512 * 4;
        QCOMPARE(freq_start + 4 * freq_floats, y.size());
        QVERIFY(x.left(freq_start) == y.left(freq_start));
        for (qsizetype i = 0; i < freq_floats; ++i) {
            float fx, fy;
            std::memcpy(&fx, x.constData() + freq_start + 4 * i, 4);
            std::memcpy(&fy, y.constData() + freq_start + 4 * i, 4);
            QVERIFY2(std::abs(fx - fy) < 1e-4f, qPrintable(QString("table %1: %2 vs %3").arg(i).arg(fx).arg(fy)));
        }
    }
};

// llama.cpp on a busy machine can outlast QtTest's default 5-minute watchdog per test function.
int main(int argc, char** argv) {
    if (qEnvironmentVariableIsEmpty("QTEST_FUNCTION_TIMEOUT")) qputenv("QTEST_FUNCTION_TIMEOUT", "900000");
    QCoreApplication app(argc, argv);
    TestStories260K t;
    QTEST_SET_MAIN_SOURCE_PATH
    return QTest::qExec(&t, argc, argv);
}
#include "test_stories260k.moc"
