// llama.cpp's tokenizer test suite (test-tokenizer-0, shared/vocab-tests) through the two tokenizer
// readers that do not start from GGUF:
//  - HF tokenizer.json: GPT-2's tokenizer.json (BPE model, ByteLevel pre-tokenizer/decoder/post-
//    processor, <|endoftext|> as a special added token) is built in a temp dir from shared
//    gpt2_vocab.json + gpt2_merges.txt, read with read_hf_tokenizer(), and must give exactly the ids
//    of ggml-vocab-gpt-2.gguf.out.
//  - llama2.c tokenizer: shared llama2c_tokenizer.bin (Llama-2's 32k SentencePiece vocabulary) read
//    with read_llama2c_tokenizer() must give exactly the ids of ggml-vocab-llama-spm.gguf.out.
// The expected ids were produced by llama.cpp from the suite's GGUF vocabularies, so each case first
// checks that our vocabulary is the GGUF's token for token (texts, merges or scores, types); a
// difference there is reported as such instead of as a pile of tokenization mismatches.
#include <QCryptographicHash>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/formats/hf_tokenizer.h"
#include "core/formats/llama2c.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

using namespace ef;
using nlohmann::json;

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

QString sha256(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    QCryptographicHash h(QCryptographicHash::Sha256);
    h.addData(&f);
    return QString::fromLatin1(h.result().toHex());
}

QString ids_text(const std::vector<int32_t>& ids) {
    QStringList parts;
    for (int32_t id : ids) parts << QString::number(id);
    return parts.join(' ');
}

QString quoted(const std::string& s) { return "\"" + QString::fromStdString(s) + "\""; }

// Differences between our vocabulary and the suite's GGUF one (empty when identical): token texts by
// id, BPE merges by rank, SentencePiece scores, token types and the special ids. At most a few of
// each kind are listed.
QString vocab_differences(const Vocab& ours, const Vocab& ref, bool compare_scores, bool compare_special_ids = true) {
    QStringList d;
    if (ours.model != ref.model) d << QString("model %1 vs %2").arg(quoted(ours.model), quoted(ref.model));
    if (ours.tokens.size() != ref.tokens.size())
        d << QString("%1 tokens vs %2").arg(ours.tokens.size()).arg(ref.tokens.size());
    const size_t n = std::min(ours.tokens.size(), ref.tokens.size());
    int listed = 0, count = 0;
    for (size_t i = 0; i < n; ++i) {
        if (ours.tokens[i] == ref.tokens[i]) continue;
        ++count;
        if (listed++ < 5) d << QString("token %1 is %2 vs %3").arg(i).arg(quoted(ours.tokens[i]), quoted(ref.tokens[i]));
    }
    if (count > 5) d << QString("... %1 token texts differ in all").arg(count);
    if (ours.merges.size() != ref.merges.size())
        d << QString("%1 merges vs %2").arg(ours.merges.size()).arg(ref.merges.size());
    listed = count = 0;
    for (size_t i = 0; i < std::min(ours.merges.size(), ref.merges.size()); ++i) {
        if (ours.merges[i] == ref.merges[i]) continue;
        ++count;
        if (listed++ < 5) d << QString("merge %1 is %2 vs %3").arg(i).arg(quoted(ours.merges[i]), quoted(ref.merges[i]));
    }
    if (count > 5) d << QString("... %1 merges differ in all").arg(count);
    if (compare_scores) {
        if (ours.scores.size() != ref.scores.size())
            d << QString("%1 scores vs %2").arg(ours.scores.size()).arg(ref.scores.size());
        listed = count = 0;
        for (size_t i = 0; i < std::min(ours.scores.size(), ref.scores.size()); ++i) {
            if (ours.scores[i] == ref.scores[i]) continue;
            ++count;
            if (listed++ < 5) d << QString("score of token %1 is %2 vs %3").arg(i).arg(ours.scores[i]).arg(ref.scores[i]);
        }
        if (count > 5) d << QString("... %1 scores differ in all").arg(count);
    }
    if (ours.token_types.size() != ref.token_types.size())
        d << QString("%1 token types vs %2").arg(ours.token_types.size()).arg(ref.token_types.size());
    listed = count = 0;
    for (size_t i = 0; i < std::min(ours.token_types.size(), ref.token_types.size()); ++i) {
        if (ours.token_types[i] == ref.token_types[i]) continue;
        ++count;
        if (listed++ < 5)
            d << QString("token %1 %2 has type %3 vs %4")
                     .arg(i)
                     .arg(quoted(i < ref.tokens.size() ? ref.tokens[i] : std::string()))
                     .arg(ours.token_types[i])
                     .arg(ref.token_types[i]);
    }
    if (count > 5) d << QString("... %1 token types differ in all").arg(count);
    const auto ids = [](const Vocab& v) { return QString("bos %1 eos %2 unk %3").arg(v.bos_id).arg(v.eos_id).arg(v.unk_id); };
    if (compare_special_ids && ids(ours) != ids(ref)) d << QString("special ids %1 vs %2").arg(ids(ours), ids(ref));
    return d.join("\n  ");
}

