#include "runtime/router_analysis.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "runtime/ops.h"
#include "runtime/profile.h"

namespace ef {
namespace {

std::string who(const Model& m) { return m.source_path.empty() ? std::string("model") : m.source_path; }

Status check_routed(const Model& m) {
    bool all_routed = !m.layers.empty();
    for (const auto& d : m.layers) all_routed = all_routed && d.mixer == MixerKind::Routed;
    if (!all_routed)
        return make_error(who(m) + ": architecture '" + m.architecture +
                          "' has no router (its layers are not routed attention/SSM pairs); the router analysis needs an "
                          "edgefusion model");
    const float t = m.config.router_temperature;
    if (!(t > 0.0f) || !std::isfinite(t))
        return make_error(who(m) + ": router temperature " + std::to_string(t) + " is not a positive number");
    return {};
}

// Fills the summary from layers[].gate/ssm/entropy: counts, FLOPs of both paths.
void summarise(const Model& m, RouterAnalysis& a, int64_t position) {
    a.source = m.source_path;
    a.architecture = m.architecture;
    a.temperature = m.config.router_temperature;
    a.ssm_branch = m.layers.front().ssm_branch;
    a.ssm_layers = 0;
    double h = 0;
    for (const auto& l : a.layers) {
        a.ssm_layers += l.ssm ? 1 : 0;
        h += l.entropy_bits;
    }
    const double n = double(a.layers.size());
    a.ssm_frac = n > 0 ? double(a.ssm_layers) / n : 0.0;
    a.mean_entropy_bits = n > 0 ? h / n : 0.0;
    a.converged = a.mean_entropy_bits < kRouterConvergedEntropyBits;

    a.position = position >= 0 ? position : m.config.context_length / 2;
    std::vector<LayerPath> routed(m.layers.size()), dense(m.layers.size());
    for (size_t il = 0; il < m.layers.size(); ++il) {
        const bool ffn = m.layers[il].ffn == FfnKind::SwiGLU;
        const bool ssm = il < a.layers.size() && a.layers[il].ssm;
        routed[il].attention = !ssm;
        routed[il].ssm = ssm ? m.layers[il].ssm_branch : MixerKind::Attention;
        routed[il].ffn = ffn;
        dense[il].attention = true;
        dense[il].ffn = ffn;
    }
    a.gflops_per_token = flops_per_token(m, routed, a.position) * 1e-9;
    a.dense_gflops_per_token = flops_per_token(m, dense, a.position) * 1e-9;
    a.flops_reduction_pct = a.dense_gflops_per_token > 0 ? 100.0 * (1.0 - a.gflops_per_token / a.dense_gflops_per_token) : 0.0;
}

RouterLayer layer_of(int64_t il, float alpha, float g) {
    RouterLayer l;
    l.layer = il;
    l.alpha = alpha;
    l.gate = double(g);
    l.ssm = g < 0.5f;  // the runtime's rule (session_layers.h), on the same float gate
    l.entropy_bits = binary_entropy_bits(double(g));
    return l;
}

std::string pct(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f%%", x);
    return b;
}

}  // namespace

double binary_entropy_bits(double g) {
    if (!(g > 0.0) || !(g < 1.0)) return 0.0;
    return -(g * std::log2(g) + (1.0 - g) * std::log2(1.0 - g));
}

Result<RouterAnalysis> analyze_router(const Model& m, int64_t position) {
    EF_TRY_STATUS(check_routed(m));
    RouterAnalysis a;
    for (size_t il = 0; il < m.layers.size(); ++il) {
        const std::string name = "blk." + std::to_string(il) + ".router_gate";
        const Tensor* t = m.find(name);
        if (!t) return make_error(who(m) + ": tensor '" + name + "' is missing");
        if (t->numel() != 1)
            return make_error(who(m) + ": tensor '" + name + "' has " + std::to_string(t->numel()) + " values, expected 1");
        auto v = t->to_f32();
        if (!v) return make_error(who(m) + ": " + name + ": " + v.message());
        const float alpha = (*v)[0];
        if (!std::isfinite(alpha)) return make_error(who(m) + ": tensor '" + name + "' is not finite");
        a.layers.push_back(layer_of(int64_t(il), alpha, rt::sigmoid(alpha / m.config.router_temperature)));
    }
    summarise(m, a, position);
    return a;
}

Result<RouterAnalysis> analyze_router_gates(const Model& m, std::span<const float> gates, int64_t position) {
    EF_TRY_STATUS(check_routed(m));
    if (gates.size() != m.layers.size())
        return make_error(who(m) + ": " + std::to_string(gates.size()) + " gates for " + std::to_string(m.layers.size()) + " layers");
    RouterAnalysis a;
    for (size_t il = 0; il < gates.size(); ++il) {
        if (!(gates[il] >= 0.0f && gates[il] <= 1.0f))
            return make_error("gate of layer " + std::to_string(il) + " (" + std::to_string(gates[il]) + ") is not in [0, 1]");
        a.layers.push_back(layer_of(int64_t(il), std::numeric_limits<float>::quiet_NaN(), gates[il]));
    }
    summarise(m, a, position);
    return a;
}

nlohmann::json router_analysis_json(const RouterAnalysis& a) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : a.layers) {
        nlohmann::json x = {{"layer", l.layer}, {"gate", l.gate}, {"branch", l.ssm ? "ssm" : "attention"},
                            {"entropy_bits", l.entropy_bits}};
        x["alpha"] = std::isfinite(l.alpha) ? nlohmann::json(l.alpha) : nlohmann::json(nullptr);
        layers.push_back(std::move(x));
    }
    return {
        {"model", a.source},
        {"architecture", a.architecture},
        {"router_temperature", a.temperature},
        {"ssm_branch", std::string(mixer_name(a.ssm_branch))},
        {"layers", std::move(layers)},
        {"summary",
         {{"layers", int64_t(a.layers.size())},
          {"ssm_layers", a.ssm_layers},
          {"ssm_frac", a.ssm_frac},
          {"mean_gate_entropy_bits", a.mean_entropy_bits},
          {"position", a.position},
          {"gflops_per_token", a.gflops_per_token},
          {"dense_gflops_per_token", a.dense_gflops_per_token},
          {"flops_reduction_pct", a.flops_reduction_pct},
          {"converged", a.converged},
          {"criterion", {{"mean_gate_entropy_bits_below", kRouterConvergedEntropyBits}}},
          {"paper", {{"ssm_frac", kPaperSsmFrac}, {"flops_reduction_pct", kPaperFlopsReductionPct}}}}},
    };
}

