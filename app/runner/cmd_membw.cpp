// membw: the machine's memory read bandwidth, the ceiling for decode (every weight is read once
// per token). T threads each stream their slice of a buffer far larger than the caches and sum it
// with independent 64-bit accumulators, so loads never wait on adds (32-byte AVX2 loads on x86 CPUs
// that have them, else a plain loop the compiler vectorises, e.g. NEON on aarch64). The rate is
// buffer bytes / wall time of the slowest thread, best of N repetitions, in GB/s (1e9 bytes/s).
// Used by scripts/bench-runtime.sh for "decode as % of the bandwidth limit", and on boards.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "app/runner/runner.h"
#include "runtime/cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ef::run {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t sum_words(const uint64_t* p, size_t n) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
        a4 += p[i + 4];
        a5 += p[i + 5];
        a6 += p[i + 6];
        a7 += p[i + 7];
    }
    for (; i < n; ++i) a0 += p[i];
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

#if defined(__x86_64__)
// 32-byte loads: ~20% more bytes per second from one core than the SSE2 the baseline build gets.
__attribute__((target("avx2"))) uint64_t sum_words_avx2(const uint64_t* p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
    }
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_words(p + i, n - i);
}
#endif

using SumFn = uint64_t (*)(const uint64_t*, size_t);
SumFn pick_sum(const char** name) {
#if defined(__x86_64__)
    if (rt::cpu_features().has_avx2_set()) {
        *name = "avx2";
        return sum_words_avx2;
    }
#endif
    *name = "generic";
    return sum_words;
}

// Runs body(t, begin, end) on T threads over [0, n) words split evenly; returns seconds.
template <class F>
double on_threads(int threads, size_t n, F body) {
    const auto t0 = Clock::now();
    std::vector<std::thread> pool;
    pool.reserve(size_t(threads - 1));
    const size_t per = (n + size_t(threads) - 1) / size_t(threads);
    for (int t = 1; t < threads; ++t)
        pool.emplace_back([&, t] { body(t, std::min(n, per * size_t(t)), std::min(n, per * size_t(t + 1))); });
    body(0, 0, std::min(n, per));
    for (auto& th : pool) th.join();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int run_membw(const std::vector<std::string>& argv, Progress& progress) {
    const char* cmd = "membw";
    const std::vector<cli::OptionSpec> specs = {
        {"--size", "", true, "buffer MiB (default 256; make it far larger than the last-level cache)"},
        {"--threads", "-t", true, "reading threads (default: all hardware threads)"},
        {"--repetitions", "-r", true, "repetitions, the best one counts (default 5)"},
        {"--json", "", false, "print JSON"},
    };
    auto a = cli::parse_args(argv, specs);
    if (!a) return fail(cmd, a.message() + "\noptions:\n" + cli::options_help(specs), kUsage);
    if (!a->positional.empty()) return fail(cmd, "unexpected argument '" + a->positional.front() + "'", kUsage);
    const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
    auto size = a->get_int("--size", 256, 1, 1 << 20);
    auto threads = a->get_int("--threads", hw, 1, 1024);
    auto reps = a->get_int("--repetitions", 5, 1, 1000);
    if (!size) return fail(cmd, size.message(), kUsage);
    if (!threads) return fail(cmd, threads.message(), kUsage);
    if (!reps) return fail(cmd, reps.message(), kUsage);

    const size_t bytes = size_t(*size) << 20, n = bytes / sizeof(uint64_t);
    std::unique_ptr<uint64_t[]> buf(new (std::nothrow) uint64_t[n]);
    if (!buf) return fail(cmd, "cannot allocate " + std::to_string(*size) + " MiB");
    const int T = int(*threads);
    // Each thread touches its own slice first (its pages land near it on NUMA machines).
    on_threads(T, n, [&](int, size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) buf[i] = i;
    });
    // Sum of 0..n-1 mod 2^64 (halve the even factor first so the product's wrap-around is exact).
    const uint64_t want = n % 2 == 0 ? uint64_t(n / 2) * uint64_t(n - 1) : uint64_t(n) * uint64_t((n - 1) / 2);

    const char* loop = "";
    const SumFn sum = pick_sum(&loop);
    std::vector<uint64_t> partial(static_cast<size_t>(T), 0);
    std::vector<double> gbps;
    for (int r = -1; r < *reps; ++r) {  // r == -1: warm-up
        if (progress.cancelled()) return fail(cmd, "cancelled");
        const double sec = on_threads(T, n, [&](int t, size_t b, size_t e) { partial[size_t(t)] = sum(buf.get() + b, e - b); });
        uint64_t got = 0;
        for (uint64_t p : partial) got += p;
        // Keeps the reads observable and checks them.
        if (got != want) return fail(cmd, "read back a wrong sum (memory error?)");
        if (r >= 0) gbps.push_back(double(bytes) / std::max(sec, 1e-9) / 1e9);
    }
    const double best = *std::max_element(gbps.begin(), gbps.end());
    double mean = 0.0;
    for (double g : gbps) mean += g / double(gbps.size());

    if (a->has("--json")) {
        std::string samples;
        for (size_t i = 0; i < gbps.size(); ++i) {
            char b[32];
            std::snprintf(b, sizeof b, "%s%.4g", i ? ", " : "", gbps[i]);
            samples += b;
        }
        std::printf("{\"test\": \"membw\", \"size_mib\": %lld, \"n_threads\": %d, \"repetitions\": %lld, \"best_gbps\": %.4g, "
                    "\"mean_gbps\": %.4g, \"samples_gbps\": [%s], \"loop\": \"%s\"}\n",
                    (long long)*size, T, (long long)*reps, best, mean, samples.c_str(), loop);
        return 0;
    }
    std::printf("memory read bandwidth: %.2f GB/s best, %.2f GB/s mean (%lld MiB, %d threads, %lld repetitions, %s loop)\n", best,
                mean, (long long)*size, T, (long long)*reps, loop);
    return 0;
}

}  // namespace ef::run
