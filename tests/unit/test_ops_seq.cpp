// The sequence operators (runtime/ops_seq.h) against T calls of their one-step twins (ops.h) on
// random data: the chunked SSD must equal the recurrent ssd_step (outputs and the final state) to
// float tolerance for every way T can fall across chunks; batched attention, conv1d and the
// Mamba-1 scan do the same arithmetic as the one-step ops, so they must match exactly.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "runtime/ops.h"
#include "runtime/ops_seq.h"
#include "runtime/ssd.h"
#include "runtime/thread_pool.h"

using namespace ef;

namespace {

std::vector<float> uniform(size_t n, float lo, float hi, std::mt19937& rng) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

// max |a - b| / max(1, |b|) over all elements; infinity on a size mismatch or NaN.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return INFINITY;
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(double(a[i]) - double(b[i])) / std::max(1.0, std::fabs(double(b[i])));
        if (std::isnan(d)) return INFINITY;
        m = std::max(m, d);
    }
    return m;
}

std::vector<float> row(const std::vector<float>& v, int64_t t, int64_t n) {
    return std::vector<float>(v.begin() + t * n, v.begin() + (t + 1) * n);
}

}  // namespace

class TestOpsSeq : public QObject {
    Q_OBJECT
private slots:
    // Both the plain-loop reference ssd_chunked (ops_seq.h) and the GEMM one (ssd.h).
    void ssd_chunked_equals_recurrent_data() {
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("chunk");
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("groups");
        QTest::addColumn<int>("threads");
        QTest::addColumn<bool>("fast");
        constexpr int L = 16;
        for (bool fast : {false, true}) {
            const char* kind = fast ? "gemm" : "loops";
            for (int T : {1, L - 1, L, 3 * L + 5})
                for (int groups : {1, 2})
                    QTest::addRow("%s T=%d L=%d groups=%d", kind, T, L, groups) << T << L << 4 << groups << 1 << fast;
            QTest::addRow("%s T=53 L=64 (one partial chunk)", kind) << 53 << 64 << 4 << 2 << 1 << fast;
            QTest::addRow("%s T=200 L=64 groups=4 heads=8", kind) << 200 << 64 << 8 << 4 << 1 << fast;
            QTest::addRow("%s T=200 L=64 groups=2 2 threads", kind) << 200 << 64 << 8 << 2 << 2 << fast;
            QTest::addRow("%s T=37 L=1 (every step a chunk)", kind) << 37 << 1 << 4 << 2 << 1 << fast;
        }
    }
    void ssd_chunked_equals_recurrent() {
        QFETCH(int, T);
        QFETCH(int, chunk);
        QFETCH(int, heads);
        QFETCH(int, groups);
        QFETCH(int, threads);
        QFETCH(bool, fast);
        const int64_t H = heads, P = 8, G = groups, N = 16;
        std::mt19937 rng(uint32_t(1000 + T * 7 + chunk + groups));
        const auto x = uniform(size_t(T * H * P), -1, 1, rng);
        const auto dt = uniform(size_t(T * H), -4, 1, rng);  // softplus: 0.02 .. 1.3
        std::vector<float> A(static_cast<size_t>(H));
        for (int64_t h = 0; h < H; ++h) A[size_t(h)] = -std::exp(-4.0f + 5.0f * float(h) / float(H - 1));  // slow and fast heads
        const auto D = uniform(size_t(H), 0.5f, 1.5f, rng);
        const auto B = uniform(size_t(T * G * N), -1, 1, rng);
        const auto C = uniform(size_t(T * G * N), -1, 1, rng);
        const auto S0 = uniform(size_t(H * P * N), -1, 1, rng);  // a state carried in from before

        // Reference: the recurrence, one step at a time.
        std::vector<float> S_ref = S0, y_ref;
        for (int64_t t = 0; t < T; ++t) {
            std::vector<float> y(static_cast<size_t>(H * P));
            rt::ssd_step(y, S_ref, row(x, t, H * P), row(dt, t, H), A, row(B, t, G * N), row(C, t, G * N), D, H, P, G, N);
            y_ref.insert(y_ref.end(), y.begin(), y.end());
        }

        rt::ThreadPool pool(threads);
        std::vector<float> S = S0, y(size_t(T * H * P), NAN);
        if (fast) rt::ssd_chunked_fast(y, S, x, dt, A, B, C, D, T, H, P, G, N, chunk, threads > 1 ? &pool : nullptr);
        else rt::ssd_chunked(y, S, x, dt, A, B, C, D, T, H, P, G, N, chunk, threads > 1 ? &pool : nullptr);
        const double dy = max_rel_diff(y, y_ref), ds = max_rel_diff(S, S_ref);
        qInfo("max rel diff: outputs %.3g, final state %.3g", dy, ds);
        QVERIFY2(dy <= 2e-5, qPrintable(QStringLiteral("outputs differ by %1").arg(dy)));
        QVERIFY2(ds <= 2e-5, qPrintable(QStringLiteral("final state differs by %1").arg(ds)));
        // The state really moved (so the comparison above says something).
        QVERIFY(max_rel_diff(S, S0) > 1e-3);
    }

