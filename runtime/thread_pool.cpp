#include "runtime/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace ef::rt {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

using Clock = std::chrono::steady_clock;

}  // namespace

ThreadPool::ThreadPool(int threads, int spin_us) : spin_us_(std::max(0, spin_us)) {
    const int workers = std::max(1, threads) - 1;
    workers_.reserve(size_t(workers));
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true);
    gen_.fetch_add(1);
    {
        std::lock_guard lock(sleep_mutex_);
        wake_.notify_all();
    }
    for (auto& t : workers_) t.join();
}

void ThreadPool::work_on(uint32_t gen) {
    const Fn fn = fn_.load(std::memory_order_relaxed);
    void* const ctx = ctx_.load(std::memory_order_relaxed);
    const int64_t n = n_.load(std::memory_order_relaxed);
    const int64_t chunk = chunk_.load(std::memory_order_relaxed);
    for (;;) {
        uint64_t v = work_.load(std::memory_order_acquire);
        int64_t b = 0;
        do {
            if (uint32_t(v >> 32) != gen) return;  // a later job: this one is over
            b = int64_t(uint32_t(v));
            if (b >= n) return;
        } while (!work_.compare_exchange_weak(v, v + uint64_t(chunk), std::memory_order_acq_rel));
        const int64_t e = std::min(n, b + chunk);
        fn(ctx, b, e);
        done_.fetch_add(e - b, std::memory_order_release);
    }
}

void ThreadPool::worker_loop() {
    // Generations start at 1. A worker that starts late sees the current one as new: it then
    // finds that job's chunks taken (or helps), and it cannot miss a shutdown that came first.
    uint32_t seen = 0;
    for (;;) {
        if (stop_.load()) return;
        uint32_t g = gen_.load(std::memory_order_acquire);
        if (g == seen) {
            // Poll for a while (cheap and quick to react), then sleep until the next job.
            const auto t0 = Clock::now();
            for (int i = 1; g == seen; ++i) {
                cpu_relax();
                g = gen_.load(std::memory_order_acquire);
                if ((i & 63) == 0) {
                    if (Clock::now() - t0 > std::chrono::microseconds(spin_us_)) break;
                    std::this_thread::yield();  // lets the caller run first when cores are oversubscribed
                }
            }
            if (g == seen) {
                std::unique_lock lock(sleep_mutex_);
                sleepers_.fetch_add(1);  // before re-reading gen_: pairs with run()'s store-then-check
                // A bounded wait, re-checking the predicate: glibc 2.36's condition variable can
                // lose a wakeup (glibc bug 25847), which hung shutdown now and then.
                while (!(gen_.load() != seen || stop_.load()))
                    wake_.wait_for(lock, std::chrono::milliseconds(2));
                sleepers_.fetch_sub(1);
                continue;
            }
        }
        seen = g;
        if (stop_.load()) return;
        work_on(g);
    }
}

ThreadPool::ShapeStats& ThreadPool::stats_for(int64_t n, int64_t chunk) {
    for (ShapeStats& st : stats_)
        if (st.n == n && st.chunk == chunk) return st;
    ShapeStats& st = stats_[next_slot_++ % stats_.size()];
    st = ShapeStats{};
    st.n = n;
    st.chunk = chunk;
    return st;
}

void ThreadPool::run(int64_t n, int64_t chunk, Fn fn, void* ctx, Split mode) {
    if (n <= 0) return;
    chunk = std::max<int64_t>(1, chunk);
    auto solo = [&] {
        for (int64_t b = 0; b < n; b += chunk) fn(ctx, b, std::min(n, b + chunk));
    };
    if (workers_.empty() || n <= chunk) {
        solo();
        return;
    }
    std::lock_guard lock(job_mutex_);
    if (!adaptive_ || mode == Split::Always) {
        run_split(n, chunk, fn, ctx);
        ++split_jobs_;
        return;
    }
    // Split or run alone: whichever has been faster for jobs of this shape lately. Each way is
    // tried a few times first, and the other way again every kExplore-th job, so a change in
    // the machine's load is noticed.
    ShapeStats& st = stats_for(n, chunk);
    ++st.calls;
    bool split;
    if (st.seen[1] < kWarmup) split = true;
    else if (st.seen[0] < kWarmup) split = false;
    else split = (st.time[1] <= st.time[0]) != (st.calls % kExplore == 0);
    const auto t_start = Clock::now();
    if (split) run_split(n, chunk, fn, ctx);
    else solo();
    const double dt = std::chrono::duration<double>(Clock::now() - t_start).count();
    const int m = split ? 1 : 0;
    st.time[m] = st.seen[m] == 0 ? dt : st.time[m] + (dt - st.time[m]) / 8;  // moving average
    ++st.seen[m];
    if (split) ++split_jobs_;
    else ++solo_jobs_;
}

void ThreadPool::run_split(int64_t n, int64_t chunk, Fn fn, void* ctx) {
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    n_.store(n, std::memory_order_relaxed);
    chunk_.store(chunk, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const uint32_t g = gen_.load() + 1;
    work_.store(uint64_t(g) << 32, std::memory_order_release);
    gen_.store(g);  // seq_cst, paired with the sleepers_ check below
    if (sleepers_.load() > 0) {  // rare while decoding: workers spin between jobs
        std::lock_guard wake_lock(sleep_mutex_);
        wake_.notify_all();
    }
    work_on(g);
    // Wait only for chunks other threads claimed; they are running right now.
    for (int i = 1; done_.load(std::memory_order_acquire) < n; ++i) {
        cpu_relax();
        if ((i & 1023) == 0) std::this_thread::yield();
    }
}

}  // namespace ef::rt