std::string router_summary_line(const RouterAnalysis& a) {
    char b[256];
    std::snprintf(b, sizeof b, "ssm_frac %s (%lld/%zu), mean entropy %.3g bits, %.4g vs %.4g GFLOPs/token (%+.1f%%)",
                  pct(100.0 * a.ssm_frac).c_str(), static_cast<long long>(a.ssm_layers), a.layers.size(), a.mean_entropy_bits,
                  a.gflops_per_token, a.dense_gflops_per_token, -a.flops_reduction_pct);
    return b;
}

std::string router_analysis_text(const RouterAnalysis& a) {
    std::string out;
    char b[256];
    std::snprintf(b, sizeof b, "router of %s (%s, SSM branch %s, temperature %g)\n", a.source.empty() ? "model" : a.source.c_str(),
                  a.architecture.c_str(), std::string(mixer_name(a.ssm_branch)).c_str(), double(a.temperature));
    out += b;
    std::snprintf(b, sizeof b, "  %5s %10s %9s %9s  %-9s %12s\n", "layer", "alpha", "g (attn)", "1-g (ssm)", "branch", "entropy bits");
    out += b;
    for (const auto& l : a.layers) {
        std::snprintf(b, sizeof b, "  %5lld %10.4g %9.4f %9.4f  %-9s %12.4f\n", static_cast<long long>(l.layer), double(l.alpha), l.gate,
                      1.0 - l.gate, l.ssm ? "ssm" : "attention", l.entropy_bits);
        out += b;
    }
    out += "\n";
    std::snprintf(b, sizeof b, "  ssm_frac            %s (%lld of %zu layers on the SSM branch; paper: ~%s)\n",
                  pct(100.0 * a.ssm_frac).c_str(), static_cast<long long>(a.ssm_layers), a.layers.size(),
                  pct(100.0 * kPaperSsmFrac).c_str());
    out += b;
    std::snprintf(b, sizeof b, "  mean gate entropy   %.4f bits\n", a.mean_entropy_bits);
    out += b;
    std::snprintf(b, sizeof b, "  GFLOPs/token        %.6g hard-routed vs %.6g dense twin (all attention), at position %lld\n",
                  a.gflops_per_token, a.dense_gflops_per_token, static_cast<long long>(a.position));
    out += b;
    std::snprintf(b, sizeof b, "  FLOPs reduction     %s (paper: %s)\n", pct(a.flops_reduction_pct).c_str(),
                  pct(kPaperFlopsReductionPct).c_str());
    out += b;
    std::snprintf(b, sizeof b, "  converged           %s (paper's criterion: mean gate entropy < %.2f bits)\n", a.converged ? "yes" : "no",
                  kRouterConvergedEntropyBits);
    out += b;
    return out;
}

}  // namespace ef
