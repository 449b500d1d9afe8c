#include "views/quantize_job.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "core/ef_tensors.h"
#include "core/formats/format.h"
#include "core/hdf5/hdf5_checkpoint.h"
#include "quant/export_llamacpp.h"
#include "runtime/calib/calibration.h"

namespace ef::views {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
    if (s.size() < suffix.size()) return false;
    std::string tail = s.substr(s.size() - suffix.size());
    std::transform(tail.begin(), tail.end(), tail.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return tail == suffix;
}

Result<std::string> read_text(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open " + what);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error(path + ": read error");
    return ss.str();
}

// Dense float weights (R, C) of a tensor, its EF outliers added (what the runtime multiplies by).
Result<std::vector<float>> dense(const Model& m, const Tensor& t) {
    auto v = t.to_f32();
    if (!v) return make_error(t.name + ": " + v.message());
    auto c = ef_find_companions(m, t.name);
    if (c.any()) {
        auto view = ef_outlier_view(t.name, t.rows(), t.row_length(), c);
        if (!view) return view.error();
        sparse_outliers_add_dense(v->data(), *view);
    }
    return v;
}

// One stage of the job: fractions mapped onto [lo, hi] of the outer bar; a cancel of the outer
// Progress reaches the stage at its next report (and before it starts).
class StageProgress {
public:
    StageProgress(Progress& outer, double lo, double hi)
        : p_([this, &outer, lo, hi](double f, const std::string& s) {
              outer.report(lo + (hi - lo) * std::clamp(f, 0.0, 1.0), s);
              if (outer.cancelled()) p_.cancel();
          }) {
        if (outer.cancelled()) p_.cancel();
        outer.report(lo, {});
    }
    Progress& get() { return p_; }

private:
    Progress p_;
};

std::string options_description(const ModelQuantOptions& q, const std::string& calib) {
    std::ostringstream s;
    s << "{\"method\": \"" << quant_method_name(q.method) << "\", ";
    if (q.ef_format)
        s << "\"format\": \"ef\", \"bits\": " << q.ef.bits << ", \"block\": " << q.ef.block << ", \"affine\": "
          << (q.ef.affine ? "true" : "false") << ", \"outlier_fraction\": " << q.ef.outlier_fraction << ", \"selection\": \""
          << (q.ef.selection == OutlierSelection::Saliency ? "saliency" : "magnitude") << "\"";
    else
        s << "\"format\": \"" << dtype_name(q.ggml_type) << "\"";
    if (!calib.empty()) s << ", \"calibration\": \"" << calib << "\"";
    s << "}";
    return s.str();
}

}  // namespace

const char* quant_output_name(QuantOutput o) {
    switch (o) {
        case QuantOutput::LlamacppGguf: return "llama.cpp GGUF";
        case QuantOutput::NativeGguf: return "EdgeFusion GGUF";
        case QuantOutput::Hdf5Checkpoint: return "HDF5 checkpoint";
    }
    return "?";
}

