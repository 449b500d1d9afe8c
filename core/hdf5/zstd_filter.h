// The zstd filter for HDF5 chunks, under the id registered with The HDF Group for zstd (32015), so
// files we write open in h5py/h5dump/hdf5plugin with any zstd plugin, and theirs open with ours.
//
// Filter parameters (cd_values):
//   [0] compression level (cast to unsigned; negative "fast" levels survive the cast back to int)
//   [1] optional: uncompressed bytes of one chunk, written by us so the decoder can refuse a frame
//       that claims more (other writers leave it out; the bound is then HDF5's 4 GiB chunk limit).
// Frames carry zstd's content checksum, so garbage inside a chunk is an error, not garbage data.
//
// The same source builds twice: into ef_hdf5 (register_zstd_filter() installs it in-process) and,
// with EF_H5ZSTD_PLUGIN defined, into libh5zstd.so which HDF5 loads from HDF5_PLUGIN_PATH (the
// plugin calls no HDF5 function, so it works with whatever libhdf5 the host process has).
#pragma once
#include <string>

#include "core/result.h"

namespace ef {

inline constexpr int kZstdFilterId = 32015;

// Registers the filter with this process's HDF5 library. Safe to call any number of times, from
// any thread; the result of the first call is remembered.
Status register_zstd_filter();

// Why the filter last failed on this thread ("" when it has not): HDF5 only reports "filter
// returned failure", so readers append this to their message.
std::string zstd_filter_last_error();

}  // namespace ef
