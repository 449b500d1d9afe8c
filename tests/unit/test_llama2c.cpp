// llama2.c checkpoints and tokenizers: files assembled here byte by byte from the published v0
// layout are read back into the canonical llama row; saving reproduces them; corrupt files fail
// with clear messages.
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstring>

#include "core/formats/format.h"
#include "core/formats/llama2c.h"

using namespace ef;

namespace {

struct Dims {
    int32_t dim = 16, hidden = 24, layers = 2, heads = 4, kv_heads = 2, vocab = 10, seq = 8;
};

void put_i32(QByteArray& b, int32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); }
void put_f32(QByteArray& b, float v) { b.append(reinterpret_cast<const char*>(&v), 4); }

// Value of element i of array number `block` (file order) so every float in the file is distinct.
float value(int block, int64_t i) { return float(block) + float(i) / 65536.0f; }

// The file in llama2.c's order; `shared` false writes a negative vocab_size and a wcls array.
QByteArray checkpoint(const Dims& d, bool shared) {
    QByteArray b;
    for (int32_t v : {d.dim, d.hidden, d.layers, d.heads, d.kv_heads, shared ? d.vocab : -d.vocab, d.seq}) put_i32(b, v);
    const int64_t kv_dim = d.dim / d.heads * d.kv_heads, half = d.dim / d.heads / 2;
    const int64_t sizes[] = {int64_t(d.vocab) * d.dim,               // token_embedding
                             int64_t(d.layers) * d.dim,              // rms_att
                             int64_t(d.layers) * d.dim * d.dim,      // wq
                             int64_t(d.layers) * kv_dim * d.dim,     // wk
                             int64_t(d.layers) * kv_dim * d.dim,     // wv
                             int64_t(d.layers) * d.dim * d.dim,      // wo
                             int64_t(d.layers) * d.dim,              // rms_ffn
                             int64_t(d.layers) * d.hidden * d.dim,   // w1
                             int64_t(d.layers) * d.dim * d.hidden,   // w2
                             int64_t(d.layers) * d.hidden * d.dim,   // w3
                             int64_t(d.dim),                         // rms_final
                             int64_t(d.seq) * half,                  // freq_cis_real
                             int64_t(d.seq) * half,                  // freq_cis_imag
                             shared ? 0 : int64_t(d.vocab) * d.dim}; // wcls
    for (int block = 0; block < 14; ++block) {
        for (int64_t i = 0; i < sizes[block]; ++i) {
            if (block == 11 || block == 12) {  // the exporter's RoPE tables: cos / sin(pos * 10000^(-2i/hd))
                const int64_t pos = i / half, k = i % half;
                const float f = 1.0f / std::pow(10000.0f, float(2 * k) / float(d.dim / d.heads));
                put_f32(b, block == 11 ? std::cos(float(pos) * f) : std::sin(float(pos) * f));
            } else {
                put_f32(b, value(block, i));
            }
        }
    }
    return b;
}

// A tokenizer in llama2.c's layout: BOS/EOS with their newlines, byte tokens, plain spaces.
QByteArray tokenizer(int n_tokens, int32_t max_len = 7) {
    const std::vector<std::string> t = {"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", "<0x20>", " a", "b", " the", "", "c d"};
    QByteArray b;
    put_i32(b, max_len);
    for (int i = 0; i < n_tokens; ++i) {
        const std::string s = i < int(t.size()) ? t[size_t(i)] : "x" + std::to_string(i);
        put_f32(b, -float(i) * 0.5f);
        put_i32(b, int32_t(s.size()));
        b.append(s.data(), qsizetype(s.size()));
    }
    return b;
}

QByteArray read(const QString& p) {
    QFile f(p);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}
void write(const QString& p, const QByteArray& b) {
    QFile f(p);
    QVERIFY(f.open(QIODevice::WriteOnly));
    QCOMPARE(f.write(b), b.size());
}

}  // namespace

