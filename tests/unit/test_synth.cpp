// Synthetic models: valid for every row, reproducible per seed, sensible initial statistics, a vocab
// that follows llama.cpp's SentencePiece conventions, and the dtype rule of llama.cpp's quantizer.
#include <QtTest>

#include <cmath>
#include <set>

#include "core/arch/architecture.h"
#include "core/synth.h"

using namespace ef;

namespace {

const QStringList kArchs{"llama", "mamba", "mamba2", "granitehybrid", "jamba", "edgefusion"};

SynthOptions opts(const QString& arch, uint64_t seed = 7) {
    SynthOptions o;
    o.arch = arch.toStdString();
    o.dim = 64;
    o.n_layers = 4;
    o.vocab = 320;
    o.seed = seed;
    return o;
}

// Dequantized values of a tensor (empty when missing).
std::vector<float> vals(const Model& m, const char* name) {
    const Tensor* t = m.find(name);
    if (!t) return {};
    auto v = t->to_f32();
    return v.ok() ? v.value() : std::vector<float>{};
}

bool same_bytes(const Tensor& a, const Tensor& b) {
    return a.data.size() == b.data.size() && std::equal(a.data.begin(), a.data.end(), b.data.begin());
}

}  // namespace

class TestSynth : public QObject {
    Q_OBJECT

private slots:
    void all_archs_data() {
        QTest::addColumn<QString>("arch");
        for (const auto& a : kArchs) QTest::newRow(qPrintable(a)) << a;
    }

    void valid_model_data() { all_archs_data(); }
    void valid_model() {
        QFETCH(QString, arch);
        for (int layers : {1, 2, 5}) {
            auto o = opts(arch);
            o.n_layers = layers;
            auto m = synth_model(o);
            QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
            auto st = validate_model(*m, "synth");
            QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
            QCOMPARE(int64_t(m->vocab.tokens.size()), int64_t(320));
            QCOMPARE(m->config.vocab_size, int64_t(320));
            QCOMPARE(int64_t(m->layers.size()), int64_t(layers));
            const auto* a = find_architecture(m->architecture);
            if (a->traits.fixed_hybrid && layers >= 2) {
                // Default plans of hybrids have at least one attention and one SSM layer.
                int attn = 0;
                for (const auto& l : m->layers) attn += l.mixer == MixerKind::Attention;
                QVERIFY(attn >= 1 && attn < layers);
            }
        }
    }

    void determinism_data() { all_archs_data(); }
    void determinism() {
        QFETCH(QString, arch);
        auto a = synth_model(opts(arch, 42));
        auto b = synth_model(opts(arch, 42));
        auto c = synth_model(opts(arch, 43));
        QVERIFY(a.ok() && b.ok() && c.ok());
        QCOMPARE(a->tensors.size(), b->tensors.size());
        int differing = 0, random_tensors = 0;
        for (size_t i = 0; i < a->tensors.size(); ++i) {
            QCOMPARE(a->tensors[i].name, b->tensors[i].name);
            QVERIFY2(same_bytes(a->tensors[i], b->tensors[i]), a->tensors[i].name.c_str());
            const bool random = a->tensors[i].shape.size() >= 2 && a->tensors[i].name.find("norm") == std::string::npos &&
                                a->tensors[i].name.find("ssm_a") == std::string::npos &&
                                a->tensors[i].name.find("ssm_d") == std::string::npos;
            random_tensors += random;
            differing += random && !same_bytes(a->tensors[i], c->tensors[i]);
        }
        QVERIFY(random_tensors > 0);
        QCOMPARE(differing, random_tensors);
    }

    // Each tensor has its own stream (seeded from its name), so values do not depend on order.
    void independent_streams() {
        auto a = synth_model(opts("llama", 0));
        QVERIFY(a.ok());
        auto v = vals(*a, "token_embd.weight");
        QVERIFY(!v.empty());
        auto b = synth_model(opts("llama", 0));
        QCOMPARE(vals(*b, "token_embd.weight")[5], v[5]);
        // Different tensors draw from different streams.
        QVERIFY((vals(*a, "blk.0.attn_q.weight"))[0] != (vals(*a, "blk.0.attn_k.weight"))[0]);
    }

    void init_statistics() {
        auto o = opts("edgefusion");
        o.dim = 256;
        auto m = synth_model(o);
        QVERIFY(m.ok());
        // Matrices ~ N(0, 1/fan_in): check the standard deviation of a plain projection.
        auto q = vals(*m, "blk.0.attn_q.weight");
        double s = 0, s2 = 0;
        for (float x : q) s += x, s2 += double(x) * x;
        const double mean = s / double(q.size()), sd = std::sqrt(s2 / double(q.size()) - mean * mean);
        QVERIFY2(std::abs(mean) < 0.01, qPrintable(QString::number(mean)));
        QVERIFY2(std::abs(sd * std::sqrt(256.0) - 1.0) < 0.05, qPrintable(QString::number(sd)));
        for (float x : vals(*m, "blk.0.attn_norm.weight")) QCOMPARE(x, 1.0f);
        for (float x : vals(*m, "blk.0.ssm_d")) QCOMPARE(x, 1.0f);
        for (float x : vals(*m, "blk.0.ssm_a")) QVERIFY(x <= -1.0f && x >= -16.0f);
        // dt = softplus(bias) lands in Mamba's [1e-3, 1e-1] range.
        for (float x : vals(*m, "blk.0.ssm_dt.bias")) {
            const double dt = std::log1p(std::exp(double(x)));
            QVERIFY2(dt > 0.9e-3 && dt < 0.11, qPrintable(QString::number(dt)));
        }
        const float g = (vals(*m, "blk.1.router_gate"))[0];
        QVERIFY(std::isfinite(g) && std::abs(g) < 4.0f);

        auto m1 = synth_model(opts("mamba"));
        auto a = vals(*m1, "blk.0.ssm_a");  // (d_inner, d_state): -(1..d_state) per row
        const int64_t N = m1->config.ssm.d_state;
        for (int64_t n = 0; n < N; ++n) QCOMPARE(a[size_t(N + n)], -float(n + 1));
    }

