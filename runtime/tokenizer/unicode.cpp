#include "runtime/tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace ef::unicode {

size_t utf8_len(uint8_t lead) {
    if (lead < 0x80) return 1;
    if (lead < 0xC0) return 1;  // stray continuation byte: a unit of its own
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    return 4;
}

uint32_t decode_utf8(std::string_view s, size_t& off) {
    const auto byte = [&](size_t i) { return uint8_t(s[i]); };
    const uint8_t b0 = byte(off);
    size_t n = 0;
    uint32_t cp = 0;
    if (b0 < 0x80) {
        ++off;
        return b0;
    } else if ((b0 & 0xE0) == 0xC0) {
        n = 2, cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        n = 3, cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        n = 4, cp = b0 & 0x07;
    }
    // Only structure is checked (lead + continuation bytes), like llama.cpp; overlong forms pass.
    bool ok = n != 0 && s.size() - off >= n;
    for (size_t i = 1; ok && i < n; ++i) {
        ok = (byte(off + i) & 0xC0) == 0x80;
        cp = (cp << 6) | (byte(off + i) & 0x3F);
    }
    if (!ok || cp > 0x10FFFF) {
        ++off;
        return kReplacement;
    }
    off += n;
    return cp;
}

std::vector<uint32_t> code_points(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    for (size_t off = 0; off < s.size();) out.push_back(decode_utf8(s, off));
    return out;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

CharClass char_class(uint32_t cp) {
    if (cp > 0x10FFFF) return CharClass::Other;
    // Last range starting at or before cp.
    const uint32_t key = (cp << 2) | 3;
    const uint32_t* end = kClassRanges + kClassRangeCount;
    const uint32_t* it = std::upper_bound(kClassRanges, end, key);
    return CharClass(*(it - 1) & 3);
}

bool is_whitespace(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return false;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {

// What the splitters ask about a position; positions past the end are "nothing" (no class at all),
// which is how the regexes' lookaheads see the end of the text.
struct Cursor {
    const std::vector<uint32_t>& cps;
    size_t n;
    bool in(size_t i) const { return i < n; }
    uint32_t at(size_t i) const { return in(i) ? cps[i] : 0xFFFFFFFFu; }
    bool letter(size_t i) const { return in(i) && char_class(cps[i]) == CharClass::Letter; }
    bool number(size_t i) const { return in(i) && char_class(cps[i]) == CharClass::Number; }
    bool space(size_t i) const { return in(i) && is_whitespace(cps[i]); }
    // [^\s\p{L}\p{N}]: any code point in range that is none of the three.
    bool other(size_t i) const { return in(i) && !is_whitespace(cps[i]) && char_class(cps[i]) == CharClass::Other; }
};

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's 't 'm 'd (length 2) or 're 've 'll (length 3) at pos; 0 when none.
size_t contraction(const Cursor& c, size_t pos, bool any_case) {
    if (c.at(pos) != '\'' || !c.in(pos + 1)) return 0;
    const auto low = [&](size_t i) { return any_case ? ascii_lower(c.at(i)) : c.at(i); };
    const uint32_t a = low(pos + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (!c.in(pos + 2)) return 0;
    const uint32_t b = low(pos + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// Whitespace run at pos: \s+(?!\S) leaves the last space for the next word when a non-space follows.
size_t whitespace_word(const Cursor& c, size_t pos) {
    size_t k = 0;
    while (c.space(pos + k)) ++k;
    if (k > 1 && c.in(pos + k)) return k - 1;
    return std::max<size_t>(k, 1);
}

void split_gpt2(const Cursor& c, std::vector<size_t>& out) {
    for (size_t pos = 0; pos < c.n;) {
        size_t len = contraction(c, pos, false);
        if (len == 0) {
            // ` ?X+` for X in letters, numbers, other: an optional leading space joins the run.
            const size_t s = c.at(pos) == ' ' ? pos + 1 : pos;
            size_t e = s;
            if (c.letter(s)) {
                while (c.letter(e)) ++e;
            } else if (c.number(s)) {
                while (c.number(e)) ++e;
            } else if (c.other(s)) {
                while (c.other(e)) ++e;
            }
            len = e > s ? e - pos : whitespace_word(c, pos);
        }
        out.push_back(len);
        pos += len;
    }
}

void split_llama3(const Cursor& c, size_t max_digits, std::vector<size_t>& out) {
    for (size_t pos = 0; pos < c.n;) {
        const uint32_t cp = c.at(pos);
        size_t len = contraction(c, pos, true);
        if (len == 0 && !(cp == '\r' || cp == '\n' || c.number(pos)) && (c.letter(pos) || c.letter(pos + 1))) {
            // [^\r\n\p{L}\p{N}]?\p{L}+ : one leading non-letter (a space, an apostrophe, ...) joins.
            size_t e = pos + 1;
            while (c.letter(e)) ++e;
            len = e - pos;
        }
        if (len == 0 && c.number(pos)) {
            size_t e = pos;
            while (c.number(e) && e - pos < max_digits) ++e;
            len = e - pos;
        }
        if (len == 0) {
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            const size_t s = cp == ' ' ? pos + 1 : pos;
            if (c.other(s) || (cp == ' ' && !c.in(s))) {
                size_t e = s;
                while (c.other(e)) ++e;
                while (c.at(e) == '\r' || c.at(e) == '\n') ++e;
                len = e - pos;
            }
        }
        if (len == 0) {
            // `\s*[\r\n]+` takes the whitespace up to the last line break in the run.
            size_t k = 0, last_break = 0;
            for (; c.space(pos + k); ++k)
                if (c.at(pos + k) == '\r' || c.at(pos + k) == '\n') last_break = k + 1;
            len = last_break ? last_break : whitespace_word(c, pos);
        }
        out.push_back(len);
        pos += len;
    }
}

}  // namespace

std::vector<size_t> pre_tokenize(const std::vector<uint32_t>& cps, PreTokenizer pre) {
    std::vector<size_t> out;
    const Cursor c{cps, cps.size()};
    switch (pre) {
        case PreTokenizer::Gpt2: split_gpt2(c, out); break;
        case PreTokenizer::Llama3: split_llama3(c, 3, out); break;
        case PreTokenizer::Qwen2: split_llama3(c, 1, out); break;
    }
    return out;
}

namespace {

struct ByteMap {
    std::array<uint32_t, 256> to_cp{};
    std::array<int16_t, 324> from_cp{};  // indexed by code point; 256 bytes land below 256 + 68
    ByteMap() {
        from_cp.fill(-1);
        const auto self = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); };
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            to_cp[size_t(b)] = self(b) ? uint32_t(b) : next++;
            from_cp[to_cp[size_t(b)]] = int16_t(b);
        }
    }
};

const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}

}  // namespace

uint32_t byte_to_code_point(uint8_t b) { return byte_map().to_cp[b]; }

int byte_from_code_point(uint32_t cp) {
    const auto& m = byte_map();
    return cp < m.from_cp.size() ? m.from_cp[cp] : -1;
}

}  // namespace ef::unicode
