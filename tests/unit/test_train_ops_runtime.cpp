// The training ops' forwards against the runtime's inference ops (the inference reference):
// rope, conv1d and the Mamba-1 scan bit for bit; attention, SSD (steps and chunked), RMSNorm and
// matmul to float rounding or exactly as stated per test. Threaded == single-threaded, bit for bit.
// And an informational matmul speed line (GFLOP/s, 1 and 2 threads). Backwards: test_train_ops.cpp.
#include <QtTest>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/train/grad_ops.h"
#include "runtime/ops.h"
#include "runtime/ops_seq.h"
#include "runtime/thread_pool.h"
#include "tests/unit/train_ops_check.h"

using namespace ef;
using namespace ef::train_test;

namespace {

void time_it(const char* what, double flops, int reps, const std::function<void()>& fn) {
    fn();  // warm-up (page faults, packing buffers)
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    qInfo("  %s: %.2f ms, %.2f GFLOP/s", what, s * 1e3, flops / s * 1e-9);
}

}  // namespace

class TestTrainOpsRuntime : public QObject {
    Q_OBJECT
private slots:
    // ---- forwards against the runtime --------------------------------------------------------

    void rmsnorm_forward_equals_runtime() {
        const int64_t T = 4, C = 12;
        std::mt19937 rng(20);
        const Vec x = uniform(size_t(T * C), -3, 3, rng), w = uniform(size_t(C), 0.5f, 2, rng);
        Vec out(size_t(T * C)), rstd(static_cast<size_t>(T)), outg(size_t(T * C)), rstdg(size_t(T * 3));
        tr::rmsnorm_forward(out, rstd, x, w, T, C, 1e-5f);
        tr::rmsnorm_groups_forward(outg, rstdg, x, w, T, C, 3, 1e-5f);
        for (int64_t t = 0; t < T; ++t) {
            Vec ref(static_cast<size_t>(C)), refg(static_cast<size_t>(C));
            rt::rmsnorm(ref, row(x, t, C), w, 1e-5f);
            rt::rmsnorm_groups(refg, row(x, t, C), w, 3, 1e-5f);
            QCOMPARE(row(out, t, C), ref);
            QCOMPARE(row(outg, t, C), refg);
        }
    }

