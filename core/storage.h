// Bytes behind tensors. A checkpoint is memory-mapped read-only where the format stores raw tensor
// bytes (GGUF, safetensors, llama2.c), so opening costs no resident memory until a tensor is read.
// Decoded formats (HDF5 chunks, conversions) hold their bytes in an owned buffer instead.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ef {

class Storage {
public:
    virtual ~Storage() = default;
    virtual std::span<const std::byte> bytes() const = 0;
    // A hint that `range` (inside bytes()) will not be read again soon: a mapped file drops those
    // pages from this process (they are read back from the page cache if touched again), so a job
    // that streams through a large checkpoint keeps its resident memory to what it is working on.
    virtual void release(std::span<const std::byte> /*range*/) const {}
};

class MappedFile final : public Storage {
public:
    static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
    ~MappedFile() override;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const std::byte> bytes() const override { return {data_, size_}; }
    void release(std::span<const std::byte> range) const override;
    const std::string& path() const { return path_; }

private:
    MappedFile() = default;
    std::string path_;
    const std::byte* data_ = nullptr;
    size_t size_ = 0;
};

class OwnedBuffer final : public Storage {
public:
    explicit OwnedBuffer(std::vector<std::byte> data) : data_(std::move(data)) {}
    std::span<const std::byte> bytes() const override { return data_; }

private:
    std::vector<std::byte> data_;
};

// Writes a file atomically: everything goes to "<path>.tmp-<pid>-<n>" which is renamed over <path>
// only by commit(). Destroying an uncommitted writer removes the temporary file, so a failed or
// cancelled save never leaves a half-written file under the target name.
class AtomicFileWriter {
public:
    static Result<std::unique_ptr<AtomicFileWriter>> create(const std::string& path);
    ~AtomicFileWriter();

    Status write(const void* data, size_t n);
    Status write(std::span<const std::byte> b) { return write(b.data(), b.size()); }
    Status pad_to_alignment(uint64_t alignment);  // zero bytes up to the next multiple
    uint64_t position() const { return pos_; }
    const std::string& temp_path() const { return tmp_; }
    const std::string& path() const { return path_; }
    Status commit();  // flush, fsync, rename

private:
    AtomicFileWriter() = default;
    std::string path_, tmp_;
    int fd_ = -1;
    uint64_t pos_ = 0;
    bool committed_ = false;
    std::vector<std::byte> buf_;
    Status flush();
};

// A temporary path next to `path` for writers that need a file name (e.g. HDF5's library).
std::string temp_path_for(const std::string& path);
// Renames tmp over path (atomic on one filesystem); on failure removes tmp.
Status atomic_replace(const std::string& tmp, const std::string& path);

}  // namespace ef
