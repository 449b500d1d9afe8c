// The HDF5 native checkpoint: the whole ef::Model in one self-describing file that h5py, h5dump
// and HDFView can read (with a zstd filter plugin, e.g. our libh5zstd.so via HDF5_PLUGIN_PATH).
//
// Layout, format version 1 (names are HDF5 paths; "str" is a fixed-length, NUL-padded UTF-8
// string -- never variable-length: those live in HDF5's unchecksummed global heap, on which
// HDF5 1.10 can hang when the file is damaged, and cannot be compressed; the reader still
// accepts variable-length strings from other writers such as h5py):
//
//   /                                   root attributes:
//     edgefusion_format_version  int64   1
//     architecture               str     architecture row name ("llama", "mamba2", ...)
//     config                     str     JSON, core/model_json.h config_to_json
//     layers                     str     JSON, layers_to_json (per-layer mixer/ffn plan)
//     metadata                   str     JSON, metadata_to_json (keeps each value's GGUF type)
//   /vocab                              group; attributes model, pre (str), bos_id, eos_id, unk_id,
//                                       pad_id, max_token_length (int64), add_bos (int64 0/1)
//     tokens       (n_vocab,)    str     token text, bytes as given (must not contain NUL),
//                                       string width = the longest token
//     scores       (n_vocab,)    f32     only when the vocab has scores
//     token_types  (n_vocab,)    i32     only when present
//     merges       (n_merges,)   str     BPE merges "a b", only when present
//     (empty arrays are left out; a model without tokenizer has an empty /vocab group)
//   /tensors                            group, link creation order tracked = the model's tensor order
//     <canonical name>                   one dataset per tensor, e.g. "blk.0.attn_q.weight";
//                                       attributes dtype (str, ggml name: "f32", "q8_0", "q4_K")
//                                       and shape (int64[rank], canonical outermost-first shape)
//       f32, f16, f64, i8..i64 -> typed dataset with the canonical shape; f16 is IEEE binary16
//                                 (numpy float16). A rank-0 tensor is stored with shape (1,)
//                                 and shape attribute []. Without a dtype attribute (files made
//                                 by other tools) a float32/float16 array is read as f32/f16.
//       bf16 and quantized     -> 1-D uint8 dataset of the packed bytes (ggml block layout along
//                                 the last dimension), length = dtype_bytes(dtype, numel(shape))
//
// Every dataset is chunked (about 1 MiB per chunk, whole inner rows where they fit) and compressed
// with zstd, HDF5 filter id 32015, cd_values = {level, chunk bytes} (see zstd_filter.h). Files
// use the HDF5 1.10 object formats (checksummed metadata); HDF5 1.10 or later reads them.
//
// Optional groups (core/hdf5/hdf5_checkpoint.h writes and reads them; load_model ignores them, so
// they need no version bump). The master weights stay in /tensors.
//   /quantized                          group, link creation order tracked = the variants' order
//     <variant>                         one group per quantized variant (e.g. "ef3_b128"), attribute
//                                       description (str); creation order tracked. It holds only the
//                                       tensors the variant replaces or adds, each laid out exactly like
//                                       a /tensors dataset (quantized and EF blocks: 1-D uint8 bytes =
//                                       the GGUF tensor data, dtype + shape attributes; EF companions
//                                       NAME.outlier_rowptr/_cols/_vals/_scale as typed i32/i16/i8/f16).
//                                       The variant's model = /tensors with these applied.
//   /analysis/outliers                  group; attributes block (int64 B), k (f64), fraction (f64 p),
//                                       selection (str "magnitude" | "saliency"), total_weights (int64
//                                       n), budget (int64 N = floor(p n)), threshold (f64 score of the
//                                       N-th largest; inf when N = 0). Definitions: core/outlier_analysis.h
//     tensors                           group, creation order tracked = model order
//       <tensor name>                   group; attributes layer, rows, cols, blocks_per_row, finite,
//                                       beyond_k_sigma, budget (int64); mean, std, max_over_rms,
//                                       kurtosis, budget_share (f64; whole tensor)
//         max_over_rms   (rows, nb) f32  per block of B inputs, nb = ceil(cols / B)
//         kurtosis       (rows, nb) f32  excess kurtosis per block (NaN: zero variance)
//         beyond_k_sigma (rows, nb) i32  |w - mu| > k sigma, mu and sigma of the whole tensor
//         budget         (rows, nb) i32  the model's top-p outliers in the block
//         activation_energy (cols,) f32 E[x_c^2] of the saliency scores (only with selection saliency)
//     layers                            group: the per-layer table as columns of equal length L
//                                       (ascending layer, then -1 = tensors outside the layer stack)
//         layer, weights, beyond_k_sigma, budget (L,) i64;  budget_share, weight_share,
//         max_over_rms (L,) f64
// Reserved: /analysis/<other> (sensitivity runs), /router_history (EdgeFusion gate values over
// training). Writers must not put anything else at the root; a breaking change to the groups above
// increments edgefusion_format_version.
#pragma once
#include "core/formats/format.h"

namespace ef {

inline constexpr int kHdf5FormatVersion = 1;

// The "hdf5" row of the format table (extensions .h5, .hdf5; probe = HDF5 signature).
const FormatHandler& hdf5_format_handler();
// Registers the zstd filter and the handler with ef::register_format. Idempotent.
void register_hdf5_format();

}  // namespace ef
