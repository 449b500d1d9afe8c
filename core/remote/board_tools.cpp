#include "core/remote/board_tools.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace ef::remote {

namespace fs = std::filesystem;

std::string host_arch() {
#if defined(__aarch64__)
    return "aarch64";
#else
    return "x86_64";
#endif
}

std::string self_exe_dir() {
    std::error_code ec;
    const auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : p.parent_path().string();
}

Result<std::string> find_runner(const std::string& arch, const std::string& explicit_path, const std::string& dir_in) {
    if (!explicit_path.empty()) return explicit_path;
    std::string env = "EF_RUNNER_" + arch;
    for (auto& c : env) c = char(std::toupper(static_cast<unsigned char>(c)));
    if (const char* e = std::getenv(env.c_str()); e && *e) return std::string(e);
    const std::string dir = dir_in.empty() ? self_exe_dir() : dir_in;
    std::vector<std::string> tries = {dir + "/edgefusion-run-" + arch};
    if (arch == host_arch()) tries.insert(tries.begin(), dir + "/edgefusion-run");
    if (arch == "aarch64") tries.push_back(dir + "/../aarch64/app/edgefusion-run");
    for (const auto& t : tries) {
        std::error_code ec;
        if (fs::exists(t, ec)) return fs::weakly_canonical(t, ec).string();
    }
    return make_error("no edgefusion-run for " + arch + " found (tried " + tries.front() + "); set " + env);
}

Result<BoardCheck> test_board(const BoardProfile& board, const ConnectOptions& opts) {
    auto s = SshSession::connect(board, opts);
    if (!s) return s.error();
    BoardCheck c;
    c.fingerprint = (*s)->fingerprint();
    c.added_host_key = (*s)->added_host_key();
    auto m = (*s)->run_shell("uname -m");
    if (!m) return m.error();
    c.uname = *m;
    while (!c.uname.empty() && (c.uname.back() == '\n' || c.uname.back() == '\r' || c.uname.back() == ' ')) c.uname.pop_back();
    if (board.exec_wrapper.empty() && c.uname != board.arch && !(c.uname == "arm64" && board.arch == "aarch64"))
        return make_error("board '" + board.name + "' is " + c.uname + ", but its profile says " + board.arch);
    return c;
}

}  // namespace ef::remote
