// edgefusion-run selftest: every SIMD dot-product kernel usable on this CPU against its plain
// scalar reference (runtime/kernels) on seeded random rows, without Qt, so it runs on the board
// (and under qemu-aarch64 in CI). Prints the detected ISA and one table row per kernel; exits 1
// on any mismatch. Same criteria as tests/unit/test_kernels: k-quant kernels sum integers per
// super-block and must equal the scalar kernel bit for bit; float and legacy-quant kernels sum in
// another order, so they may differ by float rounding (1e-5 of sum |w*a|).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "app/runner/runner.h"
#include "quant/dtype.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/kernels.h"
#include "runtime/kernels/kernel_check.h"
#include "runtime/ops.h"

namespace ef::run {

namespace {

namespace K = rt::kernels;

using K::is_kquant;
using K::random_floats;
using K::random_row;

struct Outcome {
    int cases = 0, failed = 0;
    double max_err = 0;  // largest |simd - scalar| / sum|w*a| (0 for bitwise kernels that pass)
    std::string first_failure;
};

Outcome check(DType type, K::VecDotFn simd, const K::KernelTraits& kt, uint32_t seed) {
    std::mt19937 rng(seed + uint32_t(type));
    // One block, odd block counts, a real row size; float types also get ragged tails.
    std::vector<int64_t> lengths = {256, 768, 4096};
    if (!type_traits(type).quantized) lengths.insert(lengths.end(), {1, 7, 33, 1000});
    else if (!is_kquant(type)) lengths.insert(lengths.end(), {32, 96});
    std::erase_if(lengths, [&](int64_t n) { return n % type_traits(type).block_size != 0; });
    Outcome o;
    for (int64_t n : lengths)
        for (int trial = 0; trial < 6; ++trial) {
            const auto row = random_row(rng, type, n, trial % 2 == 1);
            const auto x = random_floats(rng, n, trial < 3 ? 1.0f : 30.0f);
            std::vector<uint8_t> a(K::act_bytes(kt.act, n));
            K::quantize_act(kt.act, x.data(), a.data(), n);
            const float got = simd(n, row.data(), a.data());
            const float want = kt.scalar(n, row.data(), a.data());
            ++o.cases;
            bool ok;
            if (is_kquant(type)) {
                ok = got == want || (std::isnan(got) && std::isnan(want));
            } else {
                const double scale = K::reference_dot(type, row, x).absdot + std::fabs(double(want));
                const double err = std::fabs(double(got) - double(want));
                ok = err <= 1e-5 * scale;
                if (scale > 0) o.max_err = std::max(o.max_err, err / scale);
            }
            if (!ok) {
                ++o.failed;
                if (o.first_failure.empty()) {
                    char buf[160];
                    std::snprintf(buf, sizeof buf, "n %lld trial %d: got %.9g, scalar %.9g", static_cast<long long>(n),
                                  trial, double(got), double(want));
                    o.first_failure = buf;
                }
            }
        }
    return o;
}

// A GEMM kernel (runtime/kernels/gemm.h) against the scalar GEMM: 19 rows x 7 tokens (odd
// against every tile shape) of random rows, each output within 1e-5 of its sum |w*a|.
Outcome check_gemm(DType type, K::GemmFn fn, const K::GemmTraits& gt, uint32_t seed) {
    std::mt19937 rng(seed + 101 * uint32_t(type));
    const TypeTraits& tt = type_traits(type);
    const int64_t rows = 19, T = 7, n = tt.block_size == 1 ? 100 : 3 * tt.block_size;
    const size_t wrb = size_t(n / tt.block_size * tt.type_size), arb = K::act_bytes(gt.act, n);
    std::vector<std::byte> w;
    for (int64_t r = 0; r < rows; ++r) {
        const auto row = random_row(rng, type, n, r % 2 == 1);
        w.insert(w.end(), row.begin(), row.end());
    }
    const auto x = random_floats(rng, T * n, 1.0f);
    std::vector<uint8_t> a(arb * size_t(T));
    for (int64_t t = 0; t < T; ++t) K::quantize_act(gt.act, x.data() + t * n, a.data() + size_t(t) * arb, n);
    std::vector<float> got(size_t(rows * T)), want(got.size());
    fn(n, rows, T, w.data(), wrb, a.data(), arb, got.data(), rows);
    gt.scalar(n, rows, T, w.data(), wrb, a.data(), arb, want.data(), rows);
    Outcome o;
    for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            const float g = got[size_t(t * rows + r)], v = want[size_t(t * rows + r)];
            const std::span<const std::byte> wrow(w.data() + size_t(r) * wrb, wrb);
            const double scale = K::reference_dot(type, wrow, std::span<const float>(x.data() + t * n, size_t(n))).absdot +
                                 std::fabs(double(v));
            const double err = std::fabs(double(g) - double(v));
            ++o.cases;
            if (scale > 0) o.max_err = std::max(o.max_err, err / scale);
            if (!(err <= 1e-5 * scale)) {
                if (o.first_failure.empty()) {
                    char buf[160];
                    std::snprintf(buf, sizeof buf, "y[%lld][%lld]: got %.9g, scalar %.9g", static_cast<long long>(t),
                                  static_cast<long long>(r), double(g), double(v));
                    o.first_failure = buf;
                }
                ++o.failed;
            }
        }
    return o;
}

}  // namespace

