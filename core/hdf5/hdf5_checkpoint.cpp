// Outlier analysis and quantized variants in the HDF5 checkpoint (layout in hdf5_format.h).
#include "core/hdf5/hdf5_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/hdf5/hdf5_format.h"
#include "core/hdf5/hdf5_io.h"
#include "core/hdf5/zstd_filter.h"

namespace ef {
namespace {

constexpr const char* kAnalysisGroup = "analysis";
constexpr const char* kOutliersGroup = "outliers";
constexpr const char* kQuantizedGroup = "quantized";
constexpr uint64_t kMaxZstdRatio = 32768;  // as the model reader: zstd cannot expand more
constexpr uint64_t kRatioSlack = 1 << 16;

bool valid_link_name(const std::string& n) { return !n.empty() && n != "." && n.find('/') == std::string::npos; }

// ---- small HDF5 pieces ----

Status write_f64_attr(hid_t obj, const char* name, double v) {
    h5::Handle sp = h5::space(H5Screate(H5S_SCALAR));
    h5::Handle a = h5::attribute(H5Acreate2(obj, name, H5T_IEEE_F64LE, sp.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid() || H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &v) < 0)
        return h5::error(std::string("cannot write attribute '") + name + "'");
    return {};
}

Result<double> read_f64_attr(hid_t obj, const char* name) {
    if (!h5::has_attr(obj, name)) return make_error(std::string("missing attribute '") + name + "'");
    h5::Handle a = h5::attribute(H5Aopen(obj, name, H5P_DEFAULT));
    h5::Handle t = h5::type(a.valid() ? H5Aget_type(a.get()) : H5I_INVALID_HID);
    h5::Handle sp = h5::space(a.valid() ? H5Aget_space(a.get()) : H5I_INVALID_HID);
    if (!t.valid() || !sp.valid() || H5Sget_simple_extent_npoints(sp.get()) != 1 ||
        (H5Tget_class(t.get()) != H5T_FLOAT && H5Tget_class(t.get()) != H5T_INTEGER))
        return h5::error(std::string("attribute '") + name + "' is not a number");
    double v = 0;
    if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) < 0) return h5::error(std::string("cannot read attribute '") + name + "'");
    return v;
}

h5::Handle create_ordered_group(hid_t parent, const char* name) {
    h5::Handle gcpl = h5::plist(H5Pcreate(H5P_GROUP_CREATE));
    if (!gcpl.valid() || H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0)
        return {};
    return h5::group(H5Gcreate2(parent, name, H5P_DEFAULT, gcpl.get(), H5P_DEFAULT));
}

h5::Handle open_or_create_group(hid_t parent, const char* name) {
    if (H5Lexists(parent, name, H5P_DEFAULT) > 0) return h5::group(H5Gopen2(parent, name, H5P_DEFAULT));
    return create_ordered_group(parent, name);
}

Status remove_if_present(hid_t parent, const std::string& name) {
    if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0 && H5Ldelete(parent, name.c_str(), H5P_DEFAULT) < 0)
        return h5::error("cannot remove the old '" + name + "'");
    return {};
}

