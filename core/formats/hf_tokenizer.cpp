// tokenizer.json layout facts follow HF `tokenizers`' serialisation (model/normalizer/
// pre_tokenizer/post_processor/decoder objects, "added_tokens" list).
#include "core/formats/hf_tokenizer.h"

#include <fstream>
#include <map>
#include <sstream>

#include "core/storage.h"
#include "core/text_file.h"

namespace ef {
namespace {

using nlohmann::json;

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;
const char* const kSpace = "\xE2\x96\x81";  // "▁" U+2581, SentencePiece's space

bool is_byte_token(const std::string& t) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
    return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

// True when `node` (a pre-tokenizer or decoder, possibly a Sequence) contains a ByteLevel step.
bool has_byte_level(const json& node) {
    if (!node.is_object()) return false;
    const std::string type = node.value("type", "");
    if (type == "ByteLevel") return true;
    for (const char* key : {"pretokenizers", "decoders"})
        if (node.contains(key) && node[key].is_array())
            for (const auto& sub : node[key])
                if (has_byte_level(sub)) return true;
    return false;
}

// The Split regexes HF tokenizer.json files put before a ByteLevel(use_regex=false) step for the
// llama.cpp pre-tokenizers other than gpt-2 (Llama 3's and Qwen2's tokenizer.json; they differ in
// digits: runs of up to three vs one at a time).
constexpr const char* kLlama3Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Split =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Collects the regex patterns of the Split steps in a pre-tokenizer (possibly a Sequence).
void split_patterns(const json& node, std::vector<std::string>& out) {
    if (!node.is_object()) return;
    if (node.value("type", "") == "Split" && node.contains("pattern") && node["pattern"].is_object()) {
        const json& p = node["pattern"];
        if (p.contains("Regex") && p["Regex"].is_string()) out.push_back(p["Regex"].get<std::string>());
        else if (p.contains("String") && p["String"].is_string()) out.push_back(p["String"].get<std::string>());
    }
    if (node.contains("pretokenizers") && node["pretokenizers"].is_array())
        for (const auto& sub : node["pretokenizers"]) split_patterns(sub, out);
}

// llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer.json: a lone ByteLevel step splits
// with GPT-2's regex; a Split with Llama 3's or Qwen2's regex names those. Any other Split is a
// pre-tokenizer we do not know: "" (the tokenizer then refuses it instead of splitting wrongly).
std::string byte_level_pre(const json& pre) {
    std::vector<std::string> patterns;
    split_patterns(pre, patterns);
    if (patterns.empty()) return "gpt-2";
    if (patterns.size() == 1 && patterns[0] == kLlama3Split) return "llama-bpe";
    if (patterns.size() == 1 && patterns[0] == kQwen2Split) return "qwen2";
    return "";
}

// Finds the BOS of a TemplateProcessing post-processor (also inside a Sequence): the special
// token that starts the "single" template. Returns its id, or -1.
int32_t template_bos(const json& pp) {
    if (!pp.is_object()) return -1;
    const std::string type = pp.value("type", "");
    if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
        for (const auto& sub : pp["processors"])
            if (int32_t id = template_bos(sub); id >= 0) return id;
        return -1;
    }
    if (type != "TemplateProcessing" || !pp.contains("single") || !pp["single"].is_array() || pp["single"].empty())
        return -1;
    const json& first = pp["single"][0];
    if (!first.is_object() || !first.contains("SpecialToken")) return -1;
    const std::string name = first["SpecialToken"].value("id", "");
    if (!pp.contains("special_tokens") || !pp["special_tokens"].contains(name)) return -1;
    const json& ids = pp["special_tokens"][name]["ids"];
    if (!ids.is_array() || ids.empty() || !ids[0].is_number_integer()) return -1;
    return ids[0].get<int32_t>();
}

int32_t find_token(const std::vector<std::string>& tokens, const std::string& text) {
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] == text) return int32_t(i);
    return -1;
}

}  // namespace

