// edgefusion allocate: per-layer (or per-tensor) code widths for the EdgeFusion format under a
// budget — average effective bits per weight or the whole deployment's bytes (weights + KV cache +
// SSM state) — from measured sensitivities (quant/sensitivity.h) and the exact solver
// (quant/bit_alloc.h). Prints the table and the predicted loss; -o also writes the quantized model.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "quant/sensitivity.h"

namespace ef::cli {
namespace {

constexpr const char* kDefaultCalib = "../shared/text/wikitext-2-raw-test.txt";

Result<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open the calibration text");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The last 10% of the default text's lines (the rest is for evaluation, as `quantize` splits it).
std::string last_tenth_of_lines(const std::string& t) {
    size_t lines = 0;
    for (char c : t) lines += c == '\n';
    size_t skip = lines - lines / 10, pos = 0;
    for (; pos < t.size() && skip > 0; ++pos)
        if (t[pos] == '\n') --skip;
    return t.substr(pos);
}

// "4GB", "3.5GiB", "4000000000": bytes (K/M/G decimal, KiB/MiB/GiB binary).
Result<uint64_t> parse_bytes(const std::string& s) {
    size_t end = 0;
    double v = 0;
    try { v = std::stod(s, &end); } catch (...) { end = 0; }
    if (end == 0 || !(v > 0)) return make_error("--memory: '" + s + "' is not a positive byte count (e.g. 4GB, 3.5GiB, 4000000000)");
    std::string unit = s.substr(end);
    for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
    static const std::map<std::string, double> units = {
        {"", 1}, {"B", 1}, {"K", 1e3}, {"KB", 1e3}, {"M", 1e6}, {"MB", 1e6}, {"G", 1e9}, {"GB", 1e9},
        {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
    auto it = units.find(unit);
    if (it == units.end()) return make_error("--memory: unknown unit '" + s.substr(end) + "' (B, KB, MB, GB, KiB, MiB, GiB)");
    const double b = std::floor(v * it->second);
    if (b >= 1.8e19) return make_error("--memory: " + s + " is too large");
    return uint64_t(b);
}

Result<std::vector<int>> parse_widths(const std::string& s) {
    std::vector<int> w;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');) {
        try { w.push_back(std::stoi(t)); } catch (...) { return make_error("--widths: '" + t + "' is not a number"); }
    }
    if (w.empty()) return make_error("--widths: empty list");
    return w;
}

}  // namespace

int run_allocate(const std::vector<std::string>& argv_in, Progress& progress) {
    const char* cmd = "allocate";
    // --pin may repeat: take every occurrence out before the parser (which keeps one value per name).
    std::vector<std::string> argv, pins;
    for (size_t i = 0; i < argv_in.size(); ++i) {
        if (argv_in[i] == "--pin" && i + 1 < argv_in.size()) {
            std::stringstream ss(argv_in[++i]);
            for (std::string p; std::getline(ss, p, ',');) pins.push_back(p);
        } else if (argv_in[i] == "--pin") {
            return fail(cmd, "--pin needs a value UNIT=BITS");
        } else {
            argv.push_back(argv_in[i]);
        }
    }
    const std::vector<OptionSpec> specs = {
        {"--bits", "", true, "target average effective bits per weight over the quantized weights (e.g. 3.1)"},
        {"--code-bits", "", true, "target average code bits k per weight (scales and outliers not counted)"},
        {"--memory", "", true, "budget for the whole deployment: weights + KV cache + SSM state (e.g. 4GB, 3.5GiB)"},
        {"--context", "", true, "with --memory: context length for the KV cache (default: the model's)"},
        {"--pin", "", true, "UNIT=BITS fixes a layer (blk.3) or tensor's width; repeat or comma-separate"},
        {"--proxy", "", false, "activation-weighted relative weight error instead of KL (much faster)"},
        {"--per-tensor", "", false, "one width per tensor instead of per layer"},
        {"--calib", "", true, "calibration text (default: the last 10% of ../shared/text/wikitext-2-raw-test.txt)"},
        {"--calib-windows", "", true, "calibration windows (default 4)"},
        {"--calib-ctx", "", true, "calibration window length in tokens (default min(128, the model's context))"},
        {"--widths", "", true, "candidate code widths (default 2,3,4,5,6,8)"},
        {"--block", "", true, "block size B (default 128; the largest dividing size where it does not divide)"},
        {"--outliers", "", true, "outlier fraction p (default 0.005)"},
        {"--affine", "", false, "affine blocks (scale + offset)"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin"},
        {"--threads", "-t", true, "parallel measurements (default: all cores)"},
        {"--output", "-o", true, "also write the model quantized with the chosen widths (any format by extension)"},
        {"--json", "", false, "JSON instead of a table"},
    };
    const std::string help = options_help(specs);
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + help);
    if (args->positional.size() != 1) return fail(cmd, "give exactly one MODEL\n" + help);
    if (int(args->has("--bits")) + int(args->has("--code-bits")) + int(args->has("--memory")) != 1)
        return fail(cmd, "give exactly one of --bits AVG, --code-bits AVG or --memory BYTES\n" + help);
    if (args->has("--context") && !args->has("--memory")) return fail(cmd, "--context only matters with --memory");

    SensitivityOptions so;
    so.proxy = args->has("--proxy");
    so.per_tensor = args->has("--per-tensor");
    so.affine = args->has("--affine");
    AllocBudget budget;
    if (auto b = args->get("--bits") ? args->get("--bits") : args->get("--code-bits")) {
        try { budget.average_bits = std::stod(*b); } catch (...) { return fail(cmd, "--bits: '" + *b + "' is not a number"); }
        if (!(budget.average_bits > 0 && budget.average_bits <= 32)) return fail(cmd, "--bits must be in (0, 32]");
        if (args->has("--code-bits")) budget.kind = BudgetKind::AverageCodeBits;
    } else {
        auto m = parse_bytes(*args->get("--memory"));
        if (!m) return fail(cmd, m.message());
        budget.kind = BudgetKind::TotalBytes;
        budget.total_bytes = *m;
    }
    if (auto w = args->get("--widths")) {
        auto ws = parse_widths(*w);
        if (!ws) return fail(cmd, ws.message());
        so.bits = *ws;
    }
    auto block = args->get_int("--block", 128, 32, 256);
    auto windows = args->get_int("--calib-windows", 4, 1, 100000);
    auto cctx = args->get_int("--calib-ctx", 0, 2, int64_t(1) << 20);
    auto context = args->get_int("--context", 0, 1, int64_t(1) << 30);
    auto threads = args->get_int("--threads", 0, 0, 1024);
    for (const auto* r : {&block, &windows, &cctx, &context, &threads})
        if (!*r) return fail(cmd, r->message());
    so.block = int(*block);
    so.threads = int(*threads);
    if (auto p = args->get("--outliers")) {
        try { so.outlier_fraction = std::stod(*p); } catch (...) { return fail(cmd, "--outliers: '" + *p + "' is not a number"); }
        if (!(so.outlier_fraction >= 0 && so.outlier_fraction <= 0.05))
            return fail(cmd, "--outliers " + *p + " is outside [0, 0.05] (0% to 5%)");
    }

    std::string calib_text;
    {  // KL windows, or the proxy's activation energies
        auto t = read_text(args->get("--calib").value_or(kDefaultCalib));
        if (!t) return fail(cmd, t.message() + (args->has("--calib") ? "" : " (the default calibration text); pass --calib FILE"));
        calib_text = args->has("--calib") ? std::move(*t) : last_tenth_of_lines(*t);
    }

    LoadOptions lo;
    lo.tokenizer_path = args->get("--tokenizer").value_or("");
    const std::string path = args->positional[0];
    auto model = load_model(path, lo, progress);
    if (!model) return fail(cmd, model.message());

    std::vector<std::vector<int32_t>> wins;
    if (!calib_text.empty()) {
        auto tok = Tokenizer::create(model->vocab);
        if (!tok) return fail(cmd, path + ": no usable tokenizer: " + tok.message());
        const int n_ctx = int(*cctx > 0 ? *cctx : std::min<int64_t>(128, model->config.context_length));
        auto w = calibration_windows(*tok, calib_text, n_ctx, int(*windows));
        if (!w) return fail(cmd, w.message() + "; pass a longer --calib text or a smaller --calib-ctx");
        wins = std::move(*w);
    }

    auto sens = measure_sensitivity(*model, wins, so, progress);
    if (!sens) return fail(cmd, sens.message());
    auto& units = sens->plan.units;
    for (const std::string& p : pins) {
        const size_t eq = p.find('=');
        if (eq == std::string::npos) return fail(cmd, "--pin '" + p + "': expected UNIT=BITS, e.g. blk.0=8");
        const std::string name = p.substr(0, eq);
        int bits = 0;
        try { bits = std::stoi(p.substr(eq + 1)); } catch (...) { return fail(cmd, "--pin '" + p + "': BITS is not a number"); }
        bool found = false;
        for (auto& u : units) {
            if (u.name != name) continue;
            found = true;
            for (size_t i = 0; i < u.options.size(); ++i)
                if (u.options[i].bits == bits) u.pin = int(i);
            if (!u.pin) return fail(cmd, "--pin '" + p + "': " + std::to_string(bits) + " is not one of the candidate widths");
        }
        if (!found) {
            std::string names;
            for (const auto& u : units) names += (names.empty() ? "" : ", ") + u.name;
            return fail(cmd, "--pin '" + p + "': no unit named " + name + " (units: " + names + ")");
        }
    }
    uint64_t state = 0;
    int64_t n_ctx = 0;
    if (budget.kind == BudgetKind::TotalBytes) {
        n_ctx = *context > 0 ? *context : model->config.context_length;
        auto s = runtime_state_bytes(*model, n_ctx);
        if (!s) return fail(cmd, s.message());
        state = *s;
        budget.fixed_bytes = sens->plan.kept_bytes + state;
    }
    auto r = allocate_bits(units, budget);
    if (!r) return fail(cmd, r.message());

    const char* loss_name = so.proxy ? "proxy error" : "KL (nats)";
    if (args->has("--json")) {
        nlohmann::json j;
        j["model"] = path;
        j["measure"] = so.proxy ? "proxy" : "kl";
        j["positions"] = sens->positions;
        j["seconds"] = sens->seconds;
        nlohmann::json ju = nlohmann::json::array();
        for (size_t i = 0; i < units.size(); ++i) {
            const auto& u = units[i];
            const auto& o = u.options[size_t(r->choice[i])];
            nlohmann::json opts = nlohmann::json::array();
            for (const auto& op : u.options) opts.push_back({{"bits", op.bits}, {"bytes", op.bytes}, {"loss", op.loss}});
            ju.push_back({{"unit", u.name}, {"tensors", u.tensors}, {"weights", u.weights}, {"bits", o.bits},
                          {"bytes", o.bytes}, {"effective_bits", 8.0 * double(o.bytes) / double(u.weights)},
                          {"loss", o.loss}, {"pinned", bool(u.pin)}, {"options", opts}});
        }
        j["units"] = ju;
        j["kept_tensors"] = sens->plan.kept;
        j["kept_bytes"] = sens->plan.kept_bytes;
        j["predicted_loss"] = r->loss;
        j["quantized_bytes"] = r->unit_bytes;
        j["average_effective_bits"] = r->average_bits;
        j["average_code_bits"] = r->average_code_bits;
        if (budget.kind == BudgetKind::TotalBytes) {
            j["budget_bytes"] = budget.total_bytes;
            j["kv_ssm_state_bytes"] = state;
            j["context"] = n_ctx;
            j["total_bytes"] = r->total_bytes;
        } else {
            j[budget.kind == BudgetKind::AverageCodeBits ? "budget_code_bits" : "budget_bits"] = budget.average_bits;
        }
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("| unit | bits | eff. bits | bytes | %s | pinned |\n|---|---:|---:|---:|---:|---|\n", loss_name);
        for (size_t i = 0; i < units.size(); ++i) {
            const auto& u = units[i];
            const auto& o = u.options[size_t(r->choice[i])];
            std::printf("| %s | %d | %.3f | %llu | %.6g | %s |\n", u.name.c_str(), o.bits, 8.0 * double(o.bytes) / double(u.weights),
                        (unsigned long long)o.bytes, o.loss, u.pin ? "yes" : "");
        }
        std::printf("\nPredicted %s: %.6g (sum over units)\n", so.proxy ? "proxy error" : "KL divergence", r->loss);
        std::printf("Quantized weights: %lld, %llu bytes, %.4f effective / %.4f code bits per weight\n", (long long)r->weights,
                    (unsigned long long)r->unit_bytes, r->average_bits, r->average_code_bits);
        std::printf("Kept at stored precision: %zu tensors, %llu bytes\n", sens->plan.kept.size(),
                    (unsigned long long)sens->plan.kept_bytes);
        if (budget.kind == BudgetKind::TotalBytes)
            std::printf("KV cache + SSM state (context %lld): %llu bytes\nTotal: %llu of %llu bytes\n", (long long)n_ctx,
                        (unsigned long long)state, (unsigned long long)r->total_bytes, (unsigned long long)budget.total_bytes);
        std::printf("Measured %zu units x %zu widths in %.2f s (%s, %lld positions)\n", units.size(), so.bits.size(),
                    sens->seconds, so.proxy ? "proxy" : "KL", (long long)sens->positions);
    }
    if (auto out = args->get("--output")) {
        auto q = apply_allocation(*model, *sens, r->choice, so, progress);
        if (!q) return fail(cmd, q.message());
        if (Status s = save_model(*q, *out, {}, progress); !s) return fail(cmd, s.message());
        if (!args->has("--json")) std::printf("Wrote %s\n", out->c_str());
    }
    return 0;
}

}  // namespace ef::cli
