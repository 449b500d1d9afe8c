#include "core/train/train_data.h"

#include <algorithm>
#include <queue>
#include <sstream>
#include <unordered_map>

namespace ef::train {
namespace {

const std::string kSpace = "\xE2\x96\x81";  // "▁" (U+2581), SentencePiece's space

size_t utf8_len(uint8_t lead) {
    if (lead < 0x80) return 1;
    if ((lead >> 5) == 0x6) return 2;
    if ((lead >> 4) == 0xE) return 3;
    if ((lead >> 3) == 0x1E) return 4;
    return 1;  // a stray continuation byte: one byte on its own
}

bool is_control(uint8_t c) { return c < 0x20 || c == 0x7F; }

// The text as SentencePiece sees it ("▁" for spaces, one in front), cut into words: a word starts
// at each "▁"; a control character (newline, tab) is a word of its own that never merges.
// Calls fn(word, is_control_word).
template <class F>
void for_each_word(std::string_view text, F&& fn) {
    std::string word = kSpace;
    auto flush = [&] {
        if (!word.empty()) fn(std::string_view(word), false);
        word.clear();
    };
    for (size_t i = 0; i < text.size();) {
        const uint8_t c = uint8_t(text[i]);
        if (c == ' ') {
            flush();
            word = kSpace;
            ++i;
        } else if (is_control(c)) {
            flush();
            fn(text.substr(i, 1), true);
            ++i;
        } else {
            const size_t n = std::min(utf8_len(c), text.size() - i);
            word.append(text.substr(i, n));
            i += n;
        }
    }
    flush();
}

std::vector<std::string> utf8_chars(std::string_view w) {
    std::vector<std::string> out;
    for (size_t i = 0; i < w.size();) {
        const size_t n = std::min(utf8_len(uint8_t(w[i])), w.size() - i);
        out.emplace_back(w.substr(i, n));
        i += n;
    }
    return out;
}

void push_token(Vocab& v, std::string text, float score, int32_t type) {
    v.max_token_length = std::max<int32_t>(v.max_token_length, int32_t(text.size()));
    v.tokens.push_back(std::move(text));
    v.scores.push_back(score);
    v.token_types.push_back(type);
}

}  // namespace

Result<Vocab> train_bpe(std::string_view text, const BpeOptions& opts, Progress& progress) {
    if (opts.vocab_size < 260)
        return make_error("BPE: a vocabulary needs at least 260 tokens (3 special, 256 bytes, one piece); asked for " +
                          std::to_string(opts.vocab_size));
    if (text.empty()) return make_error("BPE: the training text is empty");
    // Distinct words with their counts.
    std::unordered_map<std::string, int64_t> word_count;
    for (std::string_view para : split_paragraphs(text))  // as the training stream encodes them
        for_each_word(para, [&](std::string_view w, bool control) {
            if (!control) ++word_count[std::string(w)];
        });
    std::vector<std::pair<std::string, int64_t>> words(word_count.begin(), word_count.end());
    std::sort(words.begin(), words.end());  // a fixed order: results do not depend on hashing
    // Characters by frequency.
    std::unordered_map<std::string, int64_t> char_count;
    for (const auto& [w, n] : words)
        for (std::string& ch : utf8_chars(w)) char_count[ch] += n;
    std::vector<std::pair<std::string, int64_t>> chars(char_count.begin(), char_count.end());
    std::sort(chars.begin(), chars.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });

