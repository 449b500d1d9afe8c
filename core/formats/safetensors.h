// safetensors checkpoints with HuggingFace's config.json (and tokenizer.json) beside them.
//
// File layout (public spec): u64 little-endian N, N bytes of JSON header
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// then the data buffer; offsets are relative to its start.
//
// Reading: `path` is a .safetensors file or a directory holding model.safetensors. The file is
// memory-mapped and plain tensors point into the map; tensors stored in a different layout (q/k
// in HF's rotate-half order, A_log) are converted into owned buffers. Architecture and config come
// from config.json beside the file; without one, from the EdgeFusion keys of __metadata__
// (ef.architecture, ef.config, ef.layers), so a lone file written by us reopens. Supported dtypes:
// F32, F16, BF16. tokenizer.json beside the file, if any, becomes the vocabulary.
//
// Writing: `path` (or `path`/model.safetensors when it is a directory) plus config.json and, for a
// non-empty vocabulary, tokenizer.json in the same directory; each file is written atomically.
// Tensors get HF names and layouts; F32/F16/BF16 tensors keep their type, every other type
// (quantized, integer, F64) is dequantized to F32 because HF safetensors checkpoints have no
// ggml block types. Data is ordered F32 first, then 16-bit types, so every tensor is aligned.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/formats/format.h"

namespace ef {

const FormatHandler& safetensors_format_handler();

struct SafetensorsEntry {
    std::string name;
    std::string dtype_name;  // as written ("F32", "BF16", ...)
    DType dtype = DType::F32;
    Shape shape;
    uint64_t begin = 0, end = 0;  // relative to the data buffer
};

struct SafetensorsHeader {
    std::vector<SafetensorsEntry> entries;  // in header order
    std::map<std::string, std::string> metadata;
    uint64_t data_start = 0;                // absolute file offset of the data buffer
};

// Parses and validates the header of a whole file image: header length within the file, valid
// JSON, known dtypes (F32/F16/BF16), non-negative dims, offsets inside the buffer, matching
// dtype x shape, and not overlapping. `origin` starts every message.
Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, const std::string& origin);

}  // namespace ef
