// One SSH connection to a board (libssh): strict host-key checking against known_hosts, public-key
// authentication (key file or ssh-agent; never passwords), remote commands with live output and a
// cancel that kills the remote process, and SFTP uploads that never leave a partial file under
// the final name. A session belongs to one thread at a time (libssh sessions are not shared).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "core/remote/board_profile.h"
#include "core/result.h"

namespace ef::remote {

struct ConnectOptions {
    // known_hosts file; empty = ~/.ssh/known_hosts. It is also used as the global file, so a test
    // (or a user) that overrides it gets exactly that file's keys.
    std::string known_hosts;
    // An unknown host is refused (the error carries its SHA256 fingerprint) unless the caller
    // consents: ask_unknown_host decides when set (the GUI asks), else accept_new_host_key (the
    // CLI flag). An accepted key is appended to known_hosts. A changed key is always refused.
    bool accept_new_host_key = false;
    std::function<bool(const std::string& host, const std::string& fingerprint)> ask_unknown_host;
    int timeout_s = 20;
};

// stdout/stderr of a remote or local command, chunk by chunk as it arrives.
using OutputFn = std::function<void(std::string_view chunk, bool is_stderr)>;

struct UploadResult {
    bool skipped = false;  // the board already had a file with this hash under the final name
    std::string sha256;
    std::string remote_path;
    uint64_t bytes = 0;
};

class SshSession {
public:
    ~SshSession();
    SshSession(const SshSession&) = delete;
    SshSession& operator=(const SshSession&) = delete;

    static Result<std::unique_ptr<SshSession>> connect(const BoardProfile& board, const ConnectOptions& opts);

    // The server's host key as "SHA256:<base64>" (what ssh-keygen -lf prints).
    const std::string& fingerprint() const;
    // True when this connection added the host to known_hosts.
    bool added_host_key() const;

    // Runs argv (each word quoted) in cwd (empty = login directory) as `echo $$; exec argv`, so the
    // first stdout line is the remote PID; on_pid receives it. When progress is cancelled the
    // process is killed by that PID through a second channel (TERM, then KILL) and an error
    // saying "cancelled" is returned. Otherwise returns the exit status.
    Result<int> exec(const std::vector<std::string>& argv, const std::string& cwd, const OutputFn& on_output,
                     Progress& progress, const std::function<void(long pid)>& on_pid = {});
    // A short shell command built by the caller from quoted parts; returns stdout, fails with
    // stderr when the exit status is not 0.
    Result<std::string> run_shell(const std::string& command);

    // Uploads local_path as remote_dir/remote_name (remote_dir is created). Skips when the
    // remote file's sha256sum equals the local SHA-256. Otherwise writes ".<name>.ef-part-<rand>"
    // in remote_dir, checks its sha256sum on the board, then renames it over the final name.
    Result<UploadResult> upload(const std::string& local_path, const std::string& remote_dir, const std::string& remote_name,
                                int mode, Progress& progress);

    struct Impl;

private:
    explicit SshSession(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// "user@host:port" for messages.
std::string board_address(const BoardProfile& b);

}  // namespace ef::remote
