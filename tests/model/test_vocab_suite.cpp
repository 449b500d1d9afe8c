// llama.cpp's tokenizer test suite (test-tokenizer-0) against our Tokenizer: for each vocab-only GGUF in
// shared/vocab-tests, every string of NAME.gguf.inp must encode to exactly the ids of the matching line
// of NAME.gguf.out (produced by llama.cpp). Like test-tokenizer-0 we tokenize with add_special = false
// and parse_special = false. Also: the 1.3 MB WikiText test file must tokenize quickly with each vocab
// and give exactly llama.cpp's ids (node-llama-cpp, tests/reference/llama_tokenize.mjs), as must a
// text with special tokens in it when parse_special is on.
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <string>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

using namespace ef;

namespace {

std::string read_all(const QString& path, QString* error) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        *error = "cannot open " + path;
        return {};
    }
    const QByteArray b = f.readAll();
    return std::string(b.constData(), size_t(b.size()));
}

QString ids_text(const std::vector<int32_t>& ids) {
    QStringList parts;
    for (int32_t id : ids) parts << QString::number(id);
    return parts.join(' ');
}

}  // namespace

class TestVocabSuite : public QObject {
    Q_OBJECT

private:
    void vocab_rows() {
        QTest::addColumn<QString>("name");
        for (const char* name : {"llama-spm", "gpt-2", "llama-bpe", "qwen2"}) QTest::newRow(name) << QString(name);
    }

private slots:
    void matchesLlamaCpp_data() { vocab_rows(); }
    void matchesLlamaCpp() {
        QFETCH(QString, name);
        EF_REQUIRE_SHARED(gguf, "vocab-tests/ggml-vocab-" + name + ".gguf");
        EF_REQUIRE_SHARED(inp, "vocab-tests/ggml-vocab-" + name + ".gguf.inp");
        EF_REQUIRE_SHARED(outp, "vocab-tests/ggml-vocab-" + name + ".gguf.out");

        auto vocab = read_gguf_vocab(gguf.toStdString());
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());

        QString err;
        const std::string raw_in = read_all(inp, &err);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        const std::string raw_out = read_all(outp, &err);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        const auto inputs = ef::test::vocab_suite_inputs(raw_in);
        const auto expected = ef::test::vocab_suite_outputs(raw_out);
        QVERIFY2(inputs.size() == expected.size() && !inputs.empty(),
                 qPrintable(QString("%1 inputs but %2 expected lines").arg(inputs.size()).arg(expected.size())));

