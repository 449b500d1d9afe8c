// edgefusion-run: the board runner. Qt-free and HDF5-free; loads GGUF (mmap) and llama2.c.
// Subcommands mirror llama.cpp's tools: generate (llama-cli/llama-simple), perplexity
// (llama-perplexity), bench (llama-bench), profile, selftest, membw. Exit codes: 0 ok, 1 error, 2 usage.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "app/cli/args.h"
#include "core/model.h"
#include "core/progress.h"
#include "runtime/session.h"

namespace ef::run {

constexpr int kError = 1;
constexpr int kUsage = 2;

int run_generate(const std::vector<std::string>& argv, Progress& progress);
int run_perplexity(const std::vector<std::string>& argv, Progress& progress);
int run_bench(const std::vector<std::string>& argv, Progress& progress);
int run_profile(const std::vector<std::string>& argv, Progress& progress);
int run_selftest(const std::vector<std::string>& argv, Progress& progress);
int run_membw(const std::vector<std::string>& argv, Progress& progress);

// "edgefusion-run <cmd>: <message>" on stderr; returns code.
int fail(const char* cmd, const std::string& message, int code = kError);

// Options every subcommand takes: -m/--model, --tokenizer, -t/--threads, --routing.
std::vector<cli::OptionSpec> common_options();
// Parses argv against common_options() + extra; on failure prints the message and usage.
bool parse(const char* cmd, const std::vector<std::string>& argv, const std::vector<cli::OptionSpec>& extra,
           cli::Args& out);

Result<double> get_float(const cli::Args& a, const std::string& name, double fallback, double lo, double hi);

// A loaded model with its path checked; the model stays alive for the sessions made from it.
struct Loaded {
    std::unique_ptr<Model> model;
    int threads = 1;
    Routing routing = Routing::Hard;
};
// Reads -m, --tokenizer, --threads, --routing. Returns an exit code (0 when loaded).
int load(const char* cmd, const cli::Args& a, Loaded& out);

std::string json_escape(const std::string& s);
std::string human_bytes(uint64_t b);   // "1.23 MiB"
std::string human_count(int64_t n);    // "260.06 K"
// "llama 260.06 K F32": architecture, parameters, the dtype holding most weight bytes.
std::string model_label(const Model& m);

}  // namespace ef::run