Result<Vocab> hf_tokenizer_from_json(const json& j, const std::string& origin) {
    try {
        if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
            return make_error(origin + ": tokenizer.json has no \"model\" object");
        const json& m = j["model"];
        const std::string type = m.value("type", "");
        Vocab v;
        std::map<int64_t, std::string> by_id;
        auto put = [&](int64_t id, const std::string& text) -> Status {
            if (id < 0 || id > (int64_t(1) << 24))
                return make_error(origin + ": token id " + std::to_string(id) + " out of range");
            auto [it, inserted] = by_id.emplace(id, text);
            if (!inserted && it->second != text)
                return make_error(origin + ": token id " + std::to_string(id) + " is both \"" + it->second +
                                  "\" and \"" + text + "\"");
            return {};
        };
        std::map<int64_t, float> scores;
        if (type == "Unigram") {
            v.model = "llama";
            if (!m.contains("vocab") || !m["vocab"].is_array())
                return make_error(origin + ": Unigram model without a \"vocab\" list");
            int64_t id = 0;
            for (const auto& e : m["vocab"]) {
                if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
                    return make_error(origin + ": Unigram vocab entry " + std::to_string(id) +
                                      " is not [piece, score]");
                EF_TRY_STATUS(put(id, e[0].get<std::string>()));
                scores[id] = e[1].get<float>();
                ++id;
            }
            if (m.contains("unk_id") && m["unk_id"].is_number_integer()) v.unk_id = m["unk_id"].get<int32_t>();
        } else if (type == "BPE") {
            const bool byte_level = has_byte_level(j.value("pre_tokenizer", json())) ||
                                    has_byte_level(j.value("decoder", json()));
            v.model = byte_level ? "gpt2" : "llama";
            if (byte_level) v.pre = byte_level_pre(j.value("pre_tokenizer", json()));
            if (!m.contains("vocab") || !m["vocab"].is_object())
                return make_error(origin + ": BPE model without a \"vocab\" object");
            for (const auto& [text, id] : m["vocab"].items()) {
                if (!id.is_number_integer()) return make_error(origin + ": vocab entry \"" + text + "\" has no integer id");
                EF_TRY_STATUS(put(id.get<int64_t>(), text));
            }
            if (m.contains("merges") && m["merges"].is_array()) {
                for (const auto& e : m["merges"]) {
                    if (e.is_string()) v.merges.push_back(e.get<std::string>());
                    else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string())
                        v.merges.push_back(e[0].get<std::string>() + " " + e[1].get<std::string>());
                    else return make_error(origin + ": a BPE merge is neither \"a b\" nor [a, b]");
                }
            }
            if (m.contains("unk_token") && m["unk_token"].is_string()) {
                const std::string unk = m["unk_token"].get<std::string>();
                for (const auto& [id, text] : by_id)
                    if (text == unk) v.unk_id = int32_t(id);
            }
        } else {
            return make_error(origin + ": tokenizer model type \"" + type + "\" is not supported (BPE or Unigram)");
        }

        std::map<int64_t, int32_t> added_type;
        if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
            for (const auto& a : j["added_tokens"]) {
                if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
                    !a["content"].is_string())
                    return make_error(origin + ": an added_tokens entry lacks id/content");
                const int64_t id = a["id"].get<int64_t>();
                EF_TRY_STATUS(put(id, a["content"].get<std::string>()));
                added_type[id] = a.value("special", false) ? kControl : kUserDefined;
            }
        }
        // Ids must be dense 0..n-1.
        const int64_t n = by_id.empty() ? 0 : by_id.rbegin()->first + 1;
        if (int64_t(by_id.size()) != n) {
            for (int64_t i = 0; i < n; ++i)
                if (!by_id.count(i))
                    return make_error(origin + ": token id " + std::to_string(i) + " is missing (ids must be dense)");
        }
        v.tokens.resize(size_t(n));
        for (auto& [id, text] : by_id) v.tokens[size_t(id)] = std::move(text);

        if (v.model == "llama") {
            v.scores.resize(size_t(n));
            for (int64_t i = 0; i < n; ++i) {
                auto it = scores.find(i);
                // HF's BPE form of a SentencePiece vocab has no scores; the piece order is the
                // merge priority, which SentencePiece's BPE scores (-id) express.
                v.scores[size_t(i)] = it != scores.end() ? it->second : -float(i);
            }
        }
        v.token_types.assign(size_t(n), kNormal);
        for (int64_t i = 0; i < n; ++i) {
            if (v.model == "llama" && is_byte_token(v.tokens[size_t(i)])) v.token_types[size_t(i)] = kByte;
            if (auto it = added_type.find(i); it != added_type.end()) v.token_types[size_t(i)] = it->second;
        }
        if (v.unk_id >= 0 && v.unk_id < n) v.token_types[size_t(v.unk_id)] = kUnknown;

        const int32_t tbos = template_bos(j.value("post_processor", json()));
        if (v.model == "llama") {
            v.bos_id = tbos >= 0 ? tbos : find_token(v.tokens, "<s>");
            v.eos_id = find_token(v.tokens, "</s>");
            v.add_bos = true;
            if (v.unk_id < 0) v.unk_id = find_token(v.tokens, "<unk>");
        } else {
            const int32_t eot = find_token(v.tokens, "<|endoftext|>");
            v.bos_id = tbos >= 0 ? tbos : eot;
            v.eos_id = eot;
            v.add_bos = tbos >= 0;
        }
        return v;
    } catch (const json::exception& e) {
        return make_error(origin + ": malformed tokenizer.json (" + e.what() + ")");
    }
}

