// edgefusion: the command-line twin of the workbench.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

#include "app/cli/commands.h"
#include "core/hdf5/hdf5_format.h"

namespace {

ef::Progress* g_progress = nullptr;

// Ctrl-C cancels the running job cleanly (atomic saves leave no partial file); a second one kills.
void on_sigint(int) {
    if (g_progress && !g_progress->cancelled()) {
        g_progress->cancel();
        return;
    }
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
}

void print_usage() {
    std::fprintf(stderr, "usage: edgefusion <command> [options]\n\ncommands:\n");
    for (const auto& c : ef::cli::commands()) std::fprintf(stderr, "  %-10s %s\n", c.name, c.summary);
    std::fprintf(stderr, "\n'edgefusion <command> --help' shows a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
    ef::register_hdf5_format();
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        print_usage();
        return argc < 2 ? 2 : 0;
    }
    const std::string name = argv[1];
    for (const auto& c : ef::cli::commands()) {
        if (name != c.name) continue;
        std::vector<std::string> args(argv + 2, argv + argc);
        for (const auto& a : args)
            if (a == "--help" || a == "-h") {
                std::fprintf(stdout, "usage: edgefusion %s\n", c.usage);
                return 0;
            }
        ef::Progress progress(ef::cli::stderr_progress());
        g_progress = &progress;
        std::signal(SIGINT, on_sigint);
        const int rc = c.run(args, progress);
        g_progress = nullptr;
        return rc;
    }
    std::fprintf(stderr, "edgefusion: unknown command '%s'\n\n", name.c_str());
    print_usage();
    return 2;
}

namespace ef::cli {

int fail(const char* cmd, const std::string& message) {
    std::fprintf(stderr, "edgefusion %s: %s\n", cmd, message.c_str());
    return 1;
}

Progress::Callback stderr_progress() {
    if (!isatty(STDERR_FILENO)) return {};
    return [](double fraction, const std::string& stage) {
        const int width = 30;
        const int filled = int(fraction * width + 0.5);
        std::string bar(size_t(std::max(0, std::min(width, filled))), '#');
        bar.resize(width, '.');
        std::fprintf(stderr, "\r[%s] %3d%% %-40.40s", bar.c_str(), int(fraction * 100 + 0.5), stage.c_str());
        if (fraction >= 1.0) std::fprintf(stderr, "\r%*s\r", 80, "");
        std::fflush(stderr);
    };
}

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {"inspect", "inspect PATH [--json] [--tensors] [--check] [--stats] [--outliers [--block B --k K --p P]] [--tokenizer TOK]",
         "architecture, layers, tensors, parameters, bits per weight, metadata", run_inspect},
        {"convert", "convert IN OUT [--tokenizer TOK] [--allow-nonfinite]  (formats from the extensions: .gguf .safetensors .h5 .bin)",
         "convert a checkpoint between formats", run_convert},
        {"synth",
         "synth --arch A --dim D --layers L --vocab V [--type T] [--seed S] [--heads H] [--kv-heads K] "
         "[--ffn F] [--d-state N] [--context C] -o OUT",
         "write a seeded random model of any architecture", run_synth},
        {"evaluate",
         "evaluate -m MODEL [--tokenizer TOK] (--perplexity TEXT [-c N_CTX] [--chunks N] [--kl-base-out FILE [--kl-top-k K]] | "
         "--kl-base FILE | --task arc_easy|arc_challenge|piqa|winogrande|hellaswag|lambada|all [--limit N] [--eval-dir DIR]) [--json]",
         "perplexity, KL divergence against a base model, zero-shot task accuracy", run_evaluate},
        {"quantize",
         "quantize MODEL -o OUT.gguf --format ef|q8_0|q4_0|q4_K|q5_K|q6_K|q3_K|q2_K [--method rtn|imatrix|gptq] "
         "[--bits K --block B --affine --outliers P --select magnitude|saliency] [--calib FILE --calib-tokens N] "
         "[--act-order] [--keep GLOB ...] [--strict] [-t THREADS]",
         "quantize the 2-D weights (RTN, imatrix or GPTQ, calibrated by running the model)", run_quantize},
        {"export-llamacpp", "export-llamacpp MODEL -o OUT.gguf [--type T] [--tensor-type NAME=TYPE ...] [-t THREADS]",
         "a GGUF llama.cpp runs: ggml types per tensor, edgefusion -> granitehybrid / jamba", run_export_llamacpp},
        {"allocate", "allocate MODEL --bits AVG | --code-bits AVG | --memory BYTES [--context N] [--pin UNIT=BITS ...] [--proxy] [--per-tensor] [--calib FILE] [-o OUT] [--json]",
         "per-layer EF widths under a bits or memory budget from measured sensitivity (exact solver)", run_allocate},
        {"compare", "compare MODEL [--bits 3.1] [--text FILE] [--ctx N] [--chunks N] [--tasks piqa,arc_easy|none] [--limit N] "
         "[--variants f32,q8_0,gptq4,q4_k_m,q3_k_m,ef] [--format md|csv|json] [-o FILE] [-t N]",
         "variants side by side: PPL, KL, top-1, tasks, memory, tokens/s, GFLOPs, bits/weight", run_compare},
        {"analyze-router",
         "analyze-router --checkpoint PATH [--plot OUT_PREFIX] [--json] [--position N]  (PATH: an edgefusion model file, or a directory "
         "such as a training run's checkpoint_final/: its single model file .gguf/.safetensors/.h5/.bin, else model.*; "
         "train_state.h5 never counts)",
         "per-layer router gates, branch, entropy; ssm_frac, GFLOPs vs the dense twin; SVG/PNG gate plot", run_analyze_router},
        {"train",
         "train --config CONFIG.yaml --output-dir DIR [--base-model PATH] [--dry-run | --debug | --freeze-base | "
         "--skip-quantization] [--resume] [-t THREADS]",
         "train an edgefusion hybrid (from scratch, or hybridize a base model) with router gates and lambda", run_train},
        {"sweep-lambda",
         "sweep-lambda --config CONFIG.yaml --output-dir DIR --lambdas 0,0.001,0.01,0.1 [--base-model PATH] [--steps N] "
         "[--eval-windows N] [-t THREADS] [--json | --csv]",
         "gate trainings per lambda (base frozen): ssm_frac, entropy, KL, perplexity, GFLOPs/token", run_sweep_lambda},
        {"infer",
         "infer --checkpoint PATH --prompt TEXT [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] [--soft] [--profile] "
         "[-t THREADS]  (PATH: a model file or a folder such as DIR/checkpoint_final)",
         "generate text from a model or checkpoint; --profile: tokens/s, peak memory, per-layer time", run_infer},
        {"board",
         "board add NAME --host H --user U [--port P] [--key FILE] [--arch x86_64|aarch64] [--work-dir DIR] "
         "[--exec-wrapper W] | board list [--json] | board remove NAME | board test NAME [--accept-new-host-key] "
         "[--known-hosts FILE]",
         "board profiles for SSH deployment (no passwords: key file or ssh-agent)", run_board},
        {"push", "push --board NAME[,NAME2] MODEL [--accept-new-host-key] [--known-hosts FILE] [--runner PATH]",
         "upload the board's edgefusion-run and a model over SFTP (hash-checked; unchanged files skipped)", run_push},
        {"remote-profile",
         "remote-profile --board NAME[,NAME2] MODEL [--local] [--perplexity TEXT] [--json] [--pp N] [--tg N] [-r N] [-t N] "
         "[-c N] [--chunks N] [--accept-new-host-key] [--known-hosts FILE]",
         "profile on boards (concurrently) and locally: tokens/s, peak memory, per-layer time in one table", run_remote_profile},
    };
    return table;
}

}  // namespace ef::cli
