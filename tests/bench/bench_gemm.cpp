// GEMM benchmark (label bench, not run in CI): rt::matmul over T tokens against T separate
// rt::matvec calls, for the weight shapes of the synth llama d1024 (1024 x 1024 attention, 2816 x
// 1024 FFN) in Q8_0 and F16, on 1 and 2 threads, in GFLOP/s (2 flops per weight and token).
// Other programs on the cores make the numbers noisy: best of a few repetitions.
//   bench_gemm [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/kernel_check.h"
#include "runtime/matmul.h"
#include "runtime/ops.h"
#include "runtime/thread_pool.h"

using namespace ef;
namespace K = ef::rt::kernels;
using Clock = std::chrono::steady_clock;

namespace {

template <class F>
double best_seconds(F&& f, double min_s, int min_reps) {
    double best = 1e30, total = 0;
    for (int rep = 0; rep < min_reps || total < min_s; ++rep) {
        const auto t0 = Clock::now();
        f();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::min(best, s);
        total += s;
        if (rep > 50) break;
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const double min_s = quick ? 0.1 : 0.4;
    std::printf("gemm best: Q8_0 %s, F16 %s\n\n", K::gemm_isa_name(K::gemm_traits(DType::Q8_0)->best_isa).data(),
                K::gemm_isa_name(K::gemm_traits(DType::F16)->best_isa).data());
    std::printf("%-5s %-11s %4s %3s %12s %12s %8s\n", "type", "weight", "T", "thr", "matmul GF/s", "matvec GF/s", "speedup");
    std::mt19937 rng(7);
    for (DType t : {DType::Q8_0, DType::F16})
        for (int64_t rows : {1024, 2816}) {
            const int64_t n = 1024;
            std::vector<std::byte> bytes;
            for (int64_t r = 0; r < rows; ++r) {
                const auto row = K::random_row(rng, t, n, false);
                bytes.insert(bytes.end(), row.begin(), row.end());
            }
            auto w = Tensor::from_bytes("w", t, {rows, n}, std::move(bytes));
            if (!w.ok()) {
                std::fprintf(stderr, "%s\n", w.message().c_str());
                return 1;
            }
            for (int64_t T : {64, 512})
                for (int threads : {1, 2}) {
                    rt::ThreadPool pool(threads);
                    const rt::MatvecOptions opt{rt::ActRounding::Ggml, rt::Kernels::Fast, &pool};
                    const std::vector<float> x = K::random_floats(rng, T * n, 1.0f);
                    std::vector<float> y(size_t(T * rows));
                    const double flops = 2.0 * double(rows) * double(n) * double(T);
                    const double s_mm = best_seconds([&] { (void)rt::matmul(y, *w, x, T, opt); }, min_s, 3);
                    const double s_mv = best_seconds(
                        [&] {
                            for (int64_t k = 0; k < T; ++k)
                                (void)rt::matvec(std::span<float>(y).subspan(size_t(k * rows), size_t(rows)), *w,
                                                 std::span<const float>(x).subspan(size_t(k * n), size_t(n)), opt);
                        },
                        min_s, 2);
                    char shape[32];
                    std::snprintf(shape, sizeof shape, "%lldx%lld", static_cast<long long>(rows), static_cast<long long>(n));
                    std::printf("%-5s %-11s %4lld %3d %12.1f %12.1f %7.2fx\n", dtype_name(t).data(), shape,
                                static_cast<long long>(T), threads, flops / s_mm * 1e-9, flops / s_mv * 1e-9, s_mv / s_mm);
                    std::fflush(stdout);
                }
        }
    return 0;
}
