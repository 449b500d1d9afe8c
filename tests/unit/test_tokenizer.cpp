// runtime/tokenizer: the pre-tokenizer splits (expected words worked out by hand from the regexes
// llama.cpp names), GPT-2's byte mapping, merge order for SentencePiece scores and BPE ranks on tiny
// hand-made vocabularies, special-token matching, and decode(encode(s)) == s round trips on the real
// llama2.c tokenizer tok512 (shared/models) and a byte-level BPE vocabulary.
#include <QtTest>
#include <string>
#include <vector>

#include "core/formats/format.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"
#include "tests/support/test_support.h"

using namespace ef;

Q_DECLARE_METATYPE(std::string)

namespace {

const std::string kSp = "\xE2\x96\x81";  // "▁"

std::string join_words(const std::string& text, unicode::PreTokenizer pre) {
    const auto cps = unicode::code_points(text);
    const auto lens = unicode::pre_tokenize(cps, pre);
    std::string out;
    size_t at = 0;
    for (size_t n : lens) {
        if (!out.empty() || at > 0) out += '|';
        for (size_t i = at; i < at + n; ++i) unicode::append_utf8(out, cps[i]);
        at += n;
    }
    return at == cps.size() ? out : "<lengths do not cover the text>";
}

std::string byte_char(uint8_t b) {
    std::string s;
    unicode::append_utf8(s, unicode::byte_to_code_point(b));
    return s;
}

// A byte-level BPE vocabulary: the 256 byte characters, then `extra` tokens, with `merges`.
Vocab bpe_vocab(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
    Vocab v;
    v.model = "gpt2";
    v.pre = "gpt-2";
    for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_char(uint8_t(b)));
    for (const auto& t : extra) v.tokens.push_back(t);
    v.token_types.assign(v.tokens.size(), 1);
    v.tokens.push_back("<|endoftext|>");
    v.token_types.push_back(3);
    v.merges = merges;
    v.bos_id = v.eos_id = int32_t(v.tokens.size() - 1);
    v.add_bos = false;
    return v;
}

Vocab spm_vocab(float score_ab, float score_bc) {
    Vocab v;
    v.model = "llama";
    v.tokens = {"<unk>", "<s>", "</s>", kSp, "a", "b", "c", "ab", "bc"};
    v.token_types = {2, 3, 3, 1, 1, 1, 1, 1, 1};
    v.scores = {0, 0, 0, -5, -6, -6, -6, score_ab, score_bc};
    v.unk_id = 0;
    v.bos_id = 1;
    v.eos_id = 2;
    return v;
}

}  // namespace

class TestTokenizer : public QObject {
    Q_OBJECT

private slots:
    void preTokenizer_data() {
        QTest::addColumn<QString>("pre");
        QTest::addColumn<std::string>("text");
        QTest::addColumn<std::string>("words");
        QTest::newRow("gpt2 basic") << "gpt2" << std::string("Hello world's  123 ok!!\n")
                                    << std::string("Hello| world|'s| | 123| ok|!!|\n");
        QTest::newRow("gpt2 case-sensitive contraction") << "gpt2" << std::string("I'VE") << std::string("I|'|VE");
        QTest::newRow("gpt2 trailing spaces") << "gpt2" << std::string("a  ") << std::string("a|  ");
        QTest::newRow("gpt2 unicode letters") << "gpt2" << std::string("na\xC3\xAFve caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC")
                                              << std::string("na\xC3\xAFve| caf\xC3\xA9| \xE6\x9D\xB1\xE4\xBA\xAC");
        QTest::newRow("gpt2 ideographic space") << "gpt2" << std::string("a\xE3\x80\x80" "b")
                                                << std::string("a|\xE3\x80\x80|b");
        QTest::newRow("llama3 basic") << "llama3" << std::string("I'VE 12345 apples\r\n\n  x")
                                      << std::string("I|'VE| |123|45| apples|\r\n\n| | x");
        QTest::newRow("llama3 punctuation") << "llama3" << std::string("don't,\"x\"")
                                            << std::string("don|'t|,\"|x|\"");
        QTest::newRow("llama3 ideographic space joins") << "llama3" << std::string("a\xE3\x80\x80" "b")
                                                        << std::string("a|\xE3\x80\x80" "b");
        QTest::newRow("llama3 arabic-indic digits") << "llama3" << std::string("\xD9\xA3\xD9\xA3\xD9\xA3\xD9\xA3")
                                                    << std::string("\xD9\xA3\xD9\xA3\xD9\xA3|\xD9\xA3");
        QTest::newRow("qwen2 digits") << "qwen2" << std::string("x 12345") << std::string("x| |1|2|3|4|5");
        QTest::newRow("qwen2 punctuation then newlines") << "qwen2" << std::string("a.)\n\nb")
                                                         << std::string("a|.)\n\n|b");
    }
    void preTokenizer() {
        QFETCH(QString, pre);
        QFETCH(std::string, text);
        QFETCH(std::string, words);
        const auto p = pre == "gpt2"     ? unicode::PreTokenizer::Gpt2
                       : pre == "llama3" ? unicode::PreTokenizer::Llama3
                                         : unicode::PreTokenizer::Qwen2;
        QCOMPARE(join_words(text, p), words);
    }

