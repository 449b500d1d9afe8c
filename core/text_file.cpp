#include "core/text_file.h"

#include "core/storage.h"

namespace ef {

Status write_text_file(const std::string& path, std::string_view text) {
    auto w = AtomicFileWriter::create(path);
    if (!w) return w.error();
    EF_TRY_STATUS((*w)->write(text.data(), text.size()));
    return (*w)->commit();
}

}  // namespace ef
