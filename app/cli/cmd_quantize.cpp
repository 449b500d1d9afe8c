// edgefusion quantize: a model's 2-D weights to one format (EF blocks or a ggml type) by
// round-to-nearest, importance weights (imatrix) or GPTQ, calibrated on a text by running the
// model (runtime/calib/calibration.h); prints the per-tensor table and the totals, writes the file
// atomically. A thin shell over quantize_model (quant/quantize_model.h), which the workbench calls too.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "core/formats/gguf.h"
#include "core/formats/gguf_stream.h"
#include "core/train/checkpoint_path.h"
#include "core/train/train_config.h"
#include "quant/quantize_model.h"
#include "runtime/calib/calibration.h"

namespace ef::cli {
namespace {

Result<std::string> read_file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open the calibration text");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error(path + ": read error");
    return ss.str();
}

Result<double> get_double(const Args& a, const std::string& name, double fallback) {
    const auto v = a.get(name);
    if (!v) return fallback;
    char* end = nullptr;
    const double d = std::strtod(v->c_str(), &end);
    if (v->empty() || end != v->c_str() + v->size() || !std::isfinite(d))
        return make_error(name + ": expected a number, got '" + *v + "'");
    return d;
}

// --keep may be given several times (and as comma-separated lists); the parser keeps one value per
// option, so the occurrences are taken out first.
std::vector<std::string> take_keeps(std::vector<std::string>& argv, std::string* error) {
    std::vector<std::string> keeps, rest;
    auto add_list = [&](const std::string& v) {
        std::stringstream ss(v);
        for (std::string g; std::getline(ss, g, ',');)
            if (!g.empty()) keeps.push_back(g);
    };
    for (size_t i = 0; i < argv.size(); ++i) {
        if (argv[i] == "--keep") {
            if (i + 1 >= argv.size()) *error = "--keep needs a value";
            else add_list(argv[++i]);
        } else if (argv[i].rfind("--keep=", 0) == 0) {
            add_list(argv[i].substr(7));
        } else {
            rest.push_back(argv[i]);
        }
    }
    argv = std::move(rest);
    return keeps;
}

void print_report(const ModelQuantReport& report) {
    std::printf("%s", quant_report_markdown(report).c_str());
    if (report.fallbacks > 0)
        std::fprintf(stderr, "edgefusion quantize: %d tensor(s) use a fallback type (the block does not divide their rows)\n",
                     report.fallbacks);
}

// The seed's `quantize --checkpoint DIR/checkpoint_final` names no format: a training checkpoint's
// config.yaml says which (its quantization section), else q8_0. Adds --format (and EF's --bits,
// --block) to argv when they are missing.
void default_format_from_checkpoint(const std::string& checkpoint, std::vector<std::string>& argv) {
    for (const auto& a : argv)
        if (a == "--format" || a.rfind("--format=", 0) == 0) return;
    std::string format = "q8_0", origin = "the default";
    int bits = 0, block = 0;
    const std::string yaml = (std::filesystem::path(checkpoint) / "config.yaml").string();
    if (std::filesystem::is_directory(checkpoint) && std::filesystem::exists(yaml))
        if (auto c = train::load_train_config(yaml); c && c->quant.format != "none") {
            format = c->quant.format;
            origin = yaml;
            bits = c->quant.bits;
            block = c->quant.block;
        }
    argv.insert(argv.end(), {"--format", format});
    if (format == "ef") {
        bool has_bits = false, has_block = false;
        for (const auto& a : argv) {
            has_bits = has_bits || a == "--bits";
            has_block = has_block || a == "--block";
        }
        if (!has_bits) argv.insert(argv.end(), {"--bits", std::to_string(bits)});
        // Only a block other than the default: an explicit --block turns off the fallback type.
        if (!has_block && block != 128) argv.insert(argv.end(), {"--block", std::to_string(block)});
    }
    std::fprintf(stderr, "edgefusion quantize: --format %s (from %s)\n", format.c_str(), origin.c_str());
}

}  // namespace

