#include <cstdio>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "core/value_check.h"

namespace ef::cli {

int run_convert(const std::vector<std::string>& argv, Progress& progress) {
    const std::vector<OptionSpec> specs = {
        {"--tokenizer", "", true, "llama2.c tokenizer .bin for a llama2.c input"},
        {"--allow-nonfinite", "", false, "write even when weights are NaN or infinite (refused by default)"},
    };
    auto args = parse_args(argv, specs);
    if (!args) return fail("convert", args.message() + "\n" + options_help(specs));
    if (args->positional.size() != 2) return fail("convert", "expected IN and OUT\n" + options_help(specs));
    const auto& in = args->positional[0];
    const auto& out = args->positional[1];
    if (!format_for_extension(out))
        return fail("convert", out + ": cannot tell the output format from the extension (.gguf, .safetensors, .h5, .bin)");
    LoadOptions opts;
    opts.tokenizer_path = args->get("--tokenizer").value_or("");
    auto model = load_model(in, opts, progress);
    if (!model) return fail("convert", model.message());
    if (progress.cancelled()) return fail("convert", "cancelled");
    if (!args->has("--allow-nonfinite"))
        if (auto st = check_finite(*model, in, progress); !st)
            return fail("convert", st.message() + " (use --allow-nonfinite to write it anyway)");
    if (auto st = save_model(*model, out, {}, progress); !st) return fail("convert", st.message());
    std::fprintf(stdout, "%s (%s, %s) -> %s\n", in.c_str(), model->source_format.c_str(), model->architecture.c_str(),
                 out.c_str());
    return 0;
}

}  // namespace ef::cli
