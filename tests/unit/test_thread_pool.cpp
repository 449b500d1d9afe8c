// rt::ThreadPool: every index runs exactly once for any thread count and chunk size, jobs reuse
// the same workers (no thread per job), workers asleep after the spin wake for the next job,
// and a Session gives the same logits bit for bit with 1, 2 or 4 threads.
#include <QtTest>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/synth.h"
#include "runtime/session.h"
#include "runtime/thread_pool.h"

using namespace ef;

class TestThreadPool : public QObject {
    Q_OBJECT
private slots:
    void covers_every_index_once_data() {
        QTest::addColumn<int>("threads");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("chunk");
        for (int t : {1, 2, 3, 8})
            for (int n : {0, 1, 7, 1000, 4097})
                for (int c : {1, 16, 5000}) QTest::addRow("t%d n%d c%d", t, n, c) << t << n << c;
    }
    void covers_every_index_once() {
        QFETCH(int, threads);
        QFETCH(int, n);
        QFETCH(int, chunk);
        rt::ThreadPool pool(threads);
        QCOMPARE(pool.threads(), threads);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> bad_ranges{0};  // QVERIFY is not for worker threads: count, check after
        for (int rep = 0; rep < 3; ++rep)
            pool.parallel_for(n, chunk, [&](int64_t b, int64_t e) {
                if (!(b < e && e <= n && e - b <= chunk && b % chunk == 0)) ++bad_ranges;
                for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
            });
        QCOMPARE(bad_ranges.load(), 0);
        for (int i = 0; i < n; ++i) QCOMPARE(hits[size_t(i)].load(), 3);
    }

    void work_is_shared_and_threads_are_reused() {
        rt::ThreadPool pool(2, /*spin_us=*/50);
        pool.set_adaptive(false);
        std::mutex m;
        std::set<std::thread::id> ids;
        for (int job = 0; job < 200; ++job)
            pool.parallel_for(64, 1, [&](int64_t, int64_t) {
                std::this_thread::sleep_for(std::chrono::microseconds(20));  // long enough for the worker to join
                std::lock_guard lock(m);
                ids.insert(std::this_thread::get_id());
            });
        // The caller and one fixed worker: two distinct threads over all 200 jobs, never more.
        QCOMPARE(int(ids.size()), 2);
        QVERIFY(ids.count(std::this_thread::get_id()) == 1);
    }

    // The pool times jobs of one shape both ways before choosing, and keeps counting.
    void adaptive_tries_both_ways() {
        rt::ThreadPool pool(2);
        std::atomic<int64_t> sum{0};
        for (int job = 0; job < 100; ++job)
            pool.parallel_for(4096, 64, [&](int64_t b, int64_t e) { sum += e - b; });
        QCOMPARE(sum.load(), int64_t(100) * 4096);
        QCOMPARE(pool.split_jobs() + pool.solo_jobs(), int64_t(100));
        QVERIFY(pool.split_jobs() >= 3);
        QVERIFY(pool.solo_jobs() >= 3);
        // Not adaptive: every job is split.
        rt::ThreadPool forced(2);
        forced.set_adaptive(false);
        for (int job = 0; job < 10; ++job) forced.parallel_for(4096, 64, [&](int64_t, int64_t) {});
        QCOMPARE(forced.split_jobs(), int64_t(10));
    }

    void wakes_after_sleeping() {
        rt::ThreadPool pool(3, /*spin_us=*/0);
        pool.set_adaptive(false);
        for (int round = 0; round < 5; ++round) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers are asleep now
            std::atomic<int64_t> sum{0};
            pool.parallel_for(10000, 100, [&](int64_t b, int64_t e) {
                int64_t s = 0;
                for (int64_t i = b; i < e; ++i) s += i;
                sum += s;
            });
            QCOMPARE(sum.load(), int64_t(10000) * 9999 / 2);
        }
    }

    // The whole forward pass: logits identical for any thread count, fast and reference paths.
    void session_logits_do_not_depend_on_threads_data() {
        QTest::addColumn<DType>("type");
        QTest::addColumn<int>("kernels");
        QTest::addRow("f32/fast") << DType::F32 << int(rt::Kernels::Fast);
        QTest::addRow("q8_0/fast") << DType::Q8_0 << int(rt::Kernels::Fast);
        QTest::addRow("q4_K/fast") << DType::Q4_K << int(rt::Kernels::Fast);
        QTest::addRow("q8_0/reference") << DType::Q8_0 << int(rt::Kernels::Reference);
    }
    void session_logits_do_not_depend_on_threads() {
        QFETCH(DType, type);
        QFETCH(int, kernels);
        SynthOptions so;
        so.arch = "llama";
        so.dim = 256;
        so.n_layers = 2;
        so.vocab = 512;
        so.type = type;
        auto m = synth_model(so);
        QVERIFY2(m.ok(), m.ok() ? "" : m.error().message.c_str());
        std::vector<std::vector<float>> per_threads;
        for (int threads : {1, 2, 4}) {
            SessionOptions opt;
            opt.threads = threads;
            opt.kernels = rt::Kernels(kernels);
            auto s = Session::create(*m, opt);
            QVERIFY2(s.ok(), s.ok() ? "" : s.error().message.c_str());
            std::vector<float> logits;
            for (int32_t t : {1, 5, 9, 200}) {
                auto l = s->eval(t);
                QVERIFY(l.ok());
                logits = *l;
            }
            per_threads.push_back(logits);
        }
        for (size_t i = 1; i < per_threads.size(); ++i)
            QVERIFY(std::memcmp(per_threads[i].data(), per_threads[0].data(), per_threads[0].size() * sizeof(float)) == 0);
    }
};

QTEST_GUILESS_MAIN(TestThreadPool)
#include "test_thread_pool.moc"
