// The CLI's subcommands. Each is a thin shell over a library call that the workbench uses too.
#pragma once
#include <string>
#include <vector>

#include "core/progress.h"

namespace ef::cli {

struct Command {
    const char* name;
    const char* usage;
    const char* summary;
    int (*run)(const std::vector<std::string>& args, Progress& progress);
};

const std::vector<Command>& commands();

int run_inspect(const std::vector<std::string>& args, Progress& progress);
int run_convert(const std::vector<std::string>& args, Progress& progress);
int run_synth(const std::vector<std::string>& args, Progress& progress);
int run_evaluate(const std::vector<std::string>& args, Progress& progress);
int run_allocate(const std::vector<std::string>& args, Progress& progress);
int run_quantize(const std::vector<std::string>& args, Progress& progress);
int run_export_llamacpp(const std::vector<std::string>& args, Progress& progress);
int run_compare(const std::vector<std::string>& args, Progress& progress);
int run_train(const std::vector<std::string>& args, Progress& progress);
int run_analyze_router(const std::vector<std::string>& args, Progress& progress);
int run_sweep_lambda(const std::vector<std::string>& args, Progress& progress);    // cmd_sweep_lambda.cpp
int run_infer(const std::vector<std::string>& args, Progress& progress);           // cmd_infer.cpp
int run_board(const std::vector<std::string>& args, Progress& progress);           // cmd_board.cpp
int run_push(const std::vector<std::string>& args, Progress& progress);
int run_remote_profile(const std::vector<std::string>& args, Progress& progress);

// Prints "edgefusion <cmd>: <message>" to stderr and returns the exit code for user errors.
int fail(const char* cmd, const std::string& message);
// A Progress callback that draws a one-line bar on stderr when it is a terminal.
Progress::Callback stderr_progress();

}  // namespace ef::cli
