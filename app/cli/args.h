// Small command-line parser for the CLI: --name value, --flag, -o value, positionals.
// Unknown options are errors (a typo must not silently change what a command does).
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"

namespace ef::cli {

struct OptionSpec {
    std::string name;        // "--dim"
    std::string alias;       // "-o" or ""
    bool takes_value = true;
    std::string help;
};

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::string> values;  // by OptionSpec::name
    std::set<std::string> flags;

    bool has(const std::string& name) const { return values.count(name) || flags.count(name); }
    std::optional<std::string> get(const std::string& name) const;
    // Integer option with bounds; error names the option.
    Result<int64_t> get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
};

Result<Args> parse_args(const std::vector<std::string>& argv, const std::vector<OptionSpec>& specs);
std::string options_help(const std::vector<OptionSpec>& specs);

}  // namespace ef::cli