int run_selftest(const std::vector<std::string>& argv, Progress& progress) {
    const std::vector<cli::OptionSpec> specs = {{"--seed", "-s", true, "random seed (default 20261123)"}};
    auto a = cli::parse_args(argv, specs);
    if (!a) return fail("selftest", a.message() + "\noptions:\n" + cli::options_help(specs), kUsage);
    if (!a->positional.empty()) return fail("selftest", "unexpected argument '" + a->positional.front() + "'", kUsage);
    auto seed = a->get_int("--seed", 20261123, 0, 0xffffffffll);
    if (!seed) return fail("selftest", seed.message(), kUsage);

    // The widest kernel set this CPU runs (what the kernel table picks from).
    K::Isa detected = K::Isa::Scalar;
    for (K::Isa isa : {K::Isa::Avx2, K::Isa::Neon, K::Isa::Avx512})
        if (K::isa_available(isa)) detected = isa;
#if defined(__aarch64__)
    const char* arch = "aarch64";
#elif defined(__x86_64__)
    const char* arch = "x86_64";
#else
    const char* arch = "other";
#endif
    std::printf("cpu: %s, features: %s\n", arch, rt::cpu_features_string(rt::cpu_features()).c_str());
    std::printf("detected isa: %s\n\n", K::isa_name(detected).data());
    std::printf("%-6s %-6s %-8s %-8s %6s %12s  %s\n", "type", "act", "kernel", "best", "cases", "max rel err", "result");

    int kernels = 0, failed = 0;
    for (DType t : K::kernel_types()) {
        const K::KernelTraits* kt = K::kernel_traits(t);
        if (!kt) continue;
        for (K::Isa isa : {K::Isa::Avx2, K::Isa::Avx512, K::Isa::Neon}) {
            const K::VecDotFn simd = K::vec_dot_for(t, isa);
            if (!simd || !K::isa_available(isa)) continue;
            if (progress.cancelled()) return fail("selftest", "cancelled");
            const Outcome o = check(t, simd, *kt, uint32_t(*seed));
            ++kernels;
            if (o.failed) ++failed;
            char err[32];
            if (is_kquant(t)) std::snprintf(err, sizeof err, "%s", "bitwise");
            else std::snprintf(err, sizeof err, "%.2e", o.max_err);
            std::printf("%-6s %-6s %-8s %-8s %6d %12s  %s\n", dtype_name(t).data(), dtype_name(kt->act).data(),
                        K::isa_name(isa).data(), K::isa_name(kt->best_isa).data(), o.cases, err,
                        o.failed ? ("FAIL (" + std::to_string(o.failed) + "): " + o.first_failure).c_str() : "ok");
        }
    }
    // GEMM kernels (prefill): every tiled kernel this CPU runs against the scalar GEMM.
    std::printf("\n%-6s %-6s %-10s %-10s %6s %12s  %s\n", "type", "act", "gemm", "best", "cases", "max rel err", "result");
    for (DType t : K::kernel_types()) {
        const K::GemmTraits* gt = K::gemm_traits(t);
        if (!gt) continue;
        for (int i = int(K::GemmIsa::Generic); i < int(K::GemmIsa::Count); ++i) {
            const auto isa = K::GemmIsa(i);
            const K::GemmFn fn = K::gemm_for(t, isa);
            if (!fn || !K::gemm_isa_available(isa)) continue;
            const Outcome o = check_gemm(t, fn, *gt, uint32_t(*seed));
            ++kernels;
            if (o.failed) ++failed;
            std::printf("%-6s %-6s %-10s %-10s %6d %12.2e  %s\n", dtype_name(t).data(), dtype_name(gt->act).data(),
                        K::gemm_isa_name(isa).data(), K::gemm_isa_name(gt->best_isa).data(), o.cases, o.max_err,
                        o.failed ? ("FAIL (" + std::to_string(o.failed) + "): " + o.first_failure).c_str() : "ok");
        }
    }
    std::printf("\n%d SIMD kernels checked against their scalar references: %s\n", kernels,
                failed ? "MISMATCH" : "all equal");
    if (failed) return fail("selftest", std::to_string(failed) + " kernel(s) differ from the scalar reference");
    return 0;
}

}  // namespace ef::run
