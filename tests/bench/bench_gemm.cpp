// GEMM benchmark (label bench, not run in CI): rt::matmul over T tokens against T separate
// rt::matvec calls, for the weight shapes of the synth llama d1024 (1024 x 1024 attention, 2816 x
// 1024 FFN up/gate, 1024 x 2816 FFN down) in Q8_0, F16, BF16 and F32, on 1 and 2 threads, in
// GFLOP/s (2 flops per weight and token). Other programs on the cores make wall-clock numbers
// noisy: best of a few repetitions, and "cpu GF/s" divides by the CPU time this process got
// (all its threads), which on a busy machine shows the kernels' own speed.
//   bench_gemm [--quick] [--no-matvec] [type...]     (types: q8_0 f16 bf16 f32; default q8_0 f16)
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
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

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Timing {
    double wall = 1e30, cpu = 1e30;  // best of the repetitions, each
};

template <class F>
Timing best_seconds(F&& f, double min_s, int min_reps) {
    Timing best;
    double total = 0;
    for (int rep = 0; rep < min_reps || total < min_s; ++rep) {
        const double c0 = cpu_seconds();
        const auto t0 = Clock::now();
        f();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best.wall = std::min(best.wall, s);
        best.cpu = std::min(best.cpu, cpu_seconds() - c0);
        total += s;
        if (rep > 50) break;
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false, matvec = true;
    std::vector<DType> types;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") quick = true;
        else if (a == "--no-matvec") matvec = false;
        else if (auto t = dtype_from_name(a)) types.push_back(*t);
        else {
            std::fprintf(stderr, "usage: bench_gemm [--quick] [--no-matvec] [type...]\n");
            return 2;
        }
    }
    if (types.empty()) types = {DType::Q8_0, DType::F16};
    const double min_s = quick ? 0.1 : 0.4;
    std::printf("gemm best: Q8_0 %s, F16 %s, BF16 %s, F32 %s\n\n",
                K::gemm_isa_name(K::gemm_traits(DType::Q8_0)->best_isa).data(),
                K::gemm_isa_name(K::gemm_traits(DType::F16)->best_isa).data(),
                K::gemm_isa_name(K::gemm_traits(DType::BF16)->best_isa).data(),
                K::gemm_isa_name(K::gemm_traits(DType::F32)->best_isa).data());
    std::printf("%-5s %-11s %4s %3s %12s %10s %12s %8s %11s\n", "type", "weight", "T", "thr", "matmul GF/s", "cpu GF/s",
                "matvec GF/s", "speedup", "split/solo");
    std::mt19937 rng(7);
    for (DType t : types)
        for (auto [rows, n] : {std::pair<int64_t, int64_t>{1024, 1024}, {2816, 1024}, {1024, 2816}}) {
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
                    const Timing mm = best_seconds([&] { (void)rt::matmul(y, *w, x, T, opt); }, min_s, 3);
                    const int64_t split = pool.split_jobs(), solo = pool.solo_jobs();
                    double mv = 0;
                    if (matvec)
                        mv = best_seconds(
                                 [&] {
                                     for (int64_t k = 0; k < T; ++k)
                                         (void)rt::matvec(std::span<float>(y).subspan(size_t(k * rows), size_t(rows)), *w,
                                                          std::span<const float>(x).subspan(size_t(k * n), size_t(n)), opt);
                                 },
                                 min_s, 2)
                                 .wall;
                    char shape[32], jobs[32];
                    std::snprintf(shape, sizeof shape, "%lldx%lld", static_cast<long long>(rows), static_cast<long long>(n));
                    std::snprintf(jobs, sizeof jobs, "%lld/%lld", static_cast<long long>(split), static_cast<long long>(solo));
                    std::printf("%-5s %-11s %4lld %3d %12.1f %10.1f %12.1f %7.2fx %11s\n", dtype_name(t).data(), shape,
                                static_cast<long long>(T), threads, flops / mm.wall * 1e-9, flops / mm.cpu * 1e-9,
                                matvec ? flops / mv * 1e-9 : 0.0, matvec ? mv / mm.wall : 0.0, jobs);
                    std::fflush(stdout);
                }
        }
    return 0;
}
