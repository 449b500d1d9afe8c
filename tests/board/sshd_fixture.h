// The board tests' SSH server: Debian's /usr/sbin/sshd on 127.0.0.1 (free port, generated host and
// client keys, its own sshd_config) started as this user and stopped by its PID, plus a tiny model
// whose name holds shell metacharacters and a short text. Boards made here point at it: the x86
// board runs the host runner, the aarch64 board the static aarch64 runner under qemu-aarch64
// through the profile's exec wrapper. Shared by test_board_ssh and test_board_panel.
#pragma once
#include <QByteArray>
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QList>
#include <QProcess>
#include <QString>
#include <QTemporaryDir>
#include <QTest>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/remote/board_profile.h"
#include "core/remote/run_target.h"
#include "core/remote/ssh_session.h"
#include "tests/support/test_support.h"

namespace ef::test::board {

inline const QString kSshd = QStringLiteral("/usr/sbin/sshd");
inline const QString kQemu = QStringLiteral(EF_QEMU_AARCH64);
inline const QString kBoardRunner = QStringLiteral(EF_BOARD_RUNNER);
inline const QString kHostRunner = QStringLiteral(EF_HOST_RUNNER);

inline QString describe(const char* what, const ProcessResult& r) {
    return QStringLiteral("%1 exited %2\nstdout:\n%3\nstderr:\n%4").arg(what).arg(r.exit_code).arg(r.out, r.err);
}

inline int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

inline bool port_open(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

inline QByteArray read_all(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}
inline bool write_all(const QString& path, const QByteArray& data) {
    QFile f(path);
    return f.open(QIODevice::WriteOnly | QIODevice::Truncate) && f.write(data) == data.size();
}
inline QString file_sha256(const QString& path) {
    return QString::fromLatin1(QCryptographicHash::hash(read_all(path), QCryptographicHash::Sha256).toHex());
}

// Every process below `root` (children, grandchildren), by walking /proc's parent links.
inline QList<pid_t> descendants(pid_t root) {
    QList<pid_t> out{root};
    bool grew = true;
    while (grew) {
        grew = false;
        for (const QString& e : QDir(QStringLiteral("/proc")).entryList(QDir::Dirs)) {
            bool ok = false;
            const pid_t pid = pid_t(e.toInt(&ok));
            if (!ok || out.contains(pid)) continue;
            const QByteArray stat = read_all("/proc/" + e + "/stat");
            const int close_paren = stat.lastIndexOf(')');
            if (close_paren < 0) continue;
            const QList<QByteArray> f = stat.mid(close_paren + 2).split(' ');  // state ppid ...
            if (f.size() > 1 && out.contains(pid_t(f[1].toInt()))) {
                out.append(pid);
                grew = true;
            }
        }
    }
    out.removeFirst();
    return out;
}

inline bool process_gone(long pid, int wait_ms) {
    for (int waited = 0; waited <= wait_ms; waited += 50) {
        // A zombie still answers kill(0); its /proc status says Z.
        const QByteArray st = read_all(QStringLiteral("/proc/%1/stat").arg(pid));
        if (st.isEmpty()) return true;
        const int cp = st.lastIndexOf(')');
        if (cp > 0 && st.mid(cp + 2, 1) == "Z") return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

class SshdFixture {
protected:
    QTemporaryDir tmp_;
    QString dir_;
    int port_ = -1;
    QProcess sshd_;
    qint64 sshd_pid_ = 0;
    QString user_, model_, text_;
    QString host_fp_;  // ssh-keygen -lf of the host key

    QString p(const QString& rel) const { return dir_ + "/" + rel; }

    QString keygen(const QString& name) {
        const ProcessResult r = run_process(QStringLiteral("ssh-keygen"), {"-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p(name)});
        return r.exit_code == 0 ? QString() : describe("ssh-keygen", r);
    }
    // known_hosts line for the fixture's server with the given public key file.
    QByteArray known_line(const QString& pub) const {
        const QList<QByteArray> w = read_all(pub).trimmed().split(' ');
        return QStringLiteral("[127.0.0.1]:%1 ").arg(port_).toUtf8() + w.value(0) + " " + w.value(1) + "\n";
    }
    remote::BoardProfile board(const QString& name, const QString& arch, const QString& key = "client_key") const {
        remote::BoardProfile b;
        b.name = name.toStdString();
        b.host = "127.0.0.1";
        b.port = port_;
        b.user = user_.toStdString();
        b.key_file = p(key).toStdString();
        b.arch = arch.toStdString();
        b.work_dir = p("board-" + name).toStdString();
        if (arch == "aarch64") b.exec_wrapper = kQemu.toStdString();
        return b;
    }
    remote::ConnectOptions opts(const QString& known = "known_hosts", bool accept = false) const {
        remote::ConnectOptions o;
        o.known_hosts = p(known).toStdString();
        o.accept_new_host_key = accept;
        return o;
    }
    remote::RunRequest request() const {
        remote::RunRequest r;
        r.model_path = model_.toStdString();
        r.profile_args = {"--pp", "8", "--tg", "8", "-r", "1"};
        return r;
    }

    // Keys, sshd, known_hosts (with the host key), the model and the text. Empty = ready, else why not.
    // A missing sshd / qemu / runner is an error with the fix, never a skip.
    QString startSshd() {
        if (!QFile::exists(kSshd)) return "/usr/sbin/sshd is missing: install Debian's openssh-server (scripts/setup.sh)";
        if (!QFile::exists(kQemu)) return kQemu + " is missing: run scripts/setup.sh (qemu-user)";
        if (!QFile::exists(kBoardRunner)) return kBoardRunner + " is missing: build target ef_board_aarch64";
        if (!QFile::exists(kHostRunner)) return kHostRunner + " is missing: build target edgefusion-run";
        if (!tmp_.isValid()) return "no temporary directory";
        dir_ = tmp_.path();
        if (!QDir().mkpath(QStringLiteral("/run/sshd"))) return "cannot create /run/sshd (sshd's privilege separation directory)";
        const passwd* pw = getpwuid(getuid());
        if (!pw) return "getpwuid failed";
        user_ = QString::fromLocal8Bit(pw->pw_name);
        for (const char* k : {"host_key", "other_host_key", "client_key", "wrong_key"})
            if (const QString e = keygen(k); !e.isEmpty()) return e;
        if (!write_all(p("authorized_keys"), read_all(p("client_key.pub")))) return "cannot write authorized_keys";
        const ProcessResult fp = run_process(QStringLiteral("ssh-keygen"), {"-l", "-E", "sha256", "-f", p("host_key.pub")});
        if (fp.exit_code != 0) return describe("ssh-keygen -l", fp);
        host_fp_ = fp.out.split(' ').value(1);  // "256 SHA256:... comment (ED25519)"
        if (!host_fp_.startsWith("SHA256:")) return "unexpected ssh-keygen -l output: " + fp.out;

        port_ = free_port();
        if (port_ <= 0) return "no free port";
        const QString cfg = QStringLiteral(
                                "Port %1\nListenAddress 127.0.0.1\nHostKey %2\nPidFile %3\nAuthorizedKeysFile %4\n"
                                "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                                "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nMaxStartups 50\n"
                                "Subsystem sftp /usr/lib/openssh/sftp-server\n")
                                .arg(port_)
                                .arg(p("host_key"), p("sshd.pid"), p("authorized_keys"));
        if (!write_all(p("sshd_config"), cfg.toUtf8())) return "cannot write sshd_config";
        sshd_.setProcessChannelMode(QProcess::MergedChannels);
        sshd_.start(kSshd, {"-D", "-e", "-f", p("sshd_config")});
        if (!sshd_.waitForStarted(10000)) return "cannot start sshd: " + sshd_.errorString();
        sshd_pid_ = sshd_.processId();
        bool up = false;
        for (int i = 0; i < 100 && !up; ++i) {
            up = port_open(port_);
            if (!up) QTest::qWait(100);
        }
        if (!up) return "sshd did not listen on 127.0.0.1:" + QString::number(port_) + ":\n" + sshd_.readAll();
        if (!write_all(p("known_hosts"), known_line(p("host_key.pub")))) return "cannot write known_hosts";

        // A tiny model whose name holds spaces, quotes, $, backticks and ;.
        model_ = p("tiny model 'q' \"d\" $HOME `id`;x.gguf");
        const ProcessResult s = run_process(cli_path(), {"synth", "--arch", "llama", "--dim", "64", "--layers", "2", "--vocab", "300",
                                                         "--context", "128", "--seed", "7", "-o", model_});
        if (s.exit_code != 0) return describe("edgefusion synth", s);
        text_ = p("text with 'quote'.txt");
        QByteArray t;
        for (int i = 0; i < 30; ++i) t += "the quick brown fox jumps over the lazy dog. ";
        if (!write_all(text_, t)) return "cannot write the text file";
        return {};
    }

    void stopSshd() {
        if (sshd_pid_ > 0) {
            ::kill(pid_t(sshd_pid_), SIGTERM);  // by the PID we started, never by name
            if (!sshd_.waitForFinished(5000)) ::kill(pid_t(sshd_pid_), SIGKILL);
            sshd_.waitForFinished(2000);
            sshd_pid_ = 0;
        }
    }
};

}  // namespace ef::test::board
