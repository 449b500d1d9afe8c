#include "runtime/matmul.h"

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/kernels/gemm.h"
#include "runtime/kernels/kernels.h"
#include "runtime/thread_pool.h"

namespace ef::rt {

namespace {

// Tokens per GEMM call: their quantized activations (and the f32 copies the float kernels make)
// stay in L2 while every weight row of the slice passes by.
constexpr size_t kActBudgetBytes = 384 * 1024;
// Below this many tokens the tiled kernels' per-call setup (weight repacking) does not pay: loop
// the vec_dot kernels instead.
constexpr int64_t kMinTiledTokens = 4;
// Rows per parallel chunk: a multiple of the kernel's panel height, at least kMinChunkRows.
constexpr int64_t kMinChunkRows = 64;
constexpr int64_t kChunksPerThread = 3;
// Products smaller than this (multiply-adds) run on the calling thread alone; from
// kAlwaysSplitMacs on (0.1 ms and more of kernel time) they are split without asking the pool's timing.
constexpr double kMinSplitMacs = 256.0 * 1024;
constexpr double kAlwaysSplitMacs = 16.0 * 1024 * 1024;

}  // namespace

Status matmul(std::span<float> y, const Tensor& w, std::span<const float> x, int64_t T, const MatvecOptions& opt,
              int64_t row0, int64_t nrows) {
    if (nrows < 0) nrows = w.rows() - row0;
    const int64_t cols = w.row_length();
    if (row0 < 0 || nrows < 0 || row0 + nrows > w.rows())
        return make_error("tensor '" + w.name + "': matmul rows [" + std::to_string(row0) + ", " + std::to_string(row0 + nrows) +
                          ") out of range");
    if (T < 0 || int64_t(x.size()) != T * cols || int64_t(y.size()) != T * nrows)
        return make_error("matmul with '" + w.name + "': input has " + std::to_string(x.size()) + " values, output " +
                          std::to_string(y.size()) + " (expected " + std::to_string(T) + " x " + std::to_string(cols) +
                          ", " + std::to_string(T) + " x " + std::to_string(nrows) + ")");

    const kernels::KernelTraits* kt = kernels::kernel_traits(w.dtype);
    const kernels::GemmTraits* gt = kernels::gemm_traits(w.dtype);
    const bool fast = opt.kernels != Kernels::Reference && kt && gt &&
                      (opt.rounding == ActRounding::Ggml || w.dtype == DType::F32);
    if (!fast || T == 0 || nrows == 0) {
        // The reference path (and types without kernels): one matvec per activation row.
        for (int64_t t = 0; t < T; ++t)
            EF_TRY_STATUS(matvec(y.subspan(size_t(t * nrows), size_t(nrows)), w, x.subspan(size_t(t * cols), size_t(cols)),
                                 opt, row0, nrows));
        return {};
    }

    const TypeTraits& tt = type_traits(w.dtype);
    const size_t row_bytes = size_t(cols / tt.block_size) * size_t(tt.type_size);
    const std::byte* base = w.data.data() + size_t(row0) * row_bytes;
    const int threads = opt.pool ? opt.pool->threads() : 1;

    // The activations once for all chunks: either f32 values rounded to the act type (the float
    // kernels' input; F32 weights use x as it is) or rows in the act type itself.
    const bool f32act = gt->f32act && opt.kernels == Kernels::Fast && T >= kMinTiledTokens;
    kernels::GemmFn fn = gt->best;
    size_t arb = 0;
    std::vector<float> actf;
    std::vector<uint8_t> act;
    const uint8_t* a0 = nullptr;
    if (f32act) {
        fn = gt->f32act;
        arb = size_t(cols) * sizeof(float);
        if (kt->act == DType::F32) {
            a0 = reinterpret_cast<const uint8_t*>(x.data());
        } else {
            actf.resize(size_t(T * cols));
            kernels::round_act_f32(kt->act, x.data(), actf.data(), T * cols);
            a0 = reinterpret_cast<const uint8_t*>(actf.data());
        }
    } else {
        // Every activation row rounded once into the kernel's act type, exactly as matvec does.
        arb = kernels::act_bytes(kt->act, cols);
        act.resize(arb * size_t(T));
        auto quantize = [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t)
                kernels::quantize_act(kt->act, x.data() + t * cols, act.data() + size_t(t) * arb, cols);
        };
        // The rounding is scalar work over all T x cols values: split it too.
        if (threads > 1 && T >= 16 && T * cols >= 64 * 1024) opt.pool->parallel_for(T, 8, quantize);
        else quantize(0, T);
        a0 = act.data();
        if (opt.kernels == Kernels::Scalar) fn = gt->scalar;
        else if (T < kMinTiledTokens) fn = kernels::gemm_for(w.dtype, kernels::GemmIsa::Generic);
    }

    // Tokens per call. The f32act kernels keep a weight panel in L2 and stream the activations
    // (a few bytes per cycle): all tokens in one call. The others keep the group's activations
    // in L2 while the weights pass by. Float kernels widen 16-bit activations: budget for that.
    int64_t group = T;
    if (!f32act) {
        const size_t act_cache_bytes = type_traits(kt->act).quantized ? arb : std::max(arb, size_t(cols) * sizeof(float));
        group = std::clamp<int64_t>(int64_t(kActBudgetBytes / std::max<size_t>(1, act_cache_bytes)), 8, T);
    }
    // Row chunks: whole panels, about kChunksPerThread per thread so that a thread that starts
    // late (or is preempted) leaves little for the others to wait for.
    const int64_t panel = gt->panel_rows;
    int64_t chunk = nrows;
    if (threads > 1)
        chunk = std::max<int64_t>(kMinChunkRows, (nrows + kChunksPerThread * threads - 1) / (kChunksPerThread * threads));
    chunk = (chunk + panel - 1) / panel * panel;
    const int64_t nchunks = (nrows + chunk - 1) / chunk;

    for (int64_t t0 = 0; t0 < T; t0 += group) {
        const int64_t g = std::min(group, T - t0);
        const uint8_t* a = a0 + size_t(t0) * arb;
        float* yt = y.data() + t0 * nrows;
        auto run_chunks = [&](int64_t b, int64_t e) {
            for (int64_t c = b; c < e; ++c) {
                const int64_t r = c * chunk, nr = std::min(chunk, nrows - r);
                fn(cols, nr, g, base + size_t(r) * row_bytes, row_bytes, a, arb, yt + r, nrows);
            }
        };
        const double work = double(nrows) * double(cols) * double(g);  // multiply-adds
        if (threads > 1 && nchunks > 1 && work >= kMinSplitMacs)
            // Milliseconds of work: splitting wins unless the other core is taken for all of it,
            // and the small chunks bound what the caller can wait for: skip the pool's timing.
            opt.pool->parallel_for(nchunks, 1, run_chunks, work >= kAlwaysSplitMacs ? ThreadPool::Split::Always
                                                                                   : ThreadPool::Split::Adaptive);
        else
            run_chunks(0, nchunks);
    }
    return {};
}

}  // namespace ef::rt
