#include "core/remote/ssh_session.h"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <fcntl.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "core/remote/remote_util.h"

namespace ef::remote {

namespace fs = std::filesystem;

std::string board_address(const BoardProfile& b) { return b.user + "@" + b.host + ":" + std::to_string(b.port); }

struct SshSession::Impl {
    ssh_session s = nullptr;
    std::string where;  // "board 'name' (user@host:port)"
    std::string fingerprint;
    bool added = false;

    ~Impl() {
        if (s) {
            ssh_disconnect(s);
            ssh_free(s);
        }
    }
    std::string err() const { return where + ": " + ssh_get_error(s); }
};

namespace {

std::string default_known_hosts() {
    const char* home = std::getenv("HOME");
    return std::string(home && *home ? home : ".") + "/.ssh/known_hosts";
}

std::string random_hex(int n) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string o;
    const char* digits = "0123456789abcdef";
    for (int i = 0; i < n; ++i) o += digits[rng() & 15];
    return o;
}

// First 64 hex characters of `sha256sum` output, or "".
std::string parse_sha256sum(const std::string& out) {
    if (out.size() < 64) return {};
    const std::string h = out.substr(0, 64);
    for (char c : h)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return {};
    return h;
}

struct ChannelGuard {
    ssh_channel c = nullptr;
    ~ChannelGuard() {
        if (c) {
            ssh_channel_close(c);
            ssh_channel_free(c);
        }
    }
};

}  // namespace

SshSession::SshSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SshSession::~SshSession() = default;
const std::string& SshSession::fingerprint() const { return impl_->fingerprint; }
bool SshSession::added_host_key() const { return impl_->added; }

Result<std::unique_ptr<SshSession>> SshSession::connect(const BoardProfile& board, const ConnectOptions& opts) {
    static std::once_flag once;
    std::call_once(once, [] { ssh_init(); });
    EF_TRY_STATUS(validate(board));
    auto impl = std::make_unique<Impl>();
    impl->where = "board '" + board.name + "' (" + board_address(board) + ")";
    impl->s = ssh_new();
    if (!impl->s) return make_error(impl->where + ": cannot create an SSH session");
    ssh_session s = impl->s;
    const std::string known = opts.known_hosts.empty() ? default_known_hosts() : opts.known_hosts;
    const int port = board.port;
    const long timeout = opts.timeout_s;
    const bool no = false;
    // No ~/.ssh/config: its settings (e.g. StrictHostKeyChecking no) must not weaken the checks.
    if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 || ssh_options_set(s, SSH_OPTIONS_HOST, board.host.c_str()) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_PORT, &port) < 0 || ssh_options_set(s, SSH_OPTIONS_USER, board.user.c_str()) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, known.c_str()) < 0 || ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout) < 0)
        return make_error(impl->err());
    // SFTP writes wait for each reply: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms a chunk.
    const int nodelay = 1;
    if (ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay) < 0) return make_error(impl->err());
    if (!opts.known_hosts.empty() && ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, known.c_str()) < 0)
        return make_error(impl->err());
    if (ssh_connect(s) != SSH_OK) return make_error(impl->where + ": cannot connect: " + ssh_get_error(s));

    ssh_key srv = nullptr;
    if (ssh_get_server_publickey(s, &srv) != SSH_OK) return make_error(impl->err());
    unsigned char* hash = nullptr;
    size_t hlen = 0;
    const int hrc = ssh_get_publickey_hash(srv, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen);
    ssh_key_free(srv);
    if (hrc != 0) return make_error(impl->where + ": cannot hash the host key");
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    ssh_clean_pubkey_hash(&hash);
    impl->fingerprint = fp ? fp : "";
    ssh_string_free_char(fp);

    switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
        break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
        return make_error(impl->where + ": HOST KEY MISMATCH — the server's key (" + impl->fingerprint +
                          ") differs from the one recorded in " + known +
                          ". Refusing to connect: this may be a man-in-the-middle attack, or the board was "
                          "reinstalled. If you trust the change, remove the old entry from " + known + " yourself.");
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND: {
        const std::string host = board.host + ":" + std::to_string(board.port);
        const bool ok = opts.ask_unknown_host ? opts.ask_unknown_host(host, impl->fingerprint) : opts.accept_new_host_key;
        if (!ok)
            return make_error(impl->where + ": unknown host key " + impl->fingerprint + " (not in " + known +
                              "). Check the fingerprint on the board (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and "
                              "accept it with --accept-new-host-key.");
        std::error_code ec;
        const fs::path dir = fs::path(known).parent_path();
        if (!dir.empty() && !fs::exists(dir, ec)) {
            fs::create_directories(dir, ec);
            fs::permissions(dir, fs::perms::owner_all, ec);
        }
        if (ssh_session_update_known_hosts(s) != SSH_OK)
            return make_error(impl->where + ": cannot add the host key to " + known + ": " + ssh_get_error(s));
        impl->added = true;
        break;
    }
    case SSH_KNOWN_HOSTS_ERROR:
    default:
        return make_error(impl->where + ": cannot check the host key against " + known + ": " + ssh_get_error(s));
    }

    int rc = SSH_AUTH_DENIED;
    if (board.use_agent()) {
        rc = ssh_userauth_agent(s, nullptr);
        if (rc != SSH_AUTH_SUCCESS)
            return make_error(impl->where + ": public-key authentication with the ssh-agent failed" +
                              (std::getenv("SSH_AUTH_SOCK") ? "" : " (SSH_AUTH_SOCK is not set)") + ": " + ssh_get_error(s));
    } else {
        ssh_key key = nullptr;
        if (ssh_pki_import_privkey_file(board.key_file.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK)
            return make_error(impl->where + ": cannot read the private key " + board.key_file +
                              " (a passphrase-protected key must be used through the ssh-agent)");
        rc = ssh_userauth_publickey(s, nullptr, key);
        ssh_key_free(key);
        if (rc != SSH_AUTH_SUCCESS)
            return make_error(impl->where + ": the server refused the key " + board.key_file + " for user " + board.user);
    }
    return std::unique_ptr<SshSession>(new SshSession(std::move(impl)));
}

