#include "app/cli/inspect_outliers.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/outlier_analysis.h"

namespace ef::cli {
namespace {

Result<double> get_double(const Args& a, const std::string& name, double fallback) {
    const auto v = a.get(name);
    if (!v) return fallback;
    char* end = nullptr;
    const double d = std::strtod(v->c_str(), &end);
    if (v->empty() || *end != '\0' || !std::isfinite(d)) return make_error(name + ": '" + *v + "' is not a number");
    return d;
}

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
double val(const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::nan(""); }

}  // namespace

std::vector<OptionSpec> outlier_option_specs() {
    return {{"--outliers", "", false, "outlier analysis: per-tensor max|w|/rms, kurtosis, count beyond k sigma, "
                                      "and each layer's share of the model's top-p outliers"},
            {"--block", "", true, "outlier analysis block size B (default 128)"},
            {"--k", "", true, "outlier analysis: count |w - mean| > k sigma (default 3)"},
            {"--p", "", true, "outlier analysis: outlier budget fraction p in [0, 0.05] (default 0.005)"}};
}

Result<nlohmann::json> outlier_report(const Model& m, const Args& args, Progress& progress) {
    OutlierAnalysisOptions o;
    auto block = args.get_int("--block", 128, 1, int64_t(1) << 30);
    if (!block) return block.error();
    o.block = *block;
    auto k = get_double(args, "--k", 3.0);
    if (!k) return k.error();
    o.k = *k;
    auto p = get_double(args, "--p", 0.005);
    if (!p) return p.error();
    o.fraction = *p;
    auto r = analyze_outliers(m, o, progress);
    if (!r) return make_error(m.source_path + ": " + r.message());
    const OutlierAnalysis& a = **r;
    nlohmann::json j = {{"block", a.block}, {"k", a.k}, {"p", a.fraction},
                        {"selection", std::string(outlier_selection_name(a.selection))},
                        {"total_weights", a.total_weights}, {"budget", a.budget}, {"threshold", num(a.threshold)}};
    j["tensors"] = nlohmann::json::array();
    for (const auto& t : a.tensors)
        j["tensors"].push_back({{"name", t.name}, {"layer", t.layer}, {"rows", t.rows}, {"cols", t.cols},
                                {"max_over_rms", num(t.max_over_rms)}, {"kurtosis", num(t.kurtosis)},
                                {"beyond_k_sigma", t.beyond_k_sigma}, {"budget", t.budget},
                                {"budget_share", t.budget_share}});
    j["layers"] = nlohmann::json::array();
    for (const auto& l : a.layers)
        j["layers"].push_back({{"layer", l.layer}, {"weights", l.weights}, {"weight_share", l.weight_share},
                               {"beyond_k_sigma", l.beyond_k_sigma}, {"budget", l.budget},
                               {"budget_share", l.budget_share}, {"max_over_rms", num(l.max_over_rms)}});
    return j;
}

std::string outlier_report_text(const nlohmann::json& j) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "outlier analysis (B = %lld, k = %g, p = %g, %s): budget %lld of %lld weights\n",
                  static_cast<long long>(j["block"].get<int64_t>()), j["k"].get<double>(), j["p"].get<double>(),
                  j["selection"].get<std::string>().c_str(), static_cast<long long>(j["budget"].get<int64_t>()),
                  static_cast<long long>(j["total_weights"].get<int64_t>()));
    std::string out = buf;
    std::snprintf(buf, sizeof buf, "  %-32s %5s %9s %9s %10s %9s %7s\n", "tensor", "layer", "max/rms", "kurtosis",
                  ">k sigma", "budget", "share");
    out += buf;
    for (const auto& t : j["tensors"]) {
        std::snprintf(buf, sizeof buf, "  %-32s %5d %9.3g %9.3g %10lld %9lld %6.2f%%\n",
                      t["name"].get<std::string>().c_str(), t["layer"].get<int>(), val(t["max_over_rms"]),
                      val(t["kurtosis"]), static_cast<long long>(t["beyond_k_sigma"].get<int64_t>()),
                      static_cast<long long>(t["budget"].get<int64_t>()), 100.0 * t["budget_share"].get<double>());
        out += buf;
    }
    out += "per-layer share of the outlier budget (layer -1: tensors outside the layer stack)\n";
    std::snprintf(buf, sizeof buf, "  %5s %12s %8s %10s %9s %8s %9s\n", "layer", "weights", "of all", ">k sigma",
                  "budget", "share", "max/rms");
    out += buf;
    for (const auto& l : j["layers"]) {
        std::snprintf(buf, sizeof buf, "  %5d %12lld %7.2f%% %10lld %9lld %7.2f%% %9.3g\n", l["layer"].get<int>(),
                      static_cast<long long>(l["weights"].get<int64_t>()), 100.0 * l["weight_share"].get<double>(),
                      static_cast<long long>(l["beyond_k_sigma"].get<int64_t>()),
                      static_cast<long long>(l["budget"].get<int64_t>()), 100.0 * l["budget_share"].get<double>(),
                      val(l["max_over_rms"]));
        out += buf;
    }
    return out;
}

}  // namespace ef::cli
