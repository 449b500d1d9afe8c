#include "quant/bit_alloc.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "quant/ef_format.h"

namespace ef {
namespace {

std::string fmt(double v, const char* f = "%.4f") {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

// The options a unit may take: all of them, or only its pin.
std::pair<int, int> option_range(const AllocUnit& u) {
    if (u.pin) return {*u.pin, *u.pin + 1};
    return {0, int(u.options.size())};
}

struct Checked {
    uint64_t capacity = 0;  // in cost units: bytes, or code bits for AverageCodeBits
    int64_t weights = 0;
    std::vector<uint64_t> min_bytes;  // per unit, the smallest cost over its allowed options
    std::vector<std::vector<uint64_t>> cost;  // per unit, per option
};

Result<Checked> check(const std::vector<AllocUnit>& units, const AllocBudget& b) {
    if (units.empty()) return make_error("bit allocation: no units to allocate (no quantizable tensors)");
    Checked c;
    uint64_t min_total = 0;
    for (const auto& u : units) {
        if (u.options.empty()) return make_error("bit allocation: unit " + u.name + " has no options");
        if (u.options.size() > 255) return make_error("bit allocation: unit " + u.name + " has more than 255 options");
        if (u.pin && (*u.pin < 0 || *u.pin >= int(u.options.size())))
            return make_error("bit allocation: unit " + u.name + " is pinned to option " + std::to_string(*u.pin) +
                              ", which it does not have");
        if (u.weights <= 0) return make_error("bit allocation: unit " + u.name + " has no weights");
        for (const auto& o : u.options)
            if (!std::isfinite(o.loss)) return make_error("bit allocation: unit " + u.name + " has a non-finite loss at " +
                                                          std::to_string(o.bits) + " bits");
        std::vector<uint64_t> cost;
        for (const auto& o : u.options) {
            if (b.kind == BudgetKind::AverageCodeBits && (o.bits <= 0 || o.bits > 64))
                return make_error("bit allocation: unit " + u.name + " has an option of " + std::to_string(o.bits) + " code bits");
            cost.push_back(b.kind == BudgetKind::AverageCodeBits ? uint64_t(o.bits) * uint64_t(u.weights) : o.bytes);
        }
        const auto [lo, hi] = option_range(u);
        uint64_t mn = std::numeric_limits<uint64_t>::max();
        for (int i = lo; i < hi; ++i) mn = std::min(mn, cost[size_t(i)]);
        c.cost.push_back(std::move(cost));
        c.min_bytes.push_back(mn);
        min_total += mn;
        c.weights += u.weights;
    }
    const double w = double(c.weights);
    if (b.kind == BudgetKind::AverageCodeBits) {
        if (!(b.average_bits > 0) || !std::isfinite(b.average_bits))
            return make_error("bit allocation: the target average code bits per weight must be a positive number, got " +
                              fmt(b.average_bits, "%g"));
        const long double cap = std::floor((long double)b.average_bits * (long double)c.weights * (1.0L + 1e-12L));
        c.capacity = cap >= 1.8e19L ? std::numeric_limits<uint64_t>::max() : uint64_t(cap);
        if (c.capacity < min_total)
            return make_error("bit allocation: a budget of " + fmt(b.average_bits, "%g") +
                              " code bits per weight is below the minimum possible, " + fmt(double(min_total) / w) +
                              " code bits per weight (every unit at its smallest width" +
                              std::string(std::any_of(units.begin(), units.end(), [](const AllocUnit& u) { return bool(u.pin); })
                                              ? ", pinned units at their pins)" : ")"));
    } else if (b.kind == BudgetKind::AverageBits) {
        if (!(b.average_bits > 0) || !std::isfinite(b.average_bits))
            return make_error("bit allocation: the target average bits per weight must be a positive number, got " +
                              fmt(b.average_bits, "%g"));
        // 8 * bytes / W <= b  <=>  bytes <= floor(b W / 8) for integer bytes; the tiny slack keeps a decimal
        // target such as 3.1 from losing its last byte to binary rounding.
        const long double cap = std::floor((long double)b.average_bits * (long double)c.weights / 8.0L * (1.0L + 1e-12L));
        c.capacity = cap >= 1.8e19L ? std::numeric_limits<uint64_t>::max() : uint64_t(cap);
        if (c.capacity < min_total)
            return make_error("bit allocation: a budget of " + fmt(b.average_bits, "%g") +
                              " bits per weight is below the minimum possible, " + fmt(8.0 * double(min_total) / w) +
                              " effective bits per weight (every unit at its smallest width" +
                              std::string(std::any_of(units.begin(), units.end(), [](const AllocUnit& u) { return bool(u.pin); })
                                              ? ", pinned units at their pins)" : ")"));
    } else {
        const uint64_t need = min_total + b.fixed_bytes;
        if (b.total_bytes < need || b.total_bytes - b.fixed_bytes < min_total)
            return make_error("bit allocation: a memory budget of " + std::to_string(b.total_bytes) +
                              " bytes is below the minimum possible, " + std::to_string(need) + " bytes (" +
                              std::to_string(min_total) + " for the quantized weights at their smallest widths + " +
                              std::to_string(b.fixed_bytes) + " fixed: kept-precision tensors, KV cache, SSM state)");
        c.capacity = b.total_bytes - b.fixed_bytes;
    }
    return c;
}

AllocResult finish(const std::vector<AllocUnit>& units, const AllocBudget& b, const Checked& c, std::vector<int> choice) {
    AllocResult r;
    r.choice = std::move(choice);
    for (size_t i = 0; i < units.size(); ++i) {
        const AllocOption& o = units[i].options[size_t(r.choice[i])];
        r.loss += o.loss;  // in unit order, as the solvers sum
        r.unit_bytes += o.bytes;
    }
    r.weights = c.weights;
    r.capacity = c.capacity;
    r.total_bytes = r.unit_bytes + b.fixed_bytes;
    r.average_bits = 8.0 * double(r.unit_bytes) / double(c.weights);
    uint64_t code = 0;
    for (size_t i = 0; i < units.size(); ++i) code += c.cost.empty() ? 0 : uint64_t(units[i].options[size_t(r.choice[i])].bits) * uint64_t(units[i].weights);
    r.average_code_bits = double(code) / double(c.weights);
    return r;
}

}  // namespace

uint64_t ef_effective_bytes(int64_t rows, int64_t cols, int bits, int block, bool affine, double outlier_fraction) {
    const EfLayout l{bits, block, affine};
    const int64_t n = rows * cols;
    uint64_t bytes = uint64_t(rows) * uint64_t(cols / block) * uint64_t(l.type_size());
    const int64_t nnz = int64_t(std::floor(outlier_fraction * double(n)));  // as ef_quantize_matrix counts them
    if (nnz > 0)
        bytes += uint64_t(4 * (rows + 1) + 2 * nnz + ef_packed6_bytes(nnz) + 2 * rows);
    return bytes;
}

Result<AllocResult> allocate_bits(const std::vector<AllocUnit>& units, const AllocBudget& budget, size_t max_states) {
    auto c = check(units, budget);
    if (!c) return c.error();
    const size_t n = units.size();
    // Bytes the units after u need at least: a state that cannot fit them is dropped early.
    std::vector<uint64_t> rest(n + 1, 0);
    for (size_t u = n; u-- > 0;) rest[u] = rest[u + 1] + c->min_bytes[u];

    struct State {
        uint64_t bytes;
        double loss;
        uint32_t parent;  // index in the previous frontier
        uint8_t option;
    };
    struct Link {
        uint32_t parent;
        uint8_t option;
    };
    std::vector<State> front{{0, 0.0, 0, 0}}, cand;
    std::vector<std::vector<Link>> links(n);  // per unit, per kept state: how it was reached
    size_t stored = 0, max_front = 1;
    for (size_t u = 0; u < n; ++u) {
        const auto [lo, hi] = option_range(units[u]);
        cand.clear();
        cand.reserve(front.size() * size_t(hi - lo));
        for (size_t s = 0; s < front.size(); ++s)
            for (int o = lo; o < hi; ++o) {
                const AllocOption& op = units[u].options[size_t(o)];
                const uint64_t bytes = front[s].bytes + c->cost[u][size_t(o)];
                if (bytes > c->capacity || c->capacity - bytes < rest[u + 1]) continue;
                cand.push_back({bytes, front[s].loss + op.loss, uint32_t(s), uint8_t(o)});
            }
        // By bytes, then loss; stable so equal states keep generation order (the earlier one wins).
        std::stable_sort(cand.begin(), cand.end(), [](const State& a, const State& b) {
            return a.bytes != b.bytes ? a.bytes < b.bytes : a.loss < b.loss;
        });
        front.clear();
        links[u].clear();
        double best = std::numeric_limits<double>::infinity();
        for (const State& s : cand) {
            if (!(s.loss < best)) continue;  // dominated: no fewer bytes and no lower loss than a kept state
            best = s.loss;
            links[u].push_back({s.parent, s.option});
            front.push_back({s.bytes, s.loss, uint32_t(front.size()), 0});
        }
        stored += front.size();
        max_front = std::max(max_front, front.size());
        if (front.empty())  // cannot happen after check(); kept as a guard
            return make_error("bit allocation: no choice fits the budget");
        if (stored > max_states || front.size() > std::numeric_limits<uint32_t>::max())
            return make_error("bit allocation: the exact solver would need more than " + std::to_string(max_states) +
                              " states for " + std::to_string(n) + " units; allocate per layer instead of per tensor");
    }
    // Losses fall strictly along the frontier, so its last state is the optimum (fewest bytes among ties).
    std::vector<int> choice(n);
    uint32_t idx = uint32_t(front.size() - 1);
    for (size_t u = n; u-- > 0;) {
        const Link& l = links[u][idx];
        choice[u] = l.option;
        idx = l.parent;
    }
    AllocResult r = finish(units, budget, *c, std::move(choice));
    r.max_frontier = max_front;
    return r;
}

Result<AllocResult> allocate_bits_brute_force(const std::vector<AllocUnit>& units, const AllocBudget& budget) {
    auto c = check(units, budget);
    if (!c) return c.error();
    const size_t n = units.size();
    std::vector<int> cur(n), best;
    for (size_t u = 0; u < n; ++u) cur[u] = option_range(units[u]).first;
    double best_loss = std::numeric_limits<double>::infinity();
    uint64_t best_bytes = 0;
    for (;;) {
        double loss = 0;
        uint64_t bytes = 0;
        for (size_t u = 0; u < n; ++u) {
            loss += units[u].options[size_t(cur[u])].loss;
            bytes += c->cost[u][size_t(cur[u])];
        }
        if (bytes <= c->capacity && (loss < best_loss || (loss == best_loss && bytes < best_bytes))) {
            best = cur;
            best_loss = loss;
            best_bytes = bytes;
        }
        size_t u = 0;  // odometer over the allowed options
        for (; u < n; ++u) {
            if (++cur[u] < option_range(units[u]).second) break;
            cur[u] = option_range(units[u]).first;
        }
        if (u == n) break;
    }
    if (best.empty()) return make_error("bit allocation: no choice fits the budget");
    return finish(units, budget, *c, std::move(best));
}

}  // namespace ef