Result<int> SshSession::exec(const std::vector<std::string>& argv, const std::string& cwd, const OutputFn& on_output,
                             Progress& progress, const std::function<void(long pid)>& on_pid) {
    if (argv.empty()) return make_error(impl_->where + ": empty command");
    ssh_session s = impl_->s;
    std::string cmd = cwd.empty() ? "" : "cd " + shell_quote(cwd) + " && ";
    cmd += "echo $$ && exec " + shell_join(argv);
    ChannelGuard ch{ssh_channel_new(s)};
    if (!ch.c || ssh_channel_open_session(ch.c) != SSH_OK || ssh_channel_request_exec(ch.c, cmd.c_str()) != SSH_OK)
        return make_error(impl_->err());

    long pid = -1;
    std::string head;  // stdout until the PID line is complete
    bool killed = false;
    auto kill_remote = [&] {
        // A second channel on the same session: the kill goes by the PID we were told, never by name.
        for (const char* sig : {"TERM", "KILL"}) {
            if (pid > 0) (void)run_shell(std::string("kill -") + sig + " " + std::to_string(pid) + " 2>/dev/null");
            for (int i = 0; i < 40 && !ssh_channel_is_eof(ch.c); ++i) ssh_channel_poll_timeout(ch.c, 50, 0);
            if (ssh_channel_is_eof(ch.c)) break;
        }
        killed = true;
    };
    char buf[16384];
    for (;;) {
        bool any = false;
        for (int is_err = 0; is_err < 2; ++is_err) {
            const int n = ssh_channel_read_nonblocking(ch.c, buf, sizeof buf, is_err);
            if (n == SSH_ERROR) return make_error(impl_->where + ": connection lost while running " + argv[0] + ": " + ssh_get_error(s));
            if (n <= 0) continue;
            any = true;
            std::string_view chunk(buf, size_t(n));
            if (!is_err && pid < 0) {
                head.append(chunk);
                const auto nl = head.find('\n');
                if (nl == std::string::npos) continue;
                pid = std::strtol(head.substr(0, nl).c_str(), nullptr, 10);
                if (on_pid) on_pid(pid);
                const std::string rest = head.substr(nl + 1);
                head.clear();
                if (!rest.empty() && on_output) on_output(rest, false);
                continue;
            }
            if (on_output) on_output(chunk, is_err != 0);
        }
        if (any && !progress.cancelled()) continue;
        if (ssh_channel_is_eof(ch.c)) break;
        if (progress.cancelled() && !killed) {
            if (pid > 0) kill_remote();
            else killed = true;  // not started yet: closing the channel is all there is
            if (pid <= 0) break;
            continue;
        }
        if (ssh_channel_poll_timeout(ch.c, 100, 0) == SSH_ERROR)
            return make_error(impl_->where + ": connection lost while running " + argv[0] + ": " + ssh_get_error(s));
    }
    if (killed) return make_error(impl_->where + ": cancelled; remote process " + std::to_string(pid) + " killed");
    ssh_channel_send_eof(ch.c);
    const int status = ssh_channel_get_exit_status(ch.c);
    return status;
}

