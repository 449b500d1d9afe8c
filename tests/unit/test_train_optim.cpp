// core/train/optimizer.h and the trainer's router statistics: AdamW steps against numbers worked out
// by hand (bias correction, decoupled decay), cosine schedule values at known steps, global-norm
// clipping, gradient accumulation equal to one big batch, state restore continuing bit for bit, a
// quadratic with a known minimum reached, the temperature annealing and the gate statistics.
#include <QtTest>
#include <cmath>
#include <vector>

#include "core/train/optimizer.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"

using namespace ef::train;

class TestTrainOptim : public QObject {
    Q_OBJECT
private slots:
    void adamw_by_hand() {
        // p = 1, g = 0.5, lr 0.1, betas (0.9, 0.999), eps 1e-8.
        // Step 1: m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25; update = 0.5 / (0.5 + 1e-8).
        //   with decay 0.01: p = 1 - 0.1 * (0.99999998 + 0.01 * 1) = 0.899000002; without: 0.900000002.
        // Step 2 (no decay), g = -0.5: m = -0.005, v = 0.00049975; m^ = -0.005 / 0.19, v^ = 0.00049975 / 0.001999 = 0.25
        //   p = 0.900000002 + 0.1 * (0.005 / 0.19) / 0.5 = 0.905263160.
        std::vector<float> p{1.0f, 1.0f}, g{0.5f, 0.5f};
        std::vector<ParamView> views{{std::span<float>(p.data(), 1), std::span<const float>(g.data(), 1), true},
                                     {std::span<float>(p.data() + 1, 1), std::span<const float>(g.data() + 1, 1), false}};
        AdamW opt(AdamWOptions{0.9f, 0.999f, 1e-8f, 0.01f});
        QVERIFY(opt.step(views, 0.1f).ok());
        QVERIFY(std::abs(p[0] - 0.899000002f) < 1e-6f);
        QVERIFY(std::abs(p[1] - 0.900000002f) < 1e-6f);
        g[1] = -0.5f;
        QVERIFY(opt.step(views, 0.1f).ok());
        QVERIFY2(std::abs(p[1] - 0.905263160f) < 1e-6f, qPrintable(QString::number(p[1], 'g', 10)));
        QCOMPARE(opt.steps_done(), int64_t(2));
        // grad_scale multiplies the gradient: g = 1 with scale 0.5 is g = 0.5.
        std::vector<float> a{1.0f}, b{1.0f}, ga{0.5f}, gb{1.0f};
        AdamW oa(AdamWOptions{0.9f, 0.999f, 1e-8f, 0.0f}), ob(AdamWOptions{0.9f, 0.999f, 1e-8f, 0.0f});
        for (int i = 0; i < 3; ++i) {
            QVERIFY(oa.step(std::vector<ParamView>{{a, ga, true}}, 0.01f).ok());
            QVERIFY(ob.step(std::vector<ParamView>{{b, gb, true}}, 0.01f, 0.5f).ok());
        }
        QCOMPARE(a[0], b[0]);
    }

    void adamw_size_mismatch() {
        std::vector<float> p(3), g(3);
        AdamW opt;
        QVERIFY(opt.step(std::vector<ParamView>{{p, g, true}}, 0.1f).ok());
        std::vector<float> p2(4), g2(4);
        auto s = opt.step(std::vector<ParamView>{{p2, g2, true}}, 0.1f);
        QVERIFY(!s.ok());
    }

    void cosine_schedule_data() {
        QTest::addColumn<int>("step");
        QTest::addColumn<double>("lr");
        // max 1e-3, min 1e-4, warmup 10, total 110.
        QTest::newRow("first warmup step") << 0 << 1e-4;
        QTest::newRow("mid warmup") << 4 << 5e-4;
        QTest::newRow("last warmup step") << 9 << 1e-3;
        QTest::newRow("decay start") << 10 << 1e-3;
        QTest::newRow("quarter") << 35 << 1e-4 + 0.5 * (1 + std::cos(M_PI / 4)) * 9e-4;
        QTest::newRow("half") << 60 << 5.5e-4;
        QTest::newRow("end") << 110 << 1e-4;
        QTest::newRow("past end") << 500 << 1e-4;
    }
    void cosine_schedule() {
        QFETCH(int, step);
        QFETCH(double, lr);
        const CosineSchedule s{1e-3f, 1e-4f, 10, 110};
        QVERIFY2(std::abs(double(s.lr(step)) - lr) < 1e-9, qPrintable(QString::number(s.lr(step), 'g', 10)));
    }

    void clipping() {
        std::vector<float> v1(1), v2(1), g1{3.0f}, g2{4.0f};
        std::vector<ParamView> pv{{v1, g1, true}, {v2, g2, true}};
        QCOMPARE(global_grad_norm(pv), 5.0);
        QCOMPARE(clip_scale(5.0, 1.0f), 0.2f);
        QCOMPARE(clip_scale(0.5, 1.0f), 1.0f);
        QCOMPARE(clip_scale(5.0, 0.0f), 1.0f);  // 0: no clipping
        // The clipped gradient has the norm max_norm.
        const float s = clip_scale(global_grad_norm(pv), 2.0f);
        QVERIFY(std::abs(std::hypot(3.0 * s, 4.0 * s) - 2.0) < 1e-6);
    }

