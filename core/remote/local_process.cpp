#include "core/remote/local_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ef::remote {

Result<int> run_local(const std::vector<std::string>& argv, const OutputFn& on_output, Progress& progress) {
    if (argv.empty()) return make_error("run_local: empty command");
    int out[2], err[2], ex[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(ex, O_CLOEXEC))
        return make_error(argv[0] + ": cannot create pipes: " + std::strerror(errno));
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return make_error(argv[0] + ": fork failed: " + std::strerror(errno));
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        execvp(cargv[0], cargv.data());
        const int e = errno;  // tell the parent why exec failed through the close-on-exec pipe
        (void)!write(ex[1], &e, sizeof e);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    close(ex[1]);
    int exec_errno = 0;
    const bool exec_failed = read(ex[0], &exec_errno, sizeof exec_errno) == ssize_t(sizeof exec_errno);
    close(ex[0]);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    bool killed = false;
    char buf[16384];
    while (open_fds > 0) {
        if (progress.cancelled() && !killed) {
            kill(pid, SIGTERM);
            killed = true;
        }
        const int pr = poll(fds, 2, 100);
        if (pr < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                if (on_output) on_output(std::string_view(buf, size_t(n)), i == 1);
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (exec_failed) return make_error(argv[0] + ": cannot run: " + std::strerror(exec_errno));
    if (killed) return make_error(argv[0] + ": cancelled; process " + std::to_string(pid) + " killed");
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

}  // namespace ef::remote