struct SuiteResult {
    size_t passed = 0, total = 0;
    QString failures;
};

// test-tokenizer-0 tokenizes with add_special = false and parse_special = false.
SuiteResult run_suite(const Tokenizer& tok, const std::vector<std::string>& inputs,
                      const std::vector<std::vector<int32_t>>& expected) {
    SuiteResult r;
    r.total = inputs.size();
    for (size_t i = 0; i < inputs.size(); ++i) {
        const auto got = tok.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
        if (got == expected[i]) {
            ++r.passed;
            continue;
        }
        if (r.failures.size() < 4000)
            r.failures += QString("\n  #%1 '%2'\n    expected: %3\n    got:      %4")
                              .arg(i)
                              .arg(QString::fromStdString(inputs[i]).left(80))
                              .arg(ids_text(expected[i]), ids_text(got));
    }
    return r;
}

// GPT-2's tokenizer.json as HF `tokenizers` serialises it (the layout the Hub's gpt2 repository
// ships): BPE model with the vocab object and merge list, ByteLevel pre-tokenizer, post-processor and
// decoder, no normalizer, <|endoftext|> as a special added token. `pair_merges`: the newer
// serialisation (tokenizers >= 0.20) that writes each merge as ["a", "b"] instead of "a b".
QString build_gpt2_tokenizer_json(const QString& vocab_path, const QString& merges_path, const QString& out_path,
                                  bool pair_merges) {
    QString err;
    const std::string vocab_text = read_all(vocab_path, &err);
    if (!err.isEmpty()) return err;
    json vocab = json::parse(vocab_text, nullptr, false);
    if (vocab.is_discarded() || !vocab.is_object()) return vocab_path + " is not a JSON object";
    const std::string merges_text = read_all(merges_path, &err);
    if (!err.isEmpty()) return err;
    json merges = json::array();
    size_t pos = 0;
    while (pos < merges_text.size()) {
        size_t eol = merges_text.find('\n', pos);
        if (eol == std::string::npos) eol = merges_text.size();
        std::string line = merges_text.substr(pos, eol - pos);
        pos = eol + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.starts_with("#version")) continue;
        const size_t sp = line.find(' ');
        if (sp == std::string::npos) return "merge line without a space: " + QString::fromStdString(line);
        if (pair_merges)
            merges.push_back(json::array({line.substr(0, sp), line.substr(sp + 1)}));
        else
            merges.push_back(line);
    }
    const json endoftext_id = vocab.contains("<|endoftext|>") ? vocab["<|endoftext|>"] : json(50256);
    json j = {
        {"version", "1.0"},
        {"truncation", nullptr},
        {"padding", nullptr},
        {"added_tokens", json::array({{{"id", endoftext_id},
                                       {"content", "<|endoftext|>"},
                                       {"single_word", false},
                                       {"lstrip", false},
                                       {"rstrip", false},
                                       {"normalized", true},
                                       {"special", true}}})},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
        {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
        {"model",
         {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", nullptr},
          {"continuing_subword_prefix", ""},
          {"end_of_word_suffix", ""},
          {"fuse_unk", false},
          {"byte_fallback", false},
          {"vocab", vocab},
          {"merges", merges}}},
    };
    QFile f(out_path);
    if (!f.open(QIODevice::WriteOnly)) return "cannot write " + out_path;
    const std::string text = j.dump();
    if (f.write(text.data(), qint64(text.size())) != qint64(text.size())) return "cannot write " + out_path;
    return {};
}

