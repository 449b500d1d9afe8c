// edgefusion sweep-lambda: the lambda trade-off curve (core/train/lambda_sweep.h) — short gate
// trainings with the base frozen, one per lambda, and per lambda ssm_frac, gate entropy, KL and
// perplexity on held-out text, GFLOPs/token. The table goes to stdout (Markdown, --csv or --json),
// training lines to stderr, and the table is also saved as OUT/sweep.{md,csv,json}.
#include <cstdio>
#include <filesystem>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/storage.h"
#include "core/text_file.h"
#include "core/train/lambda_sweep.h"

namespace ef::cli {

int run_sweep_lambda(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "sweep-lambda";
    const std::vector<OptionSpec> specs = {
        {"--config", "", true, "the training config (YAML) the runs start from (data, optimizer, router)"},
        {"--output-dir", "", true, "one folder per lambda (lambda_<value>/) and sweep.md/.csv/.json go here"},
        {"--lambdas", "", true, "comma-separated lambdas, e.g. 0,0.001,0.01,0.1"},
        {"--base-model", "", true, "the starting model (overrides model.base): a dense llama to hybridize or an edgefusion checkpoint"},
        {"--steps", "", true, "training steps per lambda (default: training.steps of the config)"},
        {"--eval-windows", "", true, "held-out windows for KL and perplexity (default 8)"},
        {"--threads", "-t", true, "threads (default: training.threads)"},
        {"--json", "", false, "print the table as JSON"},
        {"--csv", "", false, "print the table as CSV"},
    };
    const std::string help = options_help(specs);
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + help);
    if (!args->positional.empty()) return fail(cmd, "unexpected argument " + args->positional[0] + "\n" + help);
    const auto config_path = args->get("--config");
    if (!config_path) return fail(cmd, "missing --config CONFIG.yaml\n" + help);
    const auto out = args->get("--output-dir");
    if (!out) return fail(cmd, "missing --output-dir DIR\n" + help);
    const auto list = args->get("--lambdas");
    if (!list) return fail(cmd, "missing --lambdas (e.g. 0,0.001,0.01,0.1)\n" + help);
    if (args->has("--json") && args->has("--csv")) return fail(cmd, "give at most one of --json and --csv");
    auto lambdas = train::parse_lambda_list(*list);
    if (!lambdas) return fail(cmd, "--lambdas: " + lambdas.message());
    auto steps = args->get_int("--steps", 0, 1, int64_t(1) << 30);
    auto windows = args->get_int("--eval-windows", 8, 1, 4096);
    auto threads = args->get_int("--threads", 0, 1, 256);
    for (const auto* r : {&steps, &windows, &threads})
        if (!*r) return fail(cmd, r->message());

    auto config = train::load_train_config(*config_path);
    if (!config) return fail(cmd, config.message());
    train::LambdaSweepOptions o;
    o.output_dir = *out;
    o.base_model = args->get("--base-model").value_or("");
    o.steps = *steps;
    o.eval_windows = *windows;
    o.threads = int(*threads);
    o.on_message = [](const std::string& s) {
        std::fputs(s.c_str(), stderr);
        if (s.empty() || s.back() != '\n') std::fputc('\n', stderr);
    };
    o.on_log = [](float lambda, const train::TrainLogEntry& e) {
        std::fprintf(stderr, "lambda %g  step %lld/%lld  loss %.4f (task %.4f, router %.4f)  ssm_frac %.2f  H %.3f bits\n",
                     double(lambda), (long long)e.step, (long long)e.total_steps, e.loss, e.task_loss, e.router_loss, e.ssm_frac,
                     e.gate_entropy_bits);
    };
    o.on_point = [](const train::LambdaPoint& p) {
        std::fprintf(stderr, "lambda %g: ssm_frac %.3f, entropy %.3f bits, KL %.4f, PPL %.3f, %.6f GFLOPs/token (%+.1f%% vs dense)\n",
                     double(p.lambda), p.ssm_frac, p.gate_entropy_bits, p.kl, p.val_ppl, p.gflops_per_token,
                     -p.flops_reduction_pct);
    };
    auto s = train::sweep_lambda(*config, *lambdas, o, progress);
    if (!s) return fail(cmd, s.message());

    const std::string md = train::sweep_markdown(*s), csv = train::sweep_csv(*s), json = train::sweep_json(*s);
    const std::filesystem::path dir(*out);
    for (const auto& [name, text] : {std::pair{"sweep.md", &md}, std::pair{"sweep.csv", &csv}, std::pair{"sweep.json", &json}})
        if (Status st = write_text_file((dir / name).string(), *text); !st) return fail(cmd, st.error().message);
    if (args->has("--json")) std::printf("%s\n", json.c_str());
    else if (args->has("--csv")) std::printf("%s", csv.c_str());
    else std::printf("%s", md.c_str());
    return 0;
}

}  // namespace ef::cli