    Vocab v;
    v.model = "llama";
    push_token(v, "<unk>", 0.0f, 2);
    push_token(v, "<s>", 0.0f, 3);
    push_token(v, "</s>", 0.0f, 3);
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) push_token(v, std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0.0f, 6);
    v.unk_id = 0;
    v.bos_id = 1;
    v.eos_id = 2;
    v.add_bos = true;

    const int64_t room = opts.vocab_size - int64_t(v.tokens.size());
    const int64_t max_alpha = std::min<int64_t>(opts.max_alphabet > 0 ? opts.max_alphabet : std::max<int64_t>(1, room / 2), room);
    std::unordered_map<std::string, int32_t> id_of;
    for (size_t i = 0; i < chars.size() && int64_t(i) < max_alpha; ++i) {
        id_of[chars[i].first] = int32_t(v.tokens.size());
        // Below every merge: a single character is never the result of one.
        push_token(v, chars[i].first, -1e6f - float(i), 1);
    }
    // Words as symbol ids; -1 marks a character that is no token (a byte-fallback barrier).
    std::vector<std::vector<int32_t>> syms(words.size());
    for (size_t i = 0; i < words.size(); ++i)
        for (const std::string& ch : utf8_chars(words[i].first)) {
            auto it = id_of.find(ch);
            syms[i].push_back(it == id_of.end() ? -1 : it->second);
        }

    // Merges with counts kept up to date: a merge touches only the words that hold its left token
    // (an index from token to words, stale entries skipped), and the most frequent pair comes from a
    // heap whose outdated entries are skipped when popped.
    const int64_t target_merges = opts.vocab_size - int64_t(v.tokens.size());
    std::unordered_map<uint64_t, int64_t> pair_count;
    std::vector<std::vector<int32_t>> words_with(v.tokens.size());
    auto key = [](int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); };
    auto add_pairs = [&](size_t wi, int64_t sign, std::vector<uint64_t>& touched) {
        const auto& s = syms[wi];
        for (size_t j = 1; j < s.size(); ++j)
            if (s[j - 1] >= 0 && s[j] >= 0) {
                pair_count[key(s[j - 1], s[j])] += sign * words[wi].second;
                touched.push_back(key(s[j - 1], s[j]));
            }
    };
    struct Entry {
        int64_t n;
        uint64_t pair;
    };
    auto text_of = [&](uint64_t p) { return v.tokens[p >> 32] + v.tokens[p & 0xFFFFFFFFu]; };
    // Most frequent first; ties: the smaller text (then pair), so the order never depends on hashing.
    auto lower = [&](const Entry& x, const Entry& y) {
        if (x.n != y.n) return x.n < y.n;
        const std::string tx = text_of(x.pair), ty = text_of(y.pair);
        return tx != ty ? tx > ty : x.pair > y.pair;
    };
    std::priority_queue<Entry, std::vector<Entry>, decltype(lower)> heap(lower);
    {
        std::vector<uint64_t> touched;
        for (size_t i = 0; i < words.size(); ++i) {
            add_pairs(i, 1, touched);
            for (int32_t t : syms[i])
                if (t >= 0 && (words_with[size_t(t)].empty() || words_with[size_t(t)].back() != int32_t(i)))
                    words_with[size_t(t)].push_back(int32_t(i));
        }
        for (const auto& [p, n] : pair_count) heap.push({n, p});
    }
    std::vector<int64_t> visited(words.size(), -1);
    int64_t merges = 0;
    while (int64_t(v.tokens.size()) < opts.vocab_size && !heap.empty()) {
        if (progress.cancelled()) return make_error("cancelled");
        const Entry e = heap.top();
        heap.pop();
        if (e.n != pair_count[e.pair]) continue;  // outdated
        if (e.n < 2) break;
        const int32_t a = int32_t(e.pair >> 32), b = int32_t(e.pair & 0xFFFFFFFFu);
        const std::string text = text_of(e.pair);
        int32_t id;
        if (auto it = id_of.find(text); it != id_of.end()) {
            id = it->second;  // the same text reached by another split: one token
        } else {
            id = int32_t(v.tokens.size());
            id_of[text] = id;
            push_token(v, text, -float(merges), 1);  // earlier merges score higher
            words_with.emplace_back();
        }
        std::vector<uint64_t> touched;
        const std::vector<int32_t> candidates = words_with[size_t(a)];
        for (int32_t wi : candidates) {
            if (visited[size_t(wi)] == merges) continue;
            visited[size_t(wi)] = merges;
            auto& s = syms[size_t(wi)];
            bool has = false;
            for (size_t j = 1; j < s.size() && !has; ++j) has = s[j - 1] == a && s[j] == b;
            if (!has) continue;
            add_pairs(size_t(wi), -1, touched);
            size_t out = 0;
            for (size_t j = 0; j < s.size(); ++j) {
                if (j + 1 < s.size() && s[j] == a && s[j + 1] == b) {
                    s[out++] = id;
                    ++j;
                } else {
                    s[out++] = s[j];
                }
            }
            s.resize(out);
            add_pairs(size_t(wi), 1, touched);
            words_with[size_t(id)].push_back(wi);
        }
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (uint64_t p : touched)
            if (const int64_t n = pair_count[p]; n > 0) heap.push({n, p});
        ++merges;
        progress.report(double(merges) / double(std::max<int64_t>(1, target_merges)), "training the tokenizer");
    }
    return v;
}

