// Runs a local program with its stdout/stderr streamed chunk by chunk; cancel kills exactly the
// child it started (by its PID). The local twin of SshSession::exec.
#pragma once
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/remote/ssh_session.h"

namespace ef::remote {

// Returns the exit status (128+signal when killed by a signal); an error when it cannot start
// or was cancelled.
Result<int> run_local(const std::vector<std::string>& argv, const OutputFn& on_output, Progress& progress);

}  // namespace ef::remote
