#include "app/cli/args.h"

#include <charconv>

namespace ef::cli {

std::optional<std::string> Args::get(const std::string& name) const {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
}

Result<int64_t> Args::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
    const auto v = get(name);
    if (!v) return fallback;
    int64_t out = 0;
    const auto* end = v->data() + v->size();
    const auto [p, ec] = std::from_chars(v->data(), end, out);
    if (ec != std::errc() || p != end) return make_error(name + ": expected an integer, got '" + *v + "'");
    if (out < lo || out > hi)
        return make_error(name + ": " + *v + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return out;
}

Result<Args> parse_args(const std::vector<std::string>& argv, const std::vector<OptionSpec>& specs) {
    Args a;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& tok = argv[i];
        if (tok.size() < 2 || tok[0] != '-' || tok == "--") {
            a.positional.push_back(tok);
            continue;
        }
        std::string name = tok, inline_value;
        bool has_inline = false;
        if (const auto eq = tok.find('='); tok.rfind("--", 0) == 0 && eq != std::string::npos) {
            name = tok.substr(0, eq);
            inline_value = tok.substr(eq + 1);
            has_inline = true;
        }
        const OptionSpec* spec = nullptr;
        for (const auto& s : specs)
            if (s.name == name || (!s.alias.empty() && s.alias == name)) spec = &s;
        if (!spec) return make_error("unknown option " + name);
        if (!spec->takes_value) {
            if (has_inline) return make_error(spec->name + " takes no value");
            a.flags.insert(spec->name);
            continue;
        }
        if (has_inline) {
            a.values[spec->name] = inline_value;
        } else {
            if (i + 1 >= argv.size()) return make_error(spec->name + " needs a value");
            a.values[spec->name] = argv[++i];
        }
    }
    return a;
}

std::string options_help(const std::vector<OptionSpec>& specs) {
    std::string out;
    for (const auto& s : specs) {
        std::string left = "  " + s.name;
        if (!s.alias.empty()) left += ", " + s.alias;
        if (s.takes_value) left += " VALUE";
        if (left.size() < 28) left.resize(28, ' ');
        out += left + " " + s.help + "\n";
    }
    return out;
}

}  // namespace ef::cli
