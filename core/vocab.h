// The tokenizer data a model file carries (what GGUF keeps under tokenizer.ggml.*). Tokenizing
// itself is the runtime's job; core only stores, validates and converts this.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ef {

struct Vocab {
    std::string model;                 // "llama" (SentencePiece), "gpt2" (byte-level BPE), "" none
    std::string pre;                   // pre-tokenizer name for BPE ("gpt-2", "llama-bpe", "qwen2")
    std::vector<std::string> tokens;   // token text (SPM: with "▁" for spaces)
    std::vector<float> scores;         // SPM merge scores (may be empty)
    std::vector<int32_t> token_types;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
    std::vector<std::string> merges;   // BPE merges "a b"
    int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
    bool add_bos = true;
    int32_t max_token_length = 0;      // llama2.c tokenizer header field

    bool empty() const { return tokens.empty(); }
};

}  // namespace ef