        size_t passed = 0;
        QString failures;
        for (size_t i = 0; i < inputs.size(); ++i) {
            const auto got = tok->encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
            if (got == expected[i]) {
                ++passed;
                continue;
            }
            if (failures.size() < 4000)
                failures += QString("\n  #%1 '%2'\n    expected: %3\n    got:      %4")
                                .arg(i)
                                .arg(QString::fromStdString(inputs[i]).left(80))
                                .arg(ids_text(expected[i]), ids_text(got));
        }
        qInfo("%s: %zu/%zu strings match llama.cpp", qPrintable(name), passed, inputs.size());
        QVERIFY2(passed == inputs.size(), qPrintable(QString("%1: %2/%3 strings match llama.cpp%4")
                                                         .arg(name)
                                                         .arg(passed)
                                                         .arg(inputs.size())
                                                         .arg(failures)));
    }

    // test-tokenizer-0 also detokenizes: the ids must decode back to the input (these inputs are
    // valid UTF-8 without special-token text, so the round trip is exact).
    void decodesBack_data() { vocab_rows(); }
    void decodesBack() {
        QFETCH(QString, name);
        EF_REQUIRE_SHARED(gguf, "vocab-tests/ggml-vocab-" + name + ".gguf");
        EF_REQUIRE_SHARED(inp, "vocab-tests/ggml-vocab-" + name + ".gguf.inp");
        EF_REQUIRE_SHARED(outp, "vocab-tests/ggml-vocab-" + name + ".gguf.out");
        auto vocab = read_gguf_vocab(gguf.toStdString());
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        QString err;
        const auto inputs = ef::test::vocab_suite_inputs(read_all(inp, &err));
        const auto expected = ef::test::vocab_suite_outputs(read_all(outp, &err));
        QVERIFY2(err.isEmpty(), qPrintable(err));
        QCOMPARE(inputs.size(), expected.size());
        for (size_t i = 0; i < inputs.size(); ++i) {
            const std::string back = tok->decode(expected[i]);
            QVERIFY2(back == inputs[i], qPrintable(QString("%1 #%2: '%3' decoded to '%4'")
                                                       .arg(name)
                                                       .arg(i)
                                                       .arg(QString::fromStdString(inputs[i]),
                                                            QString::fromStdString(back))));
        }
    }

    // The whole WikiText test file, and a text full of special-token spellings, against llama.cpp itself.
    void wholeTextMatchesLlamaCpp_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("specials_text");  // the special-token text instead of WikiText
        QTest::addColumn<bool>("special");        // parse_special
        for (const char* name : {"llama-spm", "gpt-2", "llama-bpe", "qwen2"}) {
            QTest::newRow(qPrintable(QString(name) + "/wikitext")) << QString(name) << false << false;
            QTest::newRow(qPrintable(QString(name) + "/specials parsed")) << QString(name) << true << true;
            QTest::newRow(qPrintable(QString(name) + "/specials as text")) << QString(name) << true << false;
        }
    }
    void wholeTextMatchesLlamaCpp() {
        QFETCH(QString, name);
        QFETCH(bool, specials_text);
        QFETCH(bool, special);
        EF_REQUIRE_SHARED(gguf, "vocab-tests/ggml-vocab-" + name + ".gguf");
        EF_REQUIRE_SHARED(wikitext, "text/wikitext-2-raw-test.txt");
        QString err;
        QVERIFY2(!ef::test::reference_modules(&err).isEmpty(), qPrintable(err));
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QString text_path = wikitext;
        if (specials_text) {
            // Control and user-defined tokens of each vocabulary (and ones llama.cpp makes control by
            // their text), glued to words, at the start, doubled, and made-up ones.
            text_path = dir.filePath("specials.txt");
            QFile f(text_path);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("<s>Hello</s> <s> world <unk>x<|endoftext|>y <|endoftext|><|endoftext|> "
                    "<|begin_of_text|>Hi<|eot_id|>\n<|im_start|>user\nWhat's 1234?<|im_end|>\n"
                    "<|reserved_special_token_7|> <|not_a_token|> </s></s>  end <s>"
                    "[PAD151646]x <|fim_prefix|>def<|fim_suffix|> <|file_sep|>\n\n<unk>");
        }
        const QString ref_out = dir.filePath("ids.txt");
        QStringList args{"--model", gguf, "--text", text_path, "--out", ref_out};
        if (special) args << "--special";
        const auto r = ef::test::run_node_script("llama_tokenize.mjs", args, 300000);
        QVERIFY2(r.exit_code == 0, qPrintable("llama_tokenize.mjs failed: " + r.err.right(2000)));
        const auto expected = ef::test::vocab_suite_outputs(read_all(ref_out, &err));
        QVERIFY2(err.isEmpty() && expected.size() == 1, qPrintable("unreadable reference output " + err));

        auto vocab = read_gguf_vocab(gguf.toStdString());
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        const std::string text = read_all(text_path, &err);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        const auto got = tok->encode(text, /*add_special=*/false, /*parse_special=*/special);
        const auto& want = expected[0];
        size_t same = 0;
        while (same < got.size() && same < want.size() && got[same] == want[same]) ++same;
        const auto window = [&](const std::vector<int32_t>& v) {
            const size_t from = same > 8 ? same - 8 : 0;
            return ids_text(std::vector<int32_t>(v.begin() + long(std::min(from, v.size())),
                                                 v.begin() + long(std::min(same + 8, v.size()))));
        };
        QVERIFY2(got == want, qPrintable(QString("%1: %2 ids vs llama.cpp's %3, first difference at %4\n"
                                                 "  llama.cpp: ...%5\n  ours:      ...%6")
                                             .arg(name)
                                             .arg(got.size())
                                             .arg(want.size())
                                             .arg(same)
                                             .arg(window(want), window(got))));
    }

    // Long inputs must stay near-linear (no quadratic merging on long runs).
    void wikitextIsFast_data() { vocab_rows(); }
    void wikitextIsFast() {
        QFETCH(QString, name);
        EF_REQUIRE_SHARED(gguf, "vocab-tests/ggml-vocab-" + name + ".gguf");
        EF_REQUIRE_SHARED(text_path, "text/wikitext-2-raw-test.txt");
        auto vocab = read_gguf_vocab(gguf.toStdString());
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        QString err;
        const std::string text = read_all(text_path, &err);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        QVERIFY(text.size() > 1000000);

        QElapsedTimer timer;
        timer.start();
        const auto ids = tok->encode(text, true, false);
        const qint64 ms = timer.elapsed();
        qInfo("%s: %zu bytes -> %zu tokens in %lld ms", qPrintable(name), text.size(), ids.size(), ms);
        QVERIFY(ids.size() > text.size() / 10);
        QVERIFY2(ms < 3000, qPrintable(QString("tokenizing WikiText took %1 ms").arg(ms)));
        QVERIFY(tok->decode(ids) == text);

        // One 500 KB "word" (letters, no spaces) must not be quadratic either.
        std::string word;
        uint32_t x = 1;
        for (int i = 0; i < 500000; ++i) {
            x = x * 1103515245u + 12345u;
            word += char('a' + (x >> 16) % 26);
        }
        timer.restart();
        const auto word_ids = tok->encode(word, false, false);
        const qint64 word_ms = timer.elapsed();
        qInfo("%s: a %zu-letter word -> %zu tokens in %lld ms", qPrintable(name), word.size(), word_ids.size(), word_ms);
        QVERIFY2(word_ms < 3000, qPrintable(QString("tokenizing one long word took %1 ms").arg(word_ms)));
        QVERIFY(tok->decode(word_ids) == word);
    }
};

QTEST_GUILESS_MAIN(TestVocabSuite)
#include "test_vocab_suite.moc"
