// HDF5 checkpoint reader (layout in hdf5_format.h). Every size taken from the file is checked
// before anything is allocated: against the dtype and shape attributes, the dataset's stored bytes
// (which must fit in the file), zstd's maximum compression ratio and the machine's memory.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/arch/architecture.h"
#include "core/hdf5/hdf5_format.h"
#include "core/hdf5/hdf5_io.h"
#include "core/hdf5/zstd_filter.h"
#include "core/model_json.h"

namespace ef::hdf5 {
namespace {

// zstd cannot expand more than this: a block of at most 128 KiB costs at least 4 bytes (RLE).
constexpr uint64_t kMaxZstdRatio = 32768;
constexpr uint64_t kRatioSlack = 1 << 16;  // frame headers, tiny chunks

uint64_t physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : UINT64_MAX;
}

class Reader {
public:
    Reader(std::string path, uint64_t file_size, Progress& progress)
        : path_(std::move(path)), file_size_(file_size), progress_(progress) {}

    Result<Model> read(hid_t f, const LoadOptions& opts) {
        Model m;
        EF_TRY_STATUS(read_root(f, m));
        EF_TRY_STATUS(read_vocab(f, m.vocab));
        EF_TRY_STATUS(read_tensors(f, m));
        m.source_path = path_;
        m.source_format = "hdf5";
        if (opts.validate) EF_TRY_STATUS(validate_model(m, path_));
        return m;
    }

private:
    Error at(const std::string& object, const std::string& msg) const {
        return make_error(path_ + ": " + object + ": " + msg);
    }

    Result<nlohmann::json> json_attr(hid_t root, const char* name) {
        auto s = h5::read_str_attr(root, name);
        if (!s) return at("root", s.message());
        nlohmann::json j = nlohmann::json::parse(*s, nullptr, false);
        if (j.is_discarded()) return at("root", std::string("attribute '") + name + "' is not valid JSON");
        return j;
    }

    Status read_root(hid_t f, Model& m) {
        const htri_t tagged = H5Aexists(f, "edgefusion_format_version");
        if (tagged < 0) return h5::fail(path_, "cannot read the root attributes (damaged file?)");
        if (tagged == 0)
            return make_error(path_ + ": not an EdgeFusion checkpoint (HDF5 file without the root attribute "
                                      "'edgefusion_format_version')");
        auto version = h5::read_int_attr(f, "edgefusion_format_version");
        if (!version) return at("root", version.message());
        if (*version < 1 || *version > kHdf5FormatVersion)
            return at("root", "format version " + std::to_string(*version) + " is not supported (this build reads 1.." +
                                  std::to_string(kHdf5FormatVersion) + ")");
        auto arch = h5::read_str_attr(f, "architecture");
        if (!arch) return at("root", arch.message());
        m.architecture = *arch;
        auto cj = json_attr(f, "config");
        if (!cj) return cj.error();
        auto cfg = config_from_json(*cj);
        if (!cfg) return at("attribute 'config'", cfg.message());
        m.config = *cfg;
        auto lj = json_attr(f, "layers");
        if (!lj) return lj.error();
        auto layers = layers_from_json(*lj);
        if (!layers) return at("attribute 'layers'", layers.message());
        m.layers = std::move(*layers);
        auto mj = json_attr(f, "metadata");
        if (!mj) return mj.error();
        auto meta = metadata_from_json(*mj);
        if (!meta) return at("attribute 'metadata'", meta.message());
        m.metadata = std::move(*meta);
        return {};
    }

    // Elements of a 1-D vocab array, with its stored size checked against the file first.
    Result<hsize_t> vocab_count(hid_t d, const char* name, size_t file_elem_bytes) {
        auto dims = h5::dataset_dims(d, 1);
        if (!dims) return at(std::string("/vocab/") + name, dims.message());
        uint64_t bytes = 0;
        if (__builtin_mul_overflow(uint64_t((*dims)[0]), uint64_t(file_elem_bytes), &bytes))
            return at(std::string("/vocab/") + name, "absurd length " + std::to_string((*dims)[0]));
        EF_TRY_STATUS(check_size(d, std::string("/vocab/") + name, bytes));
        return (*dims)[0];
    }

