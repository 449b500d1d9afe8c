// HuggingFace `tokenizer.json` <-> ef::Vocab, for the safetensors format (the tokenizer lives in
// its own file beside the weights there).
//
// Written layouts (both load in HF `tokenizers`):
//   - SentencePiece vocab (Vocab::model == "llama"): a "Unigram" model, because it is the HF model
//     that stores a score per piece; with byte_fallback and the usual "▁" normalizer/decoder.
//   - byte-level BPE (Vocab::model == "gpt2"): a "BPE" model with vocab + merges and a ByteLevel
//     pre-tokenizer; for Vocab::pre "llama-bpe" / "qwen2" a Split with Llama 3's / Qwen2's regex
//     before it, as their tokenizer.json files have (read back to the same pre names).
// Control tokens are listed in "added_tokens" with special=true; when add_bos is set a
// TemplateProcessing post-processor puts BOS in front. What tokenizer.json cannot say exactly
// (llama.cpp's pre-tokenizer name, unused token types, max_token_length) travels in
// vocab_extras_to_json(), which the safetensors writer keeps in its __metadata__.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.h"
#include "core/vocab.h"

namespace ef {

// Reads a tokenizer.json: Unigram -> "llama"; BPE with a ByteLevel pre-tokenizer or decoder ->
// "gpt2" (pre "gpt-2", or "llama-bpe"/"qwen2" by their Split regex, "" for an unknown Split); BPE
// with byte_fallback (HF's Llama fast tokenizer) -> "llama" with scores -id.
Result<Vocab> read_hf_tokenizer(const std::string& path);
Result<Vocab> hf_tokenizer_from_json(const nlohmann::json& j, const std::string& origin);

// Writes a tokenizer.json atomically. An empty vocab is an error (callers skip the file then).
Status write_hf_tokenizer(const Vocab& v, const std::string& path);
Result<nlohmann::json> hf_tokenizer_to_json(const Vocab& v);

// The fields of a Vocab that tokenizer.json does not carry exactly (everything except tokens,
// scores and merges), and applying them back over a vocab read from tokenizer.json.
nlohmann::json vocab_extras_to_json(const Vocab& v);
Status apply_vocab_extras(const nlohmann::json& extras, Vocab& v, const std::string& origin);

}  // namespace ef
