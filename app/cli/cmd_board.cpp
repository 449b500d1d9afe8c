// edgefusion board | push | remote-profile: boards over SSH (core/remote). The workbench's board
// panel drives the same library: BoardProfile storage, SshSession, BoardTarget/LocalTarget.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/remote/board_profile.h"
#include "core/remote/run_target.h"
#include "core/remote/board_tools.h"
#include "core/remote/ssh_session.h"

namespace ef::cli {
namespace {

namespace fs = std::filesystem;
using namespace ef::remote;

const OptionSpec kKnownHosts{"--known-hosts", "", true, "known_hosts file (default ~/.ssh/known_hosts)"};
const OptionSpec kAcceptNew{"--accept-new-host-key", "", false, "trust an unknown host's key and add it to known_hosts"};
const OptionSpec kBoardsFile{"--boards-file", "", true, "boards file (default $XDG_CONFIG_HOME/edgefusion/boards.json)"};

std::string boards_file(const Args& a) { return a.get("--boards-file").value_or(default_boards_path()); }

ConnectOptions connect_options(const Args& a) {
    ConnectOptions o;
    o.known_hosts = a.get("--known-hosts").value_or("");
    o.accept_new_host_key = a.has("--accept-new-host-key");
    return o;
}

// The runner built for `arch`: --runner, else core/remote's lookup ($EF_RUNNER_<ARCH>, beside
// this program, the build tree's board build).
Result<std::string> runner_for(const std::string& arch, const Args& a) {
    auto r = find_runner(arch, a.get("--runner").value_or(""));
    if (!r) return make_error(r.message() + " or pass --runner PATH");
    return r;
}

Result<std::vector<BoardProfile>> boards_by_names(const Args& a, const std::string& list) {
    std::vector<BoardProfile> out;
    size_t pos = 0;
    while (pos <= list.size()) {
        const auto comma = list.find(',', pos);
        const std::string name = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        if (!name.empty()) {
            auto b = find_board(boards_file(a), name);
            if (!b) return b.error();
            out.push_back(*b);
        }
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    if (out.empty()) return make_error("--board: no board names given");
    return out;
}

// Live output, line by line with the target's name in front; shared by the target threads.
class LineLog {
public:
    void operator()(const std::string& target, std::string_view chunk, bool is_err) {
        std::lock_guard lock(mu_);
        std::string& pending = buf_[target + (is_err ? "\x01" : "")];
        pending.append(chunk);
        size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
            std::fprintf(stderr, "[%s] %s\n", target.c_str(), pending.substr(0, nl).c_str());
            pending.erase(0, nl + 1);
        }
    }

private:
    std::mutex mu_;
    std::map<std::string, std::string> buf_;
};

int board_cmd(const Args& a) {
    const char* cmd = "board";
    if (a.positional.empty()) return fail(cmd, "expected add|list|remove|test");
    const std::string sub = a.positional[0];
    const std::string path = boards_file(a);
    if (sub == "list") {
        auto all = load_boards(path);
        if (!all) return fail(cmd, all.message());
        if (a.has("--json")) {
            std::fputs(to_json(*all).c_str(), stdout);
            return 0;
        }
        std::printf("| name | address | arch | auth | work dir | exec wrapper |\n| ---- | ------- | ---- | ---- | -------- | ------------ |\n");
        for (const auto& b : *all)
            std::printf("| %s | %s | %s | %s | %s | %s |\n", b.name.c_str(), board_address(b).c_str(), b.arch.c_str(),
                        b.use_agent() ? "ssh-agent" : ("key " + b.key_file).c_str(), b.work_dir.c_str(), b.exec_wrapper.c_str());
        return 0;
    }
    if (a.positional.size() != 2) return fail(cmd, sub + ": expected exactly one board NAME");
    const std::string name = a.positional[1];
    if (sub == "add") {
        BoardProfile b;
        b.name = name;
        b.host = a.get("--host").value_or("");
        b.user = a.get("--user").value_or("");
        auto port = a.get_int("--port", 22, 1, 65535);
        if (!port) return fail(cmd, port.message());
        b.port = int(*port);
        if (auto k = a.get("--key")) b.key_file = fs::absolute(*k).string();
        b.arch = a.get("--arch").value_or("x86_64");
        b.work_dir = a.get("--work-dir").value_or("edgefusion");
        b.exec_wrapper = a.get("--exec-wrapper").value_or("");
        if (auto st = upsert_board(path, b); !st) return fail(cmd, st.message());
        std::printf("board '%s' saved in %s\n", name.c_str(), path.c_str());
        return 0;
    }
    if (sub == "remove") {
        if (auto st = remove_board(path, name); !st) return fail(cmd, st.message());
        std::printf("board '%s' removed\n", name.c_str());
        return 0;
    }
    if (sub == "test") {
        auto b = find_board(path, name);
        if (!b) return fail(cmd, b.message());
        auto c = test_board(*b, connect_options(a));
        if (!c) return fail(cmd, c.message());
        std::printf("host key     %s%s\n", c->fingerprint.c_str(), c->added_host_key ? " (added to known_hosts)" : "");
        std::printf("remote uname %s\n", c->uname.c_str());
        if (!b->exec_wrapper.empty()) std::printf("exec wrapper %s (runs the %s runner)\n", b->exec_wrapper.c_str(), b->arch.c_str());
        std::printf("ok\n");
        return 0;
    }
    return fail(cmd, "unknown subcommand '" + sub + "' (add|list|remove|test)");
}

}  // namespace

int run_board(const std::vector<std::string>& argv, Progress&) {
    const std::vector<OptionSpec> specs = {
        {"--host", "", true, "board host name or address"},
        {"--port", "", true, "SSH port (default 22)"},
        {"--user", "", true, "user on the board"},
        {"--key", "", true, "private key file (default: the ssh-agent)"},
        {"--arch", "", true, "x86_64 (default) or aarch64"},
        {"--work-dir", "", true, "remote directory for the runner and models (default edgefusion, under $HOME)"},
        {"--exec-wrapper", "", true, "program the runner is started through, e.g. qemu-aarch64"},
        {"--json", "", false, "list as JSON"},
        kKnownHosts, kAcceptNew, kBoardsFile,
    };
    auto a = parse_args(argv, specs);
    if (!a) return fail("board", a.message() + "\n" + options_help(specs));
    return board_cmd(*a);
}

int run_push(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "push";
    const std::vector<OptionSpec> specs = {
        {"--board", "", true, "board name(s), comma-separated"},
        {"--runner", "", true, "the edgefusion-run to deploy (default: the one built for the board's architecture)"},
        kKnownHosts, kAcceptNew, kBoardsFile,
    };
    auto a = parse_args(argv, specs);
    if (!a) return fail(cmd, a.message() + "\n" + options_help(specs));
    if (a->positional.size() != 1) return fail(cmd, "expected one MODEL file");
    auto boards = boards_by_names(*a, a->get("--board").value_or(""));
    if (!boards) return fail(cmd, boards.message());
    for (const auto& b : *boards) {
        auto runner = runner_for(b.arch, *a);
        if (!runner) return fail(cmd, runner.message());
        BoardTarget t(b, *runner, connect_options(*a));
        auto d = t.deploy(a->positional[0], progress);
        if (!d) return fail(cmd, d.message());
        std::printf("%s: runner %s %s\n", b.name.c_str(), d->runner_path.c_str(), d->runner_skipped ? "unchanged (skipped)" : "uploaded");
        std::printf("%s: model  %s %s\n", b.name.c_str(), d->model_path.c_str(), d->model_skipped ? "unchanged (skipped)" : "uploaded");
    }
    return 0;
}

int run_remote_profile(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "remote-profile";
    const std::vector<OptionSpec> specs = {
        {"--board", "", true, "board name(s), comma-separated: profiled concurrently"},
        {"--local", "", false, "also profile on this machine, in the same table"},
        {"--perplexity", "", true, "text file: also run perplexity"},
        {"--json", "", false, "print the reports as JSON"},
        {"--pp", "", true, "prompt tokens for the prefill test"},
        {"--tg", "", true, "tokens for the decode test"},
        {"--repetitions", "-r", true, "repetitions"},
        {"--threads", "-t", true, "runner threads (default 1)"},
        {"--ctx-size", "-c", true, "perplexity window"},
        {"--chunks", "", true, "perplexity: at most this many windows"},
        {"--runner", "", true, "the edgefusion-run to deploy (one architecture only)"},
        kKnownHosts, kAcceptNew, kBoardsFile,
    };
    auto a = parse_args(argv, specs);
    if (!a) return fail(cmd, a.message() + "\n" + options_help(specs));
    if (a->positional.size() != 1) return fail(cmd, "expected one MODEL file");
    if (!a->has("--board") && !a->has("--local")) return fail(cmd, "expected --board NAME[,NAME2] and/or --local");
    RunRequest req;
    req.model_path = a->positional[0];
    if (!fs::exists(req.model_path)) return fail(cmd, req.model_path + ": no such model file");
    req.perplexity_text = a->get("--perplexity").value_or("");
    auto threads = a->get_int("--threads", 1, 1, 1024);
    if (!threads) return fail(cmd, threads.message());
    req.threads = int(*threads);
    for (const char* o : {"--pp", "--tg", "--repetitions"})
        if (auto v = a->get(o)) req.profile_args.insert(req.profile_args.end(), {o, *v});
    for (const char* o : {"--ctx-size", "--chunks"})
        if (auto v = a->get(o)) req.perplexity_args.insert(req.perplexity_args.end(), {o, *v});

    std::vector<std::unique_ptr<RunTarget>> owned;
    if (a->has("--local")) {
        Args local_args = *a;
        local_args.values.erase("--runner");
        auto r = runner_for(host_arch(), local_args);
        if (!r) return fail(cmd, r.message());
        owned.push_back(std::make_unique<LocalTarget>(*r));
    }
    if (a->has("--board")) {
        auto boards = boards_by_names(*a, *a->get("--board"));
        if (!boards) return fail(cmd, boards.message());
        for (const auto& b : *boards) {
            auto runner = runner_for(b.arch, *a);
            if (!runner) return fail(cmd, runner.message());
            owned.push_back(std::make_unique<BoardTarget>(b, *runner, connect_options(*a)));
        }
    }
    std::vector<RunTarget*> targets;
    std::vector<std::string> names;
    for (auto& t : owned) {
        targets.push_back(t.get());
        names.push_back(t->name());
    }
    LineLog log;
    auto results = run_profiles(targets, req, std::ref(log), progress);
    std::fputs((a->has("--json") ? reports_to_json(names, results) : format_report_table(names, results)).c_str(), stdout);
    int rc = 0;
    for (size_t i = 0; i < results.size(); ++i)
        if (!results[i]) rc = fail(cmd, results[i].message());
    return rc;
}

}  // namespace ef::cli