    Status read_strings(hid_t g, const char* name, std::vector<std::string>& out) {
        if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return {};
        const std::string obj = std::string("/vocab/") + name;
        h5::Handle d = h5::dataset(H5Dopen2(g, name, H5P_DEFAULT));
        if (!d.valid()) return h5::fail(path_, obj + ": cannot open");
        h5::Handle ft = h5::type(H5Dget_type(d.get()));
        if (!ft.valid() || H5Tget_class(ft.get()) != H5T_STRING) return at(obj, "not a string dataset");
        auto fail_read = [&] {
            const std::string why = zstd_filter_last_error();
            return h5::fail(path_, obj + ": cannot read" + (why.empty() ? "" : " (" + why + ")"));
        };
        if (H5Tis_variable_str(ft.get()) > 0) {  // written by another tool (we write fixed-length)
            auto n = vocab_count(d.get(), name, 16);  // a heap reference is 16 bytes in the file
            if (!n) return n.error();
            h5::Handle mt = h5::type(H5Tcopy(ft.get()));  // same cset: HDF5 will not convert it
            std::vector<char*> ptrs(*n + 1, nullptr);
            if (H5Dread(d.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) return fail_read();
            out.reserve(*n);
            for (hsize_t i = 0; i < *n; ++i) out.emplace_back(ptrs[i] ? ptrs[i] : "");
            h5::Handle sp = h5::space(H5Dget_space(d.get()));
            H5Dvlen_reclaim(mt.get(), sp.get(), H5P_DEFAULT, ptrs.data());
            return {};
        }
        const size_t width = H5Tget_size(ft.get());
        if (width == 0 || width > (size_t(1) << 20)) return at(obj, "has an implausible string width");
        auto n = vocab_count(d.get(), name, width);
        if (!n) return n.error();
        std::vector<char> flat;
        try {
            flat.resize(size_t(*n) * width + 1);
        } catch (const std::exception&) {
            return at(obj, "cannot allocate " + std::to_string(*n) + " strings");
        }
        h5::Handle mt = h5::type(H5Tcopy(ft.get()));
        if (*n > 0 && H5Dread(d.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, flat.data()) < 0) return fail_read();
        out.reserve(*n);
        for (hsize_t i = 0; i < *n; ++i) {
            const char* p = flat.data() + i * width;
            out.emplace_back(p, strnlen(p, width));
        }
        return {};
    }

    template <class T>
    Status read_array(hid_t g, const char* name, hid_t mtype, H5T_class_t cls, std::vector<T>& out) {
        if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return {};
        const std::string obj = std::string("/vocab/") + name;
        h5::Handle d = h5::dataset(H5Dopen2(g, name, H5P_DEFAULT));
        if (!d.valid()) return h5::fail(path_, obj + ": cannot open");
        h5::Handle ft = h5::type(H5Dget_type(d.get()));
        if (!ft.valid() || H5Tget_class(ft.get()) != cls) return at(obj, "has the wrong element type");
        auto n = vocab_count(d.get(), name, sizeof(T));
        if (!n) return n.error();
        out.resize(*n);
        if (*n > 0 && H5Dread(d.get(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
            const std::string why = zstd_filter_last_error();
            return h5::fail(path_, obj + ": cannot read" + (why.empty() ? "" : " (" + why + ")"));
        }
        return {};
    }

    Status read_vocab(hid_t f, Vocab& v) {
        if (H5Lexists(f, kVocabGroup, H5P_DEFAULT) <= 0) return {};  // a model without tokenizer
        h5::Handle g = h5::group(H5Gopen2(f, kVocabGroup, H5P_DEFAULT));
        if (!g.valid()) return h5::fail(path_, "cannot open group /vocab");
        for (auto [key, dst] : {std::pair{"model", &v.model}, std::pair{"pre", &v.pre}}) {
            if (!h5::has_attr(g.get(), key)) continue;
            auto s = h5::read_str_attr(g.get(), key);
            if (!s) return at("/vocab", s.message());
            *dst = *s;
        }
        int32_t add_bos = v.add_bos ? 1 : 0;
        const std::pair<const char*, int32_t*> ints[] = {{"bos_id", &v.bos_id}, {"eos_id", &v.eos_id},
                                                         {"unk_id", &v.unk_id}, {"pad_id", &v.pad_id},
                                                         {"add_bos", &add_bos}, {"max_token_length", &v.max_token_length}};
        for (const auto& [key, dst] : ints) {
            if (!h5::has_attr(g.get(), key)) continue;
            auto x = h5::read_int_attr(g.get(), key);
            if (!x) return at("/vocab", x.message());
            if (*x < INT32_MIN || *x > INT32_MAX)
                return at("/vocab", std::string("attribute '") + key + "' is out of range");
            *dst = int32_t(*x);
        }
        v.add_bos = add_bos != 0;
        EF_TRY_STATUS(read_strings(g.get(), "tokens", v.tokens));
        EF_TRY_STATUS(read_array(g.get(), "scores", H5T_NATIVE_FLOAT, H5T_FLOAT, v.scores));
        EF_TRY_STATUS(read_array(g.get(), "token_types", H5T_NATIVE_INT32, H5T_INTEGER, v.token_types));
        EF_TRY_STATUS(read_strings(g.get(), "merges", v.merges));
        return {};
    }

    // Refuses `bytes` of decoded data when the dataset's stored bytes cannot hold them.
    Status check_size(hid_t d, const std::string& obj, uint64_t bytes) {
        const uint64_t stored = H5Dget_storage_size(d);
        if (stored > file_size_)
            return at(obj, "claims " + std::to_string(stored) + " stored bytes but the file has " +
                               std::to_string(file_size_));
        h5::Handle dcpl = h5::plist(H5Dget_create_plist(d));
        if (!dcpl.valid()) return h5::fail(path_, obj + ": cannot read its creation properties");
        const bool filtered = H5Pget_nfilters(dcpl.get()) > 0;
        const uint64_t limit = filtered ? stored * kMaxZstdRatio + kRatioSlack : stored + kRatioSlack;
        if (bytes > limit)
            return at(obj, "claims " + std::to_string(bytes) + " bytes of data but stores only " +
                               std::to_string(stored) + " (corrupt or truncated file)");
        if (bytes > physical_memory())
            return at(obj, std::to_string(bytes) + " bytes do not fit in this machine's memory");
        if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED && bytes > 0) {
            // Chunks never written read back as zeros; ours are all written, so missing ones mean damage.
            auto dims = h5::dataset_dims(d, kMaxRank);
            std::vector<hsize_t> chunk(kMaxRank, 1);
            if (!dims || H5Pget_chunk(dcpl.get(), kMaxRank, chunk.data()) != int(dims->size()))
                return h5::fail(path_, obj + ": cannot read its chunk layout");
            hsize_t expected = 1, have = 0;
            for (size_t i = 0; i < dims->size(); ++i) expected *= ((*dims)[i] + chunk[i] - 1) / std::max<hsize_t>(chunk[i], 1);
            h5::Handle sp = h5::space(H5Dget_space(d));  // 1.10 does not accept H5S_ALL here
            if (H5Dget_num_chunks(d, sp.get(), &have) < 0) return h5::fail(path_, obj + ": cannot count its chunks");
            if (have != expected)
                return at(obj, "only " + std::to_string(have) + " of " + std::to_string(expected) +
                                   " chunks are stored (incomplete file)");
        }
        return {};
    }

    Result<std::vector<std::string>> tensor_names(hid_t g) {
        h5::Handle gcpl = h5::plist(H5Gget_create_plist(g));
        unsigned order = 0;
        if (gcpl.valid()) H5Pget_link_creation_order(gcpl.get(), &order);
        const H5_index_t index = (order & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
        std::vector<std::string> names;
        hsize_t idx = 0;
        const herr_t r = H5Literate(
            g, index, H5_ITER_INC, &idx,
            [](hid_t, const char* name, const H5L_info_t* info, void* data) -> herr_t {
                if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
                return 0;
            },
            &names);
        if (r < 0) return h5::fail(path_, "cannot list /tensors");
        return names;
    }

    Status read_tensors(hid_t f, Model& m) {
        if (H5Lexists(f, kTensorsGroup, H5P_DEFAULT) <= 0) return at("root", "missing group /tensors");
        h5::Handle g = h5::group(H5Gopen2(f, kTensorsGroup, H5P_DEFAULT));
        if (!g.valid()) return h5::fail(path_, "cannot open group /tensors");
        auto names = tensor_names(g.get());
        if (!names) return names.error();
        const double n = double(names->size()) + 1.0;
        for (size_t i = 0; i < names->size(); ++i) {
            if (progress_.cancelled()) return make_error(path_ + ": loading cancelled");
            const double base = double(i) / n, span = 1.0 / n;
            auto t = read_tensor(g.get(), (*names)[i], base, span);
            if (!t) return t.error();
            m.tensors.push_back(std::move(*t));
            progress_.report(base + span, "HDF5 tensors");  // same sum as the last slab's report
        }
        return {};
    }

public:
    Result<Tensor> read_tensor(hid_t g, const std::string& name, double base, double span) {
        const std::string obj = "tensor " + name;
        h5::Handle d = h5::dataset(H5Dopen2(g, name.c_str(), H5P_DEFAULT));
        if (!d.valid()) return h5::fail(path_, obj + ": cannot open dataset");
        h5::Handle ft = h5::type(H5Dget_type(d.get()));
        if (!ft.valid()) return h5::fail(path_, obj + ": cannot read its type");
        const H5T_class_t cls = H5Tget_class(ft.get());
        const size_t size = H5Tget_size(ft.get());

        std::optional<DType> dtype;
        if (h5::has_attr(d.get(), "dtype")) {
            auto s = h5::read_str_attr(d.get(), "dtype");
            if (!s) return at(obj, s.message());
            dtype = dtype_from_name(*s);
            if (!dtype) return at(obj, "unknown dtype '" + *s + "'");
        } else if (cls == H5T_FLOAT && (size == 4 || size == 2)) {
            dtype = size == 4 ? DType::F32 : DType::F16;  // a plain float array written by another tool
        } else {
            return at(obj, "missing attribute 'dtype'");
        }
        auto dims = h5::dataset_dims(d.get(), kMaxRank);
        if (!dims) return at(obj, dims.message());
        auto typed = typed_storage(*dtype);

        Shape shape;
        if (h5::has_attr(d.get(), "shape")) {
            auto s = h5::read_i64_array_attr(d.get(), "shape", kMaxRank);
            if (!s) return at(obj, s.message());
            shape = std::move(*s);
        } else if (typed) {
            for (hsize_t x : *dims) shape.push_back(int64_t(x));
        } else {
            return at(obj, "missing attribute 'shape'");
        }
        // Layout check before any allocation: shape, dtype and block size agree, no overflow.
        const auto numel = shape_numel(shape);
        if (!numel) return at(obj, "invalid shape " + shape_to_string(shape));
        const auto nbytes = dtype_bytes(*dtype, *numel);
        if (!nbytes) return at(obj, std::string(dtype_name(*dtype)) + " cannot hold shape " + shape_to_string(shape));
        if (auto s = validate_tensor_layout(name, *dtype, shape, *nbytes); !s) return make_error(path_ + ": " + s.message());

        hid_t mtype = H5T_NATIVE_UINT8;
        size_t elem = 1;
        if (typed) {
            std::vector<hsize_t> want;
            for (int64_t x : shape) want.push_back(hsize_t(x));
            if (want.empty()) want.push_back(1);
            if (cls != typed->cls || size != typed->size ||
                (cls == H5T_INTEGER && (H5Tget_sign(ft.get()) == H5T_SGN_2) != typed->is_signed))
                return at(obj, "dataset element type does not match dtype " + std::string(dtype_name(*dtype)));
            if (*dims != want)
                return at(obj, "dataset extent does not match the shape " + shape_to_string(shape));
            mtype = typed->mem_type.get();
            elem = typed->size;
        } else {
            if (cls != H5T_INTEGER || size != 1 || dims->size() != 1)
                return at(obj, "a " + std::string(dtype_name(*dtype)) + " tensor must be a 1-D uint8 dataset");
            if ((*dims)[0] != *nbytes)
                return at(obj, "holds " + std::to_string((*dims)[0]) + " bytes but " + std::string(dtype_name(*dtype)) +
                                   " " + shape_to_string(shape) + " needs " + std::to_string(*nbytes));
        }
        EF_TRY_STATUS(check_size(d.get(), obj, *nbytes));

        std::vector<std::byte> bytes;
        try {
            bytes.resize(*nbytes);
        } catch (const std::exception&) {
            return at(obj, "cannot allocate " + std::to_string(*nbytes) + " bytes");
        }
        Status s = h5::read_slabs(d.get(), mtype, *dims, elem, bytes.data(), progress_, base, span, "HDF5 tensors");
        if (!s) {
            if (s.message() == "cancelled") return make_error(path_ + ": loading cancelled");
            return at(obj, s.message());
        }
        return Tensor::from_bytes(name, *dtype, std::move(shape), std::move(bytes));
    }

private:
    std::string path_;
    uint64_t file_size_;
    Progress& progress_;
};

}  // namespace

Result<Tensor> read_tensor_dataset(hid_t group, const std::string& name, const std::string& path, uint64_t file_size,
                                   Progress& progress, double base, double span) {
    return Reader(path, file_size, progress).read_tensor(group, name, base, span);
}

Result<Model> load(const std::string& path, const LoadOptions& opts, Progress& progress) {
    h5::silence_errors();
    if (auto s = register_zstd_filter(); !s) return make_error(path + ": " + s.message());
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return make_error(path + ": no such file");
    if (!S_ISREG(st.st_mode)) return make_error(path + ": not a regular file");
    if (H5Fis_hdf5(path.c_str()) <= 0) {
        h5::take_error_stack();
        return make_error(path + ": not an HDF5 file (no HDF5 signature)");
    }
    progress.report(0.0, "reading HDF5 header");
    h5::Handle fapl = h5::plist(H5Pcreate(H5P_FILE_ACCESS));
    if (!fapl.valid() || H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0)
        return h5::fail(path, "cannot set up file access");
    h5::Handle f = h5::file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
    if (!f.valid()) return h5::fail(path, "cannot open HDF5 file (damaged or truncated?)");
    try {
        auto m = Reader(path, uint64_t(st.st_size), progress).read(f.get(), opts);
        if (m) progress.report(1.0, "done");
        return m;
    } catch (const std::exception& e) {  // e.g. nlohmann type errors or allocation failures
        return make_error(path + ": " + e.what());
    }
}

}  // namespace ef::hdf5
