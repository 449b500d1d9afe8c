// Sensitivity measurement (quant/sensitivity.h) on a synthetic llama with one deliberately fragile
// layer: 5% of its weights are made 12x larger (more than the 0.5% outlier budget takes out), so most
// of its blocks' scales are blown and the rest of those blocks loses precision. The proxy must rank
// that layer highest at 3 to 5 bits and give it the most bits; the KL measurement must show its
// sensitivity growing by far the most against the unmodified model (in this random model the first
// layer dominates the KL at low widths, so the KL does not rank the fragile layer first outright, and
// the KL-optimal allocation does not give it more bits: see the comment below). Also: unit planning, exact bytes, cancel, and bad input.
#include <QtTest>
#include <random>

#include "core/synth.h"
#include "quant/sensitivity.h"

using namespace ef;

namespace {

constexpr int kFragile = 2;
constexpr float kScale = 1.0f;

Model fragile_model(bool fragile = true) {
    SynthOptions so;
    so.arch = "llama";
    so.dim = 128;
    so.n_layers = 4;
    so.vocab = 300;
    so.seed = 11;
    so.ffn_hidden = 256;
    auto m = synth_model(so);
    if (!m) qFatal("%s", m.message().c_str());
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u01(0.0f, 1.0f);
    const std::string prefix = "blk." + std::to_string(kFragile) + ".";
    for (Tensor& t : m->tensors) {
        if (!fragile || t.name.rfind(prefix, 0) != 0 || t.shape.size() != 2) continue;
        auto f = t.to_f32();
        for (float& v : *f)
            v *= u01(rng) < 0.05f ? 12.0f * kScale : kScale;
        t = *Tensor::from_f32(t.name, t.shape, *f, t.dtype);
    }
    return std::move(*m);
}

std::vector<std::vector<int32_t>> random_windows(int n, int len, int vocab) {
    std::mt19937 rng(3);
    std::vector<std::vector<int32_t>> w(static_cast<size_t>(n), std::vector<int32_t>(static_cast<size_t>(len)));
    for (auto& win : w)
        for (auto& t : win) t = int32_t(3 + rng() % unsigned(vocab - 3));
    return w;
}

int bits_index(const SensitivityOptions& o, int bits) {
    return int(std::find(o.bits.begin(), o.bits.end(), bits) - o.bits.begin());
}

}  // namespace

class TestSensitivity : public QObject {
    Q_OBJECT
    Model model_ = fragile_model();

private slots:
    void planKeepsEmbeddingsAndNorms() {
        SensitivityOptions o;
        auto p = plan_units(model_, o);
        QVERIFY2(p.ok(), p.ok() ? "" : p.message().c_str());
        QCOMPARE(p->units.size(), size_t(4));
        QCOMPARE(p->units[0].name, std::string("blk.0"));
        QCOMPARE(p->units[0].tensors.size(), size_t(7));  // q k v o gate up down
        for (const auto& k : p->kept) QVERIFY2(k.find("attn_q") == std::string::npos, k.c_str());
        QVERIFY(std::find(p->kept.begin(), p->kept.end(), "token_embd.weight") != p->kept.end());
        o.per_tensor = true;
        auto pt = plan_units(model_, o);
        QCOMPARE(pt->units.size(), size_t(28));
        // B = 128 does not divide ffn_down's 256? it does; B = 256 preferred does not divide 128-wide rows.
        o.block = 256;
        auto pb = plan_units(model_, o);
        for (const auto& ts : pb->targets)
            for (const auto& t : ts) QCOMPARE(t.block, t.cols % 256 == 0 ? 256 : 128);
    }

    // SSM models: conv1d, A, D, dt and norms stay; the projections are units; the state is counted.
    void ssmTensorsStayAtHigherPrecision_data() {
        QTest::addColumn<QString>("arch");
        QTest::newRow("mamba") << "mamba";
        QTest::newRow("mamba2") << "mamba2";
        QTest::newRow("edgefusion") << "edgefusion";
    }
    void ssmTensorsStayAtHigherPrecision() {
        QFETCH(QString, arch);
        SynthOptions so;
        so.arch = arch.toStdString();
        so.dim = 64;
        so.n_layers = 2;
        so.vocab = 300;
        so.seed = 2;
        auto m = synth_model(so);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        SensitivityOptions o;
        o.per_tensor = true;
        o.bits = {2, 4};
        o.threads = 1;
        auto s = measure_sensitivity(*m, random_windows(1, 16, 300), o);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        for (const auto& u : s->plan.units) {
            for (const char* k : {"ssm_conv1d", "ssm_a", "ssm_d", "ssm_dt", "norm", "token_embd"})
                QVERIFY2(u.name.find(k) == std::string::npos, u.name.c_str());
            QVERIFY(u.name != "output.weight");
            QVERIFY(u.options[0].loss >= u.options[1].loss * 0.5);  // measured, finite
        }
        bool in_proj = false;
        for (const auto& u : s->plan.units) in_proj |= u.name.find("ssm_in") != std::string::npos;
        QVERIFY(in_proj);
        for (const auto& t : m->tensors)
            if (t.name.find("ssm_conv1d") != std::string::npos || t.name.find("ssm_a") != std::string::npos ||
                t.name.find("ssm_d") != std::string::npos)
                QVERIFY2(std::find(s->plan.kept.begin(), s->plan.kept.end(), t.name) != s->plan.kept.end(), t.name.c_str());
        auto state = runtime_state_bytes(*m, 128);
        QVERIFY2(state.ok(), state.ok() ? "" : state.message().c_str());
        QVERIFY(*state > 0);
    }

