#include <cstdio>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/arch/architecture.h"
#include "core/formats/format.h"
#include "core/synth.h"

namespace ef::cli {

int run_synth(const std::vector<std::string>& argv, Progress& progress) {
    const std::vector<OptionSpec> specs = {
        {"--arch", "", true, "architecture (see below)"},
        {"--dim", "", true, "residual width"},
        {"--layers", "", true, "number of layers"},
        {"--vocab", "", true, "vocabulary size"},
        {"--type", "", true, "type of the matrix weights: f32 (default), f16, bf16, q8_0, q4_0, q4_K, ..."},
        {"--seed", "", true, "random seed (default 0)"},
        {"--heads", "", true, "attention heads"},
        {"--kv-heads", "", true, "attention key/value heads (GQA)"},
        {"--ffn", "", true, "SwiGLU hidden width"},
        {"--d-state", "", true, "SSM state size"},
        {"--context", "", true, "context length"},
        {"--output", "-o", true, "output file (.gguf, .safetensors, .h5, .bin)"},
    };
    std::string archs;
    for (const auto* a : architectures()) archs += (archs.empty() ? "" : ", ") + std::string(a->name);
    const std::string help = options_help(specs) + "architectures: " + archs + "\n";
    auto args = parse_args(argv, specs);
    if (!args) return fail("synth", args.message() + "\n" + help);
    if (!args->positional.empty()) return fail("synth", "unexpected argument " + args->positional[0] + "\n" + help);
    for (const char* required : {"--arch", "--dim", "--layers", "--vocab", "--output"})
        if (!args->has(required)) return fail("synth", std::string("missing ") + required + "\n" + help);

    SynthOptions o;
    o.arch = *args->get("--arch");
    if (!find_architecture(o.arch)) return fail("synth", "unknown architecture '" + o.arch + "' (known: " + archs + ")");
    const int64_t big = int64_t(1) << 20;
    auto dim = args->get_int("--dim", 0, 1, big);
    auto layers = args->get_int("--layers", 0, 1, 4096);
    auto vocab = args->get_int("--vocab", 0, 1, int64_t(1) << 24);
    auto seed = args->get_int("--seed", 0, 0, INT64_MAX);
    for (const auto* r : {&dim, &layers, &vocab, &seed})
        if (!*r) return fail("synth", r->message());
    o.dim = *dim;
    o.n_layers = *layers;
    o.vocab = *vocab;
    o.seed = uint64_t(*seed);
    if (auto t = args->get("--type")) {
        const auto dt = dtype_from_name(*t);
        if (!dt) return fail("synth", "unknown --type " + *t);
        o.type = *dt;
    }
    const std::pair<const char*, std::optional<int64_t>*> optional_ints[] = {
        {"--heads", &o.n_heads}, {"--kv-heads", &o.n_kv_heads}, {"--ffn", &o.ffn_hidden},
        {"--d-state", &o.d_state}, {"--context", &o.context_length}};
    for (const auto& [name, field] : optional_ints) {
        if (!args->has(name)) continue;
        auto v = args->get_int(name, 0, 1, big);
        if (!v) return fail("synth", v.message());
        *field = *v;
    }
    const std::string out = *args->get("--output");
    if (!format_for_extension(out))
        return fail("synth", out + ": cannot tell the output format from the extension (.gguf, .safetensors, .h5, .bin)");
    auto model = synth_model(o, progress);
    if (!model) return fail("synth", model.message());
    if (auto st = save_model(*model, out, {}, progress); !st) return fail("synth", st.message());
    std::fprintf(stdout, "%s: %s, %lld parameters, %s\n", out.c_str(), o.arch.c_str(),
                 static_cast<long long>(model->parameter_count()), std::string(dtype_name(o.type)).c_str());
    return 0;
}

}  // namespace ef::cli
