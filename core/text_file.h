// Whole-file text writes through ef::AtomicFileWriter (core/storage.h): a failed write leaves no
// partial file under the target name. One helper for the JSON, YAML, SVG and table files the CLI,
// the trainer and the formats write.
#pragma once
#include <string>
#include <string_view>

#include "core/result.h"

namespace ef {

Status write_text_file(const std::string& path, std::string_view text);

}  // namespace ef
