// Internal: the per-ISA GEMM entry points the table in gemm.cpp points at (signature: GemmFn,
// gemm.h). Each ISA file is compiled with its own flags and keeps everything it defines in an
// anonymous namespace (see vec_dot_impl.h).
#pragma once
#include <cstddef>
#include <cstdint>

#define EF_GEMM_DECL(name)                                                                                  \
    void name(int64_t n, int64_t rows, int64_t T, const void* w, size_t w_row_bytes, const void* a, \
              size_t a_row_bytes, float* y, int64_t ldy);

namespace ef::rt::kernels {
#if defined(__x86_64__)
namespace gemm_avx2 {
EF_GEMM_DECL(gemm_f32)
EF_GEMM_DECL(gemm_f16)
EF_GEMM_DECL(gemm_bf16)
EF_GEMM_DECL(gemm_q8_0)
}  // namespace gemm_avx2
namespace gemm_avx512 {
EF_GEMM_DECL(gemm_f32)
EF_GEMM_DECL(gemm_f16)
EF_GEMM_DECL(gemm_bf16)
EF_GEMM_DECL(gemm_f16_f32act)   // activations: f32 values already rounded to f16 (round_act_f32)
EF_GEMM_DECL(gemm_bf16_f32act)  // ... to bf16
void round_act_f32(bool bf16, const float* x, float* out, int64_t n);
}  // namespace gemm_avx512
namespace gemm_avx512vnni {
EF_GEMM_DECL(gemm_q8_0)
EF_GEMM_DECL(gemm_q4_0)
}  // namespace gemm_avx512vnni
#endif
#if defined(__aarch64__)
namespace gemm_neon {
EF_GEMM_DECL(gemm_f32)
EF_GEMM_DECL(gemm_q8_0)
}  // namespace gemm_neon
#endif
}  // namespace ef::rt::kernels
