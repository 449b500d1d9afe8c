// The Unicode pieces the tokenizers need: UTF-8 <-> code points, the letter/number/whitespace classes
// behind the pre-tokenizer regexes (\p{L}, \p{N}, \s), the pre-tokenizer splits themselves, and GPT-2's
// byte <-> printable-character mapping. Behaviour follows llama.cpp's tokenizer so ids match it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ef::unicode {

inline constexpr uint32_t kReplacement = 0xFFFD;

// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).
size_t utf8_len(uint8_t lead);
// Decodes the code point at `off` and advances past it. Malformed input gives U+FFFD and advances
// one byte (as llama.cpp does), so every byte is consumed and nothing throws.
uint32_t decode_utf8(std::string_view s, size_t& off);
std::vector<uint32_t> code_points(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);

enum class CharClass : uint8_t { Other = 0, Letter = 1, Number = 2 };
CharClass char_class(uint32_t cp);  // \p{L}, \p{N} or neither
bool is_whitespace(uint32_t cp);    // \s as llama.cpp defines it (a fixed list, not Python's isspace)

// The regex-based pre-tokenizers of byte-level BPE vocabularies, named as in tokenizer.ggml.pre.
enum class PreTokenizer : uint8_t {
    Gpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Llama3,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    Qwen2,   // as Llama3 but \p{N} (one digit per word)
};
// Splits code points into words; returns each word's length in code points (they sum to cps.size()).
std::vector<size_t> pre_tokenize(const std::vector<uint32_t>& cps, PreTokenizer pre);

// GPT-2 byte-level encoding: every byte maps to one printable code point (printable Latin-1 bytes to
// themselves, the rest to U+0100 upwards), so token texts never contain raw spaces or control bytes.
uint32_t byte_to_code_point(uint8_t b);
int byte_from_code_point(uint32_t cp);  // -1 when cp is not one of the 256 mapped code points

// Generated table (unicode_tables.cpp).
extern const uint32_t kClassRanges[];
extern const size_t kClassRangeCount;

}  // namespace ef::unicode
