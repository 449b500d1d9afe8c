#include "runtime/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <optional>
#include <queue>
#include <unordered_map>

#include "core/formats/gguf.h"
#include "core/storage.h"
#include "runtime/tokenizer/unicode.h"

namespace ef {

namespace {

// Vocab::token_types values (GGUF's token type enum).
enum : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

struct ViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TextMap = std::unordered_map<std::string, int32_t, ViewHash, std::equal_to<>>;

// Pre-tokenizer names llama.cpp maps to the three splitters we implement.
std::optional<unicode::PreTokenizer> pre_tokenizer_of(std::string_view pre, bool& ignore_merges) {
    using P = unicode::PreTokenizer;
    ignore_merges = false;
    if (pre == "gpt-2" || pre == "gpt2") return P::Gpt2;
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
        ignore_merges = true;  // Llama 3 takes a whole word that is a token as is
        return P::Llama3;
    }
    if (pre == "qwen2") return P::Qwen2;
    return std::nullopt;
}

// Token texts llama.cpp treats as control tokens whatever their stored type (end-of-generation and
// fill-in-the-middle markers it recognises by text, see llama-vocab.cpp), so they are matched only
// with parse_special and hidden when decoding, as there.
constexpr std::string_view kControlLooking[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~[",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
    "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>",
    "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
    "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
};
// ... and ones it always renders as text (gpt-oss).
constexpr std::string_view kUserDefinedLooking[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};

}  // namespace

struct Tokenizer::Data {
    Kind kind = Kind::Spm;
    unicode::PreTokenizer pre = unicode::PreTokenizer::Gpt2;
    bool ignore_merges = false;
    bool add_space_prefix = true;  // SentencePiece: "▁" before the first text run
    bool add_bos = true;
    int32_t bos = -1, eos = -1, unk = -1;
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    TextMap ids;
    TextMap merge_ranks;               // BPE: "left right" -> rank (first occurrence wins)
    std::vector<int32_t> specials;     // control/user-defined/unknown ids, longest text first
    std::array<int32_t, 256> byte_ids;  // fallback token per byte, -1 when none

    int32_t type(int32_t id) const { return types.empty() ? kNormal : types[size_t(id)]; }
    int32_t find(std::string_view s) const {
        auto it = ids.find(s);
        return it == ids.end() ? -1 : it->second;
    }
    float score(int32_t id) const { return scores.empty() ? 0.0f : scores[size_t(id)]; }