int run_quantize(const std::vector<std::string>& argv_in, Progress& progress) {
    const char* cmd = "quantize";
    const std::vector<OptionSpec> specs = {
        {"--output", "-o", true, "output file (.gguf)"},
        {"--checkpoint", "", true, "the model (instead of MODEL): a file, or a folder such as a training run's DIR/checkpoint_final"},
        {"--output-dir", "", true, "instead of -o: write DIR/model.gguf (DIR/model.h5 for --format ef), like training's checkpoint_quantized/"},
        {"--method", "", true, "rtn | imatrix | gptq (default rtn)"},
        {"--format", "", true, "ef | q8_0 | q4_0 | q4_K | q5_K | q6_K | q3_K | q2_K"},
        {"--bits", "", true, "ef: code bits k in {2, 3, 4, 5, 6, 8} (default 3)"},
        {"--block", "", true, "ef: block B in {32, 64, 128, 256} (default 128; given, it must divide every row)"},
        {"--affine", "", false, "ef: blocks with an offset"},
        {"--outliers", "", true, "ef: percent of weights kept as sparse outliers, 0..5 (default 0.5)"},
        {"--select", "", true, "ef: outliers by magnitude | saliency (default magnitude)"},
        {"--calib", "", true, "calibration text (default: the last 10% of ../shared/text/wikitext-2-raw-test.txt)"},
        {"--calib-tokens", "", true, "calibration tokens (default 16384)"},
        {"--calib-ctx", "", true, "calibration window (default min(512, the model's context))"},
        {"--act-order", "", false, "gptq: columns by descending Hessian diagonal"},
        {"--keep", "", true, "keep tensors matching this glob as they are (repeatable, or comma-separated)"},
        {"--strict", "", false, "a row length the block does not divide is an error (no fallback type)"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin for a llama2.c checkpoint"},
        {"--threads", "-t", true, "threads (default: all cores)"},
    };
    const std::string help = options_help(specs);
    std::vector<std::string> argv = argv_in;
    std::string kerr;
    const std::vector<std::string> keeps = take_keeps(argv, &kerr);
    if (!kerr.empty()) return fail(cmd, kerr + "\n" + help);
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + help);
    if (auto ck = args->get("--checkpoint")) {
        if (!args->positional.empty()) return fail(cmd, "give the model either as MODEL or as --checkpoint, not both\n" + help);
        auto file = train::resolve_model_path(*ck);
        if (!file) return fail(cmd, file.message());
        default_format_from_checkpoint(*ck, argv);
        args = parse_args(argv, specs);
        if (!args) return fail(cmd, args.message() + "\n" + help);
        args->positional = {*file};
    }
    if (args->positional.size() != 1) return fail(cmd, "give exactly one MODEL (or --checkpoint PATH)\n" + help);
    if (args->has("--output") && args->has("--output-dir")) return fail(cmd, "give either -o FILE or --output-dir DIR, not both");
    if (auto dir = args->get("--output-dir")) {
        std::error_code ec;
        std::filesystem::create_directories(*dir, ec);
        if (ec) return fail(cmd, *dir + ": cannot create the output folder: " + ec.message());
        args->values["--output"] = train::model_file_in(*dir, args->get("--format").value_or("") == "ef");
    }
    const auto out_path = args->get("--output");
    if (!out_path) return fail(cmd, "missing -o OUT.gguf (or --output-dir DIR)\n" + help);
    const auto fmt = args->get("--format");
    if (!fmt) return fail(cmd, "missing --format (ef, q8_0, q4_0, q4_K, q5_K, q6_K, q3_K, q2_K)\n" + help);

    ModelQuantOptions o;
    const std::string method = args->get("--method").value_or("rtn");
    if (method == "rtn") o.method = QuantMethod::Rtn;
    else if (method == "imatrix") o.method = QuantMethod::Imatrix;
    else if (method == "gptq") o.method = QuantMethod::Gptq;
    else return fail(cmd, "unknown --method '" + method + "' (rtn, imatrix, gptq)");
    o.ef_format = *fmt == "ef";
    if (!o.ef_format) {
        static const char* const ggml_formats[] = {"q8_0", "q4_0", "q4_K", "q5_K", "q6_K", "q3_K", "q2_K"};
        bool known = false;
        for (const char* f : ggml_formats) known = known || *fmt == f;
        if (!known) return fail(cmd, "unknown --format '" + *fmt + "' (ef, q8_0, q4_0, q4_K, q5_K, q6_K, q3_K, q2_K)");
        o.ggml_type = *dtype_from_name(*fmt);
        for (const char* ef_only : {"--bits", "--block", "--affine", "--outliers", "--select"})
            if (args->has(ef_only)) return fail(cmd, std::string(ef_only) + " applies to --format ef only");
        if (o.method == QuantMethod::Gptq && o.ggml_type != DType::Q8_0 && o.ggml_type != DType::Q4_0)
            return fail(cmd, "--method gptq makes --format ef, q4_0 or q8_0 (not " + *fmt + ")");
    }
    auto bits = args->get_int("--bits", 3, 2, 8);
    auto block = args->get_int("--block", 128, 32, 256);
    auto ctok = args->get_int("--calib-tokens", 16384, 1, int64_t(1) << 30);
    auto cctx = args->get_int("--calib-ctx", 0, 1, int64_t(1) << 24);
    auto threads = args->get_int("--threads", 0, 1, 1024);
    for (const auto* r : {&bits, &block, &ctok, &cctx, &threads})
        if (!*r) return fail(cmd, r->message());
    auto pct = get_double(*args, "--outliers", 0.5);
    if (!pct) return fail(cmd, pct.message());
    if (!(*pct >= 0 && *pct <= 5)) return fail(cmd, "--outliers " + *args->get("--outliers") + ": the outlier share must be within 0..5 (percent)");
    o.ef.bits = int(*bits);
    o.ef.block = int(*block);
    o.ef.affine = args->has("--affine");
    o.ef.outlier_fraction = *pct / 100.0;
    const std::string sel = args->get("--select").value_or("magnitude");
    if (sel == "magnitude") o.ef.selection = OutlierSelection::Magnitude;
    else if (sel == "saliency") o.ef.selection = OutlierSelection::Saliency;
    else return fail(cmd, "unknown --select '" + sel + "' (magnitude, saliency)");
    if (o.ef_format && !ef_dtype(o.ef.bits, o.ef.block, o.ef.affine))
        return fail(cmd, "--bits must be one of 2, 3, 4, 5, 6, 8 and --block one of 32, 64, 128, 256");
    // An explicit --block is what the user asked for: it must divide every row. Without it (and for
    // ggml types, llama.cpp's rule) a fallback type is used and shown.
    o.allow_fallback = !args->has("--strict") && !(o.ef_format && args->has("--block"));
    o.keep = keeps;
    o.act_order = args->has("--act-order");
    o.threads = int(*threads);
    const bool saliency = o.ef_format && o.ef.outlier_fraction > 0 && o.ef.selection == OutlierSelection::Saliency;
    const bool need_calib = o.method != QuantMethod::Rtn || saliency;
    if (args->has("--act-order") && o.method != QuantMethod::Gptq) return fail(cmd, "--act-order applies to --method gptq only");

    // The calibration text before the model, so a missing file fails fast.
    std::string calib_text, calib_origin;
    if (need_calib) {
        if (auto p = args->get("--calib")) {
            auto t = read_file_text(*p);
            if (!t) return fail(cmd, t.message());
            calib_text = std::move(*t);
            calib_origin = *p;
        } else {
            auto t = read_file_text(kDefaultCalibrationText);
            if (!t) return fail(cmd, t.message() + " (the default calibration text); pass --calib FILE");
            calib_text = std::string(split_calibration_text(*t).calib);
            calib_origin = std::string(kDefaultCalibrationText) + " (last 10% of its lines)";
        }
    } else if (args->has("--calib") || args->has("--calib-tokens")) {
        return fail(cmd, "--method rtn without saliency outliers uses no calibration text");
    }

    LoadOptions lo;
    if (auto t = args->get("--tokenizer")) lo.tokenizer_path = *t;
    auto model = load_model(args->positional[0], lo, progress);
    if (!model) return fail(cmd, model.message());

    std::optional<CalibrationResult> calib;
    if (need_calib) {
        auto tok = Tokenizer::create(model->vocab);
        if (!tok) return fail(cmd, args->positional[0] + ": no usable tokenizer for calibration: " + tok.message());
        CalibrationOptions co;
        co.tokens = *ctok;
        co.n_ctx = int(*cctx);
        co.hessian = o.method == QuantMethod::Gptq;
        co.session.threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
        auto c = calibrate(*model, *tok, calib_text, calib_origin, co, progress);
        if (!c) return fail(cmd, c.message());
        std::printf("Calibration: %lld tokens in %d window(s) from %s; %zu distinct inputs\n", (long long)c->tokens, c->windows,
                    calib_origin.c_str(), c->stats.inputs.size());
        if (!c->warning.empty()) std::fprintf(stderr, "edgefusion quantize: warning: %s\n", c->warning.c_str());
        calib = std::move(*c);
    }

    // GGUF output is written as the tensors are made (one tensor in memory at a time); the other
    // formats are written from the whole quantized model.
    ModelQuantReport report;
    if (format_for_extension(*out_path) == &gguf_format_handler()) {
        auto writer = gguf::StreamWriter::create(*model, *out_path);
        if (!writer) return fail(cmd, writer.message());
        auto add = [&](Tensor&& t) { return (*writer)->add(t); };
        if (Status s = quantize_model_each(*model, o, calib ? &calib->stats : nullptr, add, &report, progress); !s)
            return fail(cmd, s.error().message);
        print_report(report);
        if (Status s = (*writer)->commit(progress); !s) return fail(cmd, s.error().message);
    } else {
        auto q = quantize_model(*model, o, calib ? &calib->stats : nullptr, &report, progress);
        if (!q) return fail(cmd, q.message());
        print_report(report);
        if (Status s = save_model(*q, *out_path, {}, progress); !s) return fail(cmd, s.error().message);
    }
    std::printf("Wrote %s\n", out_path->c_str());
    return 0;
}

}  // namespace ef::cli
