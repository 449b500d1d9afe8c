#include "core/remote/board_profile.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/storage.h"

namespace ef::remote {

namespace fs = std::filesystem;
using nlohmann::json;

Status validate(const BoardProfile& b) {
    const std::string who = "board '" + b.name + "': ";
    if (b.name.empty()) return make_error("board: the name is empty");
    if (b.host.empty()) return make_error(who + "the host is empty");
    if (b.user.empty()) return make_error(who + "the user is empty");
    if (b.work_dir.empty()) return make_error(who + "the remote work directory is empty");
    if (b.port < 1 || b.port > 65535) return make_error(who + "port " + std::to_string(b.port) + " is out of range 1..65535");
    if (b.arch != "x86_64" && b.arch != "aarch64")
        return make_error(who + "architecture '" + b.arch + "' is not x86_64 or aarch64");
    return {};
}

std::string default_boards_path() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    std::string base;
    if (xdg && *xdg) base = xdg;
    else if (const char* home = std::getenv("HOME"); home && *home) base = std::string(home) + "/.config";
    else base = ".config";
    return base + "/edgefusion/boards.json";
}

std::string to_json(const std::vector<BoardProfile>& boards) {
    json arr = json::array();
    for (const auto& b : boards)
        arr.push_back({{"name", b.name}, {"host", b.host}, {"port", b.port}, {"user", b.user}, {"key_file", b.key_file},
                       {"arch", b.arch}, {"work_dir", b.work_dir}, {"exec_wrapper", b.exec_wrapper}});
    return json{{"version", 1}, {"boards", arr}}.dump(2) + "\n";
}

Result<std::vector<BoardProfile>> boards_from_json(const std::string& text, const std::string& origin) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("boards") || !j["boards"].is_array())
        return make_error(origin + ": not a boards file (expected {\"boards\": [...]})");
    std::vector<BoardProfile> out;
    for (const auto& e : j["boards"]) {
        if (!e.is_object()) return make_error(origin + ": a board entry is not an object");
        BoardProfile b;
        auto str = [&](const char* k, std::string& dst) {
            if (e.contains(k) && e[k].is_string()) dst = e[k].get<std::string>();
        };
        str("name", b.name);
        str("host", b.host);
        str("user", b.user);
        str("key_file", b.key_file);
        str("arch", b.arch);
        str("work_dir", b.work_dir);
        str("exec_wrapper", b.exec_wrapper);
        if (e.contains("port") && e["port"].is_number_integer()) b.port = e["port"].get<int>();
        if (auto st = validate(b); !st) return make_error(origin + ": " + st.message());
        out.push_back(std::move(b));
    }
    return out;
}

Result<std::vector<BoardProfile>> load_boards(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::vector<BoardProfile>{};
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(path + ": cannot open the boards file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return boards_from_json(ss.str(), path);
}

Status save_boards(const std::string& path, const std::vector<BoardProfile>& boards) {
    for (const auto& b : boards) EF_TRY_STATUS(validate(b));
    std::error_code ec;
    const fs::path dir = fs::path(path).parent_path();
    if (!dir.empty()) fs::create_directories(dir, ec);
    if (ec) return make_error(dir.string() + ": cannot create the settings directory: " + ec.message());
    auto w = AtomicFileWriter::create(path);
    if (!w) return w.error();
    const std::string text = to_json(boards);
    EF_TRY_STATUS((*w)->write(text.data(), text.size()));
    return (*w)->commit();
}

Status upsert_board(const std::string& path, const BoardProfile& b) {
    EF_TRY_STATUS(validate(b));
    auto all = load_boards(path);
    if (!all) return all.error();
    bool replaced = false;
    for (auto& e : *all)
        if (e.name == b.name) {
            e = b;
            replaced = true;
        }
    if (!replaced) all->push_back(b);
    return save_boards(path, *all);
}

Status remove_board(const std::string& path, const std::string& name) {
    auto all = load_boards(path);
    if (!all) return all.error();
    const auto n = all->size();
    std::erase_if(*all, [&](const BoardProfile& b) { return b.name == name; });
    if (all->size() == n) return make_error(path + ": no board named '" + name + "'");
    return save_boards(path, *all);
}

Result<BoardProfile> find_board(const std::string& path, const std::string& name) {
    auto all = load_boards(path);
    if (!all) return all.error();
    for (auto& b : *all)
        if (b.name == name) return b;
    return make_error(path + ": no board named '" + name + "' (add it with `edgefusion board add`)");
}

}  // namespace ef::remote
