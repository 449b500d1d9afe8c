// edgefusion train: the training engine (core/train/trainer.h) on a YAML config.
#include <cstdio>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/train/trainer.h"

namespace ef::cli {

int run_train(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "train";
    const std::vector<OptionSpec> specs = {
        {"--config", "", true, "the training config (YAML; resources/configs/ has examples)"},
        {"--output-dir", "", true, "where checkpoint_<step>/, checkpoint_final/ and train_log.jsonl go"},
        {"--base-model", "", true, "a dense llama model to hybridize, or an edgefusion model file to fine-tune (overrides model.base)"},
        {"--dry-run", "", false, "check config, data and shapes, print the memory estimate; no training"},
        {"--debug", "", false, "train 100 steps"},
        {"--freeze-base", "", false, "train only the router gates and SSM branches"},
        {"--skip-quantization", "", false, "do not quantize the final checkpoint (quantization section)"},
        {"--resume", "", false, "continue from the latest checkpoint in the output folder"},
        {"--threads", "-t", true, "threads (default: training.threads)"},
    };
    const std::string help = options_help(specs);
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + help);
    if (!args->positional.empty()) return fail(cmd, "unexpected argument " + args->positional[0] + "\n" + help);
    const auto config_path = args->get("--config");
    if (!config_path) return fail(cmd, "missing --config CONFIG.yaml\n" + help);
    const auto out = args->get("--output-dir");
    if (!out && !args->has("--dry-run")) return fail(cmd, "missing --output-dir DIR\n" + help);
    if (args->has("--dry-run") && (args->has("--debug") || args->has("--resume")))
        return fail(cmd, "--dry-run trains nothing: it does not combine with --debug or --resume");
    auto threads = args->get_int("--threads", 0, 1, 256);
    if (!threads) return fail(cmd, threads.message());

    auto config = train::load_train_config(*config_path);
    if (!config) return fail(cmd, config.message());
    train::TrainOptions o;
    o.output_dir = out.value_or("");
    o.base_model = args->get("--base-model").value_or("");
    o.dry_run = args->has("--dry-run");
    o.debug = args->has("--debug");
    o.freeze_base = args->has("--freeze-base");
    o.skip_quantization = args->has("--skip-quantization");
    o.resume = args->has("--resume");
    o.threads = int(*threads);
    o.on_message = [](const std::string& s) {
        std::fputs(s.c_str(), stdout);
        if (s.empty() || s.back() != '\n') std::fputc('\n', stdout);
        std::fflush(stdout);
    };
    o.on_log = [](const train::TrainLogEntry& e) {
        std::printf("step %5lld/%lld  loss %.4f (task %.4f, router %.4f)", (long long)e.step, (long long)e.total_steps, e.loss,
                    e.task_loss, e.router_loss);
        if (e.val_loss >= 0) std::printf("  val %.4f", e.val_loss);
        std::printf("  lr %.2e  |g| %.3f", double(e.lr), e.grad_norm);
        if (!e.gates.empty()) {
            std::printf("  tau %.3f  ssm_frac %.2f  H %.3f bits  gates", double(e.tau), e.ssm_frac, e.gate_entropy_bits);
            for (float g : e.gates) std::printf(" %.2f", double(g));
        }
        std::printf("  %.0f tok/s\n", e.tokens_per_s);
        std::fflush(stdout);
    };
    auto r = train::run_training(*config, o, progress);
    if (!r) return fail(cmd, r.message());
    if (o.dry_run) {
        std::printf("dry run: config, data and shapes are fine; nothing was trained\n");
        return 0;
    }
    std::printf("trained %lld steps; final checkpoint: %s\n", (long long)r->steps_done, r->final_checkpoint.c_str());
    if (!r->quantized_model.empty()) std::printf("quantized model: %s\n", r->quantized_model.c_str());
    return 0;
}

}  // namespace ef::cli