    void dtypes() {
        auto o = opts("llama");
        o.type = DType::Q8_0;
        auto m = synth_model(o);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(int(m->find("blk.0.attn_q.weight")->dtype), int(DType::Q8_0));
        QCOMPARE(int(m->find("token_embd.weight")->dtype), int(DType::Q8_0));
        QCOMPARE(int(m->find("blk.0.attn_norm.weight")->dtype), int(DType::F32));
        QVERIFY(validate_model(*m, "q8").ok());

        o.embedding_type = DType::F16;
        m = synth_model(o);
        QVERIFY(m.ok());
        QCOMPARE(int(m->find("token_embd.weight")->dtype), int(DType::F16));
        QCOMPARE(int(m->find("output.weight")->dtype), int(DType::F16));

        // SSM tensors llama.cpp never quantizes stay F32.
        auto o2 = opts("mamba2");
        o2.type = DType::F16;
        auto m2 = synth_model(o2);
        QVERIFY(m2.ok());
        QCOMPARE(int(m2->find("blk.0.ssm_in.weight")->dtype), int(DType::F16));
        QCOMPARE(int(m2->find("blk.0.ssm_conv1d.weight")->dtype), int(DType::F32));
        QCOMPARE(int(m2->find("blk.0.ssm_norm.weight")->dtype), int(DType::F32));
        QCOMPARE(int(m2->find("blk.0.ssm_a")->dtype), int(DType::F32));

        // Rows of 64 cannot hold 256-element K-quant blocks: a clear error, no model.
        auto o3 = opts("llama");
        o3.type = DType::Q4_K;
        auto bad = synth_model(o3);
        QVERIFY(!bad.ok());
        QVERIFY2(bad.message().find("block size") != std::string::npos, bad.message().c_str());
        QVERIFY2(bad.message().rfind("synth llama: ", 0) == 0, bad.message().c_str());
    }

    void options_and_errors() {
        auto o = opts("llama");
        o.n_heads = 8;
        o.n_kv_heads = 2;
        o.ffn_hidden = 96;
        o.tied_embeddings = true;
        auto m = synth_model(o);
        QVERIFY(m.ok());
        QCOMPARE(m->config.attn.n_heads, int64_t(8));
        QCOMPARE(m->config.attn.head_dim, int64_t(8));
        QVERIFY(m->find("output.weight") == nullptr);
        QVERIFY(validate_model(*m, "tied").ok());

        auto e = opts("edgefusion");
        e.ssm_version = 1;
        m = synth_model(e);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QVERIFY(m->layers[0].ssm_branch == MixerKind::Mamba1);
        QVERIFY(m->find("blk.0.ssm_x.weight") != nullptr);

        auto bad = opts("gpt2");
        QVERIFY(synth_model(bad).message().find("unknown architecture 'gpt2'") != std::string::npos);
        bad = opts("llama");
        bad.vocab = 100;
        QVERIFY(synth_model(bad).message().find("at least 260") != std::string::npos);
        bad = opts("llama");
        bad.n_heads = 5;
        QVERIFY(synth_model(bad).message().find("not divisible by n_heads") != std::string::npos);
        bad = opts("mamba");
        bad.ssm_version = 1;
        QVERIFY(synth_model(bad).message().find("routed") != std::string::npos);

        Progress p;
        p.cancel();
        auto c = synth_model(opts("llama"), p);
        QVERIFY(!c.ok() && c.message().find("cancelled") != std::string::npos);
    }

    // llama.cpp's SPM loader: <unk>=0, <s>=1, </s>=2 by default, byte tokens "<0xXX>" for byte
    // fallback and the newline lookup, every token text unique.
    void vocab() {
        auto v = synth_vocab(512);
        QVERIFY(v.ok());
        QCOMPARE(v->model, std::string("llama"));
        QCOMPARE(v->tokens.size(), size_t(512));
        QCOMPARE(v->scores.size(), size_t(512));
        QCOMPARE(v->token_types.size(), size_t(512));
        QCOMPARE(v->tokens[0], std::string("<unk>"));
        QCOMPARE(v->token_types[0], 2);
        QCOMPARE(v->tokens[1], std::string("<s>"));
        QCOMPARE(v->tokens[2], std::string("</s>"));
        QCOMPARE(v->token_types[1], 3);
        QCOMPARE(v->tokens[3 + 0x0A], std::string("<0x0A>"));
        QCOMPARE(v->tokens[3 + 0xFF], std::string("<0xFF>"));
        for (int i = 3; i < 259; ++i) QCOMPARE(v->token_types[size_t(i)], 6);
        for (size_t i = 259; i < 512; ++i) QCOMPARE(v->token_types[i], 1);
        QCOMPARE(v->tokens[259], std::string("\xE2\x96\x81"));
        std::set<std::string> uniq(v->tokens.begin(), v->tokens.end());
        QCOMPARE(uniq.size(), v->tokens.size());
        QCOMPARE(v->bos_id, 1);
        QCOMPARE(v->eos_id, 2);
        QCOMPARE(v->unk_id, 0);
        QVERIFY(!synth_vocab(259).ok());
        QCOMPARE(synth_vocab(5000)->tokens.size(), size_t(5000));
    }
};

QTEST_GUILESS_MAIN(TestSynth)
#include "test_synth.moc"