Status write_array(hid_t g, const char* name, hid_t ftype, hid_t mtype, std::vector<hsize_t> dims, size_t elem,
                   const void* data, int level) {
    auto d = h5::create_dataset(g, name, ftype, dims, elem, level);
    if (!d) return d.error();
    hsize_t n = 1;
    for (hsize_t x : dims) n *= x;
    if (n > 0 && H5Dwrite(d->get(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        return h5::error(std::string("cannot write ") + name);
    return {};
}

std::vector<std::string> link_names(hid_t g) {
    h5::Handle gcpl = h5::plist(H5Gget_create_plist(g));
    unsigned order = 0;
    if (gcpl.valid()) H5Pget_link_creation_order(gcpl.get(), &order);
    const H5_index_t index = (order & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    std::vector<std::string> names;
    hsize_t idx = 0;
    H5Literate(
        g, index, H5_ITER_INC, &idx,
        [](hid_t, const char* name, const H5L_info_t* info, void* data) -> herr_t {
            if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
            return 0;
        },
        &names);
    return names;
}

// ---- writing ----

Status write_outliers(hid_t f, const OutlierAnalysis& a, int level) {
    h5::Handle ga = open_or_create_group(f, kAnalysisGroup);
    if (!ga.valid()) return h5::error("cannot create group /analysis");
    EF_TRY_STATUS(remove_if_present(ga.get(), kOutliersGroup));
    h5::Handle g = h5::group(H5Gcreate2(ga.get(), kOutliersGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!g.valid()) return h5::error("cannot create group /analysis/outliers");
    Status s = h5::write_int_attr(g.get(), "block", a.block);
    if (s) s = write_f64_attr(g.get(), "k", a.k);
    if (s) s = write_f64_attr(g.get(), "fraction", a.fraction);
    if (s) s = h5::write_str_attr(g.get(), "selection", std::string(outlier_selection_name(a.selection)));
    if (s) s = h5::write_int_attr(g.get(), "total_weights", a.total_weights);
    if (s) s = h5::write_int_attr(g.get(), "budget", a.budget);
    if (s) s = write_f64_attr(g.get(), "threshold", a.threshold);
    if (!s) return make_error("/analysis/outliers: " + s.message());

    h5::Handle gt = create_ordered_group(g.get(), "tensors");
    if (!gt.valid()) return h5::error("cannot create group /analysis/outliers/tensors");
    for (const auto& t : a.tensors) {
        const std::string obj = "/analysis/outliers/tensors/" + t.name;
        if (!valid_link_name(t.name)) return make_error(obj + ": not a valid HDF5 name");
        const size_t cells = size_t(t.rows) * size_t(t.blocks_per_row);
        if (t.block_max_over_rms.size() != cells || t.block_kurtosis.size() != cells ||
            t.block_beyond_k_sigma.size() != cells || t.block_budget.size() != cells)
            return make_error(obj + ": per-block arrays do not match (rows, blocks_per_row)");
        h5::Handle gx = h5::group(H5Gcreate2(gt.get(), t.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        if (!gx.valid()) return h5::error("cannot create group " + obj);
        const std::pair<const char*, int64_t> ints[] = {{"layer", t.layer},   {"rows", t.rows},
                                                        {"cols", t.cols},     {"blocks_per_row", t.blocks_per_row},
                                                        {"finite", t.finite}, {"beyond_k_sigma", t.beyond_k_sigma},
                                                        {"budget", t.budget}};
        for (const auto& [k, v] : ints)
            if (s) s = h5::write_int_attr(gx.get(), k, v);
        const std::pair<const char*, double> dbls[] = {{"mean", t.mean},
                                                       {"std", t.std},
                                                       {"max_over_rms", t.max_over_rms},
                                                       {"kurtosis", t.kurtosis},
                                                       {"budget_share", t.budget_share}};
        for (const auto& [k, v] : dbls)
            if (s) s = write_f64_attr(gx.get(), k, v);
        const std::vector<hsize_t> dims{hsize_t(t.rows), hsize_t(t.blocks_per_row)};
        if (s) s = write_array(gx.get(), "max_over_rms", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, 4, t.block_max_over_rms.data(), level);
        if (s) s = write_array(gx.get(), "kurtosis", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, 4, t.block_kurtosis.data(), level);
        if (s) s = write_array(gx.get(), "beyond_k_sigma", H5T_STD_I32LE, H5T_NATIVE_INT32, dims, 4, t.block_beyond_k_sigma.data(), level);
        if (s) s = write_array(gx.get(), "budget", H5T_STD_I32LE, H5T_NATIVE_INT32, dims, 4, t.block_budget.data(), level);
        if (s && !t.activation_energy.empty()) {
            if (int64_t(t.activation_energy.size()) != t.cols) return make_error(obj + ": activation energy is not (cols)");
            s = write_array(gx.get(), "activation_energy", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {hsize_t(t.cols)}, 4,
                            t.activation_energy.data(), level);
        }
        if (!s) return make_error(obj + ": " + s.message());
    }

    h5::Handle gl = h5::group(H5Gcreate2(g.get(), "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!gl.valid()) return h5::error("cannot create group /analysis/outliers/layers");
    const size_t n = a.layers.size();
    std::vector<int64_t> layer(n), weights(n), beyond(n), budget(n);
    std::vector<double> bshare(n), wshare(n), mor(n);
    for (size_t i = 0; i < n; ++i) {
        const auto& l = a.layers[i];
        layer[i] = l.layer, weights[i] = l.weights, beyond[i] = l.beyond_k_sigma, budget[i] = l.budget;
        bshare[i] = l.budget_share, wshare[i] = l.weight_share, mor[i] = l.max_over_rms;
    }
    const std::vector<hsize_t> dims{hsize_t(n)};
    const std::pair<const char*, const std::vector<int64_t>*> icols[] = {
        {"layer", &layer}, {"weights", &weights}, {"beyond_k_sigma", &beyond}, {"budget", &budget}};
    for (const auto& [k, v] : icols)
        if (s) s = write_array(gl.get(), k, H5T_STD_I64LE, H5T_NATIVE_INT64, dims, 8, v->data(), level);
    const std::pair<const char*, const std::vector<double>*> dcols[] = {
        {"budget_share", &bshare}, {"weight_share", &wshare}, {"max_over_rms", &mor}};
    for (const auto& [k, v] : dcols)
        if (s) s = write_array(gl.get(), k, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, dims, 8, v->data(), level);
    if (!s) return make_error("/analysis/outliers/layers: " + s.message());
    return {};
}

Status check_variant(const QuantizedVariant& v) {
    if (!valid_link_name(v.name)) return make_error("variant name '" + v.name + "' cannot be an HDF5 group name");
    std::set<std::string_view> names;
    for (const auto& t : v.tensors) {
        if (!valid_link_name(t.name)) return make_error("variant " + v.name + ": tensor name '" + t.name + "' is invalid");
        if (!names.insert(t.name).second) return make_error("variant " + v.name + ": duplicate tensor " + t.name);
        if (t.shape.size() > size_t(hdf5::kMaxRank))
            return make_error("variant " + v.name + ": tensor " + t.name + " has too many dimensions");
        if (auto s = validate_tensor_layout(t.name, t.dtype, t.shape, t.data.size()); !s)
            return make_error("variant " + v.name + ": " + s.message());
    }
    return {};
}

Status write_variants(hid_t f, const std::vector<QuantizedVariant>& vs, int level, Progress& progress) {
    if (vs.empty()) return {};
    h5::Handle gq = open_or_create_group(f, kQuantizedGroup);
    if (!gq.valid()) return h5::error("cannot create group /quantized");
    double total = 1.0, done = 0.0;
    for (const auto& v : vs)
        for (const auto& t : v.tensors) total += double(t.data.size()) + 1.0;
    for (const auto& v : vs) {
        const std::string obj = "/quantized/" + v.name;
        EF_TRY_STATUS(remove_if_present(gq.get(), v.name));
        h5::Handle g = create_ordered_group(gq.get(), v.name.c_str());
        if (!g.valid()) return h5::error("cannot create group " + obj);
        if (auto s = h5::write_str_attr(g.get(), "description", v.description); !s) return make_error(obj + ": " + s.message());
        for (const auto& t : v.tensors) {
            if (progress.cancelled()) return make_error("cancelled");
            const double span = (double(t.data.size()) + 1.0) / total;
            if (auto s = hdf5::write_tensor_dataset(g.get(), t, level, progress, done, span); !s)
                return s.message() == "cancelled" ? s : make_error(obj + "/" + t.name + ": " + s.message());
            done += span;
            progress.report(done, "HDF5 variants");
        }
    }
    return {};
}

Status write_extras(hid_t f, const CheckpointExtras& x, int level, Progress& progress) {
    if (x.outliers) EF_TRY_STATUS(write_outliers(f, *x.outliers, level));
    return write_variants(f, x.variants, level, progress);
}

Status check_extras(const CheckpointExtras& x) {
    std::set<std::string_view> names;
    for (const auto& v : x.variants) {
        EF_TRY_STATUS(check_variant(v));
        if (!names.insert(v.name).second) return make_error("two variants are named " + v.name);
    }
    return {};
}

Status fsync_path(const std::string& path, const std::string& tmp) {
    const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        const std::string msg = path + ": cannot sync " + tmp + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return make_error(msg);
    }
    ::close(fd);
    return {};
}

// ---- reading ----

struct OpenFile {
    h5::Handle f;
    uint64_t size = 0;
};

Result<OpenFile> open_readonly(const std::string& path) {
    h5::silence_errors();
    if (auto s = register_zstd_filter(); !s) return make_error(path + ": " + s.message());
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return make_error(path + ": no such file");
    if (!S_ISREG(st.st_mode)) return make_error(path + ": not a regular file");
    if (H5Fis_hdf5(path.c_str()) <= 0) {
        h5::take_error_stack();
        return make_error(path + ": not an HDF5 file (no HDF5 signature)");
    }
    h5::Handle fapl = h5::plist(H5Pcreate(H5P_FILE_ACCESS));
    if (!fapl.valid() || H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0) return h5::fail(path, "cannot set up file access");
    OpenFile o{h5::file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get())), uint64_t(st.st_size)};
    if (!o.f.valid()) return h5::fail(path, "cannot open HDF5 file (damaged or truncated?)");
    return o;
}

// Reads a whole numeric dataset of exactly `want` dims into out (resized), sizes checked first.
template <class T>
Status read_array(hid_t g, const char* name, hid_t mtype, H5T_class_t cls, const std::vector<hsize_t>& want,
                  uint64_t file_size, std::vector<T>& out) {
    h5::Handle d = h5::dataset(H5Dopen2(g, name, H5P_DEFAULT));
    if (!d.valid()) return h5::error(std::string("cannot open dataset '") + name + "'");
    h5::Handle ft = h5::type(H5Dget_type(d.get()));
    if (!ft.valid() || H5Tget_class(ft.get()) != cls) return make_error(std::string("dataset '") + name + "' has the wrong element type");
    auto dims = h5::dataset_dims(d.get(), 2);
    if (!dims) return make_error(std::string("dataset '") + name + "': " + dims.message());
    if (*dims != want) return make_error(std::string("dataset '") + name + "' does not have the expected extent");
    uint64_t n = 1;
    for (hsize_t x : want)
        if (__builtin_mul_overflow(n, uint64_t(x), &n)) return make_error(std::string("dataset '") + name + "' is absurdly large");
    const uint64_t stored = H5Dget_storage_size(d.get());
    if (stored > file_size || n * sizeof(T) > stored * kMaxZstdRatio + kRatioSlack)
        return make_error(std::string("dataset '") + name + "' claims more data than the file holds (corrupt?)");
    try {
        out.assign(size_t(n), T{});
    } catch (const std::exception&) {
        return make_error(std::string("cannot allocate dataset '") + name + "'");
    }
    if (n > 0 && H5Dread(d.get(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
        const std::string why = zstd_filter_last_error();
        return h5::error(std::string("cannot read dataset '") + name + "'" + (why.empty() ? "" : " (" + why + ")"));
    }
    return {};
}

Result<TensorOutliers> read_tensor_outliers(hid_t gt, const std::string& name, int64_t block, bool saliency,
                                            uint64_t file_size) {
    h5::Handle g = h5::group(H5Gopen2(gt, name.c_str(), H5P_DEFAULT));
    if (!g.valid()) return h5::error("cannot open group");
    TensorOutliers t;
    t.name = name;
    t.block = block;
    int64_t layer = -1;
    const std::pair<const char*, int64_t*> ints[] = {{"layer", &layer},   {"rows", &t.rows},
                                                     {"cols", &t.cols},   {"blocks_per_row", &t.blocks_per_row},
                                                     {"finite", &t.finite}, {"beyond_k_sigma", &t.beyond_k_sigma},
                                                     {"budget", &t.budget}};
    for (const auto& [k, dst] : ints) {
        auto v = h5::read_int_attr(g.get(), k);
        if (!v) return v.error();
        *dst = *v;
    }
    if (layer < -1 || layer > INT32_MAX) return make_error("attribute 'layer' is out of range");
    t.layer = int(layer);
    const std::pair<const char*, double*> dbls[] = {{"mean", &t.mean}, {"std", &t.std}, {"max_over_rms", &t.max_over_rms},
                                                    {"kurtosis", &t.kurtosis}, {"budget_share", &t.budget_share}};
    for (const auto& [k, dst] : dbls) {
        auto v = read_f64_attr(g.get(), k);
        if (!v) return v.error();
        *dst = *v;
    }
    if (t.rows < 0 || t.cols < 0 || t.blocks_per_row != (t.cols + block - 1) / block)
        return make_error("rows, cols and blocks_per_row do not agree with block size " + std::to_string(block));
    const std::vector<hsize_t> dims{hsize_t(t.rows), hsize_t(t.blocks_per_row)};
    EF_TRY_STATUS(read_array(g.get(), "max_over_rms", H5T_NATIVE_FLOAT, H5T_FLOAT, dims, file_size, t.block_max_over_rms));
    EF_TRY_STATUS(read_array(g.get(), "kurtosis", H5T_NATIVE_FLOAT, H5T_FLOAT, dims, file_size, t.block_kurtosis));
    EF_TRY_STATUS(read_array(g.get(), "beyond_k_sigma", H5T_NATIVE_INT32, H5T_INTEGER, dims, file_size, t.block_beyond_k_sigma));
    EF_TRY_STATUS(read_array(g.get(), "budget", H5T_NATIVE_INT32, H5T_INTEGER, dims, file_size, t.block_budget));
    if (H5Lexists(g.get(), "activation_energy", H5P_DEFAULT) > 0)
        EF_TRY_STATUS(read_array(g.get(), "activation_energy", H5T_NATIVE_FLOAT, H5T_FLOAT, {hsize_t(t.cols)}, file_size,
                                 t.activation_energy));
    else if (saliency)
        return make_error("missing dataset 'activation_energy' (the selection is saliency)");
    return t;
}

Result<std::vector<LayerOutliers>> read_layers(hid_t g, uint64_t file_size) {
    if (H5Lexists(g, "layers", H5P_DEFAULT) <= 0) return make_error("missing group 'layers'");
    h5::Handle gl = h5::group(H5Gopen2(g, "layers", H5P_DEFAULT));
    if (!gl.valid()) return h5::error("cannot open group 'layers'");
    h5::Handle d = h5::dataset(H5Dopen2(gl.get(), "layer", H5P_DEFAULT));
    if (!d.valid()) return h5::error("cannot open layers/layer");
    auto dims = h5::dataset_dims(d.get(), 1);
    if (!dims) return make_error("layers/layer: " + dims.message());
    std::vector<int64_t> layer, weights, beyond, budget;
    std::vector<double> bshare, wshare, mor;
    Status s = read_array(gl.get(), "layer", H5T_NATIVE_INT64, H5T_INTEGER, *dims, file_size, layer);
    if (s) s = read_array(gl.get(), "weights", H5T_NATIVE_INT64, H5T_INTEGER, *dims, file_size, weights);
    if (s) s = read_array(gl.get(), "beyond_k_sigma", H5T_NATIVE_INT64, H5T_INTEGER, *dims, file_size, beyond);
    if (s) s = read_array(gl.get(), "budget", H5T_NATIVE_INT64, H5T_INTEGER, *dims, file_size, budget);
    if (s) s = read_array(gl.get(), "budget_share", H5T_NATIVE_DOUBLE, H5T_FLOAT, *dims, file_size, bshare);
    if (s) s = read_array(gl.get(), "weight_share", H5T_NATIVE_DOUBLE, H5T_FLOAT, *dims, file_size, wshare);
    if (s) s = read_array(gl.get(), "max_over_rms", H5T_NATIVE_DOUBLE, H5T_FLOAT, *dims, file_size, mor);
    if (!s) return make_error("layers: " + s.message());
    std::vector<LayerOutliers> out(layer.size());
    for (size_t i = 0; i < out.size(); ++i) {
        if (layer[i] < -1 || layer[i] > INT32_MAX) return make_error("layers: layer index out of range");
        out[i] = {int(layer[i]), weights[i], beyond[i], budget[i], bshare[i], wshare[i], mor[i]};
    }
    return out;
}

}  // namespace

QuantizedVariant make_variant(std::string name, std::string description, const Model& master, const Model& quantized) {
    QuantizedVariant v{std::move(name), std::move(description), {}};
    for (const auto& t : quantized.tensors) {
        const Tensor* m = master.find(t.name);
        const bool same = m && m->dtype == t.dtype && m->shape == t.shape && m->data.size() == t.data.size() &&
                          (t.data.empty() || std::memcmp(m->data.data(), t.data.data(), t.data.size()) == 0);
        if (!same) v.tensors.push_back(t);
    }
    return v;
}

Result<Model> apply_variant(const Model& master, const QuantizedVariant& v) {
    EF_TRY_STATUS(check_variant(v));
    Model m = master;
    for (const auto& t : v.tensors) {
        if (Tensor* old = m.find(t.name)) {
            *old = t;
            continue;
        }
        std::string base;
        auto at = m.tensors.end();
        if (ef_companion_base(t.name, &base)) {
            // After the weight and the companions already placed behind it.
            for (auto it = m.tensors.begin(); it != m.tensors.end(); ++it) {
                std::string b;
                if (it->name == base || (ef_companion_base(it->name, &b) && b == base)) at = it + 1;
            }
        }
        m.tensors.insert(at, t);
    }
    return m;
}

Status save_checkpoint(const Model& master, const std::string& path, const CheckpointExtras& extras,
                       const SaveOptions& opts, Progress& progress) {
    if (auto s = check_extras(extras); !s) return make_error(path + ": " + s.message());
    return hdf5::save_with(master, path, opts, progress, [&](hid_t f, int level) -> Status {
        auto s = write_extras(f, extras, level, progress);
        if (s) return s;
        return make_error(path + ": " + (s.message() == "cancelled" ? std::string("save cancelled") : s.message()));
    });
}

Status add_to_checkpoint(const std::string& path, const CheckpointExtras& extras, const SaveOptions& opts,
                         Progress& progress) {
    EF_TRY_STATUS([&]() -> Status {
        auto s = check_extras(extras);
        return s ? s : make_error(path + ": " + s.message());
    }());
    {
        auto probe = open_readonly(path);  // same checks and messages as the readers
        if (!probe) return probe.error();
        if (H5Aexists(probe->f.get(), "edgefusion_format_version") <= 0)
            return make_error(path + ": not an EdgeFusion checkpoint");
    }
    const std::string tmp = temp_path_for(path);
    std::error_code ec;
    std::filesystem::copy_file(path, tmp, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
        std::remove(tmp.c_str());
        return make_error(path + ": cannot copy to " + tmp + ": " + ec.message());
    }
    Status s = [&]() -> Status {
        h5::Handle fapl = h5::plist(H5Pcreate(H5P_FILE_ACCESS));
        if (!fapl.valid() || H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
            H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0)
            return h5::fail(path, "cannot set up file access");
        h5::Handle f = h5::file(H5Fopen(tmp.c_str(), H5F_ACC_RDWR, fapl.get()));
        if (!f.valid()) return h5::fail(path, "cannot open the copy " + tmp + " for writing");
        if (auto w = write_extras(f.get(), extras, opts.compression_level, progress); !w)
            return w.message() == "cancelled" ? make_error(path + ": save cancelled") : make_error(path + ": " + w.message());
        if (f.close() < 0) return h5::fail(path, "cannot finish writing " + tmp);
        return fsync_path(path, tmp);
    }();
    if (!s) {
        std::remove(tmp.c_str());
        return s;
    }
    EF_TRY_STATUS(atomic_replace(tmp, path));
    progress.report(1.0, "done");
    return {};
}

Result<std::vector<std::string>> list_variants(const std::string& path) {
    auto o = open_readonly(path);
    if (!o) return o.error();
    if (H5Lexists(o->f.get(), kQuantizedGroup, H5P_DEFAULT) <= 0) return std::vector<std::string>{};
    h5::Handle g = h5::group(H5Gopen2(o->f.get(), kQuantizedGroup, H5P_DEFAULT));
    if (!g.valid()) return h5::fail(path, "cannot open group /quantized");
    return link_names(g.get());
}

Result<QuantizedVariant> load_variant(const std::string& path, const std::string& name, Progress& progress) {
    auto o = open_readonly(path);
    if (!o) return o.error();
    const std::string obj = std::string("/") + kQuantizedGroup + "/" + name;
    if (!valid_link_name(name) || H5Lexists(o->f.get(), kQuantizedGroup, H5P_DEFAULT) <= 0 ||
        H5Lexists(o->f.get(), obj.c_str(), H5P_DEFAULT) <= 0)
        return make_error(path + ": has no variant '" + name + "'");
    h5::Handle g = h5::group(H5Gopen2(o->f.get(), obj.c_str(), H5P_DEFAULT));
    if (!g.valid()) return h5::fail(path, "cannot open group " + obj);
    QuantizedVariant v;
    v.name = name;
    if (h5::has_attr(g.get(), "description")) {
        auto d = h5::read_str_attr(g.get(), "description");
        if (!d) return make_error(path + ": " + obj + ": " + d.message());
        v.description = *d;
    }
    const auto names = link_names(g.get());
    for (size_t i = 0; i < names.size(); ++i) {
        if (progress.cancelled()) return make_error(path + ": loading cancelled");
        const double n = double(names.size());
        auto t = hdf5::read_tensor_dataset(g.get(), names[i], path, o->size, progress, double(i) / n, 1.0 / n);
        if (!t) return make_error(t.message() + " (in " + obj + ")");
        v.tensors.push_back(std::move(*t));
    }
    progress.report(1.0, "done");
    return v;
}

bool has_outlier_analysis(const std::string& path) {
    auto o = open_readonly(path);
    return o && H5Lexists(o->f.get(), kAnalysisGroup, H5P_DEFAULT) > 0 &&
           H5Lexists(o->f.get(), "/analysis/outliers", H5P_DEFAULT) > 0;
}

Result<OutlierAnalysisPtr> load_outlier_analysis(const std::string& path) {
    auto o = open_readonly(path);
    if (!o) return o.error();
    if (H5Lexists(o->f.get(), kAnalysisGroup, H5P_DEFAULT) <= 0 ||
        H5Lexists(o->f.get(), "/analysis/outliers", H5P_DEFAULT) <= 0)
        return make_error(path + ": has no outlier analysis (/analysis/outliers)");
    h5::Handle g = h5::group(H5Gopen2(o->f.get(), "/analysis/outliers", H5P_DEFAULT));
    if (!g.valid()) return h5::fail(path, "cannot open group /analysis/outliers");
    const auto fail = [&](const std::string& obj, const std::string& msg) {
        return make_error(path + ": /analysis/outliers" + obj + ": " + msg);
    };
    auto a = std::make_shared<OutlierAnalysis>();
    {
        auto block = h5::read_int_attr(g.get(), "block");
        if (!block) return fail("", block.message());
        if (*block < 1 || *block > (int64_t(1) << 32)) return fail("", "block size out of range");
        a->block = *block;
        auto sel = h5::read_str_attr(g.get(), "selection");
        if (!sel) return fail("", sel.message());
        auto s = outlier_selection_from_name(*sel);
        if (!s) return fail("", "unknown selection '" + *sel + "'");
        a->selection = *s;
        for (auto [k, dst] : {std::pair{"k", &a->k}, std::pair{"fraction", &a->fraction}, std::pair{"threshold", &a->threshold}}) {
            auto v = read_f64_attr(g.get(), k);
            if (!v) return fail("", v.message());
            *dst = *v;
        }
        for (auto [k, dst] : {std::pair{"total_weights", &a->total_weights}, std::pair{"budget", &a->budget}}) {
            auto v = h5::read_int_attr(g.get(), k);
            if (!v) return fail("", v.message());
            *dst = *v;
        }
    }
    if (H5Lexists(g.get(), "tensors", H5P_DEFAULT) <= 0) return fail("", "missing group 'tensors'");
    h5::Handle gt = h5::group(H5Gopen2(g.get(), "tensors", H5P_DEFAULT));
    if (!gt.valid()) return h5::fail(path, "cannot open /analysis/outliers/tensors");
    for (const auto& name : link_names(gt.get())) {
        auto t = read_tensor_outliers(gt.get(), name, a->block, a->selection == OutlierSelection::Saliency, o->size);
        if (!t) return fail("/tensors/" + name, t.message());
        a->tensors.push_back(std::move(*t));
    }
    auto layers = read_layers(g.get(), o->size);
    if (!layers) return fail("", layers.message());
    a->layers = std::move(*layers);
    return OutlierAnalysisPtr(std::move(a));
}

}  // namespace ef
