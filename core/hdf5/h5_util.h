// Small helpers over the HDF5 C API for the checkpoint reader and writer: handles that close
// themselves, HDF5 error stacks turned into messages, typed attributes, chunked zstd datasets.
// Internal to core/hdf5.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/result.h"

namespace ef::h5 {

// Owns one HDF5 id and closes it with the matching H5?close.
class Handle {
public:
    using Closer = herr_t (*)(hid_t);
    Handle() = default;
    Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
    Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            reset();
            id_ = o.id_;
            closer_ = o.closer_;
            o.id_ = H5I_INVALID_HID;
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }

    hid_t get() const { return id_; }
    bool valid() const { return id_ >= 0; }
    // Closes now; negative when HDF5 reports an error (e.g. a failed final flush of a file).
    herr_t close() {
        herr_t r = 0;
        if (id_ >= 0 && closer_) r = closer_(id_);
        id_ = H5I_INVALID_HID;
        return r;
    }
    void reset() { (void)close(); }

private:
    hid_t id_ = H5I_INVALID_HID;
    Closer closer_ = nullptr;
};

inline Handle file(hid_t id) { return {id, H5Fclose}; }
inline Handle group(hid_t id) { return {id, H5Gclose}; }
inline Handle dataset(hid_t id) { return {id, H5Dclose}; }
inline Handle attribute(hid_t id) { return {id, H5Aclose}; }
inline Handle space(hid_t id) { return {id, H5Sclose}; }
inline Handle type(hid_t id) { return {id, H5Tclose}; }
inline Handle plist(hid_t id) { return {id, H5Pclose}; }

// Turns off HDF5's printing of error stacks for this thread (errors become values here).
void silence_errors();
// The current thread's HDF5 error stack as one line (outermost and innermost descriptions), and
// clears it. Empty when there is none.
std::string take_error_stack();
// `what` plus the HDF5 error stack in parentheses when there is one. Call it right at the failure:
// the next HDF5 call (even closing a handle) clears the stack.
Error error(std::string what);
// "<path>: <what> (HDF5: ...)".
Error fail(const std::string& path, const std::string& what);

// IEEE binary16 as an HDF5 float type (sign 15, exponent 10..14, mantissa 0..9, bias 15): what
// h5py and numpy call float16. The caller owns the returned type.
Handle make_f16_type();
// Fixed-length UTF-8 string type of `size` bytes (at least 1), NUL-padded. Strings are never
// written variable-length: those live in HDF5's global heap, which has no checksum and on which
// HDF5 1.10 can loop forever when the file is damaged, and they cannot be filtered.
Handle make_fixed_str_type(size_t size);

// ---- attributes (on a file, group or dataset id) ----
// Strings are written fixed-length (kept in the checksummed object header or dense attribute
// storage, never in the global heap); both fixed and variable-length ones are read.
// Longest string attribute written or read: far above any config or metadata JSON, far below an
// allocation that hurts when a damaged file claims it.
inline constexpr size_t kMaxStringAttrBytes = size_t(64) << 20;
Status write_str_attr(hid_t obj, const char* name, const std::string& value);
Status write_int_attr(hid_t obj, const char* name, int64_t value);
Status write_i64_array_attr(hid_t obj, const char* name, const std::vector<int64_t>& values);

bool has_attr(hid_t obj, const char* name);
// Errors here are short ("attribute 'x' is not a string"); callers prefix file and object.
Result<std::string> read_str_attr(hid_t obj, const char* name);
Result<int64_t> read_int_attr(hid_t obj, const char* name);
Result<std::vector<int64_t>> read_i64_array_attr(hid_t obj, const char* name, size_t max_len);

// ---- datasets ----
// Chunk shape of about `target_bytes`: inner dimensions stay whole while they fit, the outermost
// split one is cut, dimensions further out become 1. Zero dimensions get chunk 1.
std::vector<hsize_t> choose_chunk(const std::vector<hsize_t>& dims, size_t elem_bytes,
                                  size_t target_bytes = size_t(1) << 20);

// Creates a chunked, zstd-compressed dataset. `file_elem_bytes` is the element size in the file
// (recorded in the filter parameters as the chunk byte bound); fixed-size types only.
Result<Handle> create_dataset(hid_t parent, const std::string& name, hid_t file_type,
                              const std::vector<hsize_t>& dims, size_t file_elem_bytes, int level);

// Writes or reads a whole fixed-size-type dataset in slabs along dimension 0 (about 64 MiB each),
// polling cancellation between slabs and reporting progress in [base, base + span].
// Errors: "cancelled", or a short message; callers prefix file and object.
Status write_slabs(hid_t dset, hid_t mem_type, const std::vector<hsize_t>& dims, size_t elem_bytes,
                   const void* data, Progress& progress, double base, double span, const std::string& stage);
Status read_slabs(hid_t dset, hid_t mem_type, const std::vector<hsize_t>& dims, size_t elem_bytes, void* data,
                  Progress& progress, double base, double span, const std::string& stage);

// Dimensions of a dataset's simple dataspace (error for scalar/null spaces or rank > max_rank).
Result<std::vector<hsize_t>> dataset_dims(hid_t dset, int max_rank);

}  // namespace ef::h5
