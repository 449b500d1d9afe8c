#include "core/train/checkpoint_path.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <vector>

namespace ef::train {
namespace {

namespace fs = std::filesystem;

bool is_model_file(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (p.filename() == "train_state.h5") return false;  // optimizer moments, not a model
    return ext == ".gguf" || ext == ".safetensors" || ext == ".h5" || ext == ".hdf5" || ext == ".bin";
}

}  // namespace

Result<std::string> resolve_model_path(const std::string& path) {
    std::error_code ec;
    if (path.empty()) return make_error("no model path given");
    if (!fs::exists(path, ec)) return make_error(path + ": no such file or directory");
    if (!fs::is_directory(path, ec)) return path;
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(path, ec))
        if (e.is_regular_file(ec) && is_model_file(e.path())) found.push_back(e.path());
    if (ec) return make_error(path + ": cannot list the folder: " + ec.message());
    std::sort(found.begin(), found.end());
    if (found.empty()) return make_error(path + ": the folder holds no model file (.gguf, .safetensors, .h5, .bin)");
    if (found.size() == 1) return found.front().string();
    std::vector<fs::path> named;
    for (const auto& p : found)
        if (p.stem() == "model") named.push_back(p);
    if (named.size() == 1) return named.front().string();
    std::string list;
    for (const auto& p : found) list += (list.empty() ? "" : ", ") + p.filename().string();
    return make_error(path + ": the folder holds several model files (" + list + "); name one of them");
}

std::string model_file_in(const std::string& dir, bool ef_format) {
    return (fs::path(dir) / (ef_format ? "model.h5" : "model.gguf")).string();
}

}  // namespace ef::train