Result<ModelQuantReport> describe_quantized(const Model& master, const Model& quantized, const std::string& method,
                                            Progress& progress) {
    ModelQuantReport rep;
    double code_sum = 0;
    size_t done = 0;
    for (const Tensor& t : quantized.tensors) {
        ++done;
        if (ef_companion_base(t.name)) {
            rep.bytes += t.nbytes();
            continue;
        }
        if (progress.cancelled()) return make_error("cancelled");
        progress.report(double(done) / double(std::max<size_t>(1, quantized.tensors.size())), t.name);
        TensorQuantReport row;
        row.name = t.name;
        row.rows = t.rows();
        row.cols = t.row_length();
        row.dtype = std::string(dtype_name(t.dtype));
        row.code_bits = dtype_code_bits(t.dtype);
        row.bytes = t.nbytes();
        auto c = ef_find_companions(quantized, t.name);
        for (const Tensor* ct : {c.rowptr, c.cols, c.vals, c.scale})
            if (ct) row.bytes += ct->nbytes();
        if (c.rowptr && c.rowptr->numel() > 0) {
            auto view = ef_outlier_view(t.name, t.rows(), t.row_length(), c);
            if (!view) return view.error();
            row.nnz = view->nnz;
        }
        row.effective_bits = 8.0 * double(row.bytes) / double(std::max<int64_t>(1, t.numel()));
        const Tensor* src = master.find(t.name);
        row.source_dtype = src ? std::string(dtype_name(src->dtype)) : std::string("—");
        const bool changed = !src || src->dtype != t.dtype || c.any() != ef_find_companions(master, t.name).any() ||
                             src->nbytes() != t.nbytes();
        row.method = changed ? method : "kept";
        if (changed && src && src->shape == t.shape && type_traits(t.dtype).to_float && type_traits(src->dtype).to_float) {
            auto a = dense(master, *src);
            if (!a) return a.error();
            auto b = dense(quantized, t);
            if (!b) return b.error();
            double s = 0;
            for (size_t i = 0; i < a->size(); ++i) {
                const double d = double((*a)[i]) - double((*b)[i]);
                s += d * d;
            }
            row.rmse = a->empty() ? 0.0 : std::sqrt(s / double(a->size()));
        }
        rep.params += t.numel();
        rep.bytes += t.nbytes();
        if (changed) {
            rep.quantized_params += t.numel();
            rep.quantized_bytes += row.bytes;
            code_sum += row.code_bits * double(t.numel());
        }
        rep.tensors.push_back(std::move(row));
    }
    rep.bits_per_weight = rep.params ? 8.0 * double(rep.bytes) / double(rep.params) : 0.0;
    if (rep.quantized_params) {
        rep.quantized_code_bits = code_sum / double(rep.quantized_params);
        rep.quantized_effective_bits = 8.0 * double(rep.quantized_bytes) / double(rep.quantized_params);
    }
    return rep;
}