class TestLlama2c : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    int counter_ = 0;
    QString fresh_dir() {
        const QString d = dir_.filePath(QString::number(++counter_));
        QDir().mkpath(d);
        return d;
    }

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void readsV0_data() {
        QTest::addColumn<bool>("shared");
        QTest::newRow("shared classifier") << true;
        QTest::newRow("separate classifier") << false;
    }
    void readsV0() {
        QFETCH(bool, shared);
        const Dims d;
        const QString dir = fresh_dir();
        write(dir + "/m.bin", checkpoint(d, shared));
        write(dir + "/tokenizer.bin", tokenizer(d.vocab));  // found beside the checkpoint
        auto m = load_model((dir + "/m.bin").toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(m->source_format, std::string("llama2c"));
        QCOMPARE(m->architecture, std::string("llama"));
        const ModelConfig& c = m->config;
        QCOMPARE(c.dim, 16);
        QCOMPARE(c.ffn_hidden, 24);
        QCOMPARE(c.n_layers, 2);
        QCOMPARE(c.attn.n_heads, 4);
        QCOMPARE(c.attn.n_kv_heads, 2);
        QCOMPARE(c.attn.head_dim, 4);
        QCOMPARE(c.vocab_size, 10);
        QCOMPARE(c.context_length, 8);
        QCOMPARE(c.tied_embeddings, shared);
        QCOMPARE(m->find("output.weight") != nullptr, !shared);
        // Each canonical tensor is the right slice of the right llama2.c array.
        auto at = [&](const char* name, int64_t r, int64_t col) {
            const Tensor* t = m->find(name);
            if (!t) return std::nanf("");
            return t->to_f32().value()[size_t(r * t->shape.back() + col)];
        };
        const int64_t kv_dim = 8;
        QCOMPARE(at("token_embd.weight", 3, 5), value(0, 3 * 16 + 5));
        QCOMPARE(at("blk.1.attn_norm.weight", 0, 7), value(1, 16 + 7));
        QCOMPARE(at("blk.1.attn_q.weight", 2, 3), value(2, 16 * 16 + 2 * 16 + 3));
        QCOMPARE(at("blk.1.attn_k.weight", 7, 15), value(3, kv_dim * 16 + 7 * 16 + 15));
        QCOMPARE(at("blk.0.attn_v.weight", 1, 1), value(4, 16 + 1));
        QCOMPARE(at("blk.1.attn_output.weight", 0, 0), value(5, 256));
        QCOMPARE(at("blk.1.ffn_norm.weight", 0, 2), value(6, 16 + 2));
        QCOMPARE(at("blk.1.ffn_gate.weight", 23, 15), value(7, 24 * 16 + 23 * 16 + 15));  // w1
        QCOMPARE(at("blk.1.ffn_down.weight", 15, 23), value(8, 16 * 24 + 15 * 24 + 23));  // w2
        QCOMPARE(at("blk.0.ffn_up.weight", 4, 4), value(9, 4 * 16 + 4));                  // w3
        QCOMPARE(at("output_norm.weight", 0, 9), value(10, 9));
        if (!shared) QCOMPARE(at("output.weight", 9, 15), value(13, 9 * 16 + 15));
        QCOMPARE(m->find("blk.1.ffn_down.weight")->shape, (Shape{16, 24}));
        QCOMPARE(m->find("blk.1.attn_k.weight")->shape, (Shape{8, 16}));
        // The tokenizer: "▁" spaces, bare BOS/EOS, types as llama.cpp's llama2.c converter sets them.
        const Vocab& v = m->vocab;
        QCOMPARE(v.model, std::string("llama"));
        QCOMPARE(v.tokens[1], std::string("<s>"));
        QCOMPARE(v.tokens[2], std::string("</s>"));
        QCOMPARE(v.tokens[5], std::string("\xe2\x96\x81" "a"));
        QCOMPARE(v.tokens[9], std::string("c\xe2\x96\x81" "d"));
        QCOMPARE(v.tokens[4], std::string("<0x20>"));
        QCOMPARE(v.token_types, (std::vector<int32_t>{2, 3, 3, 6, 6, 1, 1, 1, 3, 1}));
        QCOMPARE(v.scores[7], -3.5f);
        QCOMPARE(v.bos_id, 1);
        QCOMPARE(v.eos_id, 2);
        QCOMPARE(v.unk_id, 0);
        QCOMPARE(v.max_token_length, 7);
        // Tensors are views into the mapped file.
        QVERIFY(m->find("token_embd.weight")->owner == m->find("blk.1.ffn_up.weight")->owner);
    }

    // Saving reproduces the file (RoPE tables included) and its tokenizer byte for byte.
    void saveReproducesFile_data() {
        QTest::addColumn<bool>("shared");
        QTest::newRow("shared") << true;
        QTest::newRow("separate") << false;
    }
    void saveReproducesFile() {
        QFETCH(bool, shared);
        const Dims d;
        const QString dir = fresh_dir();
        const QByteArray original = checkpoint(d, shared), tok = tokenizer(d.vocab);
        write(dir + "/in.bin", original);
        write(dir + "/in.tok.bin", tok);
        auto m = load_model((dir + "/in.bin").toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QVERIFY(!m->vocab.empty());
        Status s = llama2c_format_handler().save(*m, (dir + "/out.bin").toStdString(), {}, Progress::none());
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        const QByteArray out = read(dir + "/out.bin");
        QCOMPARE(out.size(), original.size());
        QVERIFY(out == original);
        QVERIFY(read(dir + "/out.tok.bin") == tok);
    }

    // Other dtypes are dequantized to F32 on save.
    void savesF16AsF32() {
        const Dims d;
        const QString dir = fresh_dir();
        write(dir + "/a.bin", checkpoint(d, true));
        auto m = load_model((dir + "/a.bin").toStdString());
        QVERIFY(m.ok());
        Tensor& q = *m->find("blk.0.attn_q.weight");
        const auto before = q.to_f32().value();
        q = Tensor::from_f32(q.name, q.shape, before, DType::F16).value();
        QVERIFY(llama2c_format_handler().save(*m, (dir + "/b.bin").toStdString(), {}, Progress::none()).ok());
        QVERIFY(!QFile::exists(dir + "/b.tok.bin"));  // no vocabulary, no tokenizer
        auto back = load_model((dir + "/b.bin").toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QCOMPARE(back->find("blk.0.attn_q.weight")->dtype, DType::F32);
        QVERIFY(back->find("blk.0.attn_q.weight")->to_f32().value() == q.to_f32().value());
    }

    void rejectsNonLlama() {
        Model m;
        m.architecture = "mamba2";
        Status s = llama2c_format_handler().save(m, (fresh_dir() + "/x.bin").toStdString(), {}, Progress::none());
        QVERIFY(!s.ok());
        QVERIFY2(s.message().find("llama") != std::string::npos, s.message().c_str());
    }

    void cancelledSaveLeavesNothing() {
        const QString dir = fresh_dir();
        write(dir + "/a.bin", checkpoint(Dims{}, true));
        write(dir + "/a.tok.bin", tokenizer(10));
        auto m = load_model((dir + "/a.bin").toStdString());
        QVERIFY(m.ok());
        Progress p;
        p.cancel();
        QVERIFY(!llama2c_format_handler().save(*m, (dir + "/b.bin").toStdString(), {}, p).ok());
        QCOMPARE(QDir(dir).entryList(QDir::Files | QDir::Hidden).size(), 2);
    }

    void corrupt_data() {
        QTest::addColumn<QString>("mutation");
        QTest::addColumn<QString>("expect");
        QTest::newRow("truncated") << "truncated" << "implies";
        QTest::newRow("trailing bytes") << "trailing" << "implies";
        QTest::newRow("header only half there") << "tiny" << "too short";
        QTest::newRow("absurd dim") << "hugedim" << "dim";
        QTest::newRow("absurd layer count") << "hugelayers" << "n_layers";
        QTest::newRow("absurd vocab") << "hugevocab" << "vocab_size";
        QTest::newRow("negative hidden") << "neghidden" << "hidden_dim";
        QTest::newRow("negative heads") << "negheads" << "n_heads";
        QTest::newRow("heads do not divide dim") << "heads" << "does not divide dim";
        QTest::newRow("kv heads do not divide heads") << "kvheads" << "does not divide n_heads";
        QTest::newRow("version-1 export") << "ak42" << "ak42";
        QTest::newRow("tokenizer truncated") << "toktrunc" << "truncated";
        QTest::newRow("tokenizer header only") << "tokempty" << "cannot hold";
        QTest::newRow("tokenizer negative length") << "toklen" << "length -5";
        QTest::newRow("tokenizer too long for the vocab") << "tokextra" << "unexpected bytes";
        QTest::newRow("tokenizer missing") << "toknone" << "missing.bin";
    }
    void corrupt() {
        QFETCH(QString, mutation);
        QFETCH(QString, expect);
        const std::string m = mutation.toStdString();
        const QString dir = fresh_dir();
        QByteArray ck = checkpoint(Dims{}, true), tok = tokenizer(10);
        auto set = [&](int idx, int32_t v) { std::memcpy(ck.data() + 4 * idx, &v, 4); };
        if (m == "truncated") ck.chop(4);
        if (m == "trailing") ck.append(QByteArray(4, '\0'));
        if (m == "tiny") ck.truncate(14);
        if (m == "hugedim") set(0, 1 << 30);
        if (m == "hugelayers") set(2, 1 << 28);
        if (m == "hugevocab") set(5, -(1 << 30));
        if (m == "neghidden") set(1, -24);
        if (m == "negheads") set(3, -4);
        if (m == "heads") set(3, 3);
        if (m == "kvheads") set(4, 3);
        if (m == "ak42") set(0, 0x616b3432);
        if (m == "toktrunc") tok.chop(3);
        if (m == "tokempty") tok.truncate(4);
        if (m == "toklen") {
            const int32_t neg = -5;
            std::memcpy(tok.data() + 4 + 4, &neg, 4);
        }
        if (m == "tokextra") tok = tokenizer(11);
        write(dir + "/c.bin", ck);
        write(dir + "/tok.bin", tok);
        LoadOptions opts;
        opts.tokenizer_path = (dir + (m == "toknone" ? "/missing.bin" : "/tok.bin")).toStdString();
        auto r = llama2c_format_handler().load((dir + "/c.bin").toStdString(), opts, Progress::none());
        QVERIFY2(!r.ok(), qPrintable("loaded although " + mutation));
        const QString msg = QString::fromStdString(r.message());
        QVERIFY2(msg.contains(expect), qPrintable(msg));
        QVERIFY2(msg.contains(dir), qPrintable("message does not name the file: " + msg));
    }

    void truncatedMessageNamesSizes() {
        const QString dir = fresh_dir();
        QByteArray ck = checkpoint(Dims{}, true);
        const qsizetype full = ck.size();
        ck.chop(100);
        write(dir + "/t.bin", ck);
        auto r = load_model((dir + "/t.bin").toStdString());
        QVERIFY(!r.ok());
        QVERIFY2(QString::fromStdString(r.message()).contains(QString::number(full)), r.message().c_str());
        QVERIFY2(QString::fromStdString(r.message()).contains(QString::number(full - 100)), r.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestLlama2c)
#include "test_llama2c.moc"
