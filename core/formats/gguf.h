// GGUF (llama.cpp's checkpoint format), versions 2 and 3, little-endian.
//
// Layout: "GGUF" u32 version, u64 n_tensors, u64 n_kv; n_kv x (string key, u32 type, value);
// n_tensors x (string name, u32 n_dims, u64 ne[n_dims] innermost-first, u32 ggml type, u64 offset);
// zero padding to general.alignment (default 32); then the data section, where each tensor's offset
// is relative to the section start, a multiple of the alignment, and tensors follow each other in
// info order, each padded to the alignment (llama.cpp insists on that contiguity).
//
// Reading never trusts a count or length: each one is bounded by the bytes left in the file before
// anything is allocated, so a corrupt header gives an error naming the file, never a huge allocation.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/formats/format.h"
#include "core/metadata.h"
#include "core/model.h"
#include "core/storage.h"

namespace ef {

const FormatHandler& gguf_format_handler();

namespace gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
inline constexpr uint32_t kVersion = 3;         // what we write
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr size_t kMaxNameLength = 63;    // llama.cpp's GGML_MAX_NAME (64) minus the NUL
inline constexpr uint32_t kMaxDims = 4;

// GGUF value type ids (the on-disk numbering, which differs from MetaType's order).
enum class ValueType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
    String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
ValueType value_type_of(MetaType t);
std::optional<MetaType> meta_type_of(uint32_t gguf_type_id);

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    Shape shape;           // canonical, outermost-first (reversed ne)
    uint64_t offset = 0;   // relative to the data section
    uint64_t nbytes = 0;
};

// A parsed GGUF header. Tensor bytes are not touched: they live at data_offset + info.offset.
struct Header {
    uint32_t version = 0;
    Metadata kv;                         // every key, unless routed into `vocab` (see parse_header)
    std::vector<std::string> key_order;  // every key in file order (routed ones included)
    std::vector<TensorInfo> tensors;     // in file order
    uint64_t alignment = kDefaultAlignment;
    uint64_t data_offset = 0;            // absolute offset of the data section
};

struct ParseOptions {
    // When set, the big tokenizer arrays (tokenizer.ggml.tokens/scores/token_type/merges) are read
    // straight into this Vocab instead of into Header::kv, saving one MetaValue per token.
    Vocab* vocab = nullptr;
};

// Parses and checks the header of a GGUF image (the whole file's bytes): structure, counts, types,
// shapes, alignment, tensor spans inside the file, no overlaps, no duplicate names/keys.
// `origin` (the path) starts every error message.
Result<Header> parse_header(std::span<const std::byte> file, const std::string& origin,
                            const ParseOptions& opts = {});

// Tokenizer keys <-> Vocab. vocab_from_kv consumes what it understands (erasing it from kv).
Status vocab_from_kv(Metadata& kv, Vocab& vocab, const std::string& origin);
void vocab_to_kv(const Vocab& vocab, std::vector<std::pair<std::string, MetaValue>>& out);

// Every key/value the writer puts into a file for `model`, in file order: general.architecture,
// general.alignment, Model::metadata, the architecture row's keys, the tokenizer keys. Keys written
// by the row or the vocabulary win over a same-named Model::metadata entry.
Result<std::vector<std::pair<std::string, MetaValue>>> model_kv(const Model& model);

// Tensor infos the writer produces for `model` (offsets relative to the data section).
Result<std::vector<TensorInfo>> model_tensor_infos(const Model& model);
// One tensor's info at `offset` after the checks write_model makes (name, dims, type, data size).
Result<TensorInfo> tensor_info(const Tensor& t, uint64_t offset);
// A tensor's bytes padded to the default alignment (its share of the data section).
inline uint64_t padded_size(uint64_t n) { return (n + kDefaultAlignment - 1) / kDefaultAlignment * kDefaultAlignment; }

Result<Model> read_model(const std::string& path, const LoadOptions& opts, Progress& progress);
Status write_model(const Model& model, const std::string& path, Progress& progress);

// Encodes one key/value or the whole header (without tensor data) into bytes; used by the writer
// and by tests that build files by hand.
void append_kv(std::vector<std::byte>& out, const std::string& key, const MetaValue& v);
std::vector<std::byte> encode_header(const std::vector<std::pair<std::string, MetaValue>>& kv,
                                     const std::vector<TensorInfo>& tensors, uint32_t version = kVersion);

}  // namespace gguf
}  // namespace ef
