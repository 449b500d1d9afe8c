// edgefusion export-llamacpp: a GGUF llama.cpp runs (quant/export_llamacpp.h).
#include <algorithm>
#include <cstdio>
#include <map>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/formats/format.h"
#include "quant/export_llamacpp.h"

namespace ef::cli {
namespace {

// --tensor-type may be repeated (and comma-separated); the parser keeps one value per option, so
// these are taken out first. NAME=TYPE each.
Result<std::map<std::string, DType>> take_tensor_types(std::vector<std::string>& argv) {
    std::map<std::string, DType> out;
    std::vector<std::string> rest;
    auto add_list = [&](const std::string& list) -> Status {
        size_t at = 0;
        while (at <= list.size()) {
            const size_t comma = std::min(list.find(',', at), list.size());
            const std::string item = list.substr(at, comma - at);
            at = comma + 1;
            if (item.empty()) continue;
            const size_t eq = item.rfind('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
                return make_error("--tensor-type: expected NAME=TYPE, got '" + item + "'");
            const auto t = dtype_from_name(item.substr(eq + 1));
            if (!t) return make_error("--tensor-type: unknown type '" + item.substr(eq + 1) + "'");
            out[item.substr(0, eq)] = *t;
        }
        return {};
    };
    for (size_t i = 0; i < argv.size(); ++i) {
        if (argv[i] == "--tensor-type") {
            if (i + 1 >= argv.size()) return make_error("--tensor-type needs NAME=TYPE");
            EF_TRY_STATUS(add_list(argv[++i]));
        } else if (argv[i].rfind("--tensor-type=", 0) == 0) {
            EF_TRY_STATUS(add_list(argv[i].substr(14)));
        } else {
            rest.push_back(argv[i]);
        }
    }
    argv = std::move(rest);
    return out;
}

}  // namespace

int run_export_llamacpp(const std::vector<std::string>& argv_in, Progress& progress) {
    const char* cmd = "export-llamacpp";
    const std::vector<OptionSpec> specs = {
        {"--output", "-o", true, "output .gguf"},
        {"--type", "", true, "ggml type of every quantizable weight (default: keep ggml types, EF types -> nearest ggml type)"},
        {"--tensor-type", "", true, "NAME=TYPE for one tensor (repeatable, or comma-separated)"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin for a llama2.c input"},
        {"--threads", "-t", true, "quantizer threads (default: all cores)"},
    };
    std::vector<std::string> argv = argv_in;
    auto types = take_tensor_types(argv);
    if (!types) return fail(cmd, types.message() + "\n" + options_help(specs));
    auto args = parse_args(argv, specs);
    if (!args) return fail(cmd, args.message() + "\n" + options_help(specs));
    if (args->positional.size() != 1) return fail(cmd, "expected one MODEL\n" + options_help(specs));
    const auto out = args->get("--output");
    if (!out) return fail(cmd, "missing -o OUT.gguf\n" + options_help(specs));
    if (out->size() < 5 || out->compare(out->size() - 5, 5, ".gguf") != 0) return fail(cmd, *out + ": llama.cpp reads .gguf files");

    LlamacppExportOptions o;
    o.tensor_types = std::move(*types);
    if (auto t = args->get("--type")) {
        const auto dt = dtype_from_name(*t);
        if (!dt) return fail(cmd, "--type: unknown type '" + *t + "'");
        o.default_type = *dt;
    }
    auto threads = args->get_int("--threads", 0, 0, 1024);
    if (!threads) return fail(cmd, threads.message());
    o.threads = int(*threads);

    LoadOptions lo;
    lo.tokenizer_path = args->get("--tokenizer").value_or("");
    auto model = load_model(args->positional[0], lo, progress);
    if (!model) return fail(cmd, model.message());
    auto ex = export_for_llamacpp(*model, o, progress);
    if (!ex) return fail(cmd, ex.message());
    if (auto st = save_model(*ex, *out, {}, progress); !st) return fail(cmd, st.message());
    std::map<std::string, int> counts;
    for (const Tensor& t : ex->tensors) ++counts[std::string(dtype_name(t.dtype))];
    std::string summary;
    for (const auto& [name, n] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + name;
    std::fprintf(stdout, "%s (%s) -> %s (%s; %s)\n", args->positional[0].c_str(), model->architecture.c_str(), out->c_str(),
                 ex->architecture.c_str(), summary.c_str());
    return 0;
}

}  // namespace ef::cli
