#include "tests/support/test_support.h"

#include <QDir>
#include <QFileInfo>
#include <QProcess>
#include <QProcessEnvironment>

namespace ef::test {

QString shared_path(const QString& rel, QString* error) {
    const QString dir = QStringLiteral(EF_SHARED_DIR);
    const QString p = QDir(dir).absoluteFilePath(rel);
    if (!QFileInfo::exists(p)) {
        if (error)
            *error = QStringLiteral("shared test data missing: %1 (expected the shared/ folder beside the "
                                    "repository, at %2)").arg(p, QDir(dir).absolutePath());
        return {};
    }
    return QFileInfo(p).canonicalFilePath();
}

QString source_path(const QString& rel) { return QDir(QStringLiteral(EF_SOURCE_DIR)).absoluteFilePath(rel); }

QString build_path(const QString& rel) { return QDir(QStringLiteral(EF_BINARY_DIR)).absoluteFilePath(rel); }

QString reference_modules(QString* error) {
    const QString p = QDir(QStringLiteral(EF_REFERENCE_DIR)).absoluteFilePath("node_modules");
    if (!QFileInfo::exists(p + "/node-llama-cpp") || !QFileInfo::exists(p + "/@huggingface/gguf")) {
        if (error)
            *error = QStringLiteral("reference tools missing in %1: run the README's set-up "
                                    "(bash scripts/setup.sh installs them into tests/reference)").arg(p);
        return {};
    }
    return p;
}

ProcessResult run_process(const QString& program, const QStringList& args, int timeout_ms,
                          const QStringList& extra_env) {
    QProcess proc;
    auto env = QProcessEnvironment::systemEnvironment();
    for (const QString& kv : extra_env) {
        const int eq = kv.indexOf('=');
        if (eq > 0) env.insert(kv.left(eq), kv.mid(eq + 1));
    }
    proc.setProcessEnvironment(env);
    proc.start(program, args);
    ProcessResult r;
    if (!proc.waitForStarted(20000)) {
        r.err = QStringLiteral("could not start %1: %2").arg(program, proc.errorString());
        return r;
    }
    if (!proc.waitForFinished(timeout_ms)) {
        proc.kill();
        proc.waitForFinished(5000);
        r.err = QStringLiteral("%1 timed out after %2 ms").arg(program).arg(timeout_ms);
        r.out = QString::fromUtf8(proc.readAllStandardOutput());
        return r;
    }
    r.out = QString::fromUtf8(proc.readAllStandardOutput());
    r.err = QString::fromUtf8(proc.readAllStandardError());
    r.exit_code = proc.exitStatus() == QProcess::NormalExit ? proc.exitCode() : -1;
    return r;
}

ProcessResult run_node_script(const QString& script, const QStringList& args, int timeout_ms) {
    QStringList full{source_path("tests/reference/" + script)};
    full += args;
    return run_process(QStringLiteral("node"), full, timeout_ms, {"NODE_LLAMA_CPP_SKIP_DOWNLOAD=true"});
}

QString cli_path() { return build_path("app/edgefusion"); }

std::vector<std::string> vocab_suite_inputs(const std::string& raw) {
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < raw.size()) {
        const size_t next = raw.find(sep, pos);
        if (next == std::string::npos) {
            out.push_back(raw.substr(pos));
            break;
        }
        out.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }
    return out;
}

std::vector<std::vector<int32_t>> vocab_suite_outputs(const std::string& raw) {
    std::vector<std::vector<int32_t>> out;
    size_t pos = 0;
    while (pos < raw.size()) {
        size_t eol = raw.find('\n', pos);
        if (eol == std::string::npos) eol = raw.size();
        std::vector<int32_t> ids;
        const std::string line = raw.substr(pos, eol - pos);
        size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\r')) ++i;
            size_t j = i;
            while (j < line.size() && line[j] != ' ' && line[j] != '\r') ++j;
            if (j > i) ids.push_back(int32_t(std::stol(line.substr(i, j - i))));
            i = j;
        }
        out.push_back(std::move(ids));
        pos = eol + 1;
    }
    return out;
}

QString screenshot_dir() {
    const QString build = qEnvironmentVariable("EF_BUILD_DIR", EF_BINARY_DIR);
    QDir().mkpath(build + "/screenshots");
    return build + "/screenshots";
}

}  // namespace ef::test
