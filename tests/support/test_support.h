// Helpers shared by the tests: locating ../shared and the npm reference tools, temp dirs and
// running reference scripts. Missing shared data is a clear failure, never a silent skip.
#pragma once
#include <QString>
#include <QStringList>
#include <cstdint>
#include <string>
#include <vector>

namespace ef::test {

// Absolute path of ../shared/<rel>; empty and a QFAIL-able message in *error when missing.
QString shared_path(const QString& rel, QString* error);
// Absolute path under the repository.
QString source_path(const QString& rel);
// Absolute path under the build directory.
QString build_path(const QString& rel);
// node_modules of tests/reference (installed by scripts/setup.sh).
QString reference_modules(QString* error);

struct ProcessResult {
    int exit_code = -1;
    QString out;
    QString err;
};
// Runs a program to completion (timeout in ms); exit_code -1 when it could not start or timed out.
ProcessResult run_process(const QString& program, const QStringList& args, int timeout_ms = 120000,
                          const QStringList& extra_env = {});
// Runs `node <tests/reference/script> args...`.
ProcessResult run_node_script(const QString& script, const QStringList& args, int timeout_ms = 120000);
// The edgefusion CLI built beside the tests.
QString cli_path();
// <build>/screenshots (EF_BUILD_DIR, else the configured build dir), created if missing: where GUI tests save PNGs.
QString screenshot_dir();

// llama.cpp's tokenizer suite files (../shared/vocab-tests, test-tokenizer-0's format): the .inp
// inputs are separated by "\n__ggml_vocab_test__\n" (the text after the last separator is not a
// test); the .out file has one line of space-separated ids per input.
std::vector<std::string> vocab_suite_inputs(const std::string& raw);
std::vector<std::vector<int32_t>> vocab_suite_outputs(const std::string& raw);

}  // namespace ef::test

// Fails the test with a clear message when a shared file is missing.
#define EF_REQUIRE_SHARED(var, rel)                                   \
    QString var;                                                      \
    do {                                                              \
        QString ef_err_;                                              \
        var = ef::test::shared_path(rel, &ef_err_);                   \
        if (var.isEmpty()) QFAIL(qPrintable(ef_err_));                \
    } while (0)