    void fragileLayerRanksHighest_data() {
        QTest::addColumn<bool>("proxy");
        QTest::newRow("kl") << false;
        QTest::newRow("proxy") << true;
    }
    void fragileLayerRanksHighest() {
        QFETCH(bool, proxy);
        SensitivityOptions o;
        o.proxy = proxy;
        o.threads = 2;
        const auto windows = random_windows(2, 32, int(model_.config.vocab_size));
        auto s = measure_sensitivity(model_, windows, o);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        const auto& units = s->plan.units;
        // The same measurement on the model before the change.
        const Model plain = fragile_model(false);
        auto s0 = measure_sensitivity(plain, windows, o);
        QVERIFY2(s0.ok(), s0.ok() ? "" : s0.message().c_str());
        const auto& units0 = s0->plan.units;
        for (int bits : {3, 4, 5}) {
            const int bi = bits_index(o, bits);
            // Proxy: the fragile layer has the largest error outright. KL: the first layer of this random
            // model dominates the KL at low widths whatever the others do (its error is amplified by
            // every later layer), so the check there is that the fragile layer's KL grows by far the most.
            auto score = [&](int u) {
                const double l = units[size_t(u)].options[size_t(bi)].loss;
                return proxy ? l : l / std::max(1e-12, units0[size_t(u)].options[size_t(bi)].loss);
            };
            int top = 0;
            for (int u = 1; u < int(units.size()); ++u)
                if (score(u) > score(top)) top = u;
            QString all;
            for (int u = 0; u < int(units.size()); ++u)
                all += QString(" %1=%2 (before %3)").arg(QString::fromStdString(units[size_t(u)].name))
                           .arg(units[size_t(u)].options[size_t(bi)].loss).arg(units0[size_t(u)].options[size_t(bi)].loss);
            qInfo("%s %d bits:%s", proxy ? "proxy" : "KL", bits, qPrintable(all));
            QVERIFY2(top == kFragile, qPrintable(QString("%1 bits:%2").arg(bits).arg(all)));
            if (!proxy) QVERIFY(score(kFragile) > 10.0);
        }
        // Exact bytes: the allocation's sizes are the quantizer's.
        for (size_t u = 0; u < units.size(); ++u)
            for (const auto& op : units[u].options) {
                uint64_t b = 0;
                for (const auto& t : s->plan.targets[u]) b += ef_effective_bytes(t.rows, t.cols, op.bits, t.block, false, 0.005);
                QCOMPARE(op.bytes, b);
            }
        // The allocation spends its extra bits on the fragile layer first.
        AllocBudget b;
        b.kind = BudgetKind::AverageCodeBits;
        b.average_bits = 3.25;  // room for one layer one width up... or so; the fragile one must get the most
        auto r = allocate_bits(units, b);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        auto r0 = allocate_bits(units0, b);
        QVERIFY(r0.ok());
        const int fb = units[kFragile].options[size_t(r->choice[kFragile])].bits;
        const int fb0 = units0[kFragile].options[size_t(r0->choice[kFragile])].bits;
        qInfo("fragile layer: %d bits (before the change %d)", fb, fb0);
        // KL: NOT asserted. In this random model the fragile layer's KL is nearly as high at 3 bits as at 2
        // (0.41 vs 0.54) while the first layer's falls steeply, so the exact optimum of the measured
        // (additive) KL spends the budget elsewhere and leaves the fragile layer at 2 bits.
        if (proxy) QVERIFY(fb > fb0);
        for (size_t u = 0; u < units.size(); ++u) {  // proxy: the most bits of all
            const int ub = units[u].options[size_t(r->choice[u])].bits;
            QVERIFY2(!proxy || int(u) == kFragile || ub < fb, qPrintable(QString("unit %1 got %2 bits, fragile %3").arg(u).arg(ub).arg(fb)));
        }
        // The whole model quantized with that choice runs and has a finite KL.
        auto q = apply_allocation(model_, *s, r->choice, o);
        QVERIFY2(q.ok(), q.ok() ? "" : q.message().c_str());
        auto ref = KlReference::create(model_, windows);
        QVERIFY(ref.ok());
        auto kl = ref->kl(*q);
        QVERIFY2(kl.ok(), kl.ok() ? "" : kl.message().c_str());
        QVERIFY(*kl > 0 && std::isfinite(*kl));
    }

    void klOfTheBaseModelIsZero() {
        auto ref = KlReference::create(model_, random_windows(1, 16, int(model_.config.vocab_size)));
        QVERIFY(ref.ok());
        auto kl = ref->kl(model_);
        QVERIFY(kl.ok());
        QVERIFY2(*kl < 1e-6, qPrintable(QString::number(*kl)));
    }

    void cancelStops() {
        SensitivityOptions o;
        o.threads = 1;
        Progress p;
        p.cancel();
        auto s = measure_sensitivity(model_, random_windows(1, 16, int(model_.config.vocab_size)), o, p);
        QVERIFY(!s.ok());
        QVERIFY2(s.message().find("cancel") != std::string::npos, s.message().c_str());
    }

    void badInput() {
        SensitivityOptions o;
        o.bits = {7};
        QVERIFY(!plan_units(model_, o).ok());
        o.bits = {3};
        QVERIFY(!measure_sensitivity(model_, {}, o).ok());  // KL needs windows
        auto tok = Tokenizer::create(model_.vocab);
        QVERIFY(tok.ok());
        auto w = calibration_windows(*tok, "too short", 64, 4);
        QVERIFY(!w.ok());
        QVERIFY2(w.message().find("calibration text") != std::string::npos, w.message().c_str());
    }
};

QTEST_APPLESS_MAIN(TestSensitivity)
#include "test_sensitivity.moc"