Result<QuantizeJobResult> run_quantize_job(const Model& master, const Model* prebuilt, const ModelQuantReport* prebuilt_report,
                                           const std::string& prebuilt_label, const QuantizeJobOptions& o, Progress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    QuantizeJobResult res;
    res.output = o.output;
    res.path = o.path;
    res.prebuilt = prebuilt != nullptr;
    res.source_label = prebuilt ? prebuilt_label : std::string("the loaded model");
    res.source_bytes = master.weight_bytes();

    // Options that fail fast, before any long work.
    if (o.path.empty()) return make_error("choose an output file");
    if (o.output == QuantOutput::Hdf5Checkpoint) {
        if (!ends_with(o.path, ".h5") && !ends_with(o.path, ".hdf5"))
            return make_error(o.path + ": an HDF5 checkpoint is written as .h5 or .hdf5");
    } else if (!ends_with(o.path, ".gguf")) {
        return make_error(o.path + ": " + quant_output_name(o.output) + " is written as .gguf");
    }
    const std::filesystem::path parent = std::filesystem::absolute(o.path).parent_path();
    if (std::error_code ec; !std::filesystem::is_directory(parent, ec))
        return make_error(o.path + ": the folder " + parent.string() + " does not exist");

    // Stage boundaries on the one bar: calibration, quantization, export, save.
    const ModelQuantOptions& q = o.quant;
    const bool saliency = q.ef_format && q.ef.outlier_fraction > 0 && q.ef.selection == OutlierSelection::Saliency;
    const bool need_calib = !prebuilt && (q.method != QuantMethod::Rtn || saliency);
    const bool exporting = o.output == QuantOutput::LlamacppGguf;
    const double c1 = need_calib ? 0.35 : 0.0;
    const double q1 = prebuilt ? 0.05 : 0.8;
    const double e1 = exporting ? q1 + 0.12 : q1;

    std::optional<CalibrationResult> calib;
    if (need_calib) {
        std::string text;
        if (!o.calib_path.empty()) {
            auto t = read_text(o.calib_path, "the calibration text");
            if (!t) return t.error();
            text = std::move(*t);
            res.calib_origin = o.calib_path;
        } else {
            auto t = read_text(o.default_text, "the default calibration text");
            if (!t) return make_error(t.message() + "; choose a calibration file");
            text = std::string(split_calibration_text(*t).calib);
            res.calib_origin = o.default_text + " (last 10% of its lines)";
        }
        auto tok = Tokenizer::create(master.vocab);
        if (!tok) return make_error("no usable tokenizer for calibration: " + tok.message());
        CalibrationOptions co;
        co.tokens = o.calib_tokens;
        co.n_ctx = o.calib_ctx;
        co.hessian = q.method == QuantMethod::Gptq;
        co.session.threads = q.threads > 0 ? q.threads : int(std::max(1u, std::thread::hardware_concurrency()));
        StageProgress sp(progress, 0.0, c1);
        auto c = calibrate(master, *tok, text, res.calib_origin, co, sp.get());
        if (!c) return c.error();
        res.calib_tokens = c->tokens;
        res.calib_warning = c->warning;
        calib = std::move(*c);
    }

    Model quantized;
    const Model* qm = prebuilt;
    if (prebuilt) {
        if (prebuilt_report) {
            res.report = *prebuilt_report;
        } else {
            StageProgress sp(progress, 0.0, q1);
            auto r = describe_quantized(master, *prebuilt, prebuilt_label.empty() ? "prebuilt" : prebuilt_label, sp.get());
            if (!r) return r.error();
            res.report = std::move(*r);
        }
    } else {
        StageProgress sp(progress, c1, q1);
        auto r = quantize_model(master, q, calib ? &calib->stats : nullptr, &res.report, sp.get());
        if (!r) return r.error();
        quantized = std::move(*r);
        qm = &quantized;
    }
    if (progress.cancelled()) return make_error("cancelled");

    Model exported;
    const Model* out = qm;
    if (exporting) {
        LlamacppExportOptions eo;
        eo.threads = q.threads;
        if (calib) {
            const ActivationStats* stats = &calib->stats;
            eo.importance = [stats](const std::string& name) -> const std::vector<float>* {
                const ActivationStats::Input* in = stats->find(name);
                return in ? &in->energy : nullptr;
            };
        }
        StageProgress sp(progress, q1, e1);
        auto e = export_for_llamacpp(*qm, eo, sp.get());
        if (!e) return e.error();
        exported = std::move(*e);
        out = &exported;
    }

    {
        StageProgress sp(progress, e1, 1.0);
        if (o.output == QuantOutput::Hdf5Checkpoint) {
            CheckpointExtras extras;
            std::string name = o.variant_name;
            if (name.empty()) name = prebuilt ? (prebuilt_label.empty() ? "prebuilt" : prebuilt_label)
                                     : q.ef_format ? std::string(dtype_name(*ef_dtype(q.ef.bits, q.ef.block, q.ef.affine)))
                                                   : std::string(dtype_name(q.ggml_type));
            std::replace(name.begin(), name.end(), '/', '_');
            const std::string desc = prebuilt ? "pre-built: " + prebuilt_label : options_description(q, res.calib_origin);
            extras.variants.push_back(make_variant(name, desc, master, *qm));
            if (Status s = save_checkpoint(master, o.path, extras, {}, sp.get()); !s) return s.error();
        } else {
            if (Status s = save_model(*out, o.path, {}, sp.get()); !s) return s.error();
        }
    }
    progress.report(1.0, "written");

    res.output_bytes = out->weight_bytes();
    res.output_architecture = out->architecture;
    for (const Tensor& t : out->tensors) ++res.output_dtypes[std::string(dtype_name(t.dtype))];
    const int64_t params = master.parameter_count();
    res.output_bits_per_weight = params ? 8.0 * double(res.output_bytes) / double(params) : 0.0;
    std::error_code ec;
    res.file_bytes = std::filesystem::file_size(o.path, ec);
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

}  // namespace ef::views
