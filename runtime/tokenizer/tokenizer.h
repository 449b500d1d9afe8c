// Text <-> token ids for the vocabularies GGUF carries (core/vocab.h), matching llama.cpp's ids:
//  - "llama": SentencePiece-style. Spaces become "▁", a "▁" is prepended to each text run that starts
//    the input or follows a special token, then adjacent pieces merge by vocabulary score (highest
//    first, leftmost on ties); pieces that are not tokens fall back to byte tokens <0xXX>.
//  - "gpt2": byte-level BPE. The text is split into words by the pre-tokenizer named in Vocab::pre
//    ("gpt-2", "llama-bpe", "qwen2"), each word's bytes are mapped to printable characters, and pairs
//    merge by their rank in Vocab::merges (lowest first, leftmost on ties).
// Special tokens (control, user-defined, unknown) written in the text are matched before that:
// user-defined ones always, control/unknown ones only with parse_special.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/vocab.h"

namespace ef {

class Tokenizer {
public:
    enum class Kind : uint8_t { Spm, Bpe };

    // Fails (naming the reason) for vocabularies it cannot tokenize: no tokens, an unknown model or
    // pre-tokenizer, BPE without merges, array sizes that disagree.
    static Result<Tokenizer> create(const Vocab& vocab);

    Kind kind() const;
    size_t size() const;  // number of tokens
    int32_t bos_id() const;
    int32_t eos_id() const;
    // Id of the token with exactly this text (for BPE: the byte-level encoded text), -1 when none.
    int32_t find_token(std::string_view text) const;

    // add_special: prepend BOS when the vocabulary asks for it (Vocab::add_bos).
    // parse_special: also match control tokens ("<s>", "<|endoftext|>") written in the text.
    std::vector<int32_t> encode(std::string_view text, bool add_special = true, bool parse_special = false) const;

    // The text a token stands for. Control/unknown tokens give "" unless `special`.
    std::string token_to_piece(int32_t id, bool special = true) const;
    // Concatenated pieces; for SentencePiece the space the encoder prepended to the first text run is
    // removed, so decode(encode(s)) == s for valid UTF-8 s. Control tokens are dropped unless `special`.
    std::string decode(std::span<const int32_t> ids, bool special = false) const;

private:
    struct Data;
    explicit Tokenizer(std::shared_ptr<const Data> d) : d_(std::move(d)) {}
    std::shared_ptr<const Data> d_;  // immutable, so copies share it
};

// The tokenizer.ggml.* keys of a GGUF file (a vocab-only file or a full model) as a Vocab; tensors and
// the architecture are not looked at.
Result<Vocab> read_gguf_vocab(const std::string& path);

}  // namespace ef
