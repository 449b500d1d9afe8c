// The lambda sweep (core/train/lambda_sweep.h) on a tiny real hybrid: stories260K (llama2.c, 5
// layers) hybridized, its SSM branches and gates distilled for a few steps with the base frozen at
// three lambdas. A larger lambda must route at least as many layers to the SSM branch and leave a
// mean gate no higher; GFLOPs/token must match the count written here from the config's shapes
// (2 * rows * cols per matrix on the hard-routed path, attention's 4 * H * D * ctx, the SSD scan and
// conv terms); cancelling must return an error; the lambda list parser must reject bad lists.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/train/checkpoint_path.h"
#include "core/train/lambda_sweep.h"
#include "tests/support/test_support.h"

using namespace ef;
using namespace ef::train;

namespace {

// The first 60 KB of the text: enough for a 2% validation split of several 33-token windows.
QString small_text(const QTemporaryDir& dir, const QString& text) {
    QFile in(text);
    if (!in.open(QIODevice::ReadOnly)) return {};
    const QByteArray head = in.read(60000);
    const QString path = dir.filePath("text.txt");
    QFile out(path);
    if (!out.open(QIODevice::WriteOnly)) return {};
    out.write(head);
    return path;
}

std::string config_yaml(const QString& base, const QString& tok, const QString& text) {
    return ("model:\n  arch: edgefusion\n  base: " + base + "\n  tokenizer: " + tok +
            "\ndata:\n  train_text: " + text + "\n  val_fraction: 0.1\n  seq_len: 32\n  batch: 2\n"
            "training:\n  steps: 12\n  lr: 0.05\n  min_lr: 0.05\n  warmup: 0\n  weight_decay: 0\n  threads: 2\n  log_every: 3\n"
            "router:\n  init_gate: 0.5\ndistill:\n  enabled: true\n")
        .toStdString();
}

// FLOPs per token of the hard-routed path from the config alone (Mamba-2 branch: in_proj rows
// z, x (d_inner each), B, C (groups x d_state each), dt (heads); out_proj (dim, d_inner)).
double expected_gflops(const ModelConfig& c, const std::vector<float>& gates) {
    const double C = double(c.dim), H = double(c.attn.n_heads), KVH = double(c.attn.n_kv_heads), D = double(c.attn.head_dim);
    const double F = double(c.ffn_hidden), V = double(c.vocab_size);
    const double di = double(c.ssm.d_inner), N = double(c.ssm.d_state), G = double(c.ssm.n_groups), Hs = double(c.ssm.n_heads);
    const double K = double(c.ssm.d_conv);
    const double ctx = double(c.context_length / 2 + 1);
    const double attn = 2 * (C * H * D + 2 * C * KVH * D + H * D * C) + 4 * H * D * ctx;
    const double ssm = 2 * (C * (2 * di + 2 * G * N + Hs) + di * C) + 6 * di * N + 2 * (di + 2 * G * N) * K;
    const double ffn = 2 * 3 * C * F;
    double f = 2 * V * C;
    for (float g : gates) f += (g >= 0.5f ? attn : ssm) + ffn;
    return f * 1e-9;
}

}  // namespace

