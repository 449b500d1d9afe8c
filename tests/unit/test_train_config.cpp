// core/train/train_config.h: a table of bad configs, each with the exact error (file, line, key);
// the shape of a good config against the model synth_model builds from it (parameter count and
// activation accounting equal to TrainModel's); and the 7B config's dry run: a memory estimate
// within sane bounds (16 bytes per parameter for weights, grads and AdamW, plus activations).
#include <QtTest>

#include "core/synth.h"
#include "core/train/train_config.h"
#include "core/train/train_model.h"
#include "core/train/trainer.h"
#include "tests/support/test_support.h"

using namespace ef;
using namespace ef::train;

namespace {

// Line numbers matter: the expected errors name them.
const char* const kBase =
    "model:\n"               // 1
    "  arch: edgefusion\n"   // 2
    "  dim: 64\n"            // 3
    "  layers: 2\n"          // 4
    "  heads: 4\n"           // 5
    "  kv_heads: 2\n"        // 6
    "  ffn_hidden: 128\n"    // 7
    "  vocab_size: 300\n"    // 8
    "  context: 128\n"       // 9
    "  ssm:\n"               // 10
    "    version: 2\n"       // 11
    "    d_inner: 128\n"     // 12
    "    d_state: 8\n"       // 13
    "    heads: 4\n"         // 14
    "    groups: 1\n"        // 15
    "data:\n"                // 16
    "  train_text: t.txt\n"  // 17
    "  seq_len: 32\n"        // 18
    "  batch: 2\n"           // 19
    "training:\n"            // 20
    "  steps: 10\n"          // 21
    "  warmup: 2\n"          // 22
    "router:\n"              // 23
    "  lambda: 0.01\n";      // 24

std::string with(const std::string& from, const std::string& to) {
    std::string s = kBase;
    const size_t at = s.find(from);
    if (at == std::string::npos) return "<" + from + " not in the base config>";
    return s.replace(at, from.size(), to);
}

// The first error of parsing, shape and value checks ("" when all pass).
std::string first_error(const std::string& yaml) {
    auto c = parse_train_config(yaml, "cfg.yaml");
    if (!c) return c.message();
    auto s = resolve_model_shape(*c);
    if (!s) return s.message();
    if (Status st = check_training_values(*c); !st) return st.message();
    return {};
}

}  // namespace

