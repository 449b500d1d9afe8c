#include "core/storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ef {
namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(path + ": cannot open: " + errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const std::string msg = path + ": cannot stat: " + errno_text();
        ::close(fd);
        return make_error(msg);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(path + ": not a regular file");
    }
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path;
    f->size_ = size_t(st.st_size);
    if (f->size_ > 0) {
        void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const std::string msg = path + ": cannot map: " + errno_text();
            ::close(fd);
            return make_error(msg);
        }
        f->data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping stays valid
    return f;
}

void MappedFile::release(std::span<const std::byte> range) const {
    // Only whole pages inside the range (a neighbour tensor may share the edge pages).
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t lo = uintptr_t(range.data()), hi = lo + range.size();
    if (!data_ || lo < uintptr_t(data_) || hi > uintptr_t(data_) + size_) return;
    const uintptr_t first = (lo + page - 1) / page * page, last = hi / page * page;
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

std::string temp_path_for(const std::string& path) {
    static std::atomic<unsigned> counter{0};
    return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

Status atomic_replace(const std::string& tmp, const std::string& path) {
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string msg = path + ": cannot replace with " + tmp + ": " + errno_text();
        std::remove(tmp.c_str());
        return make_error(msg);
    }
    return {};
}

Result<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::create(const std::string& path) {
    std::unique_ptr<AtomicFileWriter> w(new AtomicFileWriter());
    w->path_ = path;
    w->tmp_ = temp_path_for(path);
    w->fd_ = ::open(w->tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd_ < 0) return make_error(path + ": cannot create " + w->tmp_ + ": " + errno_text());
    w->buf_.reserve(1 << 20);
    return w;
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
}

Status AtomicFileWriter::flush() {
    size_t off = 0;
    while (off < buf_.size()) {
        const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(path_ + ": write failed: " + errno_text());
        }
        off += size_t(n);
    }
    buf_.clear();
    return {};
}

Status AtomicFileWriter::write(const void* data, size_t n) {
    if (fd_ < 0) return make_error(path_ + ": writer already closed");
    const auto* p = static_cast<const std::byte*>(data);
    if (n >= buf_.capacity()) {
        EF_TRY_STATUS(flush());
        buf_.assign(p, p + n);
        EF_TRY_STATUS(flush());
    } else {
        if (buf_.size() + n > buf_.capacity()) EF_TRY_STATUS(flush());
        buf_.insert(buf_.end(), p, p + n);
    }
    pos_ += n;
    return {};
}

Status AtomicFileWriter::pad_to_alignment(uint64_t alignment) {
    if (alignment == 0) return {};
    const uint64_t pad = (alignment - pos_ % alignment) % alignment;
    static const std::byte zeros[256] = {};
    uint64_t left = pad;
    while (left > 0) {
        const uint64_t n = left < sizeof(zeros) ? left : sizeof(zeros);
        EF_TRY_STATUS(write(zeros, size_t(n)));
        left -= n;
    }
    return {};
}

Status AtomicFileWriter::commit() {
    if (fd_ < 0) return make_error(path_ + ": writer already closed");
    EF_TRY_STATUS(flush());
    if (::fsync(fd_) != 0) return make_error(path_ + ": fsync failed: " + errno_text());
    if (::close(fd_) != 0) {
        fd_ = -1;
        return make_error(path_ + ": close failed: " + errno_text());
    }
    fd_ = -1;
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
        return make_error(path_ + ": cannot rename " + tmp_ + " into place: " + errno_text());
    committed_ = true;
    return {};
}

}  // namespace ef
