// HDF5 checkpoint: the format table row and the writer (layout in hdf5_format.h). The file is built
// under a temporary name by HDF5 itself and renamed into place only when complete and synced.
#include "core/hdf5/hdf5_format.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "core/hdf5/hdf5_io.h"
#include "core/hdf5/zstd_filter.h"
#include "core/model_json.h"

namespace ef {
namespace hdf5 {

std::optional<TypedStorage> typed_storage(DType t) {
    auto predefined = [](hid_t file, hid_t mem, H5T_class_t cls, size_t size, bool is_signed) {
        return TypedStorage{h5::Handle(file, nullptr), h5::Handle(mem, nullptr), cls, size, is_signed};
    };
    switch (t) {
        case DType::F32: return predefined(H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, H5T_FLOAT, 4, true);
        case DType::F64: return predefined(H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, H5T_FLOAT, 8, true);
        case DType::I8: return predefined(H5T_STD_I8LE, H5T_NATIVE_INT8, H5T_INTEGER, 1, true);
        case DType::I16: return predefined(H5T_STD_I16LE, H5T_NATIVE_INT16, H5T_INTEGER, 2, true);
        case DType::I32: return predefined(H5T_STD_I32LE, H5T_NATIVE_INT32, H5T_INTEGER, 4, true);
        case DType::I64: return predefined(H5T_STD_I64LE, H5T_NATIVE_INT64, H5T_INTEGER, 8, true);
        case DType::F16: {
            // Our bytes are little-endian binary16, exactly the file type: no conversion either way.
            TypedStorage s{h5::make_f16_type(), h5::make_f16_type(), H5T_FLOAT, 2, true};
            if (!s.file_type.valid() || !s.mem_type.valid()) return std::nullopt;
            return s;
        }
        default: return std::nullopt;
    }
}

namespace {

Status check_model(const Model& m, const std::string& path, const SaveOptions& opts) {
    if (opts.compression_level < ZSTD_minCLevel() || opts.compression_level > ZSTD_maxCLevel())
        return make_error(path + ": zstd compression level " + std::to_string(opts.compression_level) +
                          " is out of range (" + std::to_string(ZSTD_minCLevel()) + ".." +
                          std::to_string(ZSTD_maxCLevel()) + ")");
    std::set<std::string_view> names;
    for (const auto& t : m.tensors) {
        if (t.name.empty() || t.name == "." || t.name.find('/') != std::string::npos)
            return make_error(path + ": tensor name '" + t.name + "' cannot be an HDF5 dataset name");
        if (!names.insert(t.name).second) return make_error(path + ": duplicate tensor " + t.name);
        if (t.shape.size() > size_t(kMaxRank))
            return make_error(path + ": tensor " + t.name + " has more than " + std::to_string(kMaxRank) + " dimensions");
        if (auto s = validate_tensor_layout(t.name, t.dtype, t.shape, t.data.size()); !s)
            return make_error(path + ": " + s.message());
    }
    auto no_nul = [&](const std::vector<std::string>& v, const char* what) -> Status {
        for (size_t i = 0; i < v.size(); ++i)
            if (v[i].find('\0') != std::string::npos)
                return make_error(path + ": vocab " + what + " " + std::to_string(i) +
                                  " contains a NUL byte, which HDF5 strings cannot hold");
        return {};
    };
    EF_TRY_STATUS(no_nul(m.vocab.tokens, "token"));
    EF_TRY_STATUS(no_nul(m.vocab.merges, "merge"));
    return {};
}

std::string dump_json(const nlohmann::json& j) {
    // Invalid UTF-8 in a metadata string is replaced (U+FFFD) rather than failing the save.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Everything below prefixes errors with "<path>: " where <path> is the target name the user gave.
class Writer {
public:
    Writer(const Model& m, std::string path, const SaveOptions& opts, Progress& progress, const ExtraWriter* extra)
        : m_(m), path_(std::move(path)), level_(opts.compression_level), progress_(progress), extra_(extra) {}

    Status write(const std::string& tmp) {
        h5::Handle fapl = h5::plist(H5Pcreate(H5P_FILE_ACCESS));
        // 1.10 formats: checksums on all metadata (damage becomes an error, not a wild read) and
        // dense storage for big attributes (the metadata JSON can exceed 64 KiB); readable by
        // HDF5 1.10 and later. STRONG close makes H5Fclose release everything.
        if (!fapl.valid() || H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
            H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0)
            return h5::fail(path_, "cannot set up file access");
        h5::Handle f = h5::file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
        if (!f.valid()) return h5::fail(path_, "cannot create temporary file " + tmp);
        EF_TRY_STATUS(write_root(f.get()));
        EF_TRY_STATUS(write_vocab(f.get()));
        EF_TRY_STATUS(write_tensors(f.get()));
        if (extra_ && *extra_) EF_TRY_STATUS((*extra_)(f.get(), level_));
        if (f.close() < 0) return h5::fail(path_, "cannot finish writing " + tmp);
        return {};
    }

private:
    Status here(const Status& s, const std::string& object) const {
        if (s.ok()) return s;
        if (s.message() == "cancelled") return make_error(path_ + ": save cancelled");
        return make_error(path_ + ": " + object + ": " + s.message());
    }

    Status write_root(hid_t f) {
        Status s = h5::write_int_attr(f, "edgefusion_format_version", kHdf5FormatVersion);
        if (s) s = h5::write_str_attr(f, "architecture", m_.architecture);
        if (s) s = h5::write_str_attr(f, "config", dump_json(config_to_json(m_.config)));
        if (s) s = h5::write_str_attr(f, "layers", dump_json(layers_to_json(m_.layers)));
        if (s) s = h5::write_str_attr(f, "metadata", dump_json(metadata_to_json(m_.metadata)));
        return here(s, "root attributes");
    }

    // Fixed-length strings as wide as the longest one, NUL-padded: zstd squeezes the padding out.
    Status write_strings(hid_t g, const char* name, const std::vector<std::string>& v) {
        if (v.empty()) return {};
        size_t width = 1;
        for (const auto& x : v) width = std::max(width, x.size());
        std::vector<char> flat;
        try {
            flat.assign(v.size() * width, '\0');
        } catch (const std::exception&) {
            return make_error(std::string("cannot allocate ") + name);
        }
        for (size_t i = 0; i < v.size(); ++i) std::memcpy(flat.data() + i * width, v[i].data(), v[i].size());
        h5::Handle t = h5::make_fixed_str_type(width);
        auto d = h5::create_dataset(g, name, t.get(), {hsize_t(v.size())}, width, level_);
        if (!d) return d.error();
        if (H5Dwrite(d->get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, flat.data()) < 0)
            return h5::error(std::string("cannot write ") + name);
        return {};
    }

    template <class T>
    Status write_array(hid_t g, const char* name, hid_t ftype, hid_t mtype, const std::vector<T>& v) {
        if (v.empty()) return {};
        auto d = h5::create_dataset(g, name, ftype, {hsize_t(v.size())}, sizeof(T), level_);
        if (!d) return d.error();
        if (H5Dwrite(d->get(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
            return h5::error(std::string("cannot write ") + name);
        return {};
    }

    Status write_vocab(hid_t f) {
        const Vocab& v = m_.vocab;
        h5::Handle g = h5::group(H5Gcreate2(f, kVocabGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        if (!g.valid()) return h5::fail(path_, "cannot create group /vocab");
        Status s = h5::write_str_attr(g.get(), "model", v.model);
        if (s) s = h5::write_str_attr(g.get(), "pre", v.pre);
        const std::pair<const char*, int64_t> ints[] = {
            {"bos_id", v.bos_id}, {"eos_id", v.eos_id}, {"unk_id", v.unk_id}, {"pad_id", v.pad_id},
            {"add_bos", v.add_bos ? 1 : 0}, {"max_token_length", v.max_token_length}};
        for (const auto& [key, value] : ints)
            if (s) s = h5::write_int_attr(g.get(), key, value);
        if (s) s = write_strings(g.get(), "tokens", v.tokens);
        if (s) s = write_array(g.get(), "scores", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v.scores);
        if (s) s = write_array(g.get(), "token_types", H5T_STD_I32LE, H5T_NATIVE_INT32, v.token_types);
        if (s) s = write_strings(g.get(), "merges", v.merges);
        return here(s, "/vocab");
    }

    Status write_tensors(hid_t f) {
        h5::Handle gcpl = h5::plist(H5Pcreate(H5P_GROUP_CREATE));
        // Tracked creation order lets the reader restore the model's tensor order.
        if (!gcpl.valid() ||
            H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0)
            return h5::fail(path_, "cannot set up group /tensors");
        h5::Handle g = h5::group(H5Gcreate2(f, kTensorsGroup, H5P_DEFAULT, gcpl.get(), H5P_DEFAULT));
        if (!g.valid()) return h5::fail(path_, "cannot create group /tensors");
        double total = 1.0;
        for (const auto& t : m_.tensors) total += double(t.data.size()) + 1.0;
        double done = 0.0;
        for (const auto& t : m_.tensors) {
            if (progress_.cancelled()) return make_error(path_ + ": save cancelled");
            const double span = (double(t.data.size()) + 1.0) / total;
            EF_TRY_STATUS(here(write_tensor(g.get(), t, done, span), "tensor " + t.name));
            done += span;
            progress_.report(done, "HDF5 tensors");
        }
        return {};
    }

    Status write_tensor(hid_t g, const Tensor& t, double base, double span) {
        return write_tensor_dataset(g, t, level_, progress_, base, span);
    }

    const Model& m_;
    std::string path_;
    int level_;
    Progress& progress_;
    const ExtraWriter* extra_;
};

Status sync_file(const std::string& path, const std::string& tmp) {
    const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        const std::string msg = path + ": cannot sync " + tmp + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return make_error(msg);
    }
    ::close(fd);
    return {};
}

bool probe(std::span<const std::byte> head) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    return head.size() >= 8 && std::memcmp(head.data(), sig, 8) == 0;
}

}  // namespace

Status write_tensor_dataset(hid_t g, const Tensor& t, int level, Progress& progress, double base, double span) {
    std::vector<hsize_t> dims;
    auto typed = typed_storage(t.dtype);
    hid_t ftype = H5T_STD_U8LE, mtype = H5T_NATIVE_UINT8;
    size_t elem = 1;
    if (typed) {
        for (int64_t d : t.shape) dims.push_back(hsize_t(d));
        if (dims.empty()) dims.push_back(1);
        ftype = typed->file_type.get();
        mtype = typed->mem_type.get();
        elem = typed->size;
    } else {
        dims.push_back(hsize_t(t.data.size()));
    }
    auto d = h5::create_dataset(g, t.name, ftype, dims, elem, level);
    if (!d) return d.error();
    EF_TRY_STATUS(h5::write_str_attr(d->get(), "dtype", std::string(dtype_name(t.dtype))));
    EF_TRY_STATUS(h5::write_i64_array_attr(d->get(), "shape", t.shape));
    return h5::write_slabs(d->get(), mtype, dims, elem, t.data.data(), progress, base, span, "HDF5 tensors");
}

Status save(const Model& model, const std::string& path, const SaveOptions& opts, Progress& progress) {
    return save_with(model, path, opts, progress, ExtraWriter());
}

Status save_with(const Model& model, const std::string& path, const SaveOptions& opts, Progress& progress,
                 const ExtraWriter& extra) {
    h5::silence_errors();
    if (auto s = register_zstd_filter(); !s) return make_error(path + ": " + s.message());
    EF_TRY_STATUS(check_model(model, path, opts));
    progress.report(0.0, "HDF5 tensors");
    const std::string tmp = temp_path_for(path);
    Status s;
    try {
        s = Writer(model, path, opts, progress, &extra).write(tmp);
    } catch (const std::exception& e) {  // allocation failures in JSON/metadata conversion
        s = make_error(path + ": " + e.what());
    }
    if (s) s = sync_file(path, tmp);
    if (!s) {
        std::remove(tmp.c_str());
        return s;
    }
    EF_TRY_STATUS(atomic_replace(tmp, path));
    progress.report(1.0, "done");
    return {};
}

}  // namespace hdf5

const FormatHandler& hdf5_format_handler() {
    static const FormatHandler h{"hdf5", {".h5", ".hdf5"}, hdf5::probe, hdf5::load, hdf5::save};
    return h;
}

void register_hdf5_format() {
    static std::once_flag once;
    std::call_once(once, [] {
        (void)register_zstd_filter();  // a failure resurfaces as an error on every load/save
        register_format(hdf5_format_handler());
    });
}

}  // namespace ef
