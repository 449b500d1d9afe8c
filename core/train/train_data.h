// Training data: text -> one token stream, split into train and validation parts, cut into
// (B, T + 1) windows at seeded random offsets. For training from scratch, a small byte-fallback BPE
// trained on the text becomes the model's vocabulary, stored SentencePiece-style (llama2.c's
// tok512.bin layout: <unk>, <s>, </s>, the 256 byte tokens <0xXX>, then pieces with "▁" for spaces
// and scores = merge priority), so the runtime's tokenizer and llama.cpp's read it as it is.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "core/result.h"
#include "core/vocab.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::train {

struct BpeOptions {
    int64_t vocab_size = 512;     // total tokens: 3 special + 256 bytes + characters + merges
    int64_t max_alphabet = 0;     // most frequent characters kept as tokens (0: half the room after the bytes)
};

// Trains the vocabulary on `text`: characters (most frequent first) then merges of the most frequent
// adjacent pair within words ("▁word" pieces; newlines and other control bytes stay byte tokens).
// Stops early when no pair occurs twice. Errors: vocab_size < 260, empty text, cancelled.
Result<Vocab> train_bpe(std::string_view text, const BpeOptions& opts, Progress& progress = Progress::none());

// Our own SentencePiece-style encoder of a vocabulary made by train_bpe (no BOS): the text with
// spaces as "▁" and a leading "▁" is cut into words, and in each word the adjacent pair whose
// concatenation is the highest-scoring token merges first (leftmost on ties); characters that are
// no token become byte tokens. The runtime's Tokenizer must give the same ids (tests check it).
std::vector<int32_t> bpe_encode(const Vocab& v, std::string_view text);

// The text's paragraphs (runs ending in a blank line: "\n\n" and any newlines after it; the last
// one takes the rest). Training sees each as a document: BOS, then its tokens, as a prompt is
// tokenized at inference (BOS and the SentencePiece "▁" in front), so the model learns what follows BOS.
std::vector<std::string_view> split_paragraphs(std::string_view text);
// The training stream: for each paragraph, tokenizer.encode(paragraph, add_special = true).
std::vector<int32_t> tokenize_documents(const Tokenizer& tokenizer, std::string_view text);

// A token stream split into a training part (the first 1 - val_fraction) and a validation part.
struct TokenData {
    std::vector<int32_t> train, val;
};
TokenData split_tokens(std::vector<int32_t> tokens, double val_fraction);

// Random (B, T + 1) windows of a token stream. The generator's state and the count of batches drawn
// are the data cursor a checkpoint stores, so a resumed run draws the same batches.
class BatchSampler {
public:
    // Error when the stream is shorter than one window (T + 1 tokens) — "data shorter than one batch".
    static Result<BatchSampler> create(std::span<const int32_t> tokens, int64_t B, int64_t T, uint64_t seed,
                                       const std::string& what);
    // Fills out: (B, T + 1).
    void next(std::vector<int32_t>& out);
    int64_t batches_drawn() const { return drawn_; }
    std::string state() const;               // the generator's state as text
    Status restore(const std::string& state, int64_t batches_drawn);
    int64_t B() const { return B_; }
    int64_t T() const { return T_; }

private:
    std::span<const int32_t> tokens_;
    int64_t B_ = 0, T_ = 0, drawn_ = 0;
    std::mt19937_64 rng_;
};

// Fixed, evenly spaced (B, T + 1) windows over a stream (validation: the same windows every time).
std::vector<int32_t> fixed_windows(std::span<const int32_t> tokens, int64_t B, int64_t T, int64_t n_batches);

}  // namespace ef::train