Result<std::string> SshSession::run_shell(const std::string& command) {
    ssh_session s = impl_->s;
    ChannelGuard ch{ssh_channel_new(s)};
    if (!ch.c || ssh_channel_open_session(ch.c) != SSH_OK || ssh_channel_request_exec(ch.c, command.c_str()) != SSH_OK)
        return make_error(impl_->err());
    std::string out, err;
    char buf[8192];
    for (;;) {
        bool any = false;
        for (int is_err = 0; is_err < 2; ++is_err) {
            const int n = ssh_channel_read_nonblocking(ch.c, buf, sizeof buf, is_err);
            if (n == SSH_ERROR) return make_error(impl_->where + ": connection lost: " + ssh_get_error(s));
            if (n > 0) {
                (is_err ? err : out).append(buf, size_t(n));
                any = true;
            }
        }
        if (any) continue;
        if (ssh_channel_is_eof(ch.c)) break;
        if (ssh_channel_poll_timeout(ch.c, 100, 0) == SSH_ERROR)
            return make_error(impl_->where + ": connection lost: " + ssh_get_error(s));
    }
    ssh_channel_send_eof(ch.c);
    const int status = ssh_channel_get_exit_status(ch.c);
    if (status != 0)
        return make_error(impl_->where + ": remote command failed (exit " + std::to_string(status) + "): " + command +
                          (err.empty() ? "" : "\n" + err));
    return out;
}

Result<UploadResult> SshSession::upload(const std::string& local_path, const std::string& remote_dir,
                                        const std::string& remote_name, int mode, Progress& progress) {
    const std::string& where = impl_->where;
    if (remote_name.empty() || remote_name.find('/') != std::string::npos)
        return make_error(where + ": bad remote file name '" + remote_name + "'");
    UploadResult r;
    r.remote_path = remote_dir + "/" + remote_name;
    auto local_hash = sha256_file(local_path);
    if (!local_hash) return local_hash.error();
    r.sha256 = *local_hash;
    std::ifstream in(local_path, std::ios::binary | std::ios::ate);
    if (!in) return make_error(local_path + ": cannot open for upload");
    r.bytes = uint64_t(in.tellg());
    in.seekg(0);

    const std::string qdir = shell_quote(remote_dir), qfinal = shell_quote(r.remote_path);
    const std::string part_prefix = "." + remote_name + ".ef-part-";
    // Same hash already there: skip. Parts left by an earlier dropped upload are removed.
    auto probe = run_shell("mkdir -p -- " + qdir + " && rm -f -- " + qdir + "/" + shell_quote(part_prefix) + "* && " +
                           "{ sha256sum -- " + qfinal + " 2>/dev/null || true; }");
    if (!probe) return probe.error();
    if (parse_sha256sum(*probe) == r.sha256) {
        r.skipped = true;
        progress.report(1.0, "unchanged: " + remote_name);
        return r;
    }

    const std::string tmp = remote_dir + "/" + part_prefix + random_hex(12);
    sftp_session sftp = sftp_new(impl_->s);
    if (!sftp) return make_error(impl_->err());
    struct SftpGuard {
        sftp_session p;
        ~SftpGuard() { sftp_free(p); }
    } sg{sftp};
    if (sftp_init(sftp) != SSH_OK) return make_error(where + ": SFTP is not available: " + ssh_get_error(impl_->s));
    sftp_file f = sftp_open(sftp, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode_t(mode));
    if (!f) return make_error(where + ": cannot create " + tmp + " on the board: " + ssh_get_error(impl_->s));
    auto abandon = [&](const std::string& why) -> Error {
        sftp_close(f);
        sftp_unlink(sftp, tmp.c_str());  // best effort: the connection may be gone
        return make_error(where + ": upload of " + local_path + " failed: " + why + " (nothing written under " + r.remote_path + ")");
    };
    std::vector<char> buf(128 * 1024);  // below OpenSSH's 256 KiB SFTP message limit
    uint64_t done = 0;
    while (done < r.bytes) {
        if (progress.cancelled()) return abandon("cancelled");
        in.read(buf.data(), std::streamsize(buf.size()));
        const auto n = in.gcount();
        if (n <= 0) return abandon("read error in the local file");
        if (sftp_write(f, buf.data(), size_t(n)) != ssize_t(n)) return abandon(std::string("connection lost: ") + ssh_get_error(impl_->s));
        done += uint64_t(n);
        progress.report(double(done) / double(r.bytes), "upload " + remote_name);
    }
    if (sftp_close(f) != SSH_NO_ERROR) {
        sftp_unlink(sftp, tmp.c_str());
        return make_error(where + ": closing " + tmp + " failed: " + ssh_get_error(impl_->s));
    }
    auto check = run_shell("sha256sum -- " + shell_quote(tmp));
    if (!check || parse_sha256sum(*check) != r.sha256) {
        (void)run_shell("rm -f -- " + shell_quote(tmp));
        return make_error(where + ": the board's sha256sum of " + tmp + " does not match the local file " + local_path +
                          (check ? "" : ": " + check.message()));
    }
    auto mv = run_shell("mv -f -- " + shell_quote(tmp) + " " + qfinal);
    if (!mv) return mv.error();
    progress.report(1.0, "uploaded " + remote_name);
    return r;
}

}  // namespace ef::remote
