#include <cstdio>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "core/inspect.h"
#include "core/value_check.h"

namespace ef::cli {

int run_inspect(const std::vector<std::string>& argv, Progress& progress) {
    const std::vector<OptionSpec> specs = {
        {"--json", "", false, "print JSON instead of text"},
        {"--tensors", "", false, "list every tensor under its layer (text mode)"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin for a llama2.c checkpoint"},
        {"--check", "", false, "read every tensor and fail if any weight is NaN or infinite"},
    };
    auto args = parse_args(argv, specs);
    if (!args) return fail("inspect", args.message() + "\n" + options_help(specs));
    if (args->positional.size() != 1) return fail("inspect", "expected one PATH\n" + options_help(specs));
    LoadOptions opts;
    opts.tokenizer_path = args->get("--tokenizer").value_or("");
    auto model = load_model(args->positional[0], opts, progress);
    if (!model) return fail("inspect", model.message());
    if (args->has("--check"))
        if (auto st = check_finite(*model, args->positional[0], progress); !st) return fail("inspect", st.message());
    const auto summary = summarize(*model);
    if (args->has("--json")) {
        const auto text = summary_to_json(summary).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fputc('\n', stdout);
    } else {
        const auto text = summary_to_text(summary, args->has("--tensors"));
        std::fwrite(text.data(), 1, text.size(), stdout);
    }
    return 0;
}

}  // namespace ef::cli
