// Bit allocation under a budget (issue 4): choose one quantization option (a code width k) per unit
// (a layer or a single tensor) so that the predicted loss, the sum of the units' measured
// sensitivities (quant/sensitivity.h), is minimal while the bytes fit a budget. Pure and Qt-free:
// units come in as numbers, so the solver is tested against brute force on random instances.
//
// The problem (multiple-choice knapsack): minimise sum_u loss_u(o_u) subject to
// sum_u bytes_u(o_u) <= C, with o_u fixed for pinned units. Bytes are integers (the EF format's exact
// effective bytes: blocks, scales, offsets and the outlier companions), so the budget is one integer
// capacity C in bytes:
//   average bits b over the quantized units: C = floor(b * W / 8) (W = weights of all units), which is
//     exactly the set of choices with 8 * bytes / W <= b;
//   total bytes T of the deployment: C = T - fixed (kept-precision tensors, KV cache, SSM state);
//   average code bits b (k only, scales and outliers not counted): the cost of an option is
//     k * weights instead of bytes, C = floor(b * W); everything below holds with that integer cost.
//
// Solver: an exact dynamic programme over the Pareto frontier of (bytes, loss) partial sums. Units are
// added one at a time; after each, only states not dominated by another state (fewer or equal bytes
// AND lower or equal loss) and within C are kept. A dominated partial choice can never complete to a
// better solution than its dominator (the remaining units add the same bytes and loss to both), so
// the optimum survives: the result is exactly optimal (no byte bucketing, no Lagrangian gap). The
// frontier holds at most one state per distinct byte total, i.e. at most min(C / g + 1, prod m_u)
// states (g = the GCD of all option byte differences), so the work is
// O(sum_u m_u * F log F) with F that bound: never more than the classic DP over capacity / g, and
// usually far less (units of equal shape produce equal byte totals; a 1B-like instance of 112
// tensors x 6 widths, rows jittered so no two shapes agree, peaks at ~31k states and solves in 0.25 s). Ties in loss go to fewer bytes,
// then to the earlier state (lower option indexes of earlier units). A state limit guards memory;
// beyond it the solver returns an error instead of an approximation.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace ef {

struct AllocOption {
    int bits = 0;        // the code width k of this option (for reports)
    uint64_t bytes = 0;  // exact effective bytes of the unit's tensors at this option
    double loss = 0;     // predicted loss (sensitivity), e.g. KL divergence in nats
};

struct AllocUnit {
    std::string name;                  // "blk.3" or "blk.3.attn_q.weight"
    std::vector<std::string> tensors;  // the weights it covers
    int64_t weights = 0;               // their element count
    std::vector<AllocOption> options;  // at least one
    std::optional<int> pin;            // index into options: the user fixed this unit's width
};

enum class BudgetKind : uint8_t {
    AverageBits,      // effective bits per weight averaged over the units' weights (bytes, honest)
    AverageCodeBits,  // code bits k averaged over the units' weights (scales and outliers not counted)
    TotalBytes,   // the whole deployment: units + fixed_bytes
};

struct AllocBudget {
    BudgetKind kind = BudgetKind::AverageBits;
    double average_bits = 0;   // AverageBits, AverageCodeBits
    uint64_t total_bytes = 0;  // TotalBytes
    uint64_t fixed_bytes = 0;  // kept-precision tensors + KV cache + SSM state (counted in TotalBytes)
};

struct AllocResult {
    std::vector<int> choice;     // option index per unit
    double loss = 0;             // sum of the chosen options' losses
    uint64_t unit_bytes = 0;     // sum of the chosen options' bytes
    uint64_t total_bytes = 0;    // unit_bytes + fixed_bytes
    uint64_t capacity = 0;       // what the budget allowed the units: bytes (code bits for AverageCodeBits)
    double average_bits = 0;     // effective: 8 * unit_bytes / weights of the units
    double average_code_bits = 0;  // sum k * weights / weights
    int64_t weights = 0;
    size_t max_frontier = 0;     // largest Pareto frontier seen (cost of the solve)
};

// Exact effective bytes of an EF-quantized (rows, cols) matrix, as ef_quantize_matrix stores it:
// rows * cols/B blocks of type_size bytes, plus, when nnz = floor(p * rows * cols) > 0, the CSR
// companions: rowptr 4 (rows + 1), cols 2 nnz, 6-bit values ceil(6 nnz / 8), row scales 2 rows.
uint64_t ef_effective_bytes(int64_t rows, int64_t cols, int bits, int block, bool affine, double outlier_fraction);

// Errors: no units, a unit without options, a pin outside its options, a non-finite loss, and a
// budget below the minimum possible (every unpinned unit at its smallest option; the message states
// that minimum in the budget's own terms).
Result<AllocResult> allocate_bits(const std::vector<AllocUnit>& units, const AllocBudget& budget,
                                  size_t max_states = size_t(1) << 24);

// Choice by exhaustive enumeration (tests only; units^options must be small).
Result<AllocResult> allocate_bits_brute_force(const std::vector<AllocUnit>& units, const AllocBudget& budget);

}  // namespace ef
