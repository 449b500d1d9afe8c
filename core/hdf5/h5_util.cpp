// HDF5 helpers for the checkpoint reader/writer; see h5_util.h.
#include "core/hdf5/h5_util.h"

#include <algorithm>
#include <cstring>

#include "core/hdf5/zstd_filter.h"

namespace ef::h5 {

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string take_error_stack() {
    std::vector<std::string> descs;
    H5Ewalk2(
        H5E_DEFAULT, H5E_WALK_DOWNWARD,
        [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
            auto* out = static_cast<std::vector<std::string>*>(data);
            if (e && e->desc && *e->desc) out->emplace_back(e->desc);
            return 0;
        },
        &descs);
    H5Eclear2(H5E_DEFAULT);
    if (descs.empty()) return {};
    // Downward: the API call's own description first, the most specific cause last.
    if (descs.size() == 1 || descs.front() == descs.back()) return descs.front();
    return descs.front() + ": " + descs.back();
}

Error error(std::string what) {
    const std::string stack = take_error_stack();
    if (!stack.empty()) what += " (HDF5: " + stack + ")";
    return make_error(std::move(what));
}

Error fail(const std::string& path, const std::string& what) { return error(path + ": " + what); }

Handle make_f16_type() {
    Handle t = type(H5Tcopy(H5T_IEEE_F32LE));
    if (!t.valid()) return t;
    // Order matters: shrink the fields before the size so HDF5 accepts each step.
    if (H5Tset_fields(t.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_precision(t.get(), 16) < 0 ||
        H5Tset_offset(t.get(), 0) < 0 || H5Tset_size(t.get(), 2) < 0 || H5Tset_ebias(t.get(), 15) < 0)
        return {};
    return t;
}

Handle make_fixed_str_type(size_t size) {
    Handle t = type(H5Tcopy(H5T_C_S1));
    if (!t.valid() || H5Tset_size(t.get(), size ? size : 1) < 0 || H5Tset_strpad(t.get(), H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(t.get(), H5T_CSET_UTF8) < 0)
        return {};
    return t;
}

// ---- attributes ----

namespace {

Status write_attr(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, hid_t sp, const void* data) {
    Handle a = attribute(H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid() || H5Awrite(a.get(), mem_type, data) < 0)
        return error(std::string("cannot write attribute '") + name + "'");
    return {};
}

// Distinguishes "not there" from "could not look" (a damaged object header).
Status check_exists(hid_t obj, const char* name) {
    const htri_t e = H5Aexists(obj, name);
    if (e < 0) return error(std::string("cannot look up attribute '") + name + "' (damaged object header?)");
    if (e == 0) return make_error(std::string("missing attribute '") + name + "'");
    return {};
}

// Opens an attribute holding exactly one element.
Result<Handle> open_single(hid_t obj, const char* name) {
    EF_TRY_STATUS(check_exists(obj, name));
    Handle a = attribute(H5Aopen(obj, name, H5P_DEFAULT));
    if (!a.valid()) return error(std::string("cannot open attribute '") + name + "'");
    Handle sp = space(H5Aget_space(a.get()));
    if (!sp.valid() || H5Sget_simple_extent_npoints(sp.get()) != 1)
        return error(std::string("attribute '") + name + "' is not a single value");
    return a;
}

}  // namespace

Status write_str_attr(hid_t obj, const char* name, const std::string& value) {
    if (value.size() > kMaxStringAttrBytes)
        return make_error(std::string("attribute '") + name + "' is too large (" + std::to_string(value.size()) +
                          " bytes, at most " + std::to_string(kMaxStringAttrBytes) + ")");
    Handle t = make_fixed_str_type(value.size());
    Handle sp = space(H5Screate(H5S_SCALAR));
    const char nul = '\0';
    return write_attr(obj, name, t.get(), t.get(), sp.get(), value.empty() ? &nul : value.data());
}

Status write_int_attr(hid_t obj, const char* name, int64_t value) {
    Handle sp = space(H5Screate(H5S_SCALAR));
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, sp.get(), &value);
}

Status write_i64_array_attr(hid_t obj, const char* name, const std::vector<int64_t>& values) {
    const hsize_t n = values.size();
    Handle sp = space(H5Screate_simple(1, &n, nullptr));
    const int64_t dummy = 0;  // zero-length attributes still want a valid pointer
    return write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, sp.get(), values.empty() ? &dummy : values.data());
}

bool has_attr(hid_t obj, const char* name) { return H5Aexists(obj, name) > 0; }

Result<std::string> read_str_attr(hid_t obj, const char* name) {
    auto a = open_single(obj, name);
    if (!a) return a.error();
    Handle ft = type(H5Aget_type(a->get()));
    if (!ft.valid() || H5Tget_class(ft.get()) != H5T_STRING)
        return error(std::string("attribute '") + name + "' is not a string");
    // Memory types are copies of the file type: HDF5 converts neither between ASCII and UTF-8
    // nor between padding styles of variable-length strings.
    if (H5Tis_variable_str(ft.get()) > 0) {
        Handle mt = type(H5Tcopy(ft.get()));
        char* p = nullptr;
        if (H5Aread(a->get(), mt.get(), &p) < 0) return error(std::string("cannot read attribute '") + name + "'");
        std::string s = p ? p : "";
        if (p) H5free_memory(p);
        return s;
    }
    const size_t size = H5Tget_size(ft.get());
    if (size == 0 || size > kMaxStringAttrBytes) return error(std::string("attribute '") + name + "' has an implausible size");
    Handle mt = type(H5Tcopy(ft.get()));
    std::string s(size, '\0');
    if (H5Aread(a->get(), mt.get(), s.data()) < 0) return error(std::string("cannot read attribute '") + name + "'");
    s.resize(strnlen(s.data(), size));
    return s;
}

Result<int64_t> read_int_attr(hid_t obj, const char* name) {
    auto a = open_single(obj, name);
    if (!a) return a.error();
    Handle ft = type(H5Aget_type(a->get()));
    if (!ft.valid() || H5Tget_class(ft.get()) != H5T_INTEGER)
        return error(std::string("attribute '") + name + "' is not an integer");
    int64_t v = 0;
    if (H5Aread(a->get(), H5T_NATIVE_INT64, &v) < 0) return error(std::string("cannot read attribute '") + name + "'");
    return v;
}

Result<std::vector<int64_t>> read_i64_array_attr(hid_t obj, const char* name, size_t max_len) {
    EF_TRY_STATUS(check_exists(obj, name));
    Handle a = attribute(H5Aopen(obj, name, H5P_DEFAULT));
    Handle ft = type(a.valid() ? H5Aget_type(a.get()) : H5I_INVALID_HID);
    Handle sp = space(a.valid() ? H5Aget_space(a.get()) : H5I_INVALID_HID);
    if (!ft.valid() || !sp.valid() || H5Tget_class(ft.get()) != H5T_INTEGER)
        return error(std::string("attribute '") + name + "' is not an integer array");
    if (H5Sget_simple_extent_ndims(sp.get()) > 1)
        return error(std::string("attribute '") + name + "' is not one-dimensional");
    const hssize_t n = H5Sget_simple_extent_npoints(sp.get());
    if (n < 0 || size_t(n) > max_len)
        return error(std::string("attribute '") + name + "' has " + std::to_string(n) + " entries (at most " +
                          std::to_string(max_len) + " allowed)");
    std::vector<int64_t> v(size_t(n) + 1);  // +1: never hand HDF5 a null buffer
    if (n > 0 && H5Aread(a.get(), H5T_NATIVE_INT64, v.data()) < 0)
        return error(std::string("cannot read attribute '") + name + "'");
    v.resize(size_t(n));
    return v;
}

// ---- datasets ----

std::vector<hsize_t> choose_chunk(const std::vector<hsize_t>& dims, size_t elem_bytes, size_t target_bytes) {
    std::vector<hsize_t> chunk(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) chunk[i] = std::max<hsize_t>(dims[i], 1);
    hsize_t inner = std::max<size_t>(elem_bytes, 1);
    for (size_t k = dims.size(); k-- > 0;) {
        if (inner * chunk[k] <= target_bytes) {
            inner *= chunk[k];
            continue;
        }
        chunk[k] = std::max<hsize_t>(1, target_bytes / inner);
        for (size_t j = 0; j < k; ++j) chunk[j] = 1;
        break;
    }
    return chunk;
}

Result<Handle> create_dataset(hid_t parent, const std::string& name, hid_t file_type, const std::vector<hsize_t>& dims,
                              size_t file_elem_bytes, int level) {
    const int rank = int(dims.size());
    // Zero-length dimensions are declared extendible: HDF5 wants chunk <= extent for fixed ones.
    std::vector<hsize_t> maxdims(dims);
    for (auto& m : maxdims)
        if (m == 0) m = H5S_UNLIMITED;
    Handle sp = space(H5Screate_simple(rank, dims.data(), maxdims.data()));
    if (file_elem_bytes == 0) return error("dataset '" + name + "' has no fixed element size");
    const std::vector<hsize_t> chunk = choose_chunk(dims, file_elem_bytes);
    hsize_t chunk_bytes = file_elem_bytes;
    for (hsize_t c : chunk) chunk_bytes *= c;
    Handle dcpl = plist(H5Pcreate(H5P_DATASET_CREATE));
    if (!sp.valid() || !dcpl.valid() || H5Pset_chunk(dcpl.get(), rank, chunk.data()) < 0)
        return error("cannot set up chunking for dataset '" + name + "'");
    const unsigned cd[2] = {static_cast<unsigned>(level), static_cast<unsigned>(chunk_bytes)};
    if (H5Pset_filter(dcpl.get(), kZstdFilterId, H5Z_FLAG_MANDATORY, 2, cd) < 0)
        return error("cannot set the zstd filter for dataset '" + name + "'");
    // Every chunk is written in full, so skip writing fill values first.
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
    Handle d = dataset(H5Dcreate2(parent, name.c_str(), file_type, sp.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    if (!d.valid()) return error("cannot create dataset '" + name + "'");
    return d;
}

namespace {

template <class Io>
Status slab_io(hid_t dset, hid_t mem_type, const std::vector<hsize_t>& dims, size_t elem_bytes, Progress& progress,
               double base, double span, const std::string& stage, bool reading, Io io) {
    if (dims.empty()) return make_error("dataset has no dimensions");
    for (hsize_t d : dims)
        if (d == 0) return {};  // nothing stored
    hsize_t row_bytes = elem_bytes;
    for (size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
    // Slabs of whole rows, a multiple of the chunk height so each chunk is written in one piece.
    hsize_t step = 1;
    {
        Handle dcpl = plist(H5Dget_create_plist(dset));
        std::vector<hsize_t> chunk(dims.size(), 1);
        if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CHUNKED &&
            H5Pget_chunk(dcpl.get(), int(dims.size()), chunk.data()) == int(dims.size()))
            step = std::max<hsize_t>(chunk[0], 1);
    }
    const hsize_t want = std::max<hsize_t>(1, (hsize_t(64) << 20) / std::max<hsize_t>(row_bytes, 1));
    if (want > step) step = want / step * step;
    Handle fsp = space(H5Dget_space(dset));
    if (!fsp.valid()) return error("cannot get dataspace");
    std::vector<hsize_t> start(dims.size(), 0), count(dims);
    for (hsize_t r0 = 0; r0 < dims[0]; r0 += step) {
        if (progress.cancelled()) return make_error("cancelled");
        start[0] = r0;
        count[0] = std::min(step, dims[0] - r0);
        Handle msp = space(H5Screate_simple(int(dims.size()), count.data(), nullptr));
        if (!msp.valid() ||
            H5Sselect_hyperslab(fsp.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0)
            return error("cannot select rows");
        if (io(dset, mem_type, msp.get(), fsp.get(), r0 * row_bytes) < 0) {
            std::string what = reading ? "cannot read data" : "cannot write data";
            const std::string why = reading ? zstd_filter_last_error() : std::string();
            if (!why.empty()) what += " (" + why + ")";
            return error(std::move(what));
        }
        progress.report(base + span * double(r0 + count[0]) / double(dims[0]), stage);
    }
    return {};
}

}  // namespace

Status write_slabs(hid_t dset, hid_t mem_type, const std::vector<hsize_t>& dims, size_t elem_bytes, const void* data,
                   Progress& progress, double base, double span, const std::string& stage) {
    auto* bytes = static_cast<const unsigned char*>(data);
    return slab_io(dset, mem_type, dims, elem_bytes, progress, base, span, stage, false,
                   [bytes](hid_t d, hid_t mt, hid_t ms, hid_t fs, hsize_t off) {
                       return H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, bytes + off);
                   });
}

Status read_slabs(hid_t dset, hid_t mem_type, const std::vector<hsize_t>& dims, size_t elem_bytes, void* data,
                  Progress& progress, double base, double span, const std::string& stage) {
    auto* bytes = static_cast<unsigned char*>(data);
    return slab_io(dset, mem_type, dims, elem_bytes, progress, base, span, stage, true,
                   [bytes](hid_t d, hid_t mt, hid_t ms, hid_t fs, hsize_t off) {
                       return H5Dread(d, mt, ms, fs, H5P_DEFAULT, bytes + off);
                   });
}

Result<std::vector<hsize_t>> dataset_dims(hid_t dset, int max_rank) {
    Handle sp = space(H5Dget_space(dset));
    if (!sp.valid() || H5Sget_simple_extent_type(sp.get()) != H5S_SIMPLE)
        return error("dataset is not a simple array");
    const int rank = H5Sget_simple_extent_ndims(sp.get());
    if (rank < 1 || rank > max_rank)
        return make_error("dataset has rank " + std::to_string(rank) + " (1.." + std::to_string(max_rank) + " allowed)");
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (H5Sget_simple_extent_dims(sp.get(), dims.data(), nullptr) != rank) return make_error("cannot read extent");
    return dims;
}

}  // namespace ef::h5
