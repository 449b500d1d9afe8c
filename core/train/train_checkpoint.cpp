#include "core/train/train_checkpoint.h"

#include <filesystem>
#include <system_error>

#include "core/formats/format.h"
#include "core/hdf5/h5_util.h"
#include "core/hdf5/hdf5_format.h"
#include "core/hdf5/zstd_filter.h"
#include "core/text_file.h"

namespace ef::train {
namespace {

namespace fs = std::filesystem;

Status write_state(const std::string& path, const TrainState& st, Progress& progress) {
    h5::silence_errors();
    h5::Handle fapl = h5::plist(H5Pcreate(H5P_FILE_ACCESS));
    if (!fapl.valid() || H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0)
        return h5::fail(path, "cannot set up file access");
    h5::Handle f = h5::file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
    if (!f.valid()) return h5::fail(path, "cannot create the file");
    auto attrs = [&]() -> Status {
        EF_TRY_STATUS(h5::write_int_attr(f.get(), "format_version", 1));
        EF_TRY_STATUS(h5::write_int_attr(f.get(), "step", st.step));
        EF_TRY_STATUS(h5::write_int_attr(f.get(), "adam_t", st.adam_t));
        EF_TRY_STATUS(h5::write_int_attr(f.get(), "batches_drawn", st.batches_drawn));
        EF_TRY_STATUS(h5::write_str_attr(f.get(), "rng_state", st.rng_state));
        EF_TRY_STATUS(h5::write_str_attr(f.get(), "config", st.config_text.empty() ? std::string(" ") : st.config_text));
        return Status::success();
    }();
    if (!attrs) return make_error(path + ": " + attrs.message());
    for (const char* gname : {"m", "v"}) {
        const auto& moments = gname[0] == 'm' ? st.m : st.v;
        h5::Handle g = h5::group(H5Gcreate2(f.get(), gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        if (!g.valid()) return h5::fail(path, std::string("cannot create group /") + gname);
        for (size_t i = 0; i < st.names.size(); ++i) {
            const std::vector<hsize_t> dims{hsize_t(std::max<size_t>(moments[i].size(), 1))};
            std::vector<float> data = moments[i];
            if (data.empty()) data.push_back(0.0f);
            auto d = h5::create_dataset(g.get(), st.names[i], H5T_IEEE_F32LE, dims, 4, 1);
            if (!d) return make_error(path + ": /" + gname + "/" + st.names[i] + ": " + d.message());
            if (Status s = h5::write_slabs(d->get(), H5T_NATIVE_FLOAT, dims, 4, data.data(), progress, 0, 0, "optimizer state"); !s)
                return make_error(path + ": /" + gname + "/" + st.names[i] + ": " + s.message());
            if (Status s = h5::write_int_attr(d->get(), "order", int64_t(i)); !s) return make_error(path + ": " + s.message());
            if (Status s = h5::write_int_attr(d->get(), "length", int64_t(moments[i].size())); !s)
                return make_error(path + ": " + s.message());
        }
    }
    if (f.close() < 0) return h5::fail(path, "cannot finish writing");
    return Status::success();
}

Status read_state(const std::string& path, const Model& model, TrainState& st) {
    h5::silence_errors();
    if (Status s = register_zstd_filter(); !s) return make_error(path + ": " + s.message());
    if (!fs::is_regular_file(path)) return make_error(path + ": no such file");
    if (H5Fis_hdf5(path.c_str()) <= 0) return make_error(path + ": not an HDF5 file");
    h5::Handle f = h5::file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!f.valid()) return h5::fail(path, "cannot open (damaged or truncated?)");
    auto int_attr = [&](const char* name, int64_t& out) -> Status {
        auto r = h5::read_int_attr(f.get(), name);
        if (!r) return make_error(path + ": " + r.message());
        out = *r;
        return Status::success();
    };
    int64_t version = 0;
    EF_TRY_STATUS(int_attr("format_version", version));
    if (version != 1) return make_error(path + ": training state format version " + std::to_string(version) + " (expected 1)");
    EF_TRY_STATUS(int_attr("step", st.step));
    EF_TRY_STATUS(int_attr("adam_t", st.adam_t));
    EF_TRY_STATUS(int_attr("batches_drawn", st.batches_drawn));
    auto rng = h5::read_str_attr(f.get(), "rng_state");
    auto cfg = h5::read_str_attr(f.get(), "config");
    if (!rng || !cfg) return make_error(path + ": " + (rng ? cfg.message() : rng.message()));
    st.rng_state = *rng;
    st.config_text = *cfg;
    if (st.step < 0 || st.adam_t < 0 || st.batches_drawn < 0) return make_error(path + ": negative step or cursor");
    for (const char* gname : {"m", "v"}) {
        h5::Handle g = h5::group(H5Gopen2(f.get(), gname, H5P_DEFAULT));
        if (!g.valid()) return h5::fail(path, std::string("no group /") + gname);
        H5G_info_t info{};
        if (H5Gget_info(g.get(), &info) < 0) return h5::fail(path, std::string("cannot list /") + gname);
        if (info.nlinks > hsize_t(model.tensors.size()))
            return make_error(path + ": /" + gname + " holds more moments than the model has tensors");
        std::vector<std::string> names(size_t(info.nlinks));
        std::vector<std::vector<float>> moments(size_t(info.nlinks));
        for (hsize_t i = 0; i < info.nlinks; ++i) {
            char name[1024];
            const ssize_t n = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
            if (n <= 0 || size_t(n) >= sizeof name) return h5::fail(path, std::string("bad entry in /") + gname);
            h5::Handle d = h5::dataset(H5Dopen2(g.get(), name, H5P_DEFAULT));
            if (!d.valid()) return h5::fail(path, std::string("cannot open /") + gname + "/" + name);
            auto order = h5::read_int_attr(d.get(), "order");
            auto length = h5::read_int_attr(d.get(), "length");
            if (!order || !length || *order < 0 || *order >= int64_t(info.nlinks))
                return make_error(path + ": /" + gname + "/" + name + ": missing or bad order/length attribute");
            const Tensor* t = model.find(name);
            if (!t || *length != t->numel())
                return make_error(path + ": /" + gname + "/" + name + " does not match a model tensor of " + std::to_string(*length) +
                                  " values");
            auto dims = h5::dataset_dims(d.get(), 1);
            if (!dims || (*dims)[0] != hsize_t(std::max<int64_t>(*length, 1)))
                return make_error(path + ": /" + gname + "/" + name + ": dataset size differs from its length attribute");
            std::vector<float> data(static_cast<size_t>((*dims)[0]));
            if (Status s = h5::read_slabs(d.get(), H5T_NATIVE_FLOAT, *dims, 4, data.data(), Progress::none(), 0, 0, "state"); !s)
                return make_error(path + ": /" + gname + "/" + name + ": " + s.message());
            data.resize(size_t(*length));
            names[size_t(*order)] = name;
            moments[size_t(*order)] = std::move(data);
        }
        for (const std::string& n : names)
            if (n.empty()) return make_error(path + ": /" + gname + ": duplicate order attributes");
        if (gname[0] == 'm') {
            st.names = std::move(names);
            st.m = std::move(moments);
        } else {
            if (names != st.names) return make_error(path + ": /m and /v name different parameters");
            st.v = std::move(moments);
        }
    }
    return Status::success();
}

}  // namespace

Status save_train_checkpoint(const std::string& dir, const std::string& name, const Model& model, const TrainState& state,
                             Progress& progress) {
    register_hdf5_format();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return make_error(dir + ": cannot create the output folder: " + ec.message());
    const fs::path target = fs::path(dir) / name;
    const fs::path tmp = fs::path(dir) / ("." + name + ".partial");
    const fs::path old = fs::path(dir) / ("." + name + ".old");
    fs::remove_all(tmp, ec);
    fs::create_directory(tmp, ec);
    if (ec) return make_error(tmp.string() + ": cannot create: " + ec.message());
    auto fail = [&](const Status& s) {
        std::error_code e2;
        fs::remove_all(tmp, e2);
        return s;
    };
    if (Status s = save_model(model, (tmp / "model.h5").string(), SaveOptions{1}, progress); !s)
        return fail(make_error(target.string() + "/model.h5: " + s.message()));
    if (Status s = write_state((tmp / "train_state.h5").string(), state, progress); !s) return fail(s);
    if (Status s = write_text_file((tmp / "config.yaml").string(), state.config_text); !s) return fail(s);
    // Replace: the old folder is moved aside first (rename cannot replace a non-empty folder).
    fs::remove_all(old, ec);
    if (fs::exists(target)) {
        fs::rename(target, old, ec);
        if (ec) return fail(make_error(target.string() + ": cannot replace the existing checkpoint: " + ec.message()));
    }
    fs::rename(tmp, target, ec);
    if (ec) return fail(make_error(target.string() + ": cannot move the checkpoint into place: " + ec.message()));
    fs::remove_all(old, ec);
    return Status::success();
}

Result<LoadedCheckpoint> load_train_checkpoint(const std::string& checkpoint_dir, Progress& progress) {
    register_hdf5_format();
    const fs::path d(checkpoint_dir);
    if (!fs::is_directory(d)) return make_error(checkpoint_dir + ": not a checkpoint folder");
    auto model = load_model((d / "model.h5").string(), LoadOptions{}, progress);
    if (!model) return model.error();
    LoadedCheckpoint c;
    c.model = std::move(*model);
    if (Status s = read_state((d / "train_state.h5").string(), c.model, c.state); !s) return s.error();
    return c;
}

std::string latest_checkpoint(const std::string& output_dir) {
    std::error_code ec;
    const fs::path final_dir = fs::path(output_dir) / "checkpoint_final";
    if (fs::is_directory(final_dir, ec)) return final_dir.string();
    std::string best;
    long long best_step = -1;
    for (fs::directory_iterator it(output_dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        if (n.rfind("checkpoint_", 0) != 0 || !it->is_directory()) continue;
        const std::string num = n.substr(11);
        if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos || num.size() > 15) continue;
        if (const long long s = std::stoll(num); s > best_step) {
            best_step = s;
            best = it->path().string();
        }
    }
    return best;
}

}  // namespace ef::train
