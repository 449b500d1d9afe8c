// core/train/train_data.h: the byte-fallback BPE (merges worked out by hand on a tiny text; on the
// real tinyshakespeare text the runtime's SentencePiece tokenizer gives the same ids as our encoder
// and decodes back to the text), the batch sampler (windows are slices of the stream, seeded,
// resumable), the validation split and the "shorter than one batch" error.
#include <QTemporaryDir>
#include <QtTest>
#include <fstream>
#include <sstream>

#include "core/formats/format.h"
#include "core/synth.h"
#include "core/train/train_data.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

using namespace ef;
using namespace ef::train;

namespace {

const std::string kSp = "\xE2\x96\x81";  // "▁"

std::string read_all(const QString& path) {
    std::ifstream f(path.toStdString(), std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

class TestTrainData : public QObject {
    Q_OBJECT
private slots:
    void bpe_merges_by_hand() {
        // Words: "▁ab" x3, "▁cd" x1. Characters by count: ▁ 4, a 3, b 3, c 1, d 1 -> ids 259..263.
        // Pairs: (▁,a) 3 and (a,b) 3 tie -> the smaller text "ab" (0x61 < 0xE2) merges first (id 264);
        // then (▁,ab) 3 -> "▁ab" (265); (▁,c) and (c,d) occur once: stop.
        auto v = train_bpe("ab ab ab cd", BpeOptions{300, 0});
        QVERIFY2(v.ok(), v.ok() ? "" : v.message().c_str());
        QCOMPARE(v->tokens.size(), size_t(266));
        QCOMPARE(v->tokens[259], kSp);
        QCOMPARE(v->tokens[260], std::string("a"));
        QCOMPARE(v->tokens[262], std::string("c"));
        QCOMPARE(v->tokens[264], std::string("ab"));
        QCOMPARE(v->tokens[265], kSp + "ab");
        QCOMPARE(v->tokens[3], std::string("<0x00>"));
        QCOMPARE(v->token_types[3], 6);
        QVERIFY(v->scores[264] > v->scores[265]);  // earlier merge, higher priority
        QCOMPARE(bpe_encode(*v, "ab ab"), (std::vector<int32_t>{265, 265}));
        QCOMPARE(bpe_encode(*v, "cd ab"), (std::vector<int32_t>{259, 262, 263, 265}));
        // A newline and a character never seen are byte tokens: '\n' = 0x0A -> id 3 + 10; 'z' -> 3 + 0x7A.
        QCOMPARE(bpe_encode(*v, "ab\nz"), (std::vector<int32_t>{265, 13, 3 + 0x7A}));
        auto tok = Tokenizer::create(*v);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        QCOMPARE(tok->encode("ab\nz", false), (std::vector<int32_t>{265, 13, 3 + 0x7A}));
    }

    void bpe_errors() {
        auto small = train_bpe("abc", BpeOptions{259, 0});
        QVERIFY(!small.ok());
        QVERIFY(small.message().find("at least 260") != std::string::npos);
        auto empty = train_bpe("", BpeOptions{512, 0});
        QVERIFY(!empty.ok());
    }

    void shakespeare_runtime_agrees() {
        EF_REQUIRE_SHARED(path, "text/tinyshakespeare.txt");
        const std::string text = read_all(path);
        QVERIFY(text.size() > 1000000);
        QElapsedTimer timer;
        timer.start();
        auto v = train_bpe(text, BpeOptions{1024, 0});
        QVERIFY2(v.ok(), v.ok() ? "" : v.message().c_str());
        qInfo("BPE 1024 on %zu bytes: %lld ms", text.size(), (long long)timer.elapsed());
        QCOMPARE(v->tokens.size(), size_t(1024));
        auto tok = Tokenizer::create(*v);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        const std::vector<int32_t> ours = bpe_encode(*v, text);
        const std::vector<int32_t> rt = tok->encode(text, false);
        QCOMPARE(rt.size(), ours.size());
        QVERIFY(rt == ours);
        QVERIFY(ours.size() < text.size() / 2);  // the merges compress: well under one token per byte
        QCOMPARE(tok->decode(rt), text);
    }

    // Independent reference: llama.cpp (node-llama-cpp) reads our vocabulary from a GGUF and tokenizes
    // a part of the text with the same ids as our encoder.
    void llamacpp_agrees() {
        EF_REQUIRE_SHARED(path, "text/tinyshakespeare.txt");
        const std::string text = read_all(path);
        auto v = train_bpe(text, BpeOptions{512, 0});
        QVERIFY(v.ok());
        SynthOptions o;
        o.arch = "llama";
        o.dim = 32;
        o.n_layers = 1;
        o.vocab = 512;
        auto m = synth_model(o);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        m->vocab = *v;
        QTemporaryDir dir;
        const QString gguf = dir.filePath("bpe.gguf"), txt = dir.filePath("part.txt"), ids = dir.filePath("part.ids");
        QVERIFY(save_model(*m, gguf.toStdString()).ok());
        const std::string part = text.substr(200000, 30000) + " caf\xC3\xA9 \xF0\x9F\x99\x82\tend";
        {
            QFile f(txt);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(part.data(), qint64(part.size()));
        }
        const auto r = ef::test::run_node_script("llama_tokenize.mjs", {"--model", gguf, "--text", txt, "--out", ids});
        QVERIFY2(r.exit_code == 0, qPrintable("llama_tokenize.mjs failed: " + r.err.right(2000)));
        QFile idf(ids);
        QVERIFY(idf.open(QIODevice::ReadOnly));
        std::vector<int32_t> ref;
        for (const QByteArray& s : idf.readAll().simplified().split(' '))
            if (!s.isEmpty()) ref.push_back(s.toInt());
        const std::vector<int32_t> ours = bpe_encode(*v, part);
        QCOMPARE(ours.size(), ref.size());
        QVERIFY(ours == ref);
    }

    void unicode_round_trip() {
        // Characters outside the kept alphabet (max_alphabet 8) fall back to bytes; decode restores them.
        const std::string text = "h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\x99\x82 hello world\ttab hello";
        auto v = train_bpe(text, BpeOptions{280, 8});
        QVERIFY2(v.ok(), v.ok() ? "" : v.message().c_str());
        auto tok = Tokenizer::create(*v);
        QVERIFY(tok.ok());
        const auto ids = bpe_encode(*v, text);
        QCOMPARE(tok->encode(text, false), ids);
        QCOMPARE(tok->decode(ids), text);
    }

    void documents_start_with_bos() {
        const std::string text = "First:\nto be\n\nSecond:\nor not\n\n\nThird";
        const auto paras = split_paragraphs(text);
        QCOMPARE(paras.size(), size_t(3));
        QCOMPARE(std::string(paras[0]), std::string("First:\nto be\n\n"));
        QCOMPARE(std::string(paras[1]), std::string("Second:\nor not\n\n\n"));
        QCOMPARE(std::string(paras[2]), std::string("Third"));
        auto v = train_bpe(text, BpeOptions{300, 0});
        QVERIFY(v.ok());
        auto tok = Tokenizer::create(*v);
        QVERIFY(tok.ok());
        const std::vector<int32_t> ids = tokenize_documents(*tok, text);
        // BOS (id 1) opens each paragraph; each decodes back to its text.
        std::vector<size_t> bos;
        for (size_t i = 0; i < ids.size(); ++i)
            if (ids[i] == 1) bos.push_back(i);
        QCOMPARE(bos.size(), size_t(3));
        QCOMPARE(bos[0], size_t(0));
        bos.push_back(ids.size());
        for (size_t k = 0; k < 3; ++k) {
            const std::vector<int32_t> part(ids.begin() + std::ptrdiff_t(bos[k] + 1), ids.begin() + std::ptrdiff_t(bos[k + 1]));
            QCOMPARE(tok->decode(part), std::string(paras[k]));
            QCOMPARE(part, bpe_encode(*v, paras[k]));  // a paragraph alone: our encoder agrees too
        }
    }

    void sampler_windows() {
        std::vector<int32_t> stream(1000);
        for (size_t i = 0; i < stream.size(); ++i) stream[i] = int32_t(i);
        auto s = BatchSampler::create(stream, 4, 16, 42, "data");
        QVERIFY(s.ok());
        std::vector<int32_t> b;
        for (int k = 0; k < 20; ++k) {
            s->next(b);
            QCOMPARE(b.size(), size_t(4 * 17));
            for (int r = 0; r < 4; ++r) {
                const int32_t first = b[size_t(r * 17)];
                QVERIFY(first >= 0 && first <= 1000 - 17);
                for (int t = 0; t < 17; ++t) QCOMPARE(b[size_t(r * 17 + t)], first + t);  // a contiguous slice
            }
        }
        // Resume from a saved cursor: the same batches follow.
        const std::string st = s->state();
        std::vector<int32_t> a1, a2, c1, c2;
        s->next(a1);
        s->next(a2);
        auto r = BatchSampler::create(stream, 4, 16, 7, "data");
        QVERIFY(r.ok());
        QVERIFY(r->restore(st, 20).ok());
        r->next(c1);
        r->next(c2);
        QCOMPARE(c1, a1);
        QCOMPARE(c2, a2);
        QCOMPARE(r->batches_drawn(), int64_t(22));
        // Same seed, same batches; another seed, others.
        auto x = BatchSampler::create(stream, 4, 16, 42, "data"), y = BatchSampler::create(stream, 4, 16, 43, "data");
        std::vector<int32_t> bx, by;
        x->next(bx);
        y->next(by);
        QVERIFY(bx != by);
    }

    void shorter_than_one_batch() {
        std::vector<int32_t> stream(16);
        auto s = BatchSampler::create(stream, 2, 16, 1, "notes.txt (train split)");
        QVERIFY(!s.ok());
        QCOMPARE(QString::fromStdString(s.message()),
                 QString("notes.txt (train split) is shorter than one batch: 16 tokens, a window of seq_len 16 needs 17"));
        QVERIFY(BatchSampler::create(std::vector<int32_t>(17), 2, 16, 1, "x").ok());
    }

    void split_and_fixed_windows() {
        std::vector<int32_t> stream(100);
        for (int i = 0; i < 100; ++i) stream[size_t(i)] = i;
        const TokenData d = split_tokens(stream, 0.1);
        QCOMPARE(d.train.size(), size_t(90));
        QCOMPARE(d.val.size(), size_t(10));
        QCOMPARE(d.val.front(), 90);
        const auto w = fixed_windows(d.train, 2, 9, 2);  // 4 windows of 10 over 90 tokens: starts 0, 26, 53, 80
        QCOMPARE(w.size(), size_t(40));
        QCOMPARE(w[0], 0);
        QCOMPARE(w[10], 26);
        QCOMPARE(w[20], 53);
        QCOMPARE(w[30], 80);
        QCOMPARE(w[39], 89);
    }
};

QTEST_GUILESS_MAIN(TestTrainData)
#include "test_train_data.moc"
