// edgefusion evaluate: perplexity, KL divergence against saved base logits, zero-shot tasks.
// A thin shell over runtime/eval (the workbench's evaluation panel calls the same functions).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "core/train/checkpoint_path.h"
#include "core/train/train_config.h"
#include "core/train/train_data.h"
#include "runtime/eval/perplexity.h"
#include "runtime/calib/calibration.h"
#include "runtime/eval/tasks.h"

namespace ef::cli {
namespace {

Result<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open the text file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error(path + ": read error");
    return ss.str();
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void emit(bool json, const std::string& md, const std::string& js) {
    std::fputs((json ? js + "\n" : md).c_str(), stdout);
}

}  // namespace

int run_evaluate(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "evaluate";
    const std::vector<OptionSpec> specs = {
        {"--model", "-m", true, "model file (any format edgefusion reads)"},
        {"--checkpoint", "", true, "same as --model; also a folder (DIR/checkpoint_final). A training checkpoint with no mode "
                                  "given: perplexity on its run's held-out text"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin, or a GGUF whose vocabulary to use"},
        {"--perplexity", "", true, "text file: perplexity in llama-perplexity's way"},
        {"--ctx-size", "-c", true, "window size for perplexity/KL (default 512, at most the model's context)"},
        {"--chunks", "", true, "at most this many windows (default: all)"},
        {"--heldout", "", false, "perplexity on the text without its last 10% of lines (what `quantize` calibrates on by default)"},
        {"--kl-base-out", "", true, "save the model's log-probabilities over --perplexity TEXT to FILE"},
        {"--kl-top-k", "", true, "with --kl-base-out: keep only the top K log-probs per position (default 0: all)"},
        {"--kl-base", "", true, "compare the model with a saved base: KL divergence, top-1 agreement"},
        {"--task", "", true, "arc_easy|arc_challenge|piqa|winogrande|hellaswag|lambada (comma-separated list or 'all')"},
        {"--limit", "", true, "first N items of each task"},
        {"--eval-dir", "", true, "folder of the task files (default ../shared/eval)"},
        {"--json", "", false, "JSON instead of a Markdown table"},
    };
    const std::string help = options_help(specs);
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + help);
    if (!args->positional.empty()) return fail(cmd, "unexpected argument " + args->positional[0] + "\n" + help);
    const std::string given = args->get("--model").value_or(args->get("--checkpoint").value_or(""));
    if (given.empty()) return fail(cmd, "missing --model (-m) or --checkpoint\n" + help);
    auto resolved = train::resolve_model_path(given);
    if (!resolved) return fail(cmd, resolved.message());
    const std::string model_path = *resolved;
    int modes = int(args->has("--kl-base")) + int(args->has("--task")) +
                int(args->has("--perplexity") || args->has("--kl-base-out"));
    // The seed's `evaluate --checkpoint DIR/checkpoint_final`: the run's config.yaml names its text
    // and validation split; the held-out tokens are what the trainer never trained on.
    std::string heldout_config;
    if (modes == 0 && given != model_path) {
        const std::string yaml = given + "/config.yaml";
        std::error_code ec;
        if (std::filesystem::exists(yaml, ec)) {
            heldout_config = yaml;
            modes = 1;
        }
    }
    if (modes != 1) return fail(cmd, "give exactly one of --perplexity TEXT [--kl-base-out FILE], --kl-base FILE, --task NAME\n" + help);
    if (args->has("--kl-base-out") && !args->has("--perplexity")) return fail(cmd, "--kl-base-out needs --perplexity TEXT");
    const bool json = args->has("--json");

    // Check cheap arguments before loading the model.
    auto n_ctx = args->get_int("--ctx-size", 512, 4, int64_t(1) << 20);
    auto chunks = args->get_int("--chunks", 0, 1, int64_t(1) << 30);
    auto top_k = args->get_int("--kl-top-k", 0, 0, int64_t(1) << 24);
    auto limit = args->get_int("--limit", 0, 1, int64_t(1) << 30);
    for (const auto* r : {&n_ctx, &chunks, &top_k, &limit})
        if (!*r) return fail(cmd, r->message());
    std::vector<eval::Task> tasks;
    if (auto t = args->get("--task")) {
        std::string list = *t == "all" ? "arc_easy,arc_challenge,piqa,winogrande,hellaswag,lambada" : *t;
        std::stringstream ss(list);
        for (std::string name; std::getline(ss, name, ',');) {
            auto task = eval::task_from_name(name);
            if (!task) return fail(cmd, "unknown task '" + name + "' (arc_easy, arc_challenge, piqa, winogrande, hellaswag, lambada)");
            tasks.push_back(*task);
        }
    }
    std::string text;
    if (auto p = args->get("--perplexity")) {
        auto t = read_text(*p);
        if (!t) return fail(cmd, t.message());
        text = std::move(*t);
        if (args->has("--heldout")) text = std::string(split_calibration_text(text).eval);
    }

    LoadOptions lo;
    const std::string tok_path = args->get("--tokenizer").value_or("");
    if (!tok_path.empty() && !ends_with(tok_path, ".gguf")) lo.tokenizer_path = tok_path;
    auto model = load_model(model_path, lo, progress);
    if (!model) return fail(cmd, model.message());
    int64_t window = *n_ctx;
    if (!args->has("--ctx-size")) window = std::min<int64_t>(window, model->config.context_length);
    if (window > model->config.context_length && args->has("--perplexity"))
        return fail(cmd, "--ctx-size " + std::to_string(window) + " exceeds the model's context length " +
                             std::to_string(model->config.context_length));

    if (auto base = args->get("--kl-base")) {
        auto r = eval::compare_kl_base(*model, *base, {}, progress);
        if (!r) return fail(cmd, r.message());
        emit(json, eval::to_markdown(*r), eval::to_json(*r));
        return 0;
    }

    Vocab vocab = model->vocab;
    if (ends_with(tok_path, ".gguf")) {
        auto v = read_gguf_vocab(tok_path);
        if (!v) return fail(cmd, v.message());
        vocab = std::move(*v);
    }
    auto tok = Tokenizer::create(vocab);
    if (!tok) return fail(cmd, model_path + ": no usable tokenizer: " + tok.message());
    if (!heldout_config.empty()) {
        auto yaml = read_text(heldout_config);
        if (!yaml) return fail(cmd, yaml.message());
        // A relative data.train_text was relative to the original config file, which the run does
        // not record: try it from the checkpoint, the run folder and the current folder.
        namespace fs = std::filesystem;
        std::optional<train::TrainConfig> c;
        for (const fs::path& base : {fs::path(given), fs::path(given) / "..", fs::current_path()}) {
            auto ci = train::parse_train_config(*yaml, (base / "config.yaml").string());
            if (!ci) return fail(cmd, heldout_config + ": " + ci.message());
            std::error_code ec;
            if (fs::exists(ci->data.train_text, ec)) {
                c = std::move(*ci);
                break;
            }
        }
        if (!c)
            return fail(cmd, heldout_config + ": the run's text (data.train_text) is not found from the checkpoint, its run folder or "
                             "the current folder; pass --perplexity TEXT");
        auto t = read_text(c->data.train_text);
        if (!t) return fail(cmd, t.message());
        // The trainer's split of the tokens (trainer.cpp), decoded back to the text it stands for.
        const train::TokenData d = train::split_tokens(tok->encode(*t, false), c->data.val_fraction);
        if (d.val.empty()) return fail(cmd, heldout_config + ": the run held out no text ('data.val_fraction' is 0); pass --perplexity TEXT");
        text = tok->decode(d.val);
        if (!args->has("--ctx-size")) window = std::min<int64_t>(window, int64_t(d.val.size()));
        if (!json) std::printf("Perplexity on the held-out %zu tokens of %s (%s)\n\n", d.val.size(), c->data.train_text.c_str(),
                               heldout_config.c_str());
    }

    if (!tasks.empty()) {
        const std::string dir = args->get("--eval-dir").value_or("../shared/eval");
        auto scorer = eval::SessionScorer::create(*model, *tok);
        if (!scorer) return fail(cmd, scorer.message());
        std::vector<eval::TaskResult> results;
        for (eval::Task t : tasks) {
            auto items = eval::load_task(t, dir + "/" + eval::task_file(t), *limit);
            if (!items) return fail(cmd, items.message());
            auto r = eval::run_task(t, *items, **scorer, progress);
            if (!r) return fail(cmd, r.message());
            results.push_back(std::move(*r));
        }
        emit(json, eval::to_markdown(results), eval::to_json(results));
        return 0;
    }

    eval::PerplexityOptions po;
    po.n_ctx = int(window);
    po.max_chunks = int(*chunks);
    if (auto out = args->get("--kl-base-out")) {
        eval::KlBaseOptions ko;
        ko.ppl = po;
        ko.top_k = int(*top_k);
        auto r = eval::write_kl_base(*model, *tok, text, *out, ko, progress);
        if (!r) return fail(cmd, r.message());
        if (!json) std::printf("KL base written to %s\n\n", out->c_str());
        emit(json, eval::to_markdown(*r), eval::to_json(*r));
        return 0;
    }
    auto r = eval::perplexity(*model, *tok, text, po, progress);
    if (!r) return fail(cmd, r.message());
    emit(json, eval::to_markdown(*r), eval::to_json(*r));
    return 0;
}

}  // namespace ef::cli
