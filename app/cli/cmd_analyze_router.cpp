// edgefusion analyze-router: the router of an edgefusion model (runtime/router_analysis.h) as a
// table, JSON, and a per-layer gate plot (SVG + PNG, app/cli/router_plot.h).
#include <cstdio>
#include <filesystem>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/png_writer.h"
#include "app/cli/router_plot.h"
#include "core/formats/format.h"
#include "core/storage.h"
#include "core/text_file.h"
#include "core/train/checkpoint_path.h"
#include "runtime/router_analysis.h"

namespace ef::cli {

int run_analyze_router(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "analyze-router";
    const std::vector<OptionSpec> specs = {
        {"--checkpoint", "", true, "model file, or a directory holding one model file (e.g. DIR/checkpoint_final)"},
        {"--plot", "", true, "write OUT_PREFIX.svg and OUT_PREFIX.png: per-layer gate bars"},
        {"--json", "", false, "print JSON instead of the table"},
        {"--position", "", true, "context position the FLOPs per token are counted at (default: context_length / 2)"},
    };
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + options_help(specs));
    if (!args->positional.empty()) return fail(cmd, "unexpected argument '" + args->positional.front() + "'\n" + options_help(specs));
    auto ck = args->get("--checkpoint");
    if (!ck) return fail(cmd, "--checkpoint is required\n" + options_help(specs));
    // A folder (a training run's checkpoint_final/): its model file, as every --checkpoint resolves it.
    auto file = train::resolve_model_path(*ck);
    if (!file) return fail(cmd, file.message());
    std::error_code ec;
    if (std::filesystem::is_directory(*ck, ec)) std::fprintf(stderr, "edgefusion %s: reading %s\n", cmd, file->c_str());

    auto model = load_model(*file, {}, progress);
    if (!model) return fail(cmd, model.message());
    auto position = args->get_int("--position", -1, 0, int64_t(1) << 40);
    if (!position) return fail(cmd, position.message());
    auto a = analyze_router(*model, *position);
    if (!a) return fail(cmd, a.message());

    std::vector<std::string> written;
    if (auto prefix = args->get("--plot")) {
        if (prefix->empty()) return fail(cmd, "--plot needs an output prefix");
        const std::string svg = *prefix + ".svg", png = *prefix + ".png";
        if (auto s = write_text_file(svg, router_plot_svg(*a)); !s) return fail(cmd, s.message());
        if (auto s = write_png(router_plot_image(*a), png); !s) return fail(cmd, s.message());
        written = {svg, png};
    }
    if (args->has("--json")) {
        nlohmann::json j = router_analysis_json(*a);
        if (!written.empty()) j["plot"] = {{"svg", written[0]}, {"png", written[1]}};
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("%s", router_analysis_text(*a).c_str());
        for (const auto& w : written) std::printf("  wrote               %s\n", w.c_str());
    }
    return 0;
}

}  // namespace ef::cli
