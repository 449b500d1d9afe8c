// GGUF written one tensor at a time through a spool file (see gguf_stream.h).
#include "core/formats/gguf_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

namespace ef::gguf {
namespace {

std::string errno_message() { return std::strerror(errno); }

Status write_all(int fd, const void* p, size_t n, const std::string& what) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return make_error(what + ": write failed: " + errno_message());
        c += w;
        n -= size_t(w);
    }
    return {};
}

}  // namespace

Result<std::unique_ptr<StreamWriter>> StreamWriter::create(const Model& meta, const std::string& path) {
    std::unique_ptr<StreamWriter> w(new StreamWriter());
    w->path_ = path;
    auto kv = model_kv(meta);
    if (!kv) return make_error(path + ": " + kv.message());
    w->kv_ = std::move(*kv);
    w->spool_ = temp_path_for(path + ".data");
    w->fd_ = ::open(w->spool_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd_ < 0) return make_error(path + ": cannot create the spool file " + w->spool_ + ": " + errno_message());
    return w;
}

StreamWriter::~StreamWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!spool_.empty()) ::unlink(spool_.c_str());
}

Status StreamWriter::add(const Tensor& t) {
    for (const auto& i : infos_)
        if (i.name == t.name) return make_error(path_ + ": cannot write GGUF: tensor '" + t.name + "' appears twice");
    auto info = tensor_info(t, offset_);
    if (!info) return make_error(path_ + ": " + info.message());
    EF_TRY_STATUS(write_all(fd_, t.data.data(), t.data.size(), spool_));
    static const char zeros[kDefaultAlignment] = {};
    const uint64_t pad = padded_size(info->nbytes) - info->nbytes;
    if (pad) EF_TRY_STATUS(write_all(fd_, zeros, size_t(pad), spool_));
    offset_ += padded_size(info->nbytes);
    infos_.push_back(std::move(*info));
    return {};
}

Status StreamWriter::commit(Progress& progress) {
    auto created = AtomicFileWriter::create(path_);
    if (!created) return created.error();
    auto& w = *created.value();
    EF_TRY_STATUS(w.write(encode_header(kv_, infos_)));
    EF_TRY_STATUS(w.pad_to_alignment(kDefaultAlignment));
    if (::lseek(fd_, 0, SEEK_SET) < 0) return make_error(spool_ + ": seek failed: " + errno_message());
    std::vector<char> buf(size_t(8) << 20);
    for (uint64_t done = 0; done < offset_;) {
        if (progress.cancelled()) return make_error(path_ + ": save cancelled");
        const ssize_t r = ::read(fd_, buf.data(), size_t(std::min<uint64_t>(buf.size(), offset_ - done)));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return make_error(spool_ + ": read failed: " + (r == 0 ? std::string("unexpected end") : errno_message()));
        EF_TRY_STATUS(w.write(buf.data(), size_t(r)));
        done += uint64_t(r);
        progress.report(double(done) / double(offset_), "writing " + path_);
    }
    EF_TRY_STATUS(w.commit());
    progress.report(1.0, "done");
    return {};
}

}  // namespace ef::gguf