// Split regexes of Llama 3's and Qwen2's published tokenizer.json files (as JSON-decoded text).
const char* const kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
const char* const kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

// A tokenizer.json in the layout of the model family's published one (Llama 3: Split + ByteLevel,
// ignore_merges, BOS template; Qwen2: NFC, Split + ByteLevel; GPT-2: plain ByteLevel) carrying the
// vocabulary of the suite's GGUF: normal tokens in model.vocab, the others as added tokens
// (special = control), as HF keeps them.
json family_tokenizer_json(const Vocab& g, const QString& family) {
    json vocab = json::object(), added = json::array();
    for (size_t i = 0; i < g.tokens.size(); ++i) {
        const int32_t t = i < g.token_types.size() ? g.token_types[i] : 1;
        if (t == 1) {
            vocab[g.tokens[i]] = i;
            continue;
        }
        added.push_back({{"id", i}, {"content", g.tokens[i]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", t == 3}});
    }
    const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                             {"use_regex", family == "gpt-2"}};
    json pre = byte_level, post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    if (family != "gpt-2") {
        const json split = {{"type", "Split"},
                            {"pattern", {{"Regex", family == "llama-bpe" ? kLlama3Regex : kQwen2Regex}}},
                            {"behavior", "Isolated"},
                            {"invert", false}};
        pre = {{"type", "Sequence"}, {"pretokenizers", json::array({split, byte_level})}};
    }
    if (family == "llama-bpe") {
        const std::string bos = "<|begin_of_text|>";
        const json tmpl = {{"type", "TemplateProcessing"},
                           {"single", json::array({{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                                                   {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                           {"pair", json::array()},
                           {"special_tokens", {{bos, {{"id", bos}, {"ids", {128000}}, {"tokens", {bos}}}}}}};
        post = {{"type", "Sequence"}, {"processors", json::array({post, tmpl})}};
    }
    return {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added},
            {"normalizer", family == "qwen2" ? json{{"type", "NFC"}} : json(nullptr)},
            {"pre_tokenizer", pre},
            {"post_processor", post},
            {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
            {"model",
             {{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", false},
              {"byte_fallback", false},
              {"ignore_merges", family == "llama-bpe"},
              {"vocab", vocab},
              {"merges", g.merges}}}};
}

}  // namespace

class TestHfTokenizerSuite : public QObject {
    Q_OBJECT

    std::vector<std::string> inputs_;
    std::vector<std::vector<int32_t>> expected_;

    // Loads NAME.gguf's vocabulary and its .inp/.out pair into inputs_/expected_.
    bool load_suite(const QString& name, Vocab* ref, QString* error) {
        QString gguf = ef::test::shared_path("vocab-tests/ggml-vocab-" + name + ".gguf", error);
        QString inp = ef::test::shared_path("vocab-tests/ggml-vocab-" + name + ".gguf.inp", error);
        QString outp = ef::test::shared_path("vocab-tests/ggml-vocab-" + name + ".gguf.out", error);
        if (gguf.isEmpty() || inp.isEmpty() || outp.isEmpty()) return false;
        auto v = read_gguf_vocab(gguf.toStdString());
        if (!v) {
            *error = QString::fromStdString(v.message());
            return false;
        }
        *ref = std::move(*v);
        inputs_ = ef::test::vocab_suite_inputs(read_all(inp, error));
        expected_ = ef::test::vocab_suite_outputs(read_all(outp, error));
        if (!error->isEmpty()) return false;
        if (inputs_.size() != expected_.size() || inputs_.empty()) {
            *error = QString("%1: %2 inputs but %3 expected lines").arg(name).arg(inputs_.size()).arg(expected_.size());
            return false;
        }
        return true;
    }

    void check_suite(const QString& what, const Tokenizer& tok) {
        const SuiteResult r = run_suite(tok, inputs_, expected_);
        qInfo("%s: %zu/%zu strings match llama.cpp", qPrintable(what), r.passed, r.total);
        QVERIFY2(r.passed == r.total,
                 qPrintable(QString("%1: %2/%3 strings match llama.cpp%4").arg(what).arg(r.passed).arg(r.total).arg(r.failures)));
        // test-tokenizer-0 also detokenizes: llama.cpp's ids must decode back to each input.
        for (size_t i = 0; i < inputs_.size(); ++i) {
            const std::string back = tok.decode(expected_[i]);
            QVERIFY2(back == inputs_[i], qPrintable(QString("%1 #%2: '%3' decoded to '%4'")
                                                        .arg(what)
                                                        .arg(i)
                                                        .arg(QString::fromStdString(inputs_[i]), QString::fromStdString(back))));
        }
    }

private slots:
    void hfGpt2MatchesLlamaCpp_data() {
        QTest::addColumn<bool>("pair_merges");
        QTest::newRow("merges as \"a b\"") << false;
        QTest::newRow("merges as [a, b]") << true;
    }
    void hfGpt2MatchesLlamaCpp() {
        QFETCH(bool, pair_merges);
        EF_REQUIRE_SHARED(vocab_json, "tokenizers/gpt2_vocab.json");
        EF_REQUIRE_SHARED(merges_txt, "tokenizers/gpt2_merges.txt");
        QCOMPARE(sha256(vocab_json), QString("196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"));
        QCOMPARE(sha256(merges_txt), QString("ac33235097fe06d4a8fff0feac994644809e6eb6ab70669e1e9fd40ae032428e"));
        Vocab ref;
        QString err;
        QVERIFY2(load_suite("gpt-2", &ref, &err), qPrintable(err));

        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.filePath("tokenizer.json");
        err = build_gpt2_tokenizer_json(vocab_json, merges_txt, path, pair_merges);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        auto vocab = read_hf_tokenizer(path.toStdString());
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        QCOMPARE(QString::fromStdString(vocab->model), QString("gpt2"));
        QCOMPARE(QString::fromStdString(vocab->pre), QString("gpt-2"));

        // Precondition: the expected ids are llama.cpp's for the GGUF vocabulary.
        const QString diff = vocab_differences(*vocab, ref, /*compare_scores=*/false);
        QVERIFY2(diff.isEmpty(), qPrintable("tokenizer.json from gpt2_vocab.json + gpt2_merges.txt is not the vocabulary "
                                            "of ggml-vocab-gpt-2.gguf:\n  " + diff));

        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        check_suite("gpt-2 via tokenizer.json", *tok);
    }

    // The checks above must be able to fail: the same tokenizer.json with the ids of " the" and " a"
    // swapped must be caught by the vocabulary comparison and give wrong ids in the suite.
    void hfGpt2TamperedVocabFails() {
        EF_REQUIRE_SHARED(vocab_json, "tokenizers/gpt2_vocab.json");
        EF_REQUIRE_SHARED(merges_txt, "tokenizers/gpt2_merges.txt");
        Vocab ref;
        QString err;
        QVERIFY2(load_suite("gpt-2", &ref, &err), qPrintable(err));
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.filePath("tokenizer.json");
        QVERIFY(build_gpt2_tokenizer_json(vocab_json, merges_txt, path, false).isEmpty());
        json j = json::parse(read_all(path, &err));
        const std::string the = "\xC4\xA0the", a = "\xC4\xA0" "a";  // "Ġthe", "Ġa"
        json& v = j["model"]["vocab"];
        QVERIFY(v.contains(the) && v.contains(a));
        const json id_the = v[the];
        v[the] = v[a];
        v[a] = id_the;
        auto vocab = hf_tokenizer_from_json(j, "tampered tokenizer.json");
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        const QString diff = vocab_differences(*vocab, ref, false);
        QVERIFY2(diff.contains(QString("token %1 is").arg(id_the.get<int>())), qPrintable("not reported: " + diff));
        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        const SuiteResult r = run_suite(*tok, inputs_, expected_);
        QVERIFY2(r.passed < r.total, "swapping two common tokens went unnoticed by the suite");
    }

    // The pre-tokenizer comes from the tokenizer.json layout: each byte-level family's published
    // layout, carrying that family's suite vocabulary, must be read as llama.cpp's pre-tokenizer of
    // the same name and pass its suite. (The vocabulary here is the GGUF's own, so this checks the
    // reader's structure handling, not an independent vocabulary file as the GPT-2 case does.)
    void hfFamilyLayoutsMatchLlamaCpp_data() {
        QTest::addColumn<QString>("family");
        for (const char* f : {"gpt-2", "llama-bpe", "qwen2"}) QTest::newRow(f) << QString(f);
    }
    void hfFamilyLayoutsMatchLlamaCpp() {
        QFETCH(QString, family);
        Vocab ref;
        QString err;
        QVERIFY2(load_suite(family, &ref, &err), qPrintable(err));
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.filePath("tokenizer.json");
        {
            QFile f(path);
            QVERIFY(f.open(QIODevice::WriteOnly));
            const std::string text = family_tokenizer_json(ref, family).dump();
            QCOMPARE(f.write(text.data(), qint64(text.size())), qint64(text.size()));
        }
        auto vocab = read_hf_tokenizer(path.toStdString());
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        QCOMPARE(QString::fromStdString(vocab->pre), family);
        // tokenizer.json does not say which token ends a text (HF keeps that in tokenizer_config.json),
        // so the special ids are not compared; the suite does not use them.
        const QString diff = vocab_differences(*vocab, ref, false, /*compare_special_ids=*/false);
        QVERIFY2(diff.isEmpty(), qPrintable("vocabulary read back differs from the GGUF's:\n  " + diff));
        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        check_suite(family + " via tokenizer.json layout", *tok);
        if (family == "llama-bpe") QCOMPARE(vocab->bos_id, 128000);

        // Our writer must keep the pre-tokenizer in the layout too (tokenizer.json alone, no extras).
        const QString written = dir.filePath("written.json");
        QVERIFY(write_hf_tokenizer(ref, written.toStdString()).ok());
        auto back = read_hf_tokenizer(written.toStdString());
        QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
        QCOMPARE(QString::fromStdString(back->pre), family);
        auto back_tok = Tokenizer::create(*back);
        QVERIFY2(back_tok.ok(), back_tok.ok() ? "" : back_tok.message().c_str());
        check_suite(family + " via our written tokenizer.json", *back_tok);

        // An unknown Split regex must not be tokenized as GPT-2 would: the reader leaves the
        // pre-tokenizer unnamed and the tokenizer refuses it.
        if (family != "gpt-2") {
            json j = family_tokenizer_json(ref, family);
            j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{L}+|\\p{N}+";
            auto odd = hf_tokenizer_from_json(j, "odd tokenizer.json");
            QVERIFY2(odd.ok(), odd.ok() ? "" : odd.message().c_str());
            QCOMPARE(QString::fromStdString(odd->pre), QString());
            QVERIFY(!Tokenizer::create(*odd).ok());
        }
    }

    void llama2cMatchesLlamaSpm() {
        EF_REQUIRE_SHARED(bin, "tokenizers/llama2c_tokenizer.bin");
        QCOMPARE(sha256(bin), QString("50a52ef822ee9e83de5ce9d0be0a025a773d019437f58b5ff9dcafb063ece361"));
        Vocab ref;
        QString err;
        QVERIFY2(load_suite("llama-spm", &ref, &err), qPrintable(err));
        auto vocab = read_llama2c_tokenizer(bin.toStdString(), 32000);
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());

        const QString diff = vocab_differences(*vocab, ref, /*compare_scores=*/true);
        QVERIFY2(diff.isEmpty(), qPrintable("llama2c_tokenizer.bin is not the vocabulary of ggml-vocab-llama-spm.gguf:\n  " +
                                            diff));
        auto tok = Tokenizer::create(*vocab);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.message().c_str());
        check_suite("llama-spm via llama2.c tokenizer", *tok);
    }

    // The score comparison must be able to fail too: one changed score is reported.
    void llama2cTamperedScoreIsReported() {
        EF_REQUIRE_SHARED(bin, "tokenizers/llama2c_tokenizer.bin");
        Vocab ref;
        QString err;
        QVERIFY2(load_suite("llama-spm", &ref, &err), qPrintable(err));
        auto vocab = read_llama2c_tokenizer(bin.toStdString(), 32000);
        QVERIFY2(vocab.ok(), vocab.ok() ? "" : vocab.message().c_str());
        vocab->scores[1000] += 1.0f;
        const QString diff = vocab_differences(*vocab, ref, true);
        QVERIFY2(diff.contains("score of token 1000"), qPrintable("not reported: " + diff));
    }
};

QTEST_GUILESS_MAIN(TestHfTokenizerSuite)
#include "test_hf_tokenizer_suite.moc"
