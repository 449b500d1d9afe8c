// `edgefusion inspect MODEL --outliers [--block B --k K --p P]`: the outlier analysis
// (core/outlier_analysis.h) as a per-tensor table and the per-layer share of the outlier budget.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/cli/args.h"
#include "core/model.h"
#include "core/progress.h"

namespace ef::cli {

// The options inspect adds to its table for this report.
std::vector<OptionSpec> outlier_option_specs();
// Runs the analysis (magnitude selection) as the args say. JSON: {block, k, p, selection,
// total_weights, budget, threshold, tensors: [{name, layer, rows, cols, max_over_rms, kurtosis,
// beyond_k_sigma, budget, budget_share}], layers: [{layer, weights, weight_share, beyond_k_sigma,
// budget, budget_share, max_over_rms}]}; non-finite numbers are null.
Result<nlohmann::json> outlier_report(const Model& m, const Args& args, Progress& progress);
std::string outlier_report_text(const nlohmann::json& report);

}  // namespace ef::cli
