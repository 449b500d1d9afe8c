// edgefusion infer: the seed's `infer --checkpoint ... --prompt "..." [--profile]` — generate a
// continuation with runtime/generate.h from a model file or a checkpoint folder (training's
// DIR/checkpoint_final/, DIR/checkpoint_quantized/). The prompt and the continuation stream to
// stdout; --profile then adds what edgefusion-run profile reports for this generation: prefill and
// decode tokens/s, peak memory, GFLOPs/token on the routed path and the time per layer and op kind.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "core/train/checkpoint_path.h"
#include "runtime/generate.h"
#include "runtime/profile.h"

namespace ef::cli {
namespace {

Result<double> get_number(const Args& a, const std::string& name, double fallback, double lo, double hi) {
    const auto v = a.get(name);
    if (!v) return fallback;
    char* end = nullptr;
    const double d = std::strtod(v->c_str(), &end);
    if (v->empty() || end != v->c_str() + v->size() || !std::isfinite(d) || d < lo || d > hi)
        return make_error(name + ": expected a number within " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + *v + "'");
    return d;
}

std::string mib(uint64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / (1024.0 * 1024.0));
    return buf;
}

}  // namespace

int run_infer(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "infer";
    const std::vector<OptionSpec> specs = {
        {"--checkpoint", "", true, "model file, or a folder holding one (e.g. DIR/checkpoint_final)"},
        {"--model", "-m", true, "same as --checkpoint"},
        {"--prompt", "-p", true, "prompt text"},
        {"--n-predict", "-n", true, "tokens to generate (default 64)"},
        {"--temp", "", true, "temperature (default 0.8; 0 = greedy)"},
        {"--top-k", "", true, "top-k (default 40; 0 = off)"},
        {"--top-p", "", true, "top-p (default 0.95; 1 = off)"},
        {"--seed", "-s", true, "sampling seed (default 42)"},
        {"--soft", "", false, "soft routing (both branches mixed by g) instead of the hard routing boards run"},
        {"--profile", "", false, "after the text: tokens/s, peak memory, GFLOPs/token, per-layer time"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin for a llama2.c checkpoint"},
        {"--threads", "-t", true, "threads (default 1)"},
    };
    const std::string help = options_help(specs);
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + help);
    if (!args->positional.empty()) return fail(cmd, "unexpected argument " + args->positional[0] + "\n" + help);
    const std::string ck = args->get("--checkpoint").value_or(args->get("--model").value_or(""));
    if (ck.empty()) return fail(cmd, "missing --checkpoint PATH\n" + help);
    const auto prompt = args->get("--prompt");
    if (!prompt) return fail(cmd, "missing --prompt TEXT\n" + help);
    auto n = args->get_int("--n-predict", 64, 0, 1 << 24);
    auto top_k = args->get_int("--top-k", 40, 0, 1 << 30);
    auto seed = args->get_int("--seed", 42, 0, INT64_MAX);
    auto threads = args->get_int("--threads", 1, 1, 256);
    for (const auto* r : {&n, &top_k, &seed, &threads})
        if (!*r) return fail(cmd, r->message());
    auto temp = get_number(*args, "--temp", 0.8, 0.0, 1e6);
    auto top_p = get_number(*args, "--top-p", 0.95, 0.0, 1.0);
    for (const auto* r : {&temp, &top_p})
        if (!*r) return fail(cmd, r->message());

    auto file = train::resolve_model_path(ck);
    if (!file) return fail(cmd, file.message());
    if (*file != ck) std::fprintf(stderr, "edgefusion %s: reading %s\n", cmd, file->c_str());
    LoadOptions lo;
    if (auto t = args->get("--tokenizer")) lo.tokenizer_path = *t;
    auto model = load_model(*file, lo, progress);
    if (!model) return fail(cmd, model.message());
    auto tok = Tokenizer::create(model->vocab);
    if (!tok) return fail(cmd, *file + ": no usable tokenizer: " + tok.message());
    SessionOptions so;
    so.routing = args->has("--soft") ? Routing::Soft : Routing::Hard;
    so.threads = int(*threads);
    auto s = Session::create(*model, so);
    if (!s) return fail(cmd, s.message());

    GenerateOptions go;
    go.n_predict = int(*n);
    go.sampling.temperature = float(*temp);
    go.sampling.top_k = int32_t(*top_k);
    go.sampling.top_p = float(*top_p);
    go.sampling.seed = uint64_t(*seed);
    const bool profile = args->has("--profile");
    SessionTimings t;
    if (profile) s->set_timings(&t);
    std::fwrite(prompt->data(), 1, prompt->size(), stdout);
    std::fflush(stdout);
    auto r = generate(*s, *tok, *prompt, go,
                      [](int32_t, const std::string& piece) {
                          std::fwrite(piece.data(), 1, piece.size(), stdout);
                          std::fflush(stdout);
                          return true;
                      },
                      progress);
    std::fputc('\n', stdout);
    s->set_timings(nullptr);
    if (!r) return fail(cmd, r.message());
    if (r->stop == StopReason::Cancelled) return fail(cmd, "cancelled");
    const double pp = r->prefill_seconds > 0 ? double(r->prompt_tokens.size()) / r->prefill_seconds : 0.0;
    const double tg = r->decode_seconds > 0 ? double(r->tokens.size()) / r->decode_seconds : 0.0;
    if (!profile) {
        std::fprintf(stderr, "prompt %zu tokens, %.2f t/s | generated %zu tokens, %.2f t/s | stop: %s\n", r->prompt_tokens.size(), pp,
                     r->tokens.size(), tg, std::string(stop_reason_name(r->stop)).c_str());
        return 0;
    }
    // The profile of this very generation: the session's timers were on from the prompt onward.
    const auto path = layer_paths(*s, so.routing);
    const int64_t n_past = int64_t(r->prompt_tokens.size() + r->tokens.size()) / 2;  // the mean context
    const double per_tok_ms = t.evals > 0 ? 1e3 / double(t.evals) : 0.0;
    std::printf("\nprofile\n");
    std::printf("model        %s (%s)\n", file->c_str(), model->architecture.c_str());
    std::printf("routing      %s, %d thread(s)\n", so.routing == Routing::Hard ? "hard" : "soft", so.threads);
    std::printf("prefill      %zu tokens, %.2f t/s\n", r->prompt_tokens.size(), pp);
    std::printf("decode       %zu tokens, %.2f t/s (stop: %s)\n", r->tokens.size(), tg, std::string(stop_reason_name(r->stop)).c_str());
    std::printf("weights      %s\n", mib(model->weight_bytes()).c_str());
    std::printf("KV cache     %s at n_ctx %lld (F32)\n", mib(kv_cache_bytes(*model, path, s->max_positions())).c_str(),
                (long long)s->max_positions());
    std::printf("SSM state    %s\n", mib(ssm_state_bytes(*model, path)).c_str());
    std::printf("peak RSS     %s\n", mib(peak_rss_bytes()).c_str());
    std::printf("work         %.6f GFLOPs/token (at context %lld)\n\n", flops_per_token(*model, path, n_past) * 1e-9,
                (long long)(n_past + 1));
    std::printf("layer  path                        ms/token\n");
    for (size_t il = 0; il < t.layer_s.size() && il < path.size(); ++il) {
        const LayerPath& p = path[il];
        std::string d = p.attention ? "attention" : "";
        if (p.ssm != MixerKind::Attention) d += std::string(d.empty() ? "" : "+") + std::string(mixer_name(p.ssm));
        if (p.ffn) d += "+ffn";
        std::printf("%5zu  %-26s  %8.4f\n", il, d.c_str(), t.layer_s[il] * per_tok_ms);
    }
    std::printf("\nop kind        ms/token\n");
    const std::pair<const char*, double> ops[] = {{"embed", t.embed_s},   {"attention", t.attention_s}, {"mamba1", t.mamba1_s},
                                                  {"mamba2", t.mamba2_s}, {"ffn", t.ffn_s},             {"output", t.output_s}};
    for (const auto& [name, secs] : ops) std::printf("%-13s  %8.4f\n", name, secs * per_tok_ms);
    return 0;
}

}  // namespace ef::cli
