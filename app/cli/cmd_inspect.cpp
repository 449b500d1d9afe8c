#include <cmath>
#include <cstdio>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/inspect_outliers.h"
#include "core/formats/format.h"
#include "core/inspect.h"
#include "core/stats.h"
#include "core/value_check.h"

namespace ef::cli {
namespace {

// The CLI twin of the workbench's tensor table: one row of statistics per tensor.
Result<nlohmann::json> tensor_stats_json(const Model& m, Progress& progress) {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        const auto& t = m.tensors[i];
        auto s = tensor_stats(t);
        if (!s) return make_error(m.source_path + ": " + t.name + ": " + s.message());
        const auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
        rows.push_back({{"name", t.name}, {"min", num(s->min)}, {"max", num(s->max)}, {"mean", num(s->mean)},
                        {"std", num(s->std)}, {"kurtosis", num(s->kurtosis)},
                        {"max_abs_over_rms", num(s->max_abs_over_rms)}, {"nan", s->nan_count}, {"inf", s->inf_count}});
        progress.report(double(i + 1) / double(m.tensors.size()), "statistics of " + t.name);
        if (progress.cancelled()) return make_error("cancelled");
    }
    return rows;
}

std::string stats_table_text(const nlohmann::json& rows) {
    std::string out = "tensor statistics (kurtosis: excess; max|w|/rms: outlier ratio)\n";
    char buf[256];
    std::snprintf(buf, sizeof buf, "  %-32s %10s %10s %11s %10s %9s %9s %5s\n", "tensor", "min", "max", "mean", "std",
                  "kurtosis", "max/rms", "NaN");
    out += buf;
    const auto f = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::nan(""); };
    for (const auto& r : rows) {
        std::snprintf(buf, sizeof buf, "  %-32s %10.4g %10.4g %11.4g %10.4g %9.3g %9.3g %5lld\n",
                      r["name"].get<std::string>().c_str(), f(r["min"]), f(r["max"]), f(r["mean"]), f(r["std"]),
                      f(r["kurtosis"]), f(r["max_abs_over_rms"]), static_cast<long long>(r["nan"].get<int64_t>()));
        out += buf;
    }
    return out;
}

}  // namespace

int run_inspect(const std::vector<std::string>& argv, Progress& progress) {
    std::vector<OptionSpec> specs = {
        {"--json", "", false, "print JSON instead of text"},
        {"--tensors", "", false, "list every tensor under its layer (text mode)"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin for a llama2.c checkpoint"},
        {"--check", "", false, "read every tensor and fail if any weight is NaN or infinite"},
        {"--stats", "", false, "read every tensor and print its statistics (the workbench's tensor table)"},
    };
    for (auto& s : outlier_option_specs()) specs.push_back(std::move(s));
    auto args = parse_args(argv, specs);
    if (!args) return fail("inspect", args.message() + "\n" + options_help(specs));
    if (args->positional.size() != 1) return fail("inspect", "expected one PATH\n" + options_help(specs));
    LoadOptions opts;
    opts.tokenizer_path = args->get("--tokenizer").value_or("");
    auto model = load_model(args->positional[0], opts, progress);
    if (!model) return fail("inspect", model.message());
    if (args->has("--check"))
        if (auto st = check_finite(*model, args->positional[0], progress); !st) return fail("inspect", st.message());
    const auto summary = summarize(*model);
    nlohmann::json stats;
    if (args->has("--stats")) {
        auto rows = tensor_stats_json(*model, progress);
        if (!rows) return fail("inspect", rows.message());
        stats = std::move(*rows);
    }
    nlohmann::json outliers;
    if (args->has("--outliers")) {
        auto r = outlier_report(*model, *args, progress);
        if (!r) return fail("inspect", r.message());
        outliers = std::move(*r);
    }
    if (args->has("--json")) {
        auto j = summary_to_json(summary);
        if (!stats.is_null()) j["tensor_stats"] = stats;
        if (!outliers.is_null()) j["outliers"] = outliers;
        const auto text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fputc('\n', stdout);
    } else {
        auto text = summary_to_text(summary, args->has("--tensors"));
        if (!stats.is_null()) text += stats_table_text(stats);
        if (!outliers.is_null()) text += outlier_report_text(outliers);
        std::fwrite(text.data(), 1, text.size(), stdout);
    }
    return 0;
}

}  // namespace ef::cli
