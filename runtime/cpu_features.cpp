#include "runtime/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <cstdint>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace ef::rt {

namespace {

#if defined(__x86_64__) || defined(__i386__)
// XCR0 via xgetbv (only valid when CPUID says OSXSAVE); inline asm so no -mxsave is needed.
uint64_t read_xcr0() {
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return uint64_t(hi) << 32 | lo;
}

CpuFeatures detect() {
    CpuFeatures f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27);
    const bool cpu_avx = c & (1u << 28);
    const bool cpu_fma = c & (1u << 12);
    const bool cpu_f16c = c & (1u << 29);
    if (!osxsave) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool os_ymm = (xcr0 & 0x6) == 0x6;              // SSE + AVX state
    const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask + upper ZMM halves + ZMM16-31
    f.avx = cpu_avx && os_ymm;
    f.fma = f.avx && cpu_fma;
    f.f16c = f.avx && cpu_f16c;
    if (__get_cpuid_max(0, nullptr) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f.avx2 = f.avx && (b & (1u << 5));
        f.avx512f = os_zmm && (b & (1u << 16));
        f.avx512bw = f.avx512f && (b & (1u << 30));
        f.avx512vl = f.avx512f && (b & (1u << 31));
        f.avx512_vnni = f.avx512f && (c & (1u << 11));
    }
    return f;
}
#elif defined(__aarch64__) && defined(__linux__)
CpuFeatures detect() {
    CpuFeatures f;
    const unsigned long hw = getauxval(AT_HWCAP);
    f.neon = hw & (1ul << 1);      // HWCAP_ASIMD
    f.dotprod = hw & (1ul << 20);  // HWCAP_ASIMDDP
    return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures f = detect();
    return f;
}

std::string cpu_features_string(const CpuFeatures& f) {
    std::string s;
    auto add = [&](bool on, const char* name) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(f.avx, "avx");
    add(f.avx2, "avx2");
    add(f.fma, "fma");
    add(f.f16c, "f16c");
    add(f.avx512f, "avx512f");
    add(f.avx512bw, "avx512bw");
    add(f.avx512vl, "avx512vl");
    add(f.avx512_vnni, "avx512vnni");
    add(f.neon, "neon");
    add(f.dotprod, "dotprod");
    return s.empty() ? "none" : s;
}

}  // namespace ef::rt