std::vector<int32_t> bpe_encode(const Vocab& v, std::string_view text) {
    std::unordered_map<std::string_view, int32_t> id_of;
    for (size_t i = 0; i < v.tokens.size(); ++i) id_of.emplace(v.tokens[i], int32_t(i));
    auto byte_id = [&](uint8_t b) {
        static const char hex[] = "0123456789ABCDEF";
        const std::string t = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
        auto it = id_of.find(t);
        return it == id_of.end() ? v.unk_id : it->second;
    };
    auto score = [&](int32_t id) { return v.scores.empty() ? 0.0f : v.scores[size_t(id)]; };
    std::unordered_map<std::string, std::vector<int32_t>> cache;
    std::vector<int32_t> out;
    for_each_word(text, [&](std::string_view w, bool control) {
        if (control) {
            out.push_back(byte_id(uint8_t(w[0])));
            return;
        }
        auto [it, fresh] = cache.try_emplace(std::string(w));
        if (fresh) {
            std::vector<std::string> s = utf8_chars(w);
            for (;;) {  // merge the best pair until none is a token (words are short: quadratic is fine)
                int best = -1;
                float best_score = 0;
                for (size_t j = 0; j + 1 < s.size(); ++j) {
                    auto t = id_of.find(s[j] + s[j + 1]);
                    if (t == id_of.end()) continue;
                    if (best < 0 || score(t->second) > best_score) {
                        best = int(j);
                        best_score = score(t->second);
                    }
                }
                if (best < 0) break;
                s[size_t(best)] += s[size_t(best) + 1];
                s.erase(s.begin() + best + 1);
            }
            for (const std::string& piece : s) {
                if (auto t = id_of.find(piece); t != id_of.end()) it->second.push_back(t->second);
                else
                    for (char c : piece) it->second.push_back(byte_id(uint8_t(c)));
            }
        }
        out.insert(out.end(), it->second.begin(), it->second.end());
    });
    return out;
}

std::vector<std::string_view> split_paragraphs(std::string_view text) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find("\n\n", pos);
        end = end == std::string_view::npos ? text.size() : end + 2;
        while (end < text.size() && text[end] == '\n') ++end;
        out.push_back(text.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

std::vector<int32_t> tokenize_documents(const Tokenizer& tokenizer, std::string_view text) {
    std::vector<int32_t> out;
    for (std::string_view para : split_paragraphs(text)) {
        const std::vector<int32_t> ids = tokenizer.encode(para, true);
        out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
}

TokenData split_tokens(std::vector<int32_t> tokens, double val_fraction) {
    TokenData d;
    const size_t n_val = size_t(double(tokens.size()) * std::clamp(val_fraction, 0.0, 1.0));
    d.val.assign(tokens.end() - std::ptrdiff_t(n_val), tokens.end());
    tokens.resize(tokens.size() - n_val);
    d.train = std::move(tokens);
    return d;
}

Result<BatchSampler> BatchSampler::create(std::span<const int32_t> tokens, int64_t B, int64_t T, uint64_t seed,
                                          const std::string& what) {
    if (B < 1 || T < 1) return make_error(what + ": batch and sequence length must be positive");
    if (int64_t(tokens.size()) < T + 1)
        return make_error(what + " is shorter than one batch: " + std::to_string(tokens.size()) + " tokens, a window of seq_len " +
                          std::to_string(T) + " needs " + std::to_string(T + 1));
    BatchSampler s;
    s.tokens_ = tokens;
    s.B_ = B;
    s.T_ = T;
    s.rng_.seed(seed);
    return s;
}

void BatchSampler::next(std::vector<int32_t>& out) {
    const uint64_t starts = uint64_t(tokens_.size()) - uint64_t(T_ + 1) + 1;  // valid window starts
    out.resize(size_t(B_ * (T_ + 1)));
    for (int64_t b = 0; b < B_; ++b) {
        const uint64_t off = rng_() % starts;
        std::copy_n(tokens_.begin() + std::ptrdiff_t(off), T_ + 1, out.begin() + b * (T_ + 1));
    }
    ++drawn_;
}

std::string BatchSampler::state() const {
    std::ostringstream ss;
    ss << rng_;
    return ss.str();
}

Status BatchSampler::restore(const std::string& state, int64_t batches_drawn) {
    std::istringstream ss(state);
    std::mt19937_64 r;
    ss >> r;
    if (ss.fail()) return make_error("the saved data cursor (random generator state) is not readable");
    rng_ = r;
    drawn_ = batches_drawn;
    return Status::success();
}

std::vector<int32_t> fixed_windows(std::span<const int32_t> tokens, int64_t B, int64_t T, int64_t n_batches) {
    const int64_t count = B * n_batches;
    std::vector<int32_t> out;
    if (int64_t(tokens.size()) < T + 1 || count < 1) return out;
    const int64_t last = int64_t(tokens.size()) - (T + 1);
    out.resize(size_t(count * (T + 1)));
    for (int64_t i = 0; i < count; ++i) {
        const int64_t off = count > 1 ? last * i / (count - 1) : 0;
        std::copy_n(tokens.begin() + off, T + 1, out.begin() + i * (T + 1));
    }
    return out;
}

}  // namespace ef::train
