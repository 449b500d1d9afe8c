// What the CLI (board test, push, remote-profile) and the workbench's Boards dock share beyond the
// session and the targets: where the runner built for an architecture is, and the connection test.
#pragma once
#include <string>

#include "core/remote/board_profile.h"
#include "core/remote/ssh_session.h"
#include "core/result.h"

namespace ef::remote {

// The architecture this program was built for: x86_64 | aarch64.
std::string host_arch();
// The directory of the running executable (/proc/self/exe), "." when unknown.
std::string self_exe_dir();

// The runner for `arch`: explicit_path when set; else $EF_RUNNER_<ARCH> (e.g. EF_RUNNER_AARCH64);
// else beside the program in `dir` (default self_exe_dir()): edgefusion-run for the host arch,
// edgefusion-run-<arch>, or the build tree's board build (<dir>/../aarch64/app/edgefusion-run, see
// cmake/BoardBuild.cmake). The error names the first path tried and the environment variable.
Result<std::string> find_runner(const std::string& arch, const std::string& explicit_path = {}, const std::string& dir = {});

// `board test`: connects (host key checked per opts), runs `uname -m` on the board and compares it
// with the profile's arch (arm64 counts as aarch64; a board with an exec wrapper runs a foreign
// runner, so no comparison). A mismatch is an error naming both.
struct BoardCheck {
    std::string fingerprint;  // "SHA256:..."
    bool added_host_key = false;
    std::string uname;        // the board's `uname -m`
};
Result<BoardCheck> test_board(const BoardProfile& board, const ConnectOptions& opts);

}  // namespace ef::remote
