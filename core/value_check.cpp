#include "core/value_check.h"

#include "core/stats.h"

namespace ef {

Result<std::vector<NonFiniteTensor>> find_non_finite(const Model& m, Progress& progress) {
    std::vector<NonFiniteTensor> out;
    uint64_t total = 0, done = 0;
    for (const auto& t : m.tensors) total += t.nbytes();
    for (const auto& t : m.tensors) {
        if (progress.cancelled()) return make_error("cancelled");
        const bool integer = t.dtype == DType::I8 || t.dtype == DType::I16 || t.dtype == DType::I32 || t.dtype == DType::I64;
        if (integer) {  // integers cannot hold NaN
            done += t.nbytes();
            continue;
        }
        auto s = tensor_stats(t);
        if (!s) return s.error();
        if (s->nan_count || s->inf_count) out.push_back({t.name, s->nan_count, s->inf_count});
        done += t.nbytes();
        progress.report(total ? double(done) / double(total) : 1.0, "checking " + t.name);
    }
    return out;
}

Status check_finite(const Model& m, const std::string& origin, Progress& progress) {
    auto bad = find_non_finite(m, progress);
    if (!bad) return bad.error();
    if (bad->empty()) return {};
    std::string msg = origin + ": " + std::to_string(bad->size()) + " tensor(s) hold non-finite values:";
    size_t shown = 0;
    for (const auto& b : *bad) {
        if (shown++ == 8) {
            msg += " ...";
            break;
        }
        msg += " " + b.name + " (" + std::to_string(b.nan_count) + " NaN, " + std::to_string(b.inf_count) + " Inf)";
    }
    return make_error(msg);
}

}  // namespace ef