class TestTrainConfig : public QObject {
    Q_OBJECT
private slots:
    void bad_configs_data() {
        QTest::addColumn<QString>("from");
        QTest::addColumn<QString>("to");
        QTest::addColumn<QString>("error");
        QTest::newRow("unknown key") << "  warmup: 2\n" << "  warmup: 2\n  stepz: 5\n"
            << "cfg.yaml:23: unknown key 'training.stepz' (known: beta1, beta2, checkpoint_every, clip, eval_batches, "
               "eval_every, freeze_base, log_every, lr, min_lr, seed, steps, threads, warmup, weight_decay)";
        QTest::newRow("unknown nested key") << "    groups: 1\n" << "    groups: 1\n    expand: 2\n"
            << "cfg.yaml:16: unknown key 'model.ssm.expand' (known: conv, d_inner, d_state, dt_rank, groups, head_dim, heads, version)";
        QTest::newRow("unknown section") << "router:\n" << "optimizer:\n  lr: 1\nrouter:\n"
            << "cfg.yaml:23: unknown section 'optimizer' (known: data, distill, model, quantization, router, training)";
        QTest::newRow("not a number") << "  steps: 10\n" << "  steps: ten\n"
            << "cfg.yaml:21: 'training.steps': expected an integer, got 'ten'";
        QTest::newRow("not a bool") << "  warmup: 2\n" << "  warmup: 2\n  freeze_base: maybe\n"
            << "cfg.yaml:23: 'training.freeze_base': expected true or false, got 'maybe'";
        QTest::newRow("section not a map") << "router:\n  lambda: 0.01\n" << "router: 3\n"
            << "cfg.yaml:23: 'router' must be a mapping of keys";
        QTest::newRow("invalid yaml") << "  batch: 2\n" << "  batch: [2\n"
            << "cfg.yaml:20: invalid YAML: end of sequence flow not found";
        QTest::newRow("dim not divisible by heads") << "  heads: 4\n" << "  heads: 5\n"
            << "cfg.yaml: 'model.dim' (64) is not divisible by 'model.heads' (5)";
        QTest::newRow("kv heads") << "  kv_heads: 2\n" << "  kv_heads: 3\n"
            << "cfg.yaml: 'model.kv_heads' (3) must divide 'model.heads' (4)";
        QTest::newRow("ssm heads x head_dim") << "    heads: 4\n" << "    heads: 4\n    head_dim: 16\n"
            << "cfg.yaml: 'model.ssm.heads' x 'model.ssm.head_dim' (4 x 16) must equal 'model.ssm.d_inner' (128)";
        QTest::newRow("ssm inner vs heads") << "    heads: 4\n" << "    heads: 5\n"
            << "cfg.yaml: 'model.ssm.d_inner' (128) is not divisible by 'model.ssm.heads' (5)";
        QTest::newRow("ssm groups") << "    groups: 1\n" << "    groups: 3\n"
            << "cfg.yaml: 'model.ssm.groups' (3) must divide 'model.ssm.heads' (4)";
        QTest::newRow("mamba1 key on mamba2") << "    groups: 1\n" << "    groups: 1\n    dt_rank: 4\n"
            << "cfg.yaml: 'model.ssm.dt_rank' is a Mamba-1 setting (ssm.version is 2)";
        QTest::newRow("ssm version") << "    version: 2\n" << "    version: 3\n"
            << "cfg.yaml: 'model.ssm.version' must be 1 or 2 (got 3)";
        QTest::newRow("vocab too small") << "  vocab_size: 300\n" << "  vocab_size: 100\n"
            << "cfg.yaml: 'model.vocab_size' (100) must be at least 260 (3 special and 256 byte tokens, and a piece)";
        QTest::newRow("seq_len over context") << "  seq_len: 32\n" << "  seq_len: 256\n"
            << "cfg.yaml: 'data.seq_len' (256) exceeds 'model.context' (128)";
        QTest::newRow("unknown arch") << "  arch: edgefusion\n" << "  arch: mamba2\n"
            << "cfg.yaml: 'model.arch' is 'mamba2'; training supports edgefusion and llama";
        QTest::newRow("odd head size") << "  heads: 4\n  kv_heads: 2\n" << "  heads: 4\n  kv_heads: 2\n  head_dim: 7\n"
            << "cfg.yaml: the attention head size (7) must be even for RoPE";
        QTest::newRow("warmup over steps") << "  warmup: 2\n" << "  warmup: 20\n"
            << "cfg.yaml: 'training.warmup' must be within 0..steps";
        QTest::newRow("lambda negative") << "  lambda: 0.01\n" << "  lambda: -1\n"
            << "cfg.yaml: 'router.lambda' must not be negative";
        QTest::newRow("anneal") << "  lambda: 0.01\n" << "  lambda: 0.01\n  anneal: step\n"
            << "cfg.yaml: 'router.anneal' is 'step' (none, linear, cosine)";
        QTest::newRow("missing text") << "  train_text: t.txt\n" << ""
            << "cfg.yaml: 'data.train_text' is required";
        QTest::newRow("quant format") << "  lambda: 0.01\n" << "  lambda: 0.01\nquantization:\n  format: q9_0\n"
            << "cfg.yaml: 'quantization.format' is 'q9_0' (none, ef, q8_0, q4_0, q4_K, q5_K, q6_K)";
        QTest::newRow("init gate") << "  lambda: 0.01\n" << "  lambda: 0.01\n  init_gate: 1\n"
            << "cfg.yaml: 'router.init_gate' must be within (0, 1)";
        QTest::newRow("negative entropy") << "  lambda: 0.01\n" << "  lambda: 0.01\n  entropy: -0.1\n"
            << "cfg.yaml: 'router.entropy' must be a finite number >= 0";
    }
    void bad_configs() {
        QFETCH(QString, from);
        QFETCH(QString, to);
        QFETCH(QString, error);
        QCOMPARE(QString::fromStdString(first_error(with(from.toStdString(), to.toStdString()))), error);
    }

