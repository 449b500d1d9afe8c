#include "core/formats/format.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/formats/gguf.h"
#include "core/formats/llama2c.h"
#include "core/formats/safetensors.h"

namespace ef {
namespace {

std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}

std::vector<FormatHandler>& registry() {
    static std::vector<FormatHandler> r = [] {
        // Probe order matters: formats with a magic number first; llama2.c has none and goes last.
        return std::vector<FormatHandler>{gguf_format_handler(), safetensors_format_handler(),
                                          llama2c_format_handler()};
    }();
    return r;
}

std::string lower_extension(const std::string& path) {
    const auto slash = path.find_last_of('/');
    const auto dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return {};
    std::string ext = path.substr(dot);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return ext;
}

}  // namespace

void register_format(const FormatHandler& handler) {
    std::lock_guard lock(registry_mutex());
    auto& r = registry();
    for (auto& h : r)
        if (h.name == handler.name) {
            h = handler;
            return;
        }
    // Magic-number formats go before the last (magic-less) llama2.c entry.
    r.insert(r.end() - 1, handler);
}

const std::vector<FormatHandler>& formats() { return registry(); }

const FormatHandler* find_format(std::string_view name) {
    for (const auto& h : registry())
        if (h.name == name) return &h;
    return nullptr;
}

const FormatHandler* format_for_extension(const std::string& path) {
    const std::string ext = lower_extension(path);
    if (ext.empty()) return nullptr;
    for (const auto& h : registry())
        for (auto e : h.extensions)
            if (e == ext) return &h;
    return nullptr;
}

Result<Model> load_model(const std::string& path, const LoadOptions& opts, Progress& progress) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        // A HuggingFace-style folder (model.safetensors + config.json).
        if (const auto* h = find_format("safetensors")) return h->load(path, opts, progress);
    }
    if (!std::filesystem::exists(path, ec)) return make_error(path + ": no such file");
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open for reading");
    std::array<std::byte, 64> head{};
    in.read(reinterpret_cast<char*>(head.data()), head.size());
    const auto got = size_t(in.gcount());
    const std::span<const std::byte> bytes(head.data(), got);
    for (const auto& h : registry())
        if (h.probe && h.probe(bytes)) return h.load(path, opts, progress);
    if (const auto* h = format_for_extension(path)) return h->load(path, opts, progress);
    return make_error(path + ": unrecognised checkpoint format (expected GGUF, safetensors, HDF5 or llama2.c .bin)");
}

Status save_model(const Model& model, const std::string& path, const SaveOptions& opts, Progress& progress) {
    const auto* h = format_for_extension(path);
    if (!h) {
        std::string known;
        for (const auto& f : registry())
            for (auto e : f.extensions) known += (known.empty() ? "" : ", ") + std::string(e);
        return make_error(path + ": cannot tell the output format from the extension (known: " + known + ")");
    }
    if (!h->save) return make_error(path + ": writing " + std::string(h->name) + " is not supported");
    return h->save(model, path, opts, progress);
}

}  // namespace ef
