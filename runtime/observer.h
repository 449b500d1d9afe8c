// A hook on the session's weight projections, for calibration (runtime/calib/calibration.h): an
// observer is shown the activations X each 2-D weight multiplies, in the decode path (T = 1) and
// the batched path (T tokens) alike, before the product. SessionOptions::observer = nullptr (the
// default) costs one pointer test per projection.
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace ef::rt {

class ProjectionObserver {
public:
    virtual ~ProjectionObserver() = default;
    // weight: the weight's tensor name ("blk.0.attn_q.weight"; the output head is "output.weight",
    // or "token_embd.weight" when tied); x: (T, cols) row-major, the rows the weight multiplies.
    // Called on the thread that called the session, never concurrently for one session; x is only
    // valid during the call. Weights fed the very same activations (q/k/v, gate/up) are called one
    // after another with the same x (same pointer and contents).
    virtual void on_projection(const std::string& weight, std::span<const float> x, int64_t T) = 0;
};

}  // namespace ef::rt