    void rope_forward_equals_runtime_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("H");
        QTest::addColumn<int>("D");
        QTest::addColumn<int>("rope_dim");
        QTest::addColumn<float>("theta");
        QTest::newRow("full") << 37 << 3 << 16 << 16 << 10000.0f;
        QTest::newRow("rope_dim 8 of 12, theta 5e5") << 20 << 2 << 12 << 8 << 500000.0f;
    }
    void rope_forward_equals_runtime() {
        QFETCH(int, T);
        QFETCH(int, H);
        QFETCH(int, D);
        QFETCH(int, rope_dim);
        QFETCH(float, theta);
        std::mt19937 rng(21);
        const Vec x0 = uniform(size_t(T * H * D), -1, 1, rng);
        Vec a = x0, b = x0;
        tr::rope_forward(a, T, H, D, rope_dim, theta);
        rt::rope_seq(b, T, H, D, rope_dim, 0, theta);
        QCOMPARE(a, b);
        // The inverse rotation undoes it.
        tr::rope_backward(a, T, H, D, rope_dim, theta);
        QVERIFY(max_rel_diff(a, x0) < 1e-5);
    }

    void attention_forward_equals_runtime_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("H");
        QTest::addColumn<int>("KVH");
        QTest::addColumn<int>("D");
        QTest::newRow("MHA") << 12 << 4 << 4 << 8;
        QTest::newRow("GQA 6:2") << 19 << 6 << 2 << 10;
        QTest::newRow("MQA 4:1") << 7 << 4 << 1 << 16;
    }
    void attention_forward_equals_runtime() {
        QFETCH(int, T);
        QFETCH(int, H);
        QFETCH(int, KVH);
        QFETCH(int, D);
        std::mt19937 rng(22);
        const Vec q = uniform(size_t(T * H * D), -2, 2, rng), k = uniform(size_t(T * KVH * D), -2, 2, rng),
                  v = uniform(size_t(T * KVH * D), -1, 1, rng);
        const float scale = 1.0f / std::sqrt(float(D));
        Vec out(size_t(T * H * D)), probs(size_t(H * T * T), NAN), ref(size_t(T * H * D));
        tr::attention_forward(out, probs, q, k, v, T, H, KVH, D, scale, nullptr);
        rt::attention_seq(ref, q, k, v, 0, T, H, KVH, D, scale, nullptr);
        // The runtime sums the dots and the weighted values in double, the training kernel in float.
        QVERIFY2(max_rel_diff(out, ref) < 1e-5, qPrintable(QString::number(max_rel_diff(out, ref))));
        // Saved rows: softmax over s <= t, zero after.
        for (int64_t h = 0; h < H; ++h)
            for (int64_t t = 0; t < T; ++t) {
                double sum = 0.0;
                for (int64_t s = 0; s < T; ++s) {
                    const float p = probs[size_t((h * T + t) * T + s)];
                    if (s > t) QCOMPARE(p, 0.0f);
                    sum += p;
                }
                QVERIFY(std::fabs(sum - 1.0) < 1e-5);
            }
    }

    void conv1d_forward_equals_runtime() {
        const int64_t T = 10, C = 6, K = 4;
        std::mt19937 rng(23);
        const Vec x = uniform(size_t(T * C), -1, 1, rng), w = uniform(size_t(C * K), -1, 1, rng),
                  b = uniform(size_t(C), -1, 1, rng);
        for (bool bias : {true, false}) {
            const std::span<const float> bs = bias ? std::span<const float>(b) : std::span<const float>();
            Vec out(size_t(T * C)), ref(size_t(T * C)), state(size_t(C * (K - 1)), 0.0f);
            tr::conv1d_forward(out, x, w, bs, T, C, K);
            rt::conv1d_seq(ref, state, x, w, bs, T, C, K);
            QCOMPARE(out, ref);
        }
    }

    void selective_scan_forward_equals_runtime() {
        const int64_t T = 17, C = 6, N = 8;
        std::mt19937 rng(24);
        const Vec x = uniform(size_t(T * C), -1, 1, rng), dt = uniform(size_t(T * C), -3, 22, rng),  // some above 20
            A = negative(size_t(C * N), rng), B = uniform(size_t(T * N), -1, 1, rng), Cm = uniform(size_t(T * N), -1, 1, rng),
                  D = uniform(size_t(C), -1, 1, rng);
        Vec y(size_t(T * C)), hs(size_t((T + 1) * C * N), NAN), ref(size_t(T * C)), h(size_t(C * N), 0.0f);
        tr::selective_scan_forward(y, hs, x, dt, A, B, Cm, D, T, C, N);
        rt::selective_scan_seq(ref, h, x, dt, A, B, Cm, D, T, C, N);
        QCOMPARE(y, ref);
        QCOMPARE(row(hs, T, C * N), h);        // the last saved state is the runtime's final state
        QCOMPARE(row(hs, 0, C * N), Vec(size_t(C * N), 0.0f));
    }

    void ssd_forward_equals_runtime_data() {
        QTest::addColumn<int>("G");
        QTest::addColumn<int>("threads");
        QTest::newRow("G=1") << 1 << 1;
        QTest::newRow("G=2") << 2 << 1;
        QTest::newRow("G=2, 2 threads") << 2 << 2;
    }
    void ssd_forward_equals_runtime() {
        QFETCH(int, G);
        QFETCH(int, threads);
        const int64_t T = 29, H = 4, P = 8, N = 16;
        std::mt19937 rng(25);
        const Vec x = uniform(size_t(T * H * P), -1, 1, rng), dt = uniform(size_t(T * H), -4, 1, rng),
                  A = negative(size_t(H), rng), B = uniform(size_t(T * G * N), -1, 1, rng),
                  Cm = uniform(size_t(T * G * N), -1, 1, rng), D = uniform(size_t(H), 0.5f, 1.5f, rng);
        rt::ThreadPool pool(threads);
        Vec y(size_t(T * H * P)), Ss(size_t((T + 1) * H * P * N), NAN);
        tr::ssd_forward(y, Ss, x, dt, A, B, Cm, D, T, H, P, G, N, threads > 1 ? &pool : nullptr);
        // T calls of the one-step op: the same recurrence; the training kernel sums over the state
        // in 8 lanes, so equal to float rounding.
        Vec S(size_t(H * P * N), 0.0f), ref;
        for (int64_t t = 0; t < T; ++t) {
            Vec yt(size_t(H * P));
            rt::ssd_step(yt, S, row(x, t, H * P), row(dt, t, H), A, row(B, t, G * N), row(Cm, t, G * N), D, H, P, G, N);
            ref.insert(ref.end(), yt.begin(), yt.end());
        }
        QVERIFY2(max_rel_diff(y, ref) < 1e-5, qPrintable(QString::number(max_rel_diff(y, ref))));
        QVERIFY(max_rel_diff(row(Ss, T, H * P * N), S) < 1e-5);
        // The runtime's prefill path (chunked SSD) regroups the sums: equal to float rounding.
        Vec yc(size_t(T * H * P)), Sc(size_t(H * P * N), 0.0f);
        rt::ssd_chunked(yc, Sc, x, dt, A, B, Cm, D, T, H, P, G, N, 8);
        QVERIFY2(max_rel_diff(y, yc) < 2e-5, qPrintable(QString::number(max_rel_diff(y, yc))));
    }

    void matmul_forward_values_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("C");
        QTest::addColumn<int>("OC");
        QTest::newRow("3x5x2") << 3 << 5 << 2;
        QTest::newRow("70x129x67") << 70 << 129 << 67;
        QTest::newRow("1x300x17") << 1 << 300 << 17;
    }
    // Against a plain double dot product per element (and rt::matvec on the same rows).
    void matmul_forward_values() {
        QFETCH(int, T);
        QFETCH(int, C);
        QFETCH(int, OC);
        std::mt19937 rng(26);
        const Vec x = uniform(size_t(T * C), -1, 1, rng), W = uniform(size_t(OC * C), -1, 1, rng);
        Vec out(size_t(T * OC), NAN);
        tr::matmul_forward(out, x, W, T, C, OC, nullptr);
        double worst = 0.0;
        for (int64_t t = 0; t < T; ++t)
            for (int64_t o = 0; o < OC; ++o) {
                double ref = 0.0;
                for (int64_t c = 0; c < C; ++c) ref += double(x[size_t(t * C + c)]) * double(W[size_t(o * C + c)]);
                worst = std::max(worst, std::fabs(double(out[size_t(t * OC + o)]) - ref) / std::max(1.0, std::fabs(ref)));
            }
        QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
    }

    // ---- threads -------------------------------------------------------------------------------

    void threaded_equals_single() {
        rt::ThreadPool pool(2);
        std::mt19937 rng(27);
        const int64_t splits0 = pool.split_jobs();
        {  // matmul
            const int64_t T = 130, C = 96, OC = 200;
            const Vec x = uniform(size_t(T * C), -1, 1, rng), W = uniform(size_t(OC * C), -1, 1, rng),
                      dout = uniform(size_t(T * OC), -1, 1, rng);
            Vec o1(size_t(T * OC)), o2(size_t(T * OC));
            tr::matmul_forward(o1, x, W, T, C, OC, nullptr);
            tr::matmul_forward(o2, x, W, T, C, OC, &pool);
            QCOMPARE(o1, o2);
            Vec dx1(x.size(), 0.5f), dW1(W.size(), 0.25f), dx2 = dx1, dW2 = dW1;
            tr::matmul_backward(dx1, dW1, dout, x, W, T, C, OC, nullptr);
            tr::matmul_backward(dx2, dW2, dout, x, W, T, C, OC, &pool);
            QCOMPARE(dx1, dx2);
            QCOMPARE(dW1, dW2);
        }
        {  // attention
            const int64_t T = 40, H = 4, KVH = 2, D = 16;
            const Vec q = uniform(size_t(T * H * D), -1, 1, rng), k = uniform(size_t(T * KVH * D), -1, 1, rng),
                      v = uniform(size_t(T * KVH * D), -1, 1, rng), dout = uniform(size_t(T * H * D), -1, 1, rng);
            Vec o1(q.size()), o2(q.size()), p1(size_t(H * T * T)), p2(size_t(H * T * T));
            tr::attention_forward(o1, p1, q, k, v, T, H, KVH, D, 0.25f, nullptr);
            tr::attention_forward(o2, p2, q, k, v, T, H, KVH, D, 0.25f, &pool);
            QCOMPARE(o1, o2);
            QCOMPARE(p1, p2);
            Vec dq1(q.size(), 0.0f), dk1(k.size(), 0.0f), dv1(v.size(), 0.0f), dq2 = dq1, dk2 = dk1, dv2 = dv1;
            tr::attention_backward(dq1, dk1, dv1, dout, q, k, v, p1, T, H, KVH, D, 0.25f, nullptr);
            tr::attention_backward(dq2, dk2, dv2, dout, q, k, v, p1, T, H, KVH, D, 0.25f, &pool);
            QCOMPARE(dq1, dq2);
            QCOMPARE(dk1, dk2);
            QCOMPARE(dv1, dv2);
        }
        {  // SSD
            const int64_t T = 48, H = 4, P = 16, G = 2, N = 16;
            const Vec x = uniform(size_t(T * H * P), -1, 1, rng), dt = uniform(size_t(T * H), -2, 1, rng),
                      A = negative(size_t(H), rng), B = uniform(size_t(T * G * N), -1, 1, rng),
                      Cm = uniform(size_t(T * G * N), -1, 1, rng), D = uniform(size_t(H), -1, 1, rng),
                      dy = uniform(size_t(T * H * P), -1, 1, rng);
            Vec y1(x.size()), y2(x.size()), S1(size_t((T + 1) * H * P * N)), S2 = S1;
            tr::ssd_forward(y1, S1, x, dt, A, B, Cm, D, T, H, P, G, N, nullptr);
            tr::ssd_forward(y2, S2, x, dt, A, B, Cm, D, T, H, P, G, N, &pool);
            QCOMPARE(y1, y2);
            QCOMPARE(S1, S2);
            std::vector<Vec> g1{Vec(x.size(), 0.f), Vec(dt.size(), 0.f), Vec(A.size(), 0.f), Vec(B.size(), 0.f),
                                Vec(Cm.size(), 0.f), Vec(D.size(), 0.f)};
            std::vector<Vec> g2 = g1;
            tr::ssd_backward(g1[0], g1[1], g1[2], g1[3], g1[4], g1[5], dy, S1, x, dt, A, B, Cm, D, T, H, P, G, N, nullptr);
            tr::ssd_backward(g2[0], g2[1], g2[2], g2[3], g2[4], g2[5], dy, S1, x, dt, A, B, Cm, D, T, H, P, G, N, &pool);
            for (size_t i = 0; i < g1.size(); ++i) QCOMPARE(g1[i], g2[i]);
        }
        {  // Mamba-1 scan (channel chunks of 16: C = 40 gives three, the last partial)
            const int64_t T = 64, C = 40, N = 16;
            const Vec x = uniform(size_t(T * C), -1, 1, rng), dt = uniform(size_t(T * C), -2, 1, rng),
                      A = negative(size_t(C * N), rng), B = uniform(size_t(T * N), -1, 1, rng),
                      Cm = uniform(size_t(T * N), -1, 1, rng), D = uniform(size_t(C), -1, 1, rng),
                      dy = uniform(size_t(T * C), -1, 1, rng);
            Vec y1(x.size()), y2(x.size()), h1(size_t((T + 1) * C * N)), h2 = h1;
            tr::selective_scan_forward(y1, h1, x, dt, A, B, Cm, D, T, C, N);
            tr::selective_scan_forward(y2, h2, x, dt, A, B, Cm, D, T, C, N, &pool);
            QCOMPARE(y1, y2);
            QCOMPARE(h1, h2);
            std::vector<Vec> g1{Vec(x.size(), 0.f), Vec(dt.size(), 0.f), Vec(A.size(), 0.f), Vec(B.size(), 0.f),
                                Vec(Cm.size(), 0.f), Vec(D.size(), 0.f)};
            std::vector<Vec> g2 = g1;
            tr::selective_scan_backward(g1[0], g1[1], g1[2], g1[3], g1[4], g1[5], dy, h1, x, dt, A, B, Cm, D, T, C, N);
            tr::selective_scan_backward(g2[0], g2[1], g2[2], g2[3], g2[4], g2[5], dy, h1, x, dt, A, B, Cm, D, T, C, N,
                                        &pool);
            for (size_t i = 0; i < g1.size(); ++i) QCOMPARE(g1[i], g2[i]);
        }
        {  // losses (rows split)
            const int64_t T = 40, V = 500;
            const Vec z = uniform(size_t(T * V), -4, 4, rng), zt = uniform(size_t(T * V), -4, 4, rng);
            std::vector<int32_t> targets(static_cast<size_t>(T));
            for (int64_t t = 0; t < T; ++t) targets[size_t(t)] = int32_t((t * 37) % V);
            targets[3] = -1;
            QCOMPARE(tr::cross_entropy_forward(z, targets, T, V, &pool), tr::cross_entropy_forward(z, targets, T, V));
            QCOMPARE(tr::kl_forward(z, zt, T, V, &pool), tr::kl_forward(z, zt, T, V));
            Vec d1(z.size(), 0.0f), d2 = d1;
            tr::cross_entropy_backward(d1, z, targets, T, V, 0.5f);
            tr::cross_entropy_backward(d2, z, targets, T, V, 0.5f, &pool);
            QCOMPARE(d1, d2);
            tr::kl_backward(d1, z, zt, T, V);
            tr::kl_backward(d2, z, zt, T, V, 1.0f, &pool);
            QCOMPARE(d1, d2);
        }
        // The jobs above were really split across the two threads.
        QVERIFY(pool.split_jobs() - splits0 >= 12);
    }

    // Informational: matmul speed (forward, backward) with 1 and 2 threads. No bound: the
    // machine may be busy; the numbers go into the log.
    void matmul_speed() {
        const int64_t T = 256, C = 512, OC = 512;
        std::mt19937 rng(28);
        const Vec x = uniform(size_t(T * C), -1, 1, rng), W = uniform(size_t(OC * C), -1, 1, rng),
                  dout = uniform(size_t(T * OC), -1, 1, rng);
        Vec out(size_t(T * OC)), dx(x.size(), 0.0f), dW(W.size(), 0.0f);
        const double flops = 2.0 * double(T) * double(C) * double(OC);
        rt::ThreadPool pool(2);
        for (rt::ThreadPool* p : {static_cast<rt::ThreadPool*>(nullptr), &pool}) {
            qInfo("matmul T=%lld C=%lld OC=%lld, %d thread(s):", (long long)T, (long long)C, (long long)OC, p ? 2 : 1);
            time_it("forward", flops, 3, [&] { tr::matmul_forward(out, x, W, T, C, OC, p); });
            time_it("backward (dx and dW)", 2 * flops, 3, [&] { tr::matmul_backward(dx, dW, dout, x, W, T, C, OC, p); });
        }
        QVERIFY(std::isfinite(out[0]) && std::isfinite(dW[0]));
    }
};

QTEST_GUILESS_MAIN(TestTrainOpsRuntime)
#include "test_train_ops_runtime.moc"
