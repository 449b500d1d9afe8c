// Resumable training (core/train/trainer.h + train_checkpoint.h): 20 steps in one run against 10
// steps + resume from checkpoint_10 for 10 more — the same losses bit for bit and the same final
// weights; a cancelled run saves a checkpoint and resumes onto the same curve; the checkpoint folder
// holds a model the loaders read. Hybridizing stories260K with --freeze-base and distillation keeps
// the base tensors exactly and trains the SSM branches and gates.
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>
#include <fstream>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/train/train_checkpoint.h"
#include "core/train/trainer.h"
#include "tests/support/test_support.h"

using namespace ef;
using namespace ef::train;
namespace fs = std::filesystem;

namespace {

std::string tiny_yaml(const std::string& text, const std::string& ssm, int accum) {
    return "model:\n  arch: edgefusion\n  dim: 32\n  layers: 2\n  heads: 4\n  kv_heads: 2\n  ffn_hidden: 48\n"
           "  vocab_size: 280\n  context: 64\n  ssm:\n" + ssm +
           "data:\n  train_text: " + text + "\n  val_fraction: 0.1\n  seq_len: 16\n  batch: 2\n  grad_accum: " +
           std::to_string(accum) +
           "\ntraining:\n  steps: 20\n  lr: 0.01\n  min_lr: 0.001\n  warmup: 3\n  log_every: 1\n  eval_every: 5\n"
           "  checkpoint_every: 10\n  threads: 2\n  seed: 7\nrouter:\n  lambda: 0.05\n  tau_start: 1.0\n  tau_end: 0.5\n"
           "  anneal: cosine\n";
}

std::vector<double> losses(const TrainSummary& s, int64_t from_step) {
    std::vector<double> out;
    for (const auto& e : s.log)
        if (e.step > from_step) {
            out.push_back(e.loss);
            out.push_back(e.val_loss);
        }
    return out;
}

}  // namespace