    void byteMapping() {
        // GPT-2's well-known stand-ins: space is "Ġ" (U+0120), newline "Ċ" (U+010A), soft hyphen U+0143.
        QCOMPARE(unicode::byte_to_code_point(' '), 0x120u);
        QCOMPARE(unicode::byte_to_code_point('\n'), 0x10Au);
        QCOMPARE(unicode::byte_to_code_point(0xAD), 0x143u);
        QCOMPARE(unicode::byte_to_code_point('A'), uint32_t('A'));
        for (int b = 0; b < 256; ++b) QCOMPARE(unicode::byte_from_code_point(unicode::byte_to_code_point(uint8_t(b))), b);
        QCOMPARE(unicode::byte_from_code_point(' '), -1);
    }

    void invalidUtf8BecomesReplacement() {
        const auto cps = unicode::code_points(std::string("a\xC3(\xFF", 4));
        QCOMPARE(cps, (std::vector<uint32_t>{'a', unicode::kReplacement, '(', unicode::kReplacement}));
    }

    void spmMergesByScore() {
        // "▁abc": "ab" and "bc" compete; the higher score wins, the rest stays single pieces.
        auto ab_first = Tokenizer::create(spm_vocab(-1, -2));
        QVERIFY(ab_first.ok());
        QCOMPARE(ab_first->encode("abc", false), (std::vector<int32_t>{3, 7, 6}));
        auto bc_first = Tokenizer::create(spm_vocab(-2, -1));
        QVERIFY(bc_first.ok());
        QCOMPARE(bc_first->encode("abc", false), (std::vector<int32_t>{3, 4, 8}));
        // BOS per the vocabulary; a character without a piece or byte token becomes <unk>.
        QCOMPARE(bc_first->encode("d", true), (std::vector<int32_t>{1, 3, 0}));
        // Control tokens in the text only with parse_special; a run after one gets the "▁" prefix again.
        QCOMPARE(bc_first->encode("a<s>a", false, true), (std::vector<int32_t>{3, 4, 1, 3, 4}));
        QVERIFY(bc_first->encode("a<s>a", false, false) != (std::vector<int32_t>{3, 4, 1, 3, 4}));
    }

    void bpeMergesByRank() {
        const std::string G = byte_char(' ');
        auto tok = Tokenizer::create(bpe_vocab({G + "t", "he", G + "the", "ab", "bc"},
                                               {G + " t", "h e", G + "t he", "b c", "a b"}));
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        const int32_t the = tok->find_token(G + "the");
        QVERIFY(the >= 256);
        QCOMPARE(tok->encode(" the", false), (std::vector<int32_t>{the}));
        // "b c" has the better (lower) rank, so "abc" is a + bc, not ab + c.
        QCOMPARE(tok->encode("abc", false), (std::vector<int32_t>{'a', tok->find_token("bc")}));
        auto swapped = Tokenizer::create(bpe_vocab({"ab", "bc"}, {"a b", "b c"}));
        QVERIFY(swapped.ok());
        QCOMPARE(swapped->encode("abc", false), (std::vector<int32_t>{swapped->find_token("ab"), 'c'}));
        // Special tokens only with parse_special.
        const int32_t eot = tok->find_token("<|endoftext|>");
        QCOMPARE(tok->encode("<|endoftext|>", false, true), (std::vector<int32_t>{eot}));
        QVERIFY(tok->encode("<|endoftext|>", false, false).size() > 1);
        QCOMPARE(tok->decode(std::vector<int32_t>{eot}), std::string());
        QCOMPARE(tok->decode(std::vector<int32_t>{eot}, true), std::string("<|endoftext|>"));
    }

