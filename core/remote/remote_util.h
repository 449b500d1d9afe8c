// Small pieces the SSH layer needs: POSIX shell quoting (every remote path and argument goes
// through shell_quote, so names and settings cannot inject commands) and SHA-256 (the upload is
// checked against `sha256sum` on the board).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "core/result.h"

namespace ef::remote {

// 'text' with every ' written as '\'' : one shell word whatever the text holds ($, `, ;, spaces).
std::string shell_quote(std::string_view s);
// The words quoted and joined by spaces.
std::string shell_join(const std::vector<std::string>& words);
// Splits a settings string such as "qemu-aarch64 -L /usr/aarch64-linux-gnu" on blanks (no
// quoting rules: each word is then quoted on its own, so the wrapper is never shell code).
std::vector<std::string> split_words(std::string_view s);

class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t n);
    std::array<uint8_t, 32> finish();
    static std::string hex(const std::array<uint8_t, 32>& d);

private:
    void block(const uint8_t* p);
    std::array<uint32_t, 8> h_;
    std::array<uint8_t, 64> buf_{};
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);
// Lower-case hex SHA-256 of a file's contents.
Result<std::string> sha256_file(const std::string& path, Progress& progress = Progress::none());

}  // namespace ef::remote
