// Kernel benchmark (label bench, not run in CI): for each weight type, a matrix-vector product
// with the scalar kernel and with each SIMD kernel this CPU runs, side by side, in GB/s of
// weight bytes streamed and Gop/s (2 ops per weight). Two sizes: cache-resident (256 KiB) and
// memory-resident (32 MiB). Then the row-split crossover: the same product on 1 and 2 threads
// for growing matrices (what ops.cpp's kMinSplitBytes is chosen from).
//   bench_kernels [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant/dtype.h"
#include "quant/ef_format.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/kernels.h"
#include "runtime/thread_pool.h"

using namespace ef;
namespace K = ef::rt::kernels;
using Clock = std::chrono::steady_clock;

namespace {

// The ggml types and a few EdgeFusion block types (quant/ef_format.h).
const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                        DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q3_K, DType::Q2_K,
                        *ef_dtype(2, 128, false), *ef_dtype(3, 128, false), *ef_dtype(4, 128, false),
                        *ef_dtype(4, 128, true), *ef_dtype(6, 128, false)};

struct Matrix {
    DType type;
    int64_t rows, cols, row_bytes;
    std::vector<std::byte> w;
    std::vector<uint8_t> act;
};

Matrix make(DType t, int64_t cols, int64_t bytes, std::mt19937& rng) {
    const TypeTraits& tt = type_traits(t);
    Matrix m{t, 0, cols, cols / tt.block_size * tt.type_size, {}, {}};
    m.rows = std::max<int64_t>(1, bytes / m.row_bytes);
    std::normal_distribution<float> nd(0.0f, 0.5f);
    std::vector<float> row(static_cast<size_t>(cols));
    m.w.resize(size_t(m.rows * m.row_bytes));
    for (int64_t r = 0; r < m.rows; ++r) {
        for (float& v : row) v = nd(rng);
        if (r < 64 || t == DType::F32) {
            if (t == DType::F32) std::memcpy(m.w.data() + r * m.row_bytes, row.data(), size_t(m.row_bytes));
            else tt.from_float_ref(row.data(), m.w.data() + r * m.row_bytes, cols);
        } else {  // quantizing 32 MiB with the reference quantizers is slow: repeat the first rows
            std::memcpy(m.w.data() + r * m.row_bytes, m.w.data() + (r % 64) * m.row_bytes, size_t(m.row_bytes));
        }
    }
    for (float& v : row) v = nd(rng);
    const K::KernelTraits* kt = K::kernel_traits(t);
    m.act.resize(K::act_bytes(kt->act, cols));
    K::quantize_act(kt->act, row.data(), m.act.data(), cols);
    return m;
}

// Best-of-reps seconds for one full matrix-vector product with `dot`, split over `pool` when given.
double time_matvec(const Matrix& m, K::VecDotFn dot, rt::ThreadPool* pool, int64_t chunk_rows, double min_s) {
    std::vector<float> y(static_cast<size_t>(m.rows));
    auto once = [&] {
        auto rows = [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e; ++r) y[size_t(r)] = dot(m.cols, m.w.data() + r * m.row_bytes, m.act.data());
        };
        if (pool) pool->parallel_for(m.rows, chunk_rows, rows);
        else rows(0, m.rows);
    };
    once();  // warm up
    double best = 1e30, total = 0;
    int reps = 0;
    while (total < min_s || reps < 3) {
        const auto t0 = Clock::now();
        once();
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::min(best, s);
        total += s;
        ++reps;
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    const double min_s = quick ? 0.05 : 0.3;
    std::printf("CPU features: %s\n", rt::cpu_features_string(rt::cpu_features()).c_str());
    std::vector<K::Isa> isas = {K::Isa::Scalar};
    for (K::Isa i : {K::Isa::Avx2, K::Isa::Avx512, K::Isa::Neon})
        if (K::isa_available(i)) isas.push_back(i);
    std::mt19937 rng(42);

    for (int64_t bytes : {int64_t(256) << 10, int64_t(32) << 20}) {
        std::printf("\nmatvec, one thread, weights %lld KiB, row length 4096: GB/s of weights (Gop/s)\n",
                    (long long)(bytes >> 10));
        std::printf("%-9s", "type");
        for (K::Isa i : isas) std::printf(" %20s", K::isa_name(i).data());
        std::printf(" %10s\n", "best/scal");
        for (DType t : kTypes) {
            const Matrix m = make(t, 4096, bytes, rng);
            std::printf("%-9s", dtype_name(t).data());
            double scalar_s = 0, best_s = 1e30;
            for (K::Isa i : isas) {
                const K::VecDotFn f = K::vec_dot_for(t, i);
                if (!f) {
                    std::printf(" %20s", "-");
                    continue;
                }
                const double s = time_matvec(m, f, nullptr, 0, min_s);
                if (i == K::Isa::Scalar) scalar_s = s;
                best_s = std::min(best_s, s);
                const double gbs = double(m.rows * m.row_bytes) / s / 1e9, gops = 2.0 * double(m.rows * m.cols) / s / 1e9;
                std::printf(" %11.2f (%6.2f)", gbs, gops);
            }
            std::printf(" %9.1fx\n", scalar_s / best_s);
        }
    }

    // Row-split crossover: best kernel, Q8_0 and F32 rows of 1024, 1 vs 2 threads.
    rt::ThreadPool pool(2);
    pool.set_adaptive(false);  // always split here: this table is what the threshold is chosen from
    std::printf("\nrow split (best kernel, row length 1024): microseconds per matvec, 1 vs 2 threads\n");
    std::printf("%-6s %10s %10s %10s %8s\n", "type", "weights", "1 thread", "2 threads", "speedup");
    for (DType t : {DType::Q8_0, DType::F32})
        for (int64_t kib : {8, 16, 32, 64, 128, 256, 512, 1024, 4096}) {
            const Matrix m = make(t, 1024, kib << 10, rng);
            const K::VecDotFn f = K::kernel_traits(t)->best;
            const int64_t chunk = std::max<int64_t>(1, (16 << 10) / m.row_bytes);
            const double s1 = time_matvec(m, f, nullptr, 0, min_s / 3);
            const double s2 = time_matvec(m, f, &pool, chunk, min_s / 3);
            std::printf("%-6s %7lld KiB %10.1f %10.1f %7.2fx\n", dtype_name(t).data(), (long long)kib, s1 * 1e6, s2 * 1e6, s1 / s2);
        }
    return 0;
}