    void good_config_shape() {
        QCOMPARE(QString::fromStdString(first_error(kBase)), QString());
        auto c = parse_train_config(kBase, "/some/dir/cfg.yaml");
        QVERIFY(c.ok());
        QCOMPARE(c->data.train_text, std::string("/some/dir/t.txt"));  // relative to the config file
        QCOMPARE(c->training.steps, int64_t(10));
        QCOMPARE(c->router.lambda, 0.01f);
        auto s = resolve_model_shape(*c);
        QVERIFY(s.ok());
        QCOMPARE(s->config.ssm.n_heads, int64_t(4));
        QCOMPARE(s->config.attn.head_dim, int64_t(16));
        // The same shape built for real: same parameter count, and the activation estimate equals
        // TrainModel's own accounting.
        SynthOptions o;
        o.arch = "edgefusion";
        o.dim = 64;
        o.n_layers = 2;
        o.vocab = 300;
        o.n_heads = 4;
        o.n_kv_heads = 2;
        o.ffn_hidden = 128;
        o.context_length = 128;
        o.ssm_version = 2;
        o.d_inner = 128;
        o.d_state = 8;
        o.ssm_heads = 4;
        o.ssm_groups = 1;
        auto m = synth_model(o);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(s->parameter_count, m->parameter_count());
        auto tm = TrainModel::from_model(*m);
        QVERIFY2(tm.ok(), tm.ok() ? "" : tm.message().c_str());
        QCOMPARE(estimate_activation_bytes(s->config, s->layers, 2, 32), tm->activation_bytes(2, 32));
        QCOMPARE(tm->parameter_count(), s->parameter_count);
    }

    void mamba1_shape() {
        std::string y = with("    version: 2\n    d_inner: 128\n    d_state: 8\n    heads: 4\n    groups: 1\n",
                             "    version: 1\n    d_inner: 128\n    d_state: 8\n    dt_rank: 4\n");
        auto c = parse_train_config(y, "cfg.yaml");
        QVERIFY(c.ok());
        auto s = resolve_model_shape(*c);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        QCOMPARE(s->layers[0].ssm_branch, MixerKind::Mamba1);
        QCOMPARE(s->config.ssm.dt_rank, int64_t(4));
        SynthOptions o;
        o.arch = "edgefusion";
        o.dim = 64;
        o.n_layers = 2;
        o.vocab = 300;
        o.n_heads = 4;
        o.n_kv_heads = 2;
        o.ffn_hidden = 128;
        o.context_length = 128;
        o.ssm_version = 1;
        o.d_inner = 128;
        o.d_state = 8;
        o.dt_rank = 4;
        auto m = synth_model(o);
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        QCOMPARE(s->parameter_count, m->parameter_count());
        auto tm = TrainModel::from_model(*m);
        QVERIFY2(tm.ok(), tm.ok() ? "" : tm.message().c_str());
        QCOMPARE(estimate_activation_bytes(s->config, s->layers, 3, 16), tm->activation_bytes(3, 16));
    }

    void seven_b_dry_run() {
        EF_REQUIRE_SHARED(text, "text/wikitext-2-raw-test.txt");
        auto c = load_train_config(ef::test::source_path("resources/configs/edgefusion_7b.yaml").toStdString());
        QVERIFY2(c.ok(), c.ok() ? "" : c.message().c_str());
        TrainOptions o;
        o.dry_run = true;
        auto r = run_training(*c, o);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        const MemoryEstimate& m = r->memory;
        // A 7B-class hybrid: 7.5..8.1 B parameters; weights + grads + two moments = 16 bytes each.
        QVERIFY2(m.params > 7500000000LL && m.params < 8100000000LL, qPrintable(QString::number(m.params)));
        QCOMPARE(m.trainable, m.params);
        QCOMPARE(m.param_bytes + m.grad_bytes + m.adam_bytes, uint64_t(m.params) * 16);
        // Activations of a 1024-token sequence through 32 layers: more than the attention probabilities
        // alone (32 layers x 32 heads x 1024^2 floats = 4 GiB), less than 200 GiB.
        QVERIFY(m.activation_bytes > (uint64_t(4) << 30));
        QVERIFY(m.activation_bytes < (uint64_t(200) << 30));
        QVERIFY(r->plan.find("memory estimate") != std::string::npos);
        QVERIFY(r->final_checkpoint.empty());
    }
};

QTEST_GUILESS_MAIN(TestTrainConfig)
#include "test_train_config.moc"