    // A wrong chunked SSD must be caught: dropping the state that enters later chunks changes
    // outputs well beyond the tolerance above.
    void ssd_chunked_comparison_can_fail() {
        const int64_t T = 40, H = 2, P = 4, G = 1, N = 8;
        std::mt19937 rng(5);
        const auto x = uniform(size_t(T * H * P), -1, 1, rng);
        const std::vector<float> dt(size_t(T * H), -3.0f), A{-0.05f, -0.1f}, D{1.0f, 1.0f};
        const auto B = uniform(size_t(T * G * N), -1, 1, rng);
        const auto C = uniform(size_t(T * G * N), -1, 1, rng);
        std::vector<float> S1(size_t(H * P * N), 0.0f), y1(size_t(T * H * P));
        rt::ssd_chunked(y1, S1, x, dt, A, B, C, D, T, H, P, G, N, 8);
        // Chunk by chunk with the state reset between chunks: what forgetting the carry would give.
        std::vector<float> y2;
        for (int64_t c0 = 0; c0 < T; c0 += 8) {
            std::vector<float> S2(size_t(H * P * N), 0.0f), yc(size_t(8 * H * P));
            auto sub = [&](const std::vector<float>& v, int64_t w) { return std::vector<float>(v.begin() + c0 * w, v.begin() + (c0 + 8) * w); };
            rt::ssd_chunked(yc, S2, sub(x, H * P), sub(dt, H), A, sub(B, G * N), sub(C, G * N), D, 8, H, P, G, N, 8);
            y2.insert(y2.end(), yc.begin(), yc.end());
        }
        QVERIFY(max_rel_diff(y2, y1) > 1e-2);
    }

    void attention_seq_equals_one_query_data() {
        QTest::addColumn<int>("n_past");
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("kv_heads");
        QTest::addColumn<int>("threads");
        QTest::newRow("from empty, MHA") << 0 << 9 << 4 << 1;
        QTest::newRow("after 5, GQA 4:2") << 5 << 7 << 2 << 1;
        QTest::newRow("after 3, MQA 4:1, 2 threads") << 3 << 40 << 1 << 2;
        QTest::newRow("one query") << 11 << 1 << 2 << 1;
    }
    void attention_seq_equals_one_query() {
        QFETCH(int, n_past);
        QFETCH(int, T);
        QFETCH(int, kv_heads);
        QFETCH(int, threads);
        const int64_t H = 4, hd = 16, n = n_past + T;
        std::mt19937 rng(uint32_t(n_past * 31 + T));
        const auto q = uniform(size_t(T * H * hd), -1, 1, rng);
        const auto k = uniform(size_t(n * kv_heads * hd), -1, 1, rng);
        const auto v = uniform(size_t(n * kv_heads * hd), -1, 1, rng);
        const float scale = 0.25f;
        rt::ThreadPool pool(threads);
        std::vector<float> out(q.size(), NAN);
        rt::attention_seq(out, q, k, v, n_past, T, H, kv_heads, hd, scale, threads > 1 ? &pool : nullptr);
        for (int64_t t = 0; t < T; ++t) {
            std::vector<float> o(static_cast<size_t>(H * hd));
            // The cache as the one-query op sees it at that step: positions 0 .. n_past + t.
            rt::attention(o, row(q, t, H * hd), k, v, n_past + t + 1, H, kv_heads, hd, scale);
            QCOMPARE(row(out, t, H * hd), o);
        }
        // Causality matters: the first query must not equal attention over the whole cache.
        std::vector<float> all(static_cast<size_t>(H * hd));
        rt::attention(all, row(q, 0, H * hd), k, v, n, H, kv_heads, hd, scale);
        if (T > 1) QVERIFY(row(out, 0, H * hd) != all);
    }

