// Internal: the per-ISA kernel entry points the traits table (kernels.cpp) points at.
// Each ISA lives in its own file compiled with that ISA's flags. Those files must define
// everything they use in an anonymous namespace (or use intrinsics only): an inline function
// from a shared header compiled there with AVX-512 could be the copy the linker keeps for the
// whole program and fault on an older CPU.
#pragma once
#include <cstdint>

#define EF_VEC_DOT_DECLS                                       \
    float vec_dot_f32(int64_t n, const void* w, const void* a);  \
    float vec_dot_f16(int64_t n, const void* w, const void* a);  \
    float vec_dot_bf16(int64_t n, const void* w, const void* a); \
    float vec_dot_q8_0(int64_t n, const void* w, const void* a); \
    float vec_dot_q4_0(int64_t n, const void* w, const void* a); \
    float vec_dot_q2_K(int64_t n, const void* w, const void* a); \
    float vec_dot_q3_K(int64_t n, const void* w, const void* a); \
    float vec_dot_q4_K(int64_t n, const void* w, const void* a); \
    float vec_dot_q5_K(int64_t n, const void* w, const void* a); \
    float vec_dot_q6_K(int64_t n, const void* w, const void* a); \
    EfVecDot vec_dot_ef(int index);

namespace ef::rt::kernels {
// The EdgeFusion block types (quant/ef_format.h; act type Q8_0): the kernel of EF type number
// `index` (0..47, DType::EF_FIRST + index), generated from one template per ISA.
using EfVecDot = float (*)(int64_t n, const void* w, const void* a);
namespace scalar { EF_VEC_DOT_DECLS }
#if defined(__x86_64__)
namespace avx2 { EF_VEC_DOT_DECLS }
namespace avx512 { EF_VEC_DOT_DECLS }
#endif
#if defined(__aarch64__)
namespace neon { EF_VEC_DOT_DECLS }
#endif
}  // namespace ef::rt::kernels
