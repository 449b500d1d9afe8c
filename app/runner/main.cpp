// edgefusion-run: the board runner (see runner.h).
#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "app/runner/runner.h"
#include "core/formats/format.h"

namespace {

ef::Progress* g_progress = nullptr;

// Ctrl-C stops generation / measuring cleanly; a second one kills.
void on_sigint(int) {
    if (g_progress && !g_progress->cancelled()) {
        g_progress->cancel();
        return;
    }
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
}

struct Cmd {
    const char* name;
    const char* usage;
    int (*run)(const std::vector<std::string>&, ef::Progress&);
};

const Cmd kCommands[] = {
    {"generate",
     "generate -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] "
     "[--repeat-last-n N] [-s|--seed S] [-t|--threads T] [--ignore-eos] [--json]",
     ef::run::run_generate},
    {"perplexity", "perplexity -m MODEL -f TEXT [-c N_CTX] [--chunks N] [-t|--threads T]", ef::run::run_perplexity},
    {"bench", "bench -m MODEL [-p|--pp N] [-n|--tg N] [-r REPS] [-t|--threads T] [--json | -o md|json]", ef::run::run_bench},
    {"profile", "profile -m MODEL [--pp N] [--tg N] [-r REPS] [-c N_CTX] [-t|--threads T] [--json]", ef::run::run_profile},
    {"selftest", "selftest [-s|--seed S]   (every SIMD kernel of this CPU against its scalar reference)",
     ef::run::run_selftest},
    {"membw", "membw [--size MiB] [-t|--threads T] [-r REPS] [--json]   (memory read bandwidth, GB/s)", ef::run::run_membw},
};

void print_usage(FILE* f) {
    std::fprintf(f, "usage: edgefusion-run <command> [options]\n\ncommands:\n");
    for (const auto& c : kCommands) std::fprintf(f, "  %s\n", c.usage);
    std::fprintf(f, "\ncommon options: -m/--model PATH, --tokenizer TOK (llama2.c), -t/--threads N, --routing hard|soft\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        print_usage(stderr);
        return ef::run::kUsage;
    }
    if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        print_usage(stdout);
        return 0;
    }
    const std::string name = argv[1];
    for (const auto& c : kCommands) {
        if (name != c.name) continue;
        std::vector<std::string> args(argv + 2, argv + argc);
        for (const auto& a : args)
            if (a == "--help" || a == "-h") {
                std::fprintf(stdout, "usage: edgefusion-run %s\n", c.usage);
                return 0;
            }
        ef::Progress progress;
        g_progress = &progress;
        std::signal(SIGINT, on_sigint);
        const int rc = c.run(args, progress);
        g_progress = nullptr;
        return rc;
    }
    std::fprintf(stderr, "edgefusion-run: unknown command '%s'\n\n", name.c_str());
    print_usage(stderr);
    return ef::run::kUsage;
}

namespace ef::run {

int fail(const char* cmd, const std::string& message, int code) {
    std::fprintf(stderr, "edgefusion-run %s: %s\n", cmd, message.c_str());
    return code;
}

std::vector<cli::OptionSpec> common_options() {
    return {
        {"--model", "-m", true, "model file (GGUF or llama2.c .bin)"},
        {"--tokenizer", "", true, "llama2.c tokenizer .bin (default: tok<vocab>.bin beside the model)"},
        {"--threads", "-t", true, "worker threads"},
        {"--routing", "", true, "edgefusion layers: hard (one branch, default) or soft (both, mixed)"},
    };
}

bool parse(const char* cmd, const std::vector<std::string>& argv, const std::vector<cli::OptionSpec>& extra,
           cli::Args& out) {
    auto specs = common_options();
    specs.insert(specs.end(), extra.begin(), extra.end());
    auto a = cli::parse_args(argv, specs);
    if (!a) {
        fail(cmd, a.message() + "\noptions:\n" + cli::options_help(specs), kUsage);
        return false;
    }
    if (!a->positional.empty()) {
        fail(cmd, "unexpected argument '" + a->positional.front() + "'", kUsage);
        return false;
    }
    out = std::move(*a);
    return true;
}

Result<double> get_float(const cli::Args& a, const std::string& name, double fallback, double lo, double hi) {
    const auto v = a.get(name);
    if (!v) return fallback;
    std::istringstream in(*v);
    in.imbue(std::locale::classic());
    double x = 0.0;
    char rest = 0;
    if (!(in >> x) || (in >> rest)) return make_error(name + ": expected a number, got '" + *v + "'");
    if (!(x >= lo && x <= hi)) return make_error(name + ": " + *v + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

int load(const char* cmd, const cli::Args& a, Loaded& out) {
    const auto path = a.get("--model");
    if (!path) return fail(cmd, "-m MODEL is required", kUsage);
    auto threads = a.get_int("--threads", 1, 1, 1024);
    if (!threads) return fail(cmd, threads.message(), kUsage);
    out.threads = int(*threads);
    const std::string routing = a.get("--routing").value_or("hard");
    if (routing == "hard") out.routing = Routing::Hard;
    else if (routing == "soft") out.routing = Routing::Soft;
    else return fail(cmd, "--routing: expected hard or soft, got '" + routing + "'", kUsage);
    if (!std::ifstream(*path)) return fail(cmd, "cannot open model file '" + *path + "'");
    LoadOptions lo;
    lo.tokenizer_path = a.get("--tokenizer").value_or("");
    auto m = load_model(*path, lo);
    if (!m) return fail(cmd, m.message());
    out.model = std::make_unique<Model>(std::move(*m));
    return 0;
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += char(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
        } else {
            o += char(c);
        }
    }
    return o;
}

std::string human_bytes(uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
    else std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(1ull << 20));
    return buf;
}

std::string human_count(int64_t n) {
    char buf[32];
    if (n >= 1000000000) std::snprintf(buf, sizeof buf, "%.2f B", double(n) / 1e9);
    else if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.2f M", double(n) / 1e6);
    else std::snprintf(buf, sizeof buf, "%.2f K", double(n) / 1e3);
    return buf;
}

std::string model_label(const Model& m) {
    std::vector<std::pair<std::string, uint64_t>> by;
    for (const auto& t : m.tensors) {
        const std::string d(dtype_name(t.dtype));
        bool found = false;
        for (auto& [k, v] : by)
            if (k == d) {
                v += t.nbytes();
                found = true;
            }
        if (!found) by.emplace_back(d, t.nbytes());
    }
    std::string main_type = "?";
    uint64_t best = 0;
    for (const auto& [k, v] : by)
        if (v > best) {
            best = v;
            main_type = k;
        }
    for (auto& ch : main_type) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    std::string params = human_count(m.parameter_count());
    params.erase(std::remove(params.begin(), params.end(), ' '), params.end());
    return m.architecture + " " + params + " " + main_type;
}

}  // namespace ef::run
