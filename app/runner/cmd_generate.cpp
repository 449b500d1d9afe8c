// generate: stream a continuation of the prompt to stdout (prompt first, like llama-simple);
// timings go to stderr.
#include <cstdio>

#include "app/runner/runner.h"
#include "runtime/generate.h"

namespace ef::run {

int run_generate(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "generate";
    cli::Args a;
    if (!parse(cmd, argv,
               {{"--prompt", "-p", true, "prompt text"},
                {"--n-predict", "-n", true, "tokens to generate (default 128)"},
                {"--temp", "", true, "temperature (default 0.8; 0 = greedy)"},
                {"--top-k", "", true, "top-k (default 40; 0 = off)"},
                {"--top-p", "", true, "top-p (default 0.95; 1 = off)"},
                {"--min-p", "", true, "min-p (default 0.05; 0 = off)"},
                {"--repeat-penalty", "", true, "repetition penalty (default 1.0 = off)"},
                {"--repeat-last-n", "", true, "tokens the penalty looks back at (default 64; 0 = off, -1 = all)"},
                {"--seed", "-s", true, "RNG seed (default 42)"},
                {"--ignore-eos", "", false, "do not stop at end-of-generation tokens"},
                {"--json", "", false, "no streaming: print {prompt_tokens, tokens, text, ...} as JSON at the end"}},
               a))
        return kUsage;
    const auto prompt = a.get("--prompt");
    if (!prompt) return fail(cmd, "-p PROMPT is required", kUsage);

    GenerateOptions go;
    SamplerParams& sp = go.sampling;
    auto n = a.get_int("--n-predict", 128, 0, 1 << 24);
    auto top_k = a.get_int("--top-k", sp.top_k, 0, 1 << 30);
    auto last_n = a.get_int("--repeat-last-n", sp.repeat_last_n, -1, 1 << 30);
    auto seed = a.get_int("--seed", 42, 0, INT64_MAX);
    auto temp = get_float(a, "--temp", sp.temperature, 0.0, 1e6);
    auto top_p = get_float(a, "--top-p", sp.top_p, 0.0, 1.0);
    auto min_p = get_float(a, "--min-p", sp.min_p, 0.0, 1.0);
    auto pen = get_float(a, "--repeat-penalty", sp.repeat_penalty, 1e-6, 1e6);
    for (const std::string* err : {n ? nullptr : &n.message(), top_k ? nullptr : &top_k.message(),
                                   last_n ? nullptr : &last_n.message(), seed ? nullptr : &seed.message(),
                                   temp ? nullptr : &temp.message(), top_p ? nullptr : &top_p.message(),
                                   min_p ? nullptr : &min_p.message(), pen ? nullptr : &pen.message()})
        if (err) return fail(cmd, *err, kUsage);
    go.n_predict = int(*n);
    sp.top_k = int32_t(*top_k);
    sp.repeat_last_n = int32_t(*last_n);
    sp.seed = uint64_t(*seed);
    sp.temperature = float(*temp);
    sp.top_p = float(*top_p);
    sp.min_p = float(*min_p);
    sp.repeat_penalty = float(*pen);
    go.stop_at_eog = !a.has("--ignore-eos");

    Loaded L;
    if (int rc = load(cmd, a, L)) return rc;
    auto tok = Tokenizer::create(L.model->vocab);
    if (!tok) return fail(cmd, L.model->source_path + ": " + tok.message());
    SessionOptions so;
    so.routing = L.routing;
    so.threads = L.threads;
    auto s = Session::create(*L.model, so);
    if (!s) return fail(cmd, s.message());

    const bool json = a.has("--json");
    TokenCallback stream;
    if (!json) {
        std::fwrite(prompt->data(), 1, prompt->size(), stdout);
        std::fflush(stdout);
        stream = [](int32_t, const std::string& piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
            return true;
        };
    }
    auto r = generate(*s, *tok, *prompt, go, stream, progress);
    if (!json) std::fputc('\n', stdout);
    if (!r) return fail(cmd, r.message());
    const double pp = r->prefill_seconds > 0 ? double(r->prompt_tokens.size()) / r->prefill_seconds : 0.0;
    const double tg = r->decode_seconds > 0 ? double(r->tokens.size()) / r->decode_seconds : 0.0;
    if (json) {
        auto ids = [](const std::vector<int32_t>& v) {
            std::string o = "[";
            for (size_t i = 0; i < v.size(); ++i) o += (i ? "," : "") + std::to_string(v[i]);
            return o + "]";
        };
        std::printf("{\"prompt_tokens\": %s, \"tokens\": %s, \"text\": \"%s\", \"stop\": \"%s\", \"prefill_ts\": %.6g, "
                    "\"decode_ts\": %.6g}\n",
                    ids(r->prompt_tokens).c_str(), ids(r->tokens).c_str(), json_escape(r->text).c_str(),
                    std::string(stop_reason_name(r->stop)).c_str(), pp, tg);
    }
    std::fprintf(stderr, "\nprompt: %zu tokens, %.2f t/s | generated: %zu tokens, %.2f t/s | stop: %s | threads: %d\n",
                 r->prompt_tokens.size(), pp, r->tokens.size(), tg, std::string(stop_reason_name(r->stop)).c_str(), L.threads);
    return r->stop == StopReason::Cancelled ? kError : 0;
}

}  // namespace ef::run