    void bpeRoundTrip_data() { samples(); }
    void bpeRoundTrip() {
        QFETCH(std::string, text);
        const std::string G = byte_char(' ');
        auto tok = Tokenizer::create(bpe_vocab({G + "t", "he", G + "the"}, {G + " t", "h e", G + "t he"}));
        QVERIFY(tok.ok());
        QCOMPARE(tok->decode(tok->encode(text, false)), text);
    }

    void rejectsWhatItCannotTokenize() {
        Vocab v = spm_vocab(-1, -2);
        v.model = "wordpiece";
        QVERIFY(!Tokenizer::create(v).ok());
        Vocab b = bpe_vocab({}, {});
        QVERIFY(!Tokenizer::create(b).ok());  // no merges
        b.merges = {"a b"};
        b.pre = "deepseek-coder";
        auto r = Tokenizer::create(b);
        QVERIFY(!r.ok());
        QVERIFY2(r.message().find("deepseek-coder") != std::string::npos, r.message().c_str());
        QVERIFY(!Tokenizer::create(Vocab{}).ok());
    }

    // The real llama2.c tokenizer (tok512) that goes with stories260K.
    void tok512OnceUponATime() {
        EF_REQUIRE_SHARED(ckpt, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tokfile, "models/tok512.bin");
        LoadOptions opts;
        opts.tokenizer_path = tokfile.toStdString();
        auto model = load_model(ckpt.toStdString(), opts);
        QVERIFY2(model.ok(), model.ok() ? "" : model.message().c_str());
        auto tok = Tokenizer::create(model->vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        QCOMPARE(tok->kind(), Tokenizer::Kind::Spm);

        const std::string text = "Once upon a time";
        const auto ids = tok->encode(text, true);
        QVERIFY(ids.size() >= 2);
        QCOMPARE(ids.front(), 1);  // BOS
        QVERIFY2(ids.size() < text.size(), "expected merged pieces, not one token per character");
        std::string pieces;
        for (size_t i = 1; i < ids.size(); ++i) pieces += tok->token_to_piece(ids[i]);
        QCOMPARE(pieces, " " + text);  // the SentencePiece dummy prefix, then the text
        QCOMPARE(tok->decode(ids), text);
        QCOMPARE(tok->decode(ids, true), "<s>" + text);
    }

    void tok512RoundTrip_data() { samples(); }
    void tok512RoundTrip() {
        QFETCH(std::string, text);
        EF_REQUIRE_SHARED(ckpt, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tokfile, "models/tok512.bin");
        LoadOptions opts;
        opts.tokenizer_path = tokfile.toStdString();
        auto model = load_model(ckpt.toStdString(), opts);
        QVERIFY2(model.ok(), model.ok() ? "" : model.message().c_str());
        auto tok = Tokenizer::create(model->vocab);
        QVERIFY(tok.ok());
        for (bool bos : {false, true}) {
            const auto ids = tok->encode(text, bos);
            QCOMPARE(tok->decode(ids), text);
        }
    }

private:
    void samples() {
        QTest::addColumn<std::string>("text");
        QTest::newRow("empty") << std::string();
        QTest::newRow("story") << std::string("Once upon a time, there was a little girl named Lily.");
        QTest::newRow("spaces") << std::string("  leading and trailing  ");
        QTest::newRow("whitespace") << std::string("tabs\tand\nnew\r\nlines\n\n");
        QTest::newRow("unicode") << std::string("\xC3\xBCn\xC3\xAF" "c\xC3\xB6" "d\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x99\x82");
        QTest::newRow("special spelling") << std::string("<s> and </s> stay text");
        QTest::newRow("digits") << std::string("3.14159 and 1,000,000");
    }
};

QTEST_GUILESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