class TestLambdaSweep : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() { register_hdf5_format(); }

    void parse_lists_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("error");  // empty: valid
        QTest::newRow("four") << "0,0.001,0.01,0.1" << "";
        QTest::newRow("spaces") << "0, 0.5" << "";
        QTest::newRow("empty") << "" << "empty";
        QTest::newRow("empty item") << "0,,0.1" << "empty item";
        QTest::newRow("word") << "0,abc" << "'abc' is not a number";
        QTest::newRow("negative") << "0.1,-1" << "'-1' must be a finite number >= 0";
        QTest::newRow("twice") << "0.1,0.1" << "given twice";
        QTest::newRow("trailing") << "0.1," << "empty item";
    }
    void parse_lists() {
        QFETCH(QString, text);
        QFETCH(QString, error);
        auto r = parse_lambda_list(text.toStdString());
        if (error.isEmpty()) {
            QVERIFY2(r.ok(), r ? "" : r.message().c_str());
        } else {
            QVERIFY(!r.ok());
            QVERIFY2(QString::fromStdString(r.message()).contains(error), r.message().c_str());
        }
    }
    void parse_values() {
        auto r = parse_lambda_list("0,0.001,0.01,0.1");
        QVERIFY(r.ok());
        QCOMPARE(r->size(), size_t(4));
        QCOMPARE((*r)[1], 0.001f);
        QCOMPARE(QString::fromStdString(lambda_dir_name(0.001f)), QString("lambda_0.001"));
        QCOMPARE(QString::fromStdString(lambda_dir_name(0.0f)), QString("lambda_0"));
    }

    void sweep_tiny_hybrid() {
        EF_REQUIRE_SHARED(base, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QTemporaryDir dir;
        const QString small = small_text(dir, text);
        QVERIFY(!small.isEmpty());
        auto cfg = parse_train_config(config_yaml(base, tok, small), dir.filePath("c.yaml").toStdString());
        QVERIFY2(cfg.ok(), cfg ? "" : cfg.message().c_str());

        LambdaSweepOptions o;
        o.output_dir = dir.filePath("sweep").toStdString();
        o.eval_windows = 4;
        int points = 0;
        o.on_point = [&](const LambdaPoint&) { ++points; };
        double last_fraction = -1;
        bool monotone = true;
        Progress progress([&](double f, const std::string&) {
            monotone = monotone && f >= last_fraction - 1e-12;
            last_fraction = f;
        });
        const std::vector<float> lambdas = {0.0f, 0.05f, 1.0f};
        auto s = sweep_lambda(*cfg, lambdas, o, progress);
        QVERIFY2(s.ok(), s ? "" : s.message().c_str());
        QCOMPARE(points, 3);
        QVERIFY(monotone);
        QVERIFY(std::abs(last_fraction - 1.0) < 1e-9);
        QCOMPARE(s->points.size(), size_t(3));
        QVERIFY(s->eval_positions == 4 * 32);
        QVERIFY(s->reference_ppl > 1 && std::isfinite(s->reference_ppl));

        for (size_t i = 0; i < s->points.size(); ++i) {
            const LambdaPoint& p = s->points[i];
            QCOMPARE(p.lambda, lambdas[i]);
            QCOMPARE(p.steps, int64_t(12));
            QCOMPARE(p.gates.size(), size_t(5));
            // Its own folder with a loadable checkpoint.
            QVERIFY(std::filesystem::path(p.run_dir).filename() == lambda_dir_name(p.lambda));
            auto file = resolve_model_path(p.checkpoint);
            QVERIFY2(file.ok(), file ? "" : file.message().c_str());
            auto m = load_model(*file);
            QVERIFY2(m.ok(), m ? "" : m.message().c_str());
            QCOMPARE(QString::fromStdString(m->architecture), QString("edgefusion"));
            // Router statistics recomputed from the gates.
            double ssm = 0, h = 0, mean = 0;
            for (float g : p.gates) {
                ssm += g < 0.5f;
                mean += g;
                h += -(g * std::log2(double(g))) - (1 - g) * std::log2(1 - double(g));
            }
            QVERIFY(std::abs(p.ssm_frac - ssm / 5) < 1e-12);
            QVERIFY(std::abs(p.gate_entropy_bits - h / 5) < 1e-4);
            QVERIFY(std::abs(p.mean_gate - mean / 5) < 1e-6);
            // GFLOPs/token of the hard-routed result against the formula from the config.
            const double want = expected_gflops(m->config, p.gates);
            QVERIFY2(std::abs(p.gflops_per_token - want) <= 1e-9 * want + 1e-12,
                     qPrintable(QString("got %1, formula %2").arg(p.gflops_per_token, 0, 'g', 12).arg(want, 0, 'g', 12)));
            const double dense = expected_gflops(m->config, std::vector<float>(5, 1.0f));
            QVERIFY(std::abs(p.dense_gflops_per_token - dense) <= 1e-9 * dense);
            QVERIFY(p.kl >= 0 && std::isfinite(p.kl));
            QVERIFY(p.val_ppl > 1 && std::isfinite(p.val_ppl));
        }
        // The trade-off: more lambda, more SSM layers and lower attention share.
        for (size_t i = 1; i < s->points.size(); ++i) {
            const LambdaPoint &a = s->points[i - 1], &b = s->points[i];
            QVERIFY2(b.ssm_frac >= a.ssm_frac, qPrintable(QString("ssm_frac %1 -> %2").arg(a.ssm_frac).arg(b.ssm_frac)));
            QVERIFY2(b.mean_gate <= a.mean_gate + 1e-6, qPrintable(QString("mean g %1 -> %2").arg(a.mean_gate).arg(b.mean_gate)));
        }
        QVERIFY(s->points.back().mean_gate < s->points.front().mean_gate);
        // Distillation pulls the gates toward the teacher's attention; lambda 1 must still win somewhere.
        QVERIFY2(s->points.back().ssm_frac > s->points.front().ssm_frac, sweep_markdown(*s).c_str());
        QVERIFY(s->points.back().gflops_per_token < s->points.back().dense_gflops_per_token);

        // The tables: CSV has a row per lambda; JSON parses with the same numbers.
        const std::string csv = sweep_csv(*s);
        QCOMPARE(QString::fromStdString(csv).trimmed().split('\n').size(), 4);
        QJsonParseError perr;
        const auto doc = QJsonDocument::fromJson(QByteArray::fromStdString(sweep_json(*s)), &perr);
        QVERIFY2(perr.error == QJsonParseError::NoError, qPrintable(perr.errorString()));
        const QJsonArray pts = doc.object()["points"].toArray();
        QCOMPARE(pts.size(), 3);
        QCOMPARE(pts[2].toObject()["ssm_frac"].toDouble(), s->points[2].ssm_frac);
        QVERIFY(QString::fromStdString(sweep_markdown(*s)).contains("| 0.05 |"));
    }

    void cancel_is_an_error() {
        EF_REQUIRE_SHARED(base, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QTemporaryDir dir;
        const QString small = small_text(dir, text);
        auto cfg = parse_train_config(config_yaml(base, tok, small), dir.filePath("c.yaml").toStdString());
        QVERIFY(cfg.ok());
        LambdaSweepOptions o;
        o.output_dir = dir.filePath("sweep").toStdString();
        o.eval_windows = 2;
        // Cancel from inside the first run (after its first step's report).
        Progress* self = nullptr;
        Progress progress([&](double, const std::string& stage) {
            if (self && stage.find("step") != std::string::npos) self->cancel();
        });
        self = &progress;
        auto s = sweep_lambda(*cfg, {0.0f, 0.1f}, o, progress);
        QVERIFY(!s.ok());
        QVERIFY2(QString::fromStdString(s.message()).contains("cancelled"), s.message().c_str());
        QVERIFY2(QString::fromStdString(s.message()).contains("lambda 0"), s.message().c_str());
        // The second lambda never ran.
        QVERIFY(!std::filesystem::exists(dir.filePath("sweep/lambda_0.1").toStdString()));
        // Single-point entry: cancelled before it starts.
        Progress stopped;
        stopped.cancel();
        auto p = train_lambda_point(*cfg, 0.1f, o, stopped);
        QVERIFY(!p.ok());
        QVERIFY2(QString::fromStdString(p.message()).contains("cancelled"), p.message().c_str());
    }

    void needs_a_base_model() {
        TrainConfig c;
        c.path = "x.yaml";
        LambdaSweepOptions o;
        o.output_dir = "/tmp/unused";
        auto s = sweep_lambda(c, {0.0f}, o);
        QVERIFY(!s.ok());
        QVERIFY2(QString::fromStdString(s.message()).contains("needs a base model"), s.message().c_str());
    }

    void gate_config() {
        EF_REQUIRE_SHARED(base, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        auto c = gate_training_config(base.toStdString(), text.toStdString(), true, tok.toStdString());
        QVERIFY2(c.ok(), c ? "" : c.message().c_str());
        QVERIFY(c->distill.enabled);
        QVERIFY(c->training.freeze_base);
        QCOMPARE(c->training.steps, int64_t(50));
        QCOMPARE(QString::fromStdString(c->data.train_text), text);
    }
};

QTEST_GUILESS_MAIN(TestLambdaSweep)
#include "test_lambda_sweep.moc"
