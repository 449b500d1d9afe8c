// A fixed pool of worker threads for splitting one job (the rows of a matrix-vector product)
// across cores. Built once per session, so no thread is created per token. Between jobs a
// worker spins for a short while (decode issues jobs every few microseconds) and then sleeps on
// a condition variable, so an idle pool costs nothing.
//
// Work is handed out in chunks claimed from a shared counter, so a worker that is late (the OS
// ran something else on its core) simply finds no work left; the caller also works and only
// waits for chunks that were actually claimed. Each index runs on exactly one thread with the
// same code, so results do not depend on the thread count.
//
// A claimed chunk must still be waited for, so a worker preempted mid-chunk (more runnable
// threads than cores: a build, another program) stalls the caller, and a spinning worker takes
// time from the caller. So splitting is a measured choice per job shape (n, chunk): the pool
// times jobs run split and run alone (a moving average of each, the other way retried every
// kExplore-th job) and does what has been faster. On an idle machine big jobs split; on a busy
// one 2 threads then cost about what 1 does instead of up to twice as much.
#pragma once
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace ef::rt {

class ThreadPool {
public:
    // threads: total threads including the caller (>= 1; 1 means no workers).
    // spin_us: how long an idle worker polls for the next job before sleeping.
    explicit ThreadPool(int threads, int spin_us = 100);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int threads() const { return int(workers_.size()) + 1; }
    // Off: every job big enough is split, never timed (for measuring the split itself).
    void set_adaptive(bool on) { adaptive_ = on; }
    // Jobs run split across threads / run by the caller alone, so far (for benchmarks and tests).
    int64_t split_jobs() const { return split_jobs_.load(); }
    int64_t solo_jobs() const { return solo_jobs_.load(); }

    // Adaptive: split or run alone, whichever has been faster for this job shape (for short,
    // frequent jobs such as decode matvecs). Always: split, untimed - for jobs long enough (a
    // prefill matmul, 0.1 ms and up) that waking the workers costs nothing in comparison and
    // small chunks bound what a preempted worker can hold up.
    enum class Split : uint8_t { Adaptive, Always };

    // Calls fn(begin, end) on disjoint ranges covering [0, n), each `chunk` long (the last may be
    // shorter), from the calling thread and the workers; returns when all have run. n < 2^31.
    // One job at a time: concurrent callers are serialized.
    template <class F>
    void parallel_for(int64_t n, int64_t chunk, F&& fn, Split split = Split::Adaptive) {
        using Fv = std::remove_reference_t<F>;
        run(n, chunk, [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fv*>(ctx))(b, e); },
            const_cast<void*>(static_cast<const void*>(&fn)), split);
    }

private:
    using Fn = void (*)(void* ctx, int64_t begin, int64_t end);
    void run(int64_t n, int64_t chunk, Fn fn, void* ctx, Split split);
    void work_on(uint32_t gen);  // claims and runs chunks of job `gen` until none are left
    void worker_loop();

    std::vector<std::thread> workers_;
    std::mutex job_mutex_;
    int spin_us_;
    // The current job. Written by the caller between jobs; a worker uses them only after it
    // claimed a chunk of that job, which keeps them stable until the chunk is done.
    std::atomic<Fn> fn_{nullptr};
    std::atomic<void*> ctx_{nullptr};
    std::atomic<int64_t> n_{0}, chunk_{1};
    std::atomic<uint64_t> work_{0};   // (job generation << 32) | next unclaimed index
    std::atomic<int64_t> done_{0};    // indices finished in the current job
    std::atomic<uint32_t> gen_{0};    // bumped once per job (and at shutdown)
    std::atomic<int> sleepers_{0};
    std::mutex sleep_mutex_;  // sleeping workers wait on wake_ under it
    std::condition_variable wake_;
    std::atomic<bool> stop_{false};
    // Split-or-solo timing per job shape (caller side, under job_mutex_).
    struct ShapeStats {
        int64_t n = -1, chunk = 0;
        double time[2] = {0, 0};  // seconds: [0] alone, [1] split
        int seen[2] = {0, 0};
        uint32_t calls = 0;
    };
    static constexpr int kWarmup = 3;
    static constexpr uint32_t kExplore = 32;
    ShapeStats& stats_for(int64_t n, int64_t chunk);
    void run_split(int64_t n, int64_t chunk, Fn fn, void* ctx);
    std::array<ShapeStats, 32> stats_{};
    size_t next_slot_ = 0;
    bool adaptive_ = true;
    std::atomic<int64_t> split_jobs_{0}, solo_jobs_{0};
};

}  // namespace ef::rt
