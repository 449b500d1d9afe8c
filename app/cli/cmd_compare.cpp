// edgefusion compare: the paper's table - f32, q8_0, GPTQ 4-bit, llama.cpp's Q4_K_M and Q3_K_M
// mixtures and the EdgeFusion allocation side by side (quant/compare.h), as Markdown, CSV or JSON.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "core/storage.h"
#include "quant/compare.h"
#include "runtime/calib/calibration.h"

namespace ef::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');)
        if (!t.empty()) out.push_back(t);
    return out;
}

}  // namespace

int run_compare(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "compare";
    const std::vector<OptionSpec> specs = {
        {"--bits", "", true, "EdgeFusion allocation: average effective bits per quantized weight (default 3.1; below the "
                             "format's minimum the minimum is used and noted)"},
        {"--text", "", true, "evaluation text; its last 10% of lines calibrate (default ../shared/text/wikitext-2-raw-test.txt)"},
        {"--ctx", "", true, "window in tokens for perplexity / KL / calibration (default 128)"},
        {"--chunks", "", true, "held-out windows for perplexity and KL (default 8; 0: all)"},
        {"--calib-windows", "", true, "calibration windows (default 4)"},
        {"--tasks", "", true, "zero-shot tasks, comma-separated (default arc_easy,piqa; 'none' for no tasks)"},
        {"--limit", "", true, "items per task (default 20)"},
        {"--eval-dir", "", true, "folder of the task files (default ../shared/eval)"},
        {"--variants", "", true, "comma-separated subset of f32,q8_0,gptq4,q4_k_m,q3_k_m,ef (default all)"},
        {"--bench-tokens", "", true, "decode tokens for tokens/s (default 32)"},
        {"--format", "", true, "md | csv | json (default md)"},
        {"--output", "-o", true, "write the table to FILE instead of stdout"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin for a llama2.c checkpoint"},
        {"--threads", "-t", true, "threads (default 1)"},
    };
    const std::string help = options_help(specs);
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + help);
    if (args->positional.size() != 1) return fail(cmd, "give exactly one MODEL\n" + help);

    CompareOptions o;
    const std::string format = args->get("--format").value_or("md");
    if (format != "md" && format != "csv" && format != "json") return fail(cmd, "unknown --format '" + format + "' (md, csv, json)");
    if (auto b = args->get("--bits")) {
        char* end = nullptr;
        o.bits = std::strtod(b->c_str(), &end);
        if (b->empty() || end != b->c_str() + b->size() || !(o.bits > 0 && o.bits <= 32))
            return fail(cmd, "--bits: '" + *b + "' is not a number in (0, 32]");
    }
    auto ctx = args->get_int("--ctx", 128, 8, int64_t(1) << 20);
    auto chunks = args->get_int("--chunks", 8, 0, int64_t(1) << 30);
    auto cw = args->get_int("--calib-windows", 4, 1, 100000);
    auto limit = args->get_int("--limit", 20, 0, int64_t(1) << 30);
    auto bench = args->get_int("--bench-tokens", 32, 1, 100000);
    auto threads = args->get_int("--threads", 1, 1, 1024);
    for (const auto* r : {&ctx, &chunks, &cw, &limit, &bench, &threads})
        if (!*r) return fail(cmd, r->message());
    o.n_ctx = int(*ctx);
    o.chunks = int(*chunks);
    o.calib_windows = int(*cw);
    o.limit = int(*limit);
    o.bench_tokens = int(*bench);
    o.threads = int(*threads);
    if (auto t = args->get("--tasks")) o.tasks = *t == "none" ? std::vector<std::string>{} : split_list(*t);
    if (auto d = args->get("--eval-dir")) o.eval_dir = *d;
    if (auto v = args->get("--variants")) {
        o.variants = split_list(*v);
        const auto& all = compare_variant_names();
        for (const auto& name : o.variants)
            if (std::find(all.begin(), all.end(), name) == all.end())
                return fail(cmd, "unknown variant '" + name + "' (f32, q8_0, gptq4, q4_k_m, q3_k_m, ef)");
    }

    // The text before the model, so a missing file fails fast.
    o.text_origin = args->get("--text").value_or(kDefaultCalibrationText);
    {
        std::ifstream in(o.text_origin, std::ios::binary);
        if (!in) return fail(cmd, o.text_origin + ": cannot open the text" + (args->has("--text") ? "" : " (the default); pass --text FILE"));
        std::ostringstream ss;
        ss << in.rdbuf();
        o.text = ss.str();
    }

    LoadOptions lo;
    if (auto t = args->get("--tokenizer")) lo.tokenizer_path = *t;
    auto model = load_model(args->positional[0], lo, progress);
    if (!model) return fail(cmd, model.message());
    auto r = compare_variants(*model, o, progress);
    if (!r) return fail(cmd, r.message());
    r->model = args->positional[0];
    if (!r->note.empty()) std::fprintf(stderr, "edgefusion compare: %s\n", r->note.c_str());

    const std::string out = format == "md" ? compare_markdown(*r) : format == "csv" ? compare_csv(*r) : compare_json(*r) + "\n";
    if (auto path = args->get("--output")) {
        auto w = AtomicFileWriter::create(*path);
        if (!w) return fail(cmd, w.message());
        if (Status s = (*w)->write(out.data(), out.size()); !s) return fail(cmd, s.message());
        if (Status s = (*w)->commit(); !s) return fail(cmd, s.message());
    } else {
        std::fputs(out.c_str(), stdout);
    }
    return 0;
}

}  // namespace ef::cli