    void conv1d_seq_equals_steps() {
        const int64_t T = 13, Ch = 5, K = 4;
        std::mt19937 rng(3);
        const auto x = uniform(size_t(T * Ch), -1, 1, rng);
        const auto w = uniform(size_t(Ch * K), -1, 1, rng);
        const auto b = uniform(size_t(Ch), -1, 1, rng);
        const auto s0 = uniform(size_t(Ch * (K - 1)), -1, 1, rng);
        std::vector<float> s_ref = s0, y_ref;
        for (int64_t t = 0; t < T; ++t) {
            std::vector<float> y(static_cast<size_t>(Ch));
            rt::conv1d_step(y, s_ref, row(x, t, Ch), w, b, Ch, K);
            y_ref.insert(y_ref.end(), y.begin(), y.end());
        }
        std::vector<float> s = s0, y(size_t(T * Ch));
        rt::conv1d_seq(y, s, x, w, b, T, Ch, K);
        QCOMPARE(y, y_ref);
        QCOMPARE(s, s_ref);
        // T shorter than the window: the state keeps part of the old inputs.
        s = s0;
        s_ref = s0;
        std::vector<float> y2(static_cast<size_t>(2 * Ch)), y2_ref;
        rt::conv1d_seq(y2, s, std::vector<float>(x.begin(), x.begin() + 2 * Ch), w, {}, 2, Ch, K);
        for (int64_t t = 0; t < 2; ++t) {
            std::vector<float> yy(static_cast<size_t>(Ch));
            rt::conv1d_step(yy, s_ref, row(x, t, Ch), w, {}, Ch, K);
            y2_ref.insert(y2_ref.end(), yy.begin(), yy.end());
        }
        QCOMPARE(y2, y2_ref);
        QCOMPARE(s, s_ref);
    }

    void selective_scan_seq_equals_steps() {
        const int64_t T = 11, Ch = 6, N = 4;
        std::mt19937 rng(4);
        const auto x = uniform(size_t(T * Ch), -1, 1, rng);
        const auto dt = uniform(size_t(T * Ch), -3, 1, rng);
        const auto A = uniform(size_t(Ch * N), -2, -0.1f, rng);
        const auto B = uniform(size_t(T * N), -1, 1, rng);
        const auto C = uniform(size_t(T * N), -1, 1, rng);
        const auto D = uniform(size_t(Ch), 0, 1, rng);
        const auto h0 = uniform(size_t(Ch * N), -1, 1, rng);
        std::vector<float> h_ref = h0, y_ref;
        for (int64_t t = 0; t < T; ++t) {
            std::vector<float> y(static_cast<size_t>(Ch));
            rt::selective_scan_step(y, h_ref, row(x, t, Ch), row(dt, t, Ch), A, row(B, t, N), row(C, t, N), D, Ch, N);
            y_ref.insert(y_ref.end(), y.begin(), y.end());
        }
        std::vector<float> h = h0, y(size_t(T * Ch));
        rt::selective_scan_seq(y, h, x, dt, A, B, C, D, T, Ch, N);
        QCOMPARE(y, y_ref);
        QCOMPARE(h, h_ref);
    }

    void rope_seq_equals_rows() {
        const int64_t T = 5, H = 2, hd = 8;
        std::mt19937 rng(6);
        const auto x0 = uniform(size_t(T * H * hd), -1, 1, rng);
        std::vector<float> x = x0;
        rt::rope_seq(x, T, H, hd, 6, 10, 10000.0f);
        for (int64_t t = 0; t < T; ++t) {
            std::vector<float> r = row(x0, t, H * hd);
            rt::rope(r, H, hd, 6, 10 + t, 10000.0f);
            QCOMPARE(row(x, t, H * hd), r);
        }
    }
};

QTEST_GUILESS_MAIN(TestOpsSeq)
#include "test_ops_seq.moc"
