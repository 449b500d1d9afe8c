// perplexity: llama-perplexity's measure (runtime/eval/perplexity.h): windows of n_ctx tokens, BOS
// first when the vocabulary adds it, only the second half of each window scored. Prints the running
// PPL per chunk as llama-perplexity does ("[i]ppl,") and "Final estimate: PPL = X +/- Y".
#include <cstdio>
#include <fstream>
#include <sstream>

#include "app/runner/runner.h"
#include "runtime/eval/perplexity.h"
#include "runtime/tokenizer/tokenizer.h"

namespace ef::run {

int run_perplexity(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "perplexity";
    cli::Args a;
    if (!parse(cmd, argv,
               {{"--file", "-f", true, "text file"},
                {"--ctx-size", "-c", true, "tokens per window (default: min(512, the model's context))"},
                {"--chunks", "", true, "at most this many windows (default -1: all)"}},
               a))
        return kUsage;
    const auto file = a.get("--file");
    if (!file) return fail(cmd, "-f TEXT is required", kUsage);
    auto c_opt = a.get_int("--ctx-size", 0, 4, 1 << 24);
    if (!c_opt) return fail(cmd, c_opt.message(), kUsage);
    auto chunks = a.get_int("--chunks", -1, -1, 1 << 30);
    if (!chunks) return fail(cmd, chunks.message(), kUsage);
    if (*chunks == 0) return fail(cmd, "--chunks 0: nothing to score (-1 means all)", kUsage);

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
    eval::PerplexityOptions po;
    po.n_ctx = int(*c_opt > 0 ? *c_opt : std::min<int64_t>(512, m.config.context_length));
    po.max_chunks = *chunks > 0 ? int(*chunks) : 0;
    po.session.routing = L.routing;
    po.session.threads = L.threads;
    if (po.n_ctx > m.config.context_length)
        std::fprintf(stderr, "edgefusion-run perplexity: warning: -c %d exceeds the model's trained context %lld\n", po.n_ctx,
                     (long long)m.config.context_length);

    auto r = eval::perplexity(m, *tok, text, po, progress);
    if (!r) return fail(cmd, *file + ": " + r.message());
    std::fprintf(stderr, "perplexity: %lld tokens, %d chunks, n_ctx=%d, scoring %lld per chunk\n", (long long)r->n_text_tokens,
                 r->n_chunks, r->n_ctx, (long long)(r->count / std::max(1, r->n_chunks)));
    for (size_t i = 0; i < r->cumulative_ppl.size(); ++i) std::printf("[%zu]%.4f,", i + 1, r->cumulative_ppl[i]);
    std::printf("\n");
    if (r->ppl_error > 0) std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r->ppl, r->ppl_error);
    else std::printf("Final estimate: PPL = %.4f +/- nan\n", r->ppl);
    return 0;
}

}  // namespace ef::run
