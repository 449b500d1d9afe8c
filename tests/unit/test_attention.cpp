// attention_fast (runtime/attention.h, GEMM-based, float sums) against the one-query reference
// attention() of ops.h (double sums), query by query, for decode and prefill shapes.
#include <QtTest>

#include <cmath>
#include <random>
#include <vector>

#include "runtime/attention.h"
#include "runtime/ops.h"
#include "runtime/thread_pool.h"

class TestAttention : public QObject {
    Q_OBJECT
private slots:
    void matchesReference_data() {
        QTest::addColumn<int>("n_past");
        QTest::addColumn<int>("T");
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("kv_heads");
        QTest::addColumn<int>("head_dim");
        QTest::addColumn<int>("threads");
        QTest::newRow("decode, first token") << 0 << 1 << 4 << 4 << 16 << 1;
        QTest::newRow("decode, long cache") << 300 << 1 << 8 << 2 << 64 << 1;
        QTest::newRow("decode, 2 threads") << 200 << 1 << 16 << 16 << 64 << 2;
        QTest::newRow("prefill from empty") << 0 << 70 << 4 << 2 << 32 << 1;
        QTest::newRow("prefill after cache") << 37 << 130 << 6 << 3 << 24 << 2;
        QTest::newRow("odd head_dim") << 5 << 9 << 3 << 1 << 7 << 1;
    }
    void matchesReference() {
        QFETCH(int, n_past);
        QFETCH(int, T);
        QFETCH(int, heads);
        QFETCH(int, kv_heads);
        QFETCH(int, head_dim);
        QFETCH(int, threads);
        std::mt19937 rng(uint32_t(n_past * 131 + T * 7 + heads));
        std::normal_distribution<float> nd(0.0f, 1.0f);
        const int64_t n_total = n_past + T, q_stride = int64_t(heads) * head_dim, kv_stride = int64_t(kv_heads) * head_dim;
        std::vector<float> q(size_t(T * q_stride)), k(size_t(n_total * kv_stride)), v(k.size());
        for (float& x : q) x = nd(rng);
        for (float& x : k) x = nd(rng);
        for (float& x : v) x = nd(rng);
        const float scale = 1.0f / std::sqrt(float(head_dim));
        std::vector<float> got(q.size(), std::nanf(""));
        ef::rt::ThreadPool pool(threads);
        ef::rt::attention_fast(got, q, k, v, n_past, T, heads, kv_heads, head_dim, scale, threads > 1 ? &pool : nullptr);
        std::vector<float> want(static_cast<size_t>(q_stride));
        for (int64_t t = 0; t < T; ++t) {
            const int64_t n_pos = n_past + t + 1;
            ef::rt::attention(want, std::span<const float>(q).subspan(size_t(t * q_stride), size_t(q_stride)),
                              std::span<const float>(k).first(size_t(n_pos * kv_stride)),
                              std::span<const float>(v).first(size_t(n_pos * kv_stride)), n_pos, heads, kv_heads, head_dim, scale);
            for (int64_t i = 0; i < q_stride; ++i) {
                const float g = got[size_t(t * q_stride + i)], w = want[size_t(i)];
                if (!(std::fabs(g - w) <= 2e-5f * (1.0f + std::fabs(w))))
                    QFAIL(qPrintable(QString("t %1, value %2: %3 vs reference %4").arg(t).arg(i).arg(double(g), 0, 'g', 9).arg(double(w), 0, 'g', 9)));
            }
        }
    }

    // The causal mask: changing a future key/value must not change an earlier query's output.
    void futureIsMasked() {
        const int64_t T = 5, heads = 2, hd = 8, stride = heads * hd;
        std::vector<float> q(size_t(T * stride), 0.3f), k(q.size()), v(q.size());
        for (size_t i = 0; i < k.size(); ++i) {
            k[i] = float(std::sin(double(i)));
            v[i] = float(std::cos(double(i)));
        }
        std::vector<float> a(q.size()), b(q.size());
        ef::rt::attention_fast(a, q, k, v, 0, T, heads, heads, hd, 0.5f);
        for (int64_t i = 0; i < stride; ++i) v[size_t((T - 1) * stride + i)] += 100.0f;  // last position only
        ef::rt::attention_fast(b, q, k, v, 0, T, heads, heads, hd, 0.5f);
        for (int64_t i = 0; i < (T - 1) * stride; ++i) QCOMPARE(a[size_t(i)], b[size_t(i)]);
        bool last_changed = false;
        for (int64_t i = (T - 1) * stride; i < T * stride; ++i) last_changed |= a[size_t(i)] != b[size_t(i)];
        QVERIFY(last_changed);
    }
};

QTEST_GUILESS_MAIN(TestAttention)
#include "test_attention.moc"
