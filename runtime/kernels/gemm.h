// Matrix-matrix kernels (GEMM) for prefill: T activation rows against a block of weight rows.
// Each activation row is already in the weight type's partner "act" type (kernels.h:
// quantize_act), rounded exactly as for matvec, so a GEMM equals T x rows vec_dots up to the
// float summation order; the integer block sums of the quantized types are exact either way.
//
// One row per weight type: the scalar GEMM (loops of the scalar vec_dot; the reference), a
// generic GEMM (loops of the best vec_dot, for types without a tiled kernel) and register-tiled
// kernels per ISA, picked at run time from cpu_features() and capped by EF_KERNEL_ISA like the
// vec_dot table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "quant/dtype.h"

namespace ef::rt::kernels {

// y[t * ldy + r] = dot(weight row r, activation row t) for r < rows, t < T.
// w: rows rows of n weights in the stored type, w_row_bytes apart; a: T rows of n activation
// values in the act type, a_row_bytes apart. n is a multiple of the weight type's block size.
using GemmFn = void (*)(int64_t n, int64_t rows, int64_t T, const void* w, size_t w_row_bytes, const void* a,
                        size_t a_row_bytes, float* y, int64_t ldy);

enum class GemmIsa : uint8_t { Scalar, Generic, Avx2, Avx512, Avx512Vnni, Neon, Count };
std::string_view gemm_isa_name(GemmIsa isa);
// Compiled into this build and usable on this CPU.
bool gemm_isa_available(GemmIsa isa);

struct GemmTraits {
    DType weight, act;
    GemmFn scalar;  // the reference
    GemmFn best;    // the fastest here (the generic GEMM where no tiled kernel applies)
    GemmIsa best_isa;
    // The fastest kernel that takes the activations as f32 values already rounded to the act type
    // (round_act_f32), a_row_bytes = 4 n; nullptr where there is none. For F16/BF16 weights this
    // skips the per-call widening of 16-bit activations; for F32 weights it is `best`.
    GemmFn f32act = nullptr;
    // Weight rows the best kernel handles per panel: row chunks of a multiple of it waste nothing.
    int panel_rows = 16;
};

// nullptr for weight types without kernels.
const GemmTraits* gemm_traits(DType weight);
// The GEMM written for `isa` (nullptr: none in this build; check gemm_isa_available too).
GemmFn gemm_for(DType weight, GemmIsa isa);

// out[i] = x[i] rounded to `act` (F32, F16 or BF16; round-to-nearest-even, exactly as
// quantize_act) and widened back to f32: the activations of the f32act kernels.
void round_act_f32(DType act, const float* x, float* out, int64_t n);

// Per-thread scratch memory for the ISA kernels (64-byte aligned, grown on demand, kept for the
// thread's lifetime; slot < 4). Defined in gemm.cpp, so the ISA files need no std:: containers
// (see vec_dot_impl.h on inline functions in files compiled with wider ISA flags).
void* gemm_scratch(int slot, size_t bytes);

}  // namespace ef::rt::kernels