Result<Vocab> read_hf_tokenizer(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open tokenizer.json");
    std::stringstream ss;
    ss << in.rdbuf();
    json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(path + ": tokenizer.json is not valid JSON");
    return hf_tokenizer_from_json(j, path);
}

Result<json> hf_tokenizer_to_json(const Vocab& v) {
    if (v.empty()) return make_error("tokenizer.json: the vocabulary is empty");
    if (v.model != "llama" && v.model != "gpt2")
        return make_error("tokenizer.json: tokenizer model \"" + v.model + "\" cannot be written (llama or gpt2 only)");
    const size_t n = v.tokens.size();
    auto type_of = [&](size_t i) { return i < v.token_types.size() ? v.token_types[i] : kNormal; };

    json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    json added = json::array();
    for (size_t i = 0; i < n; ++i) {
        const int32_t t = type_of(i);
        const bool special = t == kControl || t == kUnknown || int32_t(i) == v.bos_id || int32_t(i) == v.eos_id;
        if (!special && t != kUserDefined) continue;
        added.push_back({{"id", i}, {"content", v.tokens[i]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", special}});
    }
    j["added_tokens"] = added;

    if (v.add_bos && v.bos_id >= 0 && size_t(v.bos_id) < n) {
        const std::string bos = v.tokens[size_t(v.bos_id)];
        json sp = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
        json a = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
        json b = {{"Sequence", {{"id", "B"}, {"type_id", 1}}}};
        json sp1 = {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}};
        j["post_processor"] = {{"type", "TemplateProcessing"},
                               {"single", json::array({sp, a})},
                               {"pair", json::array({sp, a, sp1, b})},
                               {"special_tokens", {{bos, {{"id", bos}, {"ids", {v.bos_id}}, {"tokens", {bos}}}}}}};
    } else if (v.model == "gpt2") {
        j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    } else {
        j["post_processor"] = nullptr;
    }

    if (v.model == "llama") {
        j["normalizer"] = {{"type", "Sequence"},
                           {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", kSpace}},
                                                        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}})}};
        j["pre_tokenizer"] = nullptr;
        j["decoder"] = {{"type", "Sequence"},
                        {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                                                  {{"type", "ByteFallback"}},
                                                  {{"type", "Fuse"}},
                                                  {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
        json vocab = json::array();
        bool has_bytes = false;
        for (size_t i = 0; i < n; ++i) {
            vocab.push_back(json::array({v.tokens[i], i < v.scores.size() ? v.scores[i] : 0.0f}));
            has_bytes = has_bytes || type_of(i) == kByte;
        }
        j["model"] = {{"type", "Unigram"}, {"unk_id", v.unk_id >= 0 ? json(v.unk_id) : json(nullptr)},
                      {"vocab", vocab}, {"byte_fallback", has_bytes}};
    } else {
        j["normalizer"] = nullptr;
        // Llama 3 / Qwen2 split with their own regex first and keep ByteLevel from splitting again.
        const char* split = v.pre == "llama-bpe" ? kLlama3Split : v.pre == "qwen2" ? kQwen2Split : nullptr;
        if (split)
            j["pre_tokenizer"] = {
                {"type", "Sequence"},
                {"pretokenizers",
                 json::array({{{"type", "Split"}, {"pattern", {{"Regex", split}}}, {"behavior", "Isolated"}, {"invert", false}},
                              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}})}};
        else
            j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
        j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
        json vocab = json::object();
        for (size_t i = 0; i < n; ++i) {
            if (vocab.contains(v.tokens[i]))
                return make_error("tokenizer.json: token \"" + v.tokens[i] + "\" appears twice (ids " +
                                  std::to_string(vocab[v.tokens[i]].get<int64_t>()) + " and " + std::to_string(i) + ")");
            vocab[v.tokens[i]] = i;
        }
        j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                      {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                      {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", v.pre == "llama-bpe"},
                      {"vocab", vocab}, {"merges", v.merges}};
    }
    return j;
}

Status write_hf_tokenizer(const Vocab& v, const std::string& path) {
    auto j = hf_tokenizer_to_json(v);
    if (!j) return make_error(path + ": " + j.message());
    return write_text_file(path, j->dump(1, ' ', false, json::error_handler_t::replace));
}

json vocab_extras_to_json(const Vocab& v) {
    return {{"model", v.model}, {"pre", v.pre}, {"n_tokens", v.tokens.size()}, {"token_types", v.token_types},
            {"bos_id", v.bos_id}, {"eos_id", v.eos_id}, {"unk_id", v.unk_id}, {"pad_id", v.pad_id},
            {"add_bos", v.add_bos}, {"max_token_length", v.max_token_length}, {"has_scores", !v.scores.empty()}};
}

Status apply_vocab_extras(const json& x, Vocab& v, const std::string& origin) {
    try {
        if (!x.is_object()) return make_error(origin + ": vocabulary extras are not a JSON object");
        const auto n = x.at("n_tokens").get<size_t>();
        if (n != v.tokens.size())
            return make_error(origin + ": tokenizer.json has " + std::to_string(v.tokens.size()) +
                              " tokens but the checkpoint's metadata says " + std::to_string(n));
        auto types = x.at("token_types").get<std::vector<int32_t>>();
        if (!types.empty() && types.size() != n)
            return make_error(origin + ": vocabulary extras list " + std::to_string(types.size()) + " token types for " +
                              std::to_string(n) + " tokens");
        v.model = x.at("model").get<std::string>();
        v.pre = x.at("pre").get<std::string>();
        v.token_types = std::move(types);
        v.bos_id = x.at("bos_id").get<int32_t>();
        v.eos_id = x.at("eos_id").get<int32_t>();
        v.unk_id = x.at("unk_id").get<int32_t>();
        v.pad_id = x.at("pad_id").get<int32_t>();
        v.add_bos = x.at("add_bos").get<bool>();
        v.max_token_length = x.at("max_token_length").get<int32_t>();
        if (!x.value("has_scores", true)) v.scores.clear();
        return {};
    } catch (const json::exception& e) {
        return make_error(origin + ": malformed vocabulary extras (" + e.what() + ")");
    }
}

}  // namespace ef
