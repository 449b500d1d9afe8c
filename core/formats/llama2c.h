// llama2.c checkpoints (Karpathy's "legacy"/v0 export) and their tokenizer .bin.
//
// Checkpoint: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
// seq_len; a negative vocab_size means an unshared classifier), then fp32 arrays in this order:
//   token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim, dim), wk (L, kv_dim, dim),
//   wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn (L, dim), w1 (L, hidden, dim),
//   w2 (L, dim, hidden), w3 (L, hidden, dim), rms_final (dim),
//   freq_cis_real (seq_len, head_dim/2), freq_cis_imag (same), [wcls (vocab, dim) if unshared].
// It maps onto the canonical llama row with w1 = ffn_gate, w3 = ffn_up, w2 = ffn_down; q/k are
// already in the interleaved RoPE order GGUF uses. The freq_cis tables are recomputed on write.
// The file size must match the header exactly. Tensors are views into the memory-mapped file.
//
// Tokenizer: int32 max_token_length, then per token: f32 score, int32 length, bytes. Spaces are
// plain spaces there; the vocabulary uses SentencePiece's "▁". BOS/EOS are stored as "\n<s>\n" /
// "\n</s>\n". LoadOptions::tokenizer_path names it; otherwise "<stem>.tok.bin", "tokenizer.bin"
// and "tok<vocab_size>.bin" beside the checkpoint are tried (none found: empty vocabulary).
// Saving writes "<stem>.tok.bin" beside the checkpoint when the model has a (llama) vocabulary.
#pragma once
#include <string>

#include "core/formats/format.h"

namespace ef {

const FormatHandler& llama2c_format_handler();

// Reads a llama2.c tokenizer with `vocab_size` tokens (ids 0 unk, 1 BOS, 2 EOS).
Result<Vocab> read_llama2c_tokenizer(const std::string& path, int64_t vocab_size);
// Writes a SentencePiece ("llama") vocabulary in llama2.c's format, atomically.
Status write_llama2c_tokenizer(const Vocab& v, const std::string& path);

}  // namespace ef
