// The router of an EdgeFusion model read off its weights (issue 5): per layer the gate
// g = sigmoid(alpha / router_temperature) (g = attention share), the branch hard routing takes
// (attention when g >= 0.5, the SSM branch otherwise — exactly the runtime's rule), the gate's
// binary entropy in bits, and the summary the paper reports: ssm_frac, mean gate entropy, and the
// FLOPs per token of the hard-routed model against its dense twin (every layer on attention, the
// same tensors), both from runtime/profile.h's flops_per_token.
//
// Works on any edgefusion model, trained or not; a model without routed layers is an error that
// names its architecture. Lives in runtime/ because the FLOPs count does.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/result.h"

namespace ef {

// The paper's convergence criterion and its reported outcome (information, not criteria).
inline constexpr double kRouterConvergedEntropyBits = 0.15;  // mean gate entropy below this
inline constexpr double kPaperSsmFrac = 0.68;
inline constexpr double kPaperFlopsReductionPct = 38.6;

struct RouterLayer {
    int64_t layer = 0;
    float alpha = 0;           // blk.N.router_gate (NaN when the gate came from setGates-style input)
    double gate = 0;           // g, the attention share
    bool ssm = false;          // hard routing runs the SSM branch (g < 0.5)
    double entropy_bits = 0;   // binary entropy of g
};

struct RouterAnalysis {
    std::string source;        // model path (may be empty)
    std::string architecture;
    float temperature = 1;
    MixerKind ssm_branch = MixerKind::Mamba2;
    std::vector<RouterLayer> layers;

    int64_t ssm_layers = 0;
    double ssm_frac = 0;                 // ssm_layers / layers
    double mean_entropy_bits = 0;
    int64_t position = 0;                // n_past of the FLOPs count (context_length / 2)
    double gflops_per_token = 0;         // hard-routed path
    double dense_gflops_per_token = 0;   // every layer on attention
    double flops_reduction_pct = 0;      // 100 * (1 - routed / dense)
    bool converged = false;              // mean_entropy_bits < kRouterConvergedEntropyBits
};

// H(g) = -g log2 g - (1 - g) log2 (1 - g); 0 at g = 0 and g = 1.
double binary_entropy_bits(double g);

// Reads every layer's router_gate. position < 0: context_length / 2 (the mean position of a full
// context), the position the FLOPs are counted at.
Result<RouterAnalysis> analyze_router(const Model& m, int64_t position = -1);
// The same from given gates (e.g. live values from training), one per layer; alpha is NaN.
Result<RouterAnalysis> analyze_router_gates(const Model& m, std::span<const float> gates, int64_t position = -1);

nlohmann::json router_analysis_json(const RouterAnalysis& a);
// The per-layer table and the summary as the CLI prints them.
std::string router_analysis_text(const RouterAnalysis& a);
// "ssm_frac 62.5% (5/8), mean entropy 0.81 bits, 1.23 vs 2.34 GFLOPs/token (-47.4%)"
std::string router_summary_line(const RouterAnalysis& a);

}  // namespace ef