    void encode_spm(std::string_view raw, bool prefix, std::vector<int32_t>& out) const;
    void encode_bpe(std::string_view raw, std::vector<int32_t>& out) const;
};

Result<Tokenizer> Tokenizer::create(const Vocab& v) {
    auto d = std::make_shared<Data>();
    const auto fail = [](const std::string& m) { return make_error("tokenizer: " + m); };
    if (v.tokens.empty()) return fail("the vocabulary has no tokens");
    if (v.tokens.size() > size_t(INT32_MAX)) return fail("too many tokens");
    if (!v.scores.empty() && v.scores.size() != v.tokens.size())
        return fail(std::to_string(v.scores.size()) + " scores for " + std::to_string(v.tokens.size()) + " tokens");
    if (!v.token_types.empty() && v.token_types.size() != v.tokens.size())
        return fail(std::to_string(v.token_types.size()) + " token types for " + std::to_string(v.tokens.size()) +
                    " tokens");
    if (v.model == "llama") {
        d->kind = Kind::Spm;
    } else if (v.model == "gpt2") {
        d->kind = Kind::Bpe;
        auto pre = pre_tokenizer_of(v.pre, d->ignore_merges);
        if (!pre)
            return fail("unsupported pre-tokenizer '" + v.pre + "' (supported: gpt-2, llama-bpe, qwen2)");
        d->pre = *pre;
        d->add_space_prefix = false;
        if (v.merges.empty()) return fail("the BPE vocabulary has no merges");
    } else {
        return fail("unsupported tokenizer model '" + v.model + "' (supported: llama, gpt2)");
    }
    const auto valid_id = [&](int32_t id) { return id >= 0 && size_t(id) < v.tokens.size() ? id : -1; };
    d->bos = valid_id(v.bos_id);
    d->eos = valid_id(v.eos_id);
    d->unk = valid_id(v.unk_id);
    d->add_bos = v.add_bos && d->bos >= 0;
    d->tokens = v.tokens;
    d->scores = v.scores;
    d->types = v.token_types;

    d->ids.reserve(d->tokens.size());
    for (size_t i = 0; i < d->tokens.size(); ++i) d->ids[d->tokens[i]] = int32_t(i);  // later ids win, as in llama.cpp

    if (d->types.empty()) d->types.assign(d->tokens.size(), kNormal);
    for (std::string_view t : kControlLooking)
        if (const int32_t id = d->find(t); id >= 0 && d->types[size_t(id)] != kUnknown) d->types[size_t(id)] = kControl;
    for (std::string_view t : kUserDefinedLooking)
        if (const int32_t id = d->find(t); id >= 0) d->types[size_t(id)] = kUserDefined;

    for (size_t i = 0; i < v.merges.size(); ++i) {
        const std::string& m = v.merges[i];
        if (m.size() >= 3 && m.find(' ', 1) != std::string::npos) d->merge_ranks.emplace(m, int32_t(i));
    }

    for (size_t i = 0; i < d->tokens.size(); ++i) {
        const int32_t t = d->type(int32_t(i));
        if ((t == kControl || t == kUserDefined || t == kUnknown) && !d->tokens[i].empty())
            d->specials.push_back(int32_t(i));
    }
    std::stable_sort(d->specials.begin(), d->specials.end(), [&](int32_t a, int32_t b) {
        return d->tokens[size_t(a)].size() > d->tokens[size_t(b)].size();
    });

    for (int b = 0; b < 256; ++b) {
        int32_t id = -1;
        if (d->kind == Kind::Spm) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "<0x%02X>", b);
            id = d->find(hex);
            if (id < 0) id = d->find(std::string(1, char(b)));
            if (id < 0) id = d->unk;
        } else {
            // llama.cpp looks up the raw byte itself (which exists for printable ASCII only).
            id = d->find(std::string(1, char(b)));
        }
        d->byte_ids[size_t(b)] = id;
    }
    return Tokenizer(std::move(d));
}

Tokenizer::Kind Tokenizer::kind() const { return d_->kind; }
size_t Tokenizer::size() const { return d_->tokens.size(); }
int32_t Tokenizer::bos_id() const { return d_->bos; }
int32_t Tokenizer::eos_id() const { return d_->eos; }
int32_t Tokenizer::find_token(std::string_view text) const { return d_->find(text); }

void Tokenizer::Data::encode_spm(std::string_view raw, bool prefix, std::vector<int32_t>& out) const {
    std::string text;
    text.reserve(raw.size() + raw.size() / 2 + 3);
    if (prefix) text += kSpaceMark;
    for (char c : raw) {
        if (c == ' ')
            text += kSpaceMark;
        else
            text += c;
    }

    struct Sym {
        uint32_t start, n;
        int32_t prev, next;
    };
    std::vector<Sym> syms;
    syms.reserve(text.size());
    for (size_t off = 0; off < text.size();) {
        const size_t n = std::min(unicode::utf8_len(uint8_t(text[off])), text.size() - off);
        const int32_t i = int32_t(syms.size());
        syms.push_back({uint32_t(off), uint32_t(n), i - 1, off + n == text.size() ? -1 : i + 1});
        off += n;
    }
    if (syms.empty()) return;

    struct Bigram {
        float score;
        int32_t left, right;
        uint32_t size;
    };
    // Highest score first; on equal scores the leftmost pair.
    const auto lower = [](const Bigram& a, const Bigram& b) {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(lower)> queue(lower);
    const auto try_pair = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        const uint32_t size = syms[size_t(l)].n + syms[size_t(r)].n;
        const int32_t id = find(std::string_view(text).substr(syms[size_t(l)].start, size));
        if (id >= 0) queue.push({score(id), l, r, size});
    };
    for (size_t i = 1; i < syms.size(); ++i) try_pair(int32_t(i - 1), int32_t(i));

    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Sym& l = syms[size_t(b.left)];
        Sym& r = syms[size_t(b.right)];
        // Stale: one side was merged away or grew since the pair was queued.
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) syms[size_t(r.next)].prev = b.left;
        try_pair(l.prev, b.left);
        try_pair(b.left, l.next);
    }

    for (int32_t i = 0; i != -1; i = syms[size_t(i)].next) {
        const Sym& s = syms[size_t(i)];
        const std::string_view piece = std::string_view(text).substr(s.start, s.n);
        if (const int32_t id = find(piece); id >= 0) {
            out.push_back(id);
            continue;
        }
        for (char c : piece)
            if (const int32_t id = byte_ids[uint8_t(c)]; id >= 0) out.push_back(id);
    }
}

