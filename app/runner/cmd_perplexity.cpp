// perplexity: llama-perplexity's measure. The text is tokenized once (BOS first when the vocabulary
// adds it); chunk i is tokens [i*n_ctx, (i+1)*n_ctx) with its first token replaced by BOS (when the
// vocabulary adds it), run from an empty context; only the second half is scored: the logits at
// positions n_ctx/2 .. n_ctx-2 against the next token. PPL = exp(mean NLL); the error is
// PPL * sqrt((mean(NLL^2) - mean(NLL)^2) / (count - 1)).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "app/runner/runner.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::run {

int run_perplexity(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "perplexity";
    cli::Args a;
    if (!parse(cmd, argv,
               {{"--file", "-f", true, "text file"},
                {"--ctx-size", "-c", true, "tokens per window (default: min(512, the model's context))"},
                {"--chunks", "", true, "at most this many windows (default: all)"}},
               a))
        return kUsage;
    const auto file = a.get("--file");
    if (!file) return fail(cmd, "-f TEXT is required", kUsage);
    auto c_opt = a.get_int("--ctx-size", 0, 4, 1 << 20);
    if (!c_opt) return fail(cmd, c_opt.message(), kUsage);
    auto chunks_opt = a.get_int("--chunks", -1, -1, 1 << 30);
    if (!chunks_opt) return fail(cmd, chunks_opt.message(), kUsage);

    std::ifstream in(*file, std::ios::binary);
    if (!in) return fail(cmd, "cannot open text file '" + *file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();

    Loaded L;
    if (int rc = load(cmd, a, L)) return rc;
    const Model& m = *L.model;
    auto tok = Tokenizer::create(m.vocab);
    if (!tok) return fail(cmd, m.source_path + ": " + tok.message());
    const int64_t n_ctx = *c_opt > 0 ? *c_opt : std::min<int64_t>(512, m.config.context_length);
    if (n_ctx < 4) return fail(cmd, "the context must hold at least 4 tokens, got " + std::to_string(n_ctx));
    if (n_ctx > m.config.context_length)
        std::fprintf(stderr, "edgefusion-run perplexity: warning: -c %lld exceeds the model's trained context %lld\n",
                     (long long)n_ctx, (long long)m.config.context_length);

    const std::vector<int32_t> tokens = tok->encode(text, true, false);
    if (int64_t(tokens.size()) < 2 * n_ctx)
        return fail(cmd, *file + " tokenizes to " + std::to_string(tokens.size()) + " tokens; perplexity with a context of " +
                             std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx));
    int64_t n_chunk = int64_t(tokens.size()) / n_ctx;
    if (*chunks_opt >= 0) n_chunk = std::min<int64_t>(n_chunk, *chunks_opt);
    if (n_chunk < 1) return fail(cmd, "--chunks 0: nothing to score", kUsage);

    SessionOptions so;
    so.routing = L.routing;
    so.max_positions = n_ctx;
    auto s = Session::create(m, so);
    if (!s) return fail(cmd, s.message());

    const bool add_bos = m.vocab.add_bos && m.vocab.bos_id >= 0;
    const int64_t first = n_ctx / 2;
    std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks, n_ctx=%lld, scoring %lld per chunk\n", tokens.size(),
                 (long long)n_chunk, (long long)n_ctx, (long long)(n_ctx - 1 - first));
    double nll = 0.0, nll2 = 0.0;
    int64_t count = 0;
    for (int64_t i = 0; i < n_chunk; ++i) {
        s->reset();
        const int64_t start = i * n_ctx;
        for (int64_t k = 0; k < n_ctx - 1; ++k) {
            if (progress.cancelled()) return fail(cmd, "cancelled");
            const int32_t t = (k == 0 && add_bos) ? m.vocab.bos_id : tokens[size_t(start + k)];
            auto logits = s->eval(t);
            if (!logits) return fail(cmd, logits.message());
            if (k < first) continue;
            // -log softmax(logits)[next], max-subtracted, the sum in double
            const auto& l = *logits;
            float mx = l[0];
            for (float v : l) mx = std::max(mx, v);
            double sum = 0.0;
            for (float v : l) sum += std::exp(double(v) - mx);
            const double v = double(mx) + std::log(sum) - double(l[size_t(tokens[size_t(start + k + 1)])]);
            nll += v;
            nll2 += v * v;
            ++count;
        }
        std::printf("[%lld]%.4f,", (long long)(i + 1), std::exp(nll / double(count)));
        std::fflush(stdout);
        progress.report(double(i + 1) / double(n_chunk), "perplexity");
    }
    std::printf("\n");
    const double mean = nll / double(count);
    const double ppl = std::exp(mean);
    const double var = nll2 / double(count) - mean * mean;
    if (var > 0 && count > 1) std::printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, ppl * std::sqrt(var / double(count - 1)));
    else std::printf("Final estimate: PPL = %.4f +/- nan\n", ppl);
    return 0;
}

}  // namespace ef::run
