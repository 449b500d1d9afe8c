// Run-time CPU detection for choosing SIMD kernels. A feature counts only when both the CPU and
// the operating system support it (on x86 the OS must save the wider register state, which
// xgetbv reports), so a kernel picked from here never faults on this machine.
#pragma once
#include <string>

namespace ef::rt {

struct CpuFeatures {
    // x86-64
    bool avx = false, avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false;
    bool avx512_vnni = false;  // VPDPBUSD on ZMM (the Q8_0 GEMM kernels)
    // aarch64
    bool neon = false, dotprod = false;

    // The kernel sets: AVX2 kernels also use FMA and F16C; AVX-512 kernels use F, BW and VL.
    bool has_avx2_set() const { return avx2 && fma && f16c; }
    bool has_avx512_set() const { return has_avx2_set() && avx512f && avx512bw && avx512vl; }
};

// Detected once, on first use (thread-safe).
const CpuFeatures& cpu_features();
// "avx2 fma f16c avx512f ..." for logs and test output.
std::string cpu_features_string(const CpuFeatures& f);

}  // namespace ef::rt