class TestTrainResume : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() { register_hdf5_format(); }

    void resume_same_curve_data() {
        QTest::addColumn<QString>("ssm");
        QTest::addColumn<int>("accum");
        QTest::newRow("mamba2") << "    version: 2\n    d_inner: 64\n    d_state: 8\n    heads: 4\n" << 1;
        QTest::newRow("mamba1, accumulation 2") << "    version: 1\n    d_inner: 64\n    d_state: 8\n    dt_rank: 4\n" << 2;
    }
    void resume_same_curve() {
        QFETCH(QString, ssm);
        QFETCH(int, accum);
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QTemporaryDir dir;
        // 60 KB of the text keeps the tokenizer quick.
        std::ifstream in(text.toStdString(), std::ios::binary);
        std::string part(60000, '\0');
        in.read(part.data(), std::streamsize(part.size()));
        const std::string text_path = dir.filePath("text.txt").toStdString();
        std::ofstream(text_path, std::ios::binary) << part;
        auto cfg = parse_train_config(tiny_yaml(text_path, ssm.toStdString(), accum), dir.filePath("c.yaml").toStdString());
        QVERIFY2(cfg.ok(), cfg.ok() ? "" : cfg.message().c_str());

        TrainOptions full;
        full.output_dir = dir.filePath("full").toStdString();
        full.skip_quantization = true;
        auto a = run_training(*cfg, full);
        QVERIFY2(a.ok(), a.ok() ? "" : a.message().c_str());
        QCOMPARE(a->steps_done, int64_t(20));
        QVERIFY(a->log.back().loss < a->log.front().loss);  // it learns
        QVERIFY(fs::is_directory(full.output_dir + "/checkpoint_10"));

        // A fresh folder holding only checkpoint_10: resume runs steps 11..20.
        const std::string half = dir.filePath("half").toStdString();
        fs::create_directories(half);
        fs::copy(full.output_dir + "/checkpoint_10", half + "/checkpoint_10", fs::copy_options::recursive);
        QCOMPARE(latest_checkpoint(half), half + "/checkpoint_10");
        TrainOptions res = full;
        res.output_dir = half;
        res.resume = true;
        auto b = run_training(*cfg, res);
        QVERIFY2(b.ok(), b.ok() ? "" : b.message().c_str());
        QCOMPARE(b->log.front().step, int64_t(11));
        const auto la = losses(*a, 10), lb = losses(*b, 10);
        QCOMPARE(lb.size(), size_t(20));
        QCOMPARE(lb, la);  // bit for bit
        QCOMPARE(b->log.back().gates, a->log.back().gates);

        auto ma = load_train_checkpoint(full.output_dir + "/checkpoint_final");
        auto mb = load_train_checkpoint(half + "/checkpoint_final");
        QVERIFY2(ma.ok() && mb.ok(), ma.ok() ? (mb.ok() ? "" : mb.message().c_str()) : ma.message().c_str());
        QCOMPARE(ma->model.tensors.size(), mb->model.tensors.size());
        for (size_t i = 0; i < ma->model.tensors.size(); ++i)
            QVERIFY2(*ma->model.tensors[i].to_f32() == *mb->model.tensors[i].to_f32(), ma->model.tensors[i].name.c_str());
        QCOMPARE(ma->state.step, int64_t(20));
        QCOMPARE(ma->state.m, mb->state.m);
        // The checkpoint's model is an ordinary model file.
        auto plain = load_model(full.output_dir + "/checkpoint_final/model.h5");
        QVERIFY2(plain.ok(), plain.ok() ? "" : plain.message().c_str());
        QCOMPARE(plain->architecture, std::string("edgefusion"));
        QCOMPARE(plain->vocab.tokens.size(), size_t(280));
    }

    void cancel_then_resume() {
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QTemporaryDir dir;
        std::ifstream in(text.toStdString(), std::ios::binary);
        std::string part(60000, '\0');
        in.read(part.data(), std::streamsize(part.size()));
        const std::string text_path = dir.filePath("text.txt").toStdString();
        std::ofstream(text_path, std::ios::binary) << part;
        auto cfg = parse_train_config(tiny_yaml(text_path, "    version: 2\n    d_inner: 64\n    d_state: 8\n    heads: 4\n", 1),
                                      dir.filePath("c.yaml").toStdString());
        QVERIFY(cfg.ok());
        TrainOptions full;
        full.output_dir = dir.filePath("full").toStdString();
        full.skip_quantization = true;
        auto a = run_training(*cfg, full);
        QVERIFY(a.ok());

        Progress progress;
        TrainOptions cut = full;
        cut.output_dir = dir.filePath("cut").toStdString();
        cut.on_log = [&](const TrainLogEntry& e) {
            if (e.step == 6) progress.cancel();
        };
        auto b = run_training(*cfg, cut, progress);
        QVERIFY(!b.ok());
        QCOMPARE(QString::fromStdString(b.message()), QString("cancelled after step 6; continue with --resume"));
        QVERIFY(fs::is_directory(cut.output_dir + "/checkpoint_6"));
        QVERIFY(!fs::exists(cut.output_dir + "/checkpoint_final"));
        TrainOptions res = full;
        res.output_dir = cut.output_dir;
        res.resume = true;
        auto c = run_training(*cfg, res);
        QVERIFY2(c.ok(), c.ok() ? "" : c.message().c_str());
        QCOMPARE(losses(*c, 6), losses(*a, 6));
    }

    void hybridize_freeze_base() {
        EF_REQUIRE_SHARED(model, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        QTemporaryDir dir;
        const std::string yaml = "model:\n  arch: edgefusion\n  base: " + model.toStdString() + "\n  tokenizer: " + tok.toStdString() +
                                 "\ndata:\n  train_text: " + text.toStdString() +
                                 "\n  seq_len: 16\n  batch: 2\ntraining:\n  steps: 4\n  warmup: 1\n  lr: 0.01\n  log_every: 1\n"
                                 "  threads: 2\n  freeze_base: true\nrouter:\n  lambda: 0.1\ndistill:\n  enabled: true\n";
        auto cfg = parse_train_config(yaml, dir.filePath("h.yaml").toStdString());
        QVERIFY2(cfg.ok(), cfg.ok() ? "" : cfg.message().c_str());
        TrainOptions o;
        o.output_dir = dir.filePath("out").toStdString();
        o.skip_quantization = true;
        auto r = run_training(*cfg, o);
        QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
        QVERIFY(r->memory.trainable < r->memory.params);
        QCOMPARE(r->log.front().gates.size(), size_t(5));
        QCOMPARE(r->log.front().router_loss > 0, true);
        LoadOptions lo;
        lo.tokenizer_path = tok.toStdString();
        auto base = load_model(model.toStdString(), lo);
        auto trained = load_model(o.output_dir + "/checkpoint_final/model.h5");
        QVERIFY(base.ok() && trained.ok());
        QCOMPARE(trained->architecture, std::string("edgefusion"));
        for (const char* name : {"blk.0.attn_q.weight", "blk.4.ffn_down.weight", "token_embd.weight", "blk.2.attn_norm.weight"}) {
            const Tensor* a = base->find(name);
            const Tensor* b = trained->find(name);
            QVERIFY2(a && b, name);
            QVERIFY2(*a->to_f32() == *b->to_f32(), name);  // frozen: exactly the base values
        }
        // The SSM branch and the gates trained: the first gate moved from its start.
        QVERIFY(r->log.back().gates != r->log.front().gates || r->log.back().loss != r->log.front().loss);
    }
};

QTEST_GUILESS_MAIN(TestTrainResume)
#include "test_train_resume.moc"