void Tokenizer::Data::encode_bpe(std::string_view raw, std::vector<int32_t>& out) const {
    const std::vector<uint32_t> cps = unicode::code_points(raw);
    const std::vector<size_t> words = unicode::pre_tokenize(cps, pre);

    struct Sym {
        uint32_t start, n;
        int32_t prev, next;
    };
    struct Bigram {
        int32_t rank, left, right;
        uint32_t size;
    };
    // Lowest rank first; on equal ranks the leftmost pair.
    const auto lower = [](const Bigram& a, const Bigram& b) {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    };
    std::vector<Sym> syms;
    std::vector<Bigram> heap;
    std::string word, utf8, key;
    size_t at = 0;
    for (size_t len : words) {
        // The word's UTF-8 bytes, each written as its printable stand-in character.
        word.clear();
        for (size_t i = at; i < at + len; ++i) {
            utf8.clear();
            unicode::append_utf8(utf8, cps[i]);
            for (char c : utf8) unicode::append_utf8(word, unicode::byte_to_code_point(uint8_t(c)));
        }
        at += len;
        if (word.empty()) continue;
        if (ignore_merges) {
            if (const int32_t id = find(word); id >= 0) {
                out.push_back(id);
                continue;
            }
        }

        syms.clear();
        for (size_t off = 0; off < word.size();) {
            const size_t n = std::min(unicode::utf8_len(uint8_t(word[off])), word.size() - off);
            const int32_t i = int32_t(syms.size());
            syms.push_back({uint32_t(off), uint32_t(n), i - 1, off + n == word.size() ? -1 : i + 1});
            off += n;
        }
        heap.clear();
        const auto try_pair = [&](int32_t l, int32_t r) {
            if (l < 0 || r < 0) return;
            const Sym& a = syms[size_t(l)];
            const Sym& b = syms[size_t(r)];
            key.assign(word, a.start, a.n);
            key += ' ';
            key.append(word, b.start, b.n);
            auto it = merge_ranks.find(key);
            if (it == merge_ranks.end()) return;
            heap.push_back({it->second, l, r, a.n + b.n});
            std::push_heap(heap.begin(), heap.end(), lower);
        };
        for (size_t i = 1; i < syms.size(); ++i) try_pair(int32_t(i - 1), int32_t(i));
        while (!heap.empty()) {
            std::pop_heap(heap.begin(), heap.end(), lower);
            const Bigram b = heap.back();
            heap.pop_back();
            Sym& l = syms[size_t(b.left)];
            Sym& r = syms[size_t(b.right)];
            if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) syms[size_t(r.next)].prev = b.left;
            try_pair(l.prev, b.left);
            try_pair(b.left, l.next);
        }
        for (const Sym& s : syms) {
            if (s.n == 0) continue;
            const std::string_view piece = std::string_view(word).substr(s.start, s.n);
            if (const int32_t id = find(piece); id >= 0) {
                out.push_back(id);
                continue;
            }
            for (char c : piece)
                if (const int32_t id = byte_ids[uint8_t(c)]; id >= 0) out.push_back(id);
        }
    }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    const Data& d = *d_;
    // Split the text into raw runs and special tokens, longest special text first.
    struct Fragment {
        int32_t token;  // -1: raw text [begin, end)
        size_t begin, end;
    };
    std::vector<Fragment> frags, next;
    if (!text.empty()) frags.push_back({-1, 0, text.size()});
    for (int32_t id : d.specials) {
        const int32_t t = d.type(id);
        if (!parse_special && (t == kControl || t == kUnknown)) continue;
        const std::string& s = d.tokens[size_t(id)];
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t pos = f.begin;
            while (pos < f.end) {
                const size_t m = text.substr(0, f.end).find(s, pos);
                if (m == std::string_view::npos) break;
                if (m > pos) next.push_back({-1, pos, m});
                next.push_back({id, m, m + s.size()});
                pos = m + s.size();
            }
            if (pos < f.end) next.push_back({-1, pos, f.end});
        }
        frags.swap(next);
    }

    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (add_special && d.add_bos) out.push_back(d.bos);
    bool after_special = true;  // SentencePiece: the first run gets the space prefix too
    for (const Fragment& f : frags) {
        if (f.token >= 0) {
            out.push_back(f.token);
            after_special = true;
            continue;
        }
        const std::string_view run = text.substr(f.begin, f.end - f.begin);
        if (d.kind == Kind::Spm)
            d.encode_spm(run, d.add_space_prefix && after_special, out);
        else
            d.encode_bpe(run, out);
        after_special = false;
    }
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
    const Data& d = *d_;
    if (id < 0 || size_t(id) >= d.tokens.size()) return {};
    const std::string& text = d.tokens[size_t(id)];
    const int32_t t = d.type(id);
    if (t == kControl || t == kUnknown) return special ? text : std::string();
    if (t == kUserDefined) return text;
    if (t == kByte && text.size() == 6 && text.starts_with("<0x") && text.back() == '>') {
        unsigned v = 0;
        if (std::sscanf(text.c_str() + 3, "%2x", &v) == 1) return std::string(1, char(v));
    }
    if (t != kNormal && t != kByte) return {};  // unused / undefined
    std::string out;
    if (d.kind == Kind::Spm) {
        out.reserve(text.size());
        for (size_t i = 0; i < text.size();) {
            if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
                out += ' ';
                i += kSpaceMark.size();
            } else {
                out += text[i++];
            }
        }
        return out;
    }
    // Byte-level BPE: every character stands for one byte.
    for (size_t off = 0; off < text.size();) {
        const size_t start = off;
        const uint32_t cp = unicode::decode_utf8(text, off);
        const int b = unicode::byte_from_code_point(cp);
        if (b >= 0)
            out += char(b);
        else
            out.append(text, start, off - start);  // not a byte stand-in: keep the text as is
    }
    return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool special) const {
    std::string out;
    bool strip_space = d_->kind == Kind::Spm && d_->add_space_prefix;
    for (int32_t id : ids) {
        std::string piece = token_to_piece(id, special);
        const int32_t t = id >= 0 && size_t(id) < d_->tokens.size() ? d_->type(id) : kNormal;
        if (t == kControl || t == kUnknown || t == kUserDefined) {
            // The encoder restarts the space prefix after a special token.
            strip_space = d_->kind == Kind::Spm && d_->add_space_prefix;
            out += piece;
            continue;
        }
        if (strip_space && !piece.empty()) {
            if (piece[0] == ' ') piece.erase(0, 1);
            strip_space = false;
        }
        out += piece;
    }
    return out;
}

Result<Vocab> read_gguf_vocab(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.error();
    Vocab v;
    auto header = gguf::parse_header((*mapped)->bytes(), path, gguf::ParseOptions{&v});
    if (!header) return header.error();
    if (Status s = gguf::vocab_from_kv(header->kv, v, path); !s) return s.error();
    if (v.tokens.empty()) return make_error(path + ": no tokenizer.ggml.tokens (the file carries no vocabulary)");
    return v;
}

}  // namespace ef
