// GGUF written one tensor at a time, for jobs whose output would not fit in memory at once
// (quantizing a large model): GGUF puts every tensor's offset in the header before the data, so
// the data goes to a spool file beside the target first (each tensor padded to the alignment, as
// the final layout needs), and commit() writes the header and copies the spool behind it through
// an AtomicFileWriter. Memory: one tensor plus a copy buffer; disk: about twice the output for the
// duration of commit. The spool is removed in every case; a failed or cancelled write leaves no file
// under the target name.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/formats/gguf.h"
#include "core/progress.h"

namespace ef::gguf {

class StreamWriter {
public:
    // `meta` gives the architecture, config, layers, metadata and vocabulary (its tensors are
    // ignored). Fails early when the architecture cannot be written.
    static Result<std::unique_ptr<StreamWriter>> create(const Model& meta, const std::string& path);
    ~StreamWriter();
    StreamWriter(const StreamWriter&) = delete;
    StreamWriter& operator=(const StreamWriter&) = delete;

    // Appends t's bytes (checked as write_model checks them: name, shape, type, size).
    Status add(const Tensor& t);
    Status commit(Progress& progress = Progress::none());
    uint64_t data_bytes() const { return offset_; }

private:
    StreamWriter() = default;
    std::string path_, spool_;
    int fd_ = -1;
    uint64_t offset_ = 0;
    std::vector<std::pair<std::string, MetaValue>> kv_;
    std::vector<TensorInfo> infos_;
};

}  // namespace ef::gguf