    // f(x) = 0.5 * sum_i a_i (x_i - c_i)^2 with its minimum at c: AdamW with warmup + cosine gets there.
    void quadratic_minimum() {
        const std::vector<float> a{1.0f, 10.0f, 0.1f}, c{3.0f, -2.0f, 0.5f};
        std::vector<float> x{0.0f, 0.0f, 0.0f}, g(3);
        AdamW opt(AdamWOptions{0.9f, 0.95f, 1e-8f, 0.0f});
        const CosineSchedule sched{0.1f, 0.001f, 20, 1500};
        for (int step = 0; step < 1500; ++step) {
            for (int i = 0; i < 3; ++i) g[size_t(i)] = a[size_t(i)] * (x[size_t(i)] - c[size_t(i)]);
            std::vector<ParamView> pv{{x, g, true}};
            const float scale = clip_scale(global_grad_norm(pv), 5.0f);
            QVERIFY(opt.step(pv, sched.lr(step), scale).ok());
        }
        for (int i = 0; i < 3; ++i) QVERIFY2(std::abs(x[size_t(i)] - c[size_t(i)]) < 1e-2f, qPrintable(QString::number(x[size_t(i)])));
    }

    // Accumulating 4 micro-batches (sum of grads, scale 1/4) is the mean gradient of one batch of all samples.
    void accumulation_equals_big_batch() {
        const std::vector<float> samples{0.5f, -1.0f, 2.0f, 3.5f, 1.0f, -0.5f, 0.0f, 4.0f};  // loss = mean 0.5 (w - s)^2
        std::vector<float> w1{0.0f}, w2{0.0f}, g1(1), g2(1);
        AdamW o1(AdamWOptions{0.9f, 0.95f, 1e-8f, 0.1f}), o2(AdamWOptions{0.9f, 0.95f, 1e-8f, 0.1f});
        for (int step = 0; step < 20; ++step) {
            g1[0] = 0;  // one batch of 8: mean gradient
            for (float s : samples) g1[0] += (w1[0] - s) / 8.0f;
            QVERIFY(o1.step(std::vector<ParamView>{{w1, g1, true}}, 0.05f).ok());
            g2[0] = 0;  // 4 micro-batches of 2: each adds its mean gradient; the step scales by 1/4
            for (int m = 0; m < 4; ++m)
                for (int k = 0; k < 2; ++k) g2[0] += (w2[0] - samples[size_t(2 * m + k)]) / 2.0f;
            QVERIFY(o2.step(std::vector<ParamView>{{w2, g2, true}}, 0.05f, 1.0f / 4.0f).ok());
            QVERIFY(std::abs(w1[0] - w2[0]) < 1e-6f);
        }
    }

    void restore_continues() {
        std::vector<float> x{1.0f, -1.0f}, g(2);
        AdamW opt(AdamWOptions{0.9f, 0.95f, 1e-8f, 0.1f});
        auto grad = [&](std::vector<float>& p) {
            g[0] = 2 * p[0] - 1;
            g[1] = p[1] * p[1];
        };
        for (int i = 0; i < 5; ++i) {
            grad(x);
            QVERIFY(opt.step(std::vector<ParamView>{{x, g, true}}, 0.01f).ok());
        }
        AdamW copy(AdamWOptions{0.9f, 0.95f, 1e-8f, 0.1f});
        copy.restore(opt.steps_done(), opt.m(), opt.v());
        std::vector<float> y = x;
        for (int i = 0; i < 5; ++i) {
            grad(x);
            QVERIFY(opt.step(std::vector<ParamView>{{x, g, true}}, 0.01f).ok());
            grad(y);
            QVERIFY(copy.step(std::vector<ParamView>{{y, g, true}}, 0.01f).ok());
        }
        QCOMPARE(x, y);
    }

    void temperature_annealing() {
        RouterSection r;
        r.tau_start = 1.0f;
        r.tau_end = 0.2f;
        r.anneal = Anneal::None;
        QCOMPARE(r.tau(50, 101), 1.0f);
        r.anneal = Anneal::Linear;
        QCOMPARE(r.tau(0, 101), 1.0f);
        QVERIFY(std::abs(r.tau(50, 101) - 0.6f) < 1e-6f);
        QVERIFY(std::abs(r.tau(100, 101) - 0.2f) < 1e-6f);
        r.anneal = Anneal::Cosine;
        QVERIFY(std::abs(r.tau(25, 101) - float(0.2 + 0.8 * 0.5 * (1 + std::cos(M_PI / 4)))) < 1e-6f);
        QVERIFY(std::abs(r.tau(100, 101) - 0.2f) < 1e-6f);
    }

    void gate_statistics() {
        // H(0.5) = 1, H(0.1) = H(0.9) = 0.4689956, H(1) = 0 bits.
        const std::vector<float> g{0.5f, 0.1f, 0.9f, 1.0f};
        QCOMPARE(ssm_fraction(g), 0.25);
        QVERIFY(std::abs(mean_gate_entropy_bits(g) - (1.0 + 2 * 0.4689955935892812) / 4) < 1e-6);
        QCOMPARE(mean_gate_entropy_bits({}), 0.0);
        QCOMPARE(ssm_fraction({0.2f, 0.3f}), 1.0);
    }
};

QTEST_GUILESS_MAIN(TestTrainOptim)
#include "test_train_optim.moc"
