// Board profiles: where a board is and how to reach it. Stored as JSON in the user's settings
// ($XDG_CONFIG_HOME/edgefusion/boards.json, else ~/.config/edgefusion/boards.json), written
// atomically. No passwords: authentication is by key file or ssh-agent only.
#pragma once
#include <string>
#include <vector>

#include "core/result.h"

namespace ef::remote {

struct BoardProfile {
    std::string name;
    std::string host;
    int port = 22;
    std::string user;
    std::string key_file;    // private key; empty = use the ssh-agent
    std::string arch = "x86_64";  // x86_64 | aarch64
    std::string work_dir;    // remote directory for the runner and models (absolute or relative to $HOME)
    std::string exec_wrapper;  // e.g. "qemu-aarch64" for an emulated board; words, each quoted

    bool use_agent() const { return key_file.empty(); }
};

// Checks fields: name/host/user/work_dir non-empty, port in 1..65535, arch known.
Status validate(const BoardProfile& b);

// The default boards.json path (does not create it).
std::string default_boards_path();

// Missing file = no boards. A corrupt file is an error naming it.
Result<std::vector<BoardProfile>> load_boards(const std::string& path);
// Creates the directory if needed; atomic replace.
Status save_boards(const std::string& path, const std::vector<BoardProfile>& boards);

// Convenience over a boards file: add or replace by name / remove by name / find.
Status upsert_board(const std::string& path, const BoardProfile& b);
Status remove_board(const std::string& path, const std::string& name);
Result<BoardProfile> find_board(const std::string& path, const std::string& name);

std::string to_json(const std::vector<BoardProfile>& boards);
Result<std::vector<BoardProfile>> boards_from_json(const std::string& text, const std::string& origin);

}  // namespace ef::remote
