// Dot-product kernels for matrix-vector products, ggml style: one weight row in its stored type
// meets the activation vector already rounded into the weight type's partner ("act") type —
// F32 for F32, F16 for F16, BF16 for BF16, Q8_0 for Q8_0/Q4_0, Q8_K for the k-quants — and
// quantized rows are multiplied as integers block by block, scaled by the two block scales.
//
// One traits row per weight type: the plain scalar kernel (the reference every SIMD kernel must
// equal) and the best kernel for this CPU, picked once at startup from cpu_features().
// The environment variable EF_KERNEL_ISA=scalar|avx2|avx512|neon caps that pick (for benchmarks).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "quant/dtype.h"

namespace ef::rt::kernels {

enum class Isa : uint8_t { Scalar, Avx2, Avx512, Neon, Count };
std::string_view isa_name(Isa isa);
// Compiled into this build and usable on this CPU (and OS).
bool isa_available(Isa isa);

// w: one row of n weights (n a multiple of the block size); a: the activation row, n values in
// the act type. Returns sum_j w_j * a_j.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);

struct KernelTraits {
    DType weight;
    DType act;       // the activation's type (F32, F16, BF16, Q8_0, Q8_K)
    VecDotFn scalar; // plain C++; the reference
    VecDotFn best;   // the fastest available here (== scalar where no SIMD kernel applies)
    Isa best_isa;
};

// nullptr for weight types without kernels (those go through ops.h's reference path).
const KernelTraits* kernel_traits(DType weight);
// The kernel for `weight` written for `isa`, or nullptr when there is none in this build
// (it may still be unusable on this CPU: check isa_available).
VecDotFn vec_dot_for(DType weight, Isa isa);

// Bytes of n activation values in `act` type (n a multiple of its block size).
size_t act_bytes(DType act, int64_t n);
// x: (n) -> dst in the act type, rounding exactly as ops.h's round_activations does
// (Q8_0: d = amax / 127 as f16, q = round-half-even(x * 127 / amax); Q8_K: d = -max / 127, with
// per-16 sums of q).
void quantize_act(DType act, const float* x, void* dst, int64_t n);

}  // namespace ef::rt::kernels
