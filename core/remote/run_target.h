// The run interface: a profile run of `edgefusion-run profile --json` (and optionally
// `perplexity`) on this machine or on a board behind one RunTarget, so views and the CLI show a
// board run and a local run alike. Several targets run concurrently, one thread each.
#pragma once
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/remote/board_profile.h"
#include "core/remote/ssh_session.h"
#include "core/result.h"

namespace ef::remote {

struct LayerTime {
    int index = 0;
    std::string path;  // "attention+ffn", "mamba2+ffn", ...
    double ms_per_token = 0.0;
};

// What `edgefusion-run profile --json` prints, plus where it ran.
struct ProfileReport {
    std::string target;        // "local" or the board name
    std::string arch;          // x86_64 | aarch64
    std::string model;         // the model path as the runner saw it
    std::string model_type;    // "llama 260.06K F32"
    int n_threads = 1;
    double prefill_tps = 0.0, prefill_stddev = 0.0;
    double decode_tps = 0.0, decode_stddev = 0.0;
    uint64_t weight_bytes = 0, kv_cache_bytes = 0, peak_rss_bytes = 0;
    double gflops_per_token = 0.0;
    std::vector<LayerTime> layers;
    std::vector<std::pair<std::string, double>> ops_ms_per_token;
    double perplexity = std::nan("");  // when requested
    double wall_s = 0.0;
    std::string json;  // the runner's JSON as received
};

// Parses profile --json output (stdout); the error names `origin`.
Result<ProfileReport> parse_profile_json(const std::string& text, const std::string& origin);
// "Final estimate: PPL = X" of `edgefusion-run perplexity`; NaN when absent.
double parse_final_ppl(const std::string& text);

struct RunRequest {
    std::string model_path;        // local file
    std::string perplexity_text;   // local text file; empty = no perplexity run
    std::vector<std::string> profile_args;  // extra runner args, e.g. {"--pp","16","--tg","16","-r","1"}
    std::vector<std::string> perplexity_args;  // e.g. {"-c","64","--chunks","2"}
    int threads = 1;
};

// Live output of a run: the target's name with each chunk. Called from the target's thread; a
// sink shared by several targets must be thread-safe.
using TargetOutputFn = std::function<void(const std::string& target, std::string_view chunk, bool is_stderr)>;

class RunTarget {
public:
    virtual ~RunTarget() = default;
    virtual std::string name() const = 0;
    virtual std::string arch() const = 0;
    virtual Result<ProfileReport> profile(const RunRequest& req, const TargetOutputFn& on_output, Progress& progress) = 0;
};

// This machine's runner, started as a child process.
class LocalTarget : public RunTarget {
public:
    explicit LocalTarget(std::string runner_path);
    std::string name() const override { return "local"; }
    std::string arch() const override;
    Result<ProfileReport> profile(const RunRequest& req, const TargetOutputFn& on_output, Progress& progress) override;

private:
    std::string runner_;
};

// Files a board run needs on the board.
struct Deployment {
    std::string runner_path;   // remote
    std::string model_path;    // remote
    bool runner_skipped = false, model_skipped = false;
};

// A board over SSH: deploys the runner for its architecture and the model (skipped when the
// hashes match), then runs the runner there, through the profile's exec wrapper if any.
class BoardTarget : public RunTarget {
public:
    // runner_path: the local edgefusion-run built for board.arch.
    BoardTarget(BoardProfile board, std::string runner_path, ConnectOptions opts);
    std::string name() const override { return board_.name; }
    std::string arch() const override { return board_.arch; }
    Result<ProfileReport> profile(const RunRequest& req, const TargetOutputFn& on_output, Progress& progress) override;

    // Connects (if not yet) and uploads the runner and the model.
    Result<Deployment> deploy(const std::string& model_path, Progress& progress);
    // The connected session (after deploy/profile), e.g. for tests and `board test`.
    SshSession* session() { return session_.get(); }
    Status ensure_connected();

private:
    Result<int> run_remote(const std::vector<std::string>& runner_args, std::string& out, const TargetOutputFn& on_output,
                           Progress& progress);
    BoardProfile board_;
    std::string runner_;
    ConnectOptions opts_;
    std::unique_ptr<SshSession> session_;
};

// The runner file name on a board: "edgefusion-run-<arch>".
std::string remote_runner_name(const std::string& arch);
// The remote file name for a local model: its base name.
std::string remote_model_name(const std::string& local_path);

// Runs every target concurrently (one std::thread each); results in the targets' order.
// Cancelling `progress` cancels all of them.
std::vector<Result<ProfileReport>> run_profiles(const std::vector<RunTarget*>& targets, const RunRequest& req,
                                                const TargetOutputFn& on_output, Progress& progress);

// A Markdown table of reports (errors as rows saying why).
std::string format_report_table(const std::vector<std::string>& names, const std::vector<Result<ProfileReport>>& results);
// JSON array of the reports (the runner's fields + target, arch, perplexity, wall_s).
std::string reports_to_json(const std::vector<std::string>& names, const std::vector<Result<ProfileReport>>& results);

}  // namespace ef::remote
