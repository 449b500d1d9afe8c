// The Training and Lambda docks (issue 5), offscreen. A tiny hybrid (2 layers, dim 32) trains on a
// slice of tinyshakespeare from the Training panel: the charts hold one point per logged step, equal
// to the lines of the train_log.jsonl the trainer wrote (read here with nlohmann::json); Stop cancels
// (a checkpoint is saved) and Resume continues to the configured final step. The Lambda panel
// re-trains the gates of a model trained here: the curve point's ssm_frac and gates equal those
// computed directly from the re-trained model file's router_gate tensors (sigmoid(alpha / tau), our
// own few lines here); a large lambda lowers every gate; cancel keeps the curve; a new lambda
// cancels the run in flight. The main window's docks pass gates on to the router view. LambdaCurveModel runs under QAbstractItemModelTester.
#include <QAbstractItemModelTester>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineSeries>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScatterSeries>
#include <QSignalSpy>
#include <QSlider>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"
#include "tests/support/test_support.h"
#include "views/lambda_panel.h"
#include "views/main_window.h"
#include "views/router_view.h"
#include "views/runtime_panel_charts.h"
#include "views/training_panel.h"

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

std::string tiny_yaml(const QString& text, int steps) {
    return "model:\n  arch: edgefusion\n  dim: 32\n  layers: 2\n  heads: 4\n  kv_heads: 2\n  ffn_hidden: 48\n"
           "  vocab_size: 280\n  context: 64\n  ssm:\n    version: 2\n    d_inner: 64\n    d_state: 8\n    heads: 4\n"
           "data:\n  train_text: " + text.toStdString() + "\n  val_fraction: 0.1\n  seq_len: 32\n  batch: 4\n"
           "training:\n  steps: " + std::to_string(steps) + "\n  lr: 0.01\n  min_lr: 0.001\n  warmup: 3\n  log_every: 1\n"
           "  eval_every: 10\n  eval_batches: 1\n  threads: 1\n  seed: 3\nrouter:\n  lambda: 0.02\n  tau_start: 1.0\n"
           "  tau_end: 0.5\n  anneal: cosine\nquantization:\n  format: none\n";
}

std::vector<nlohmann::json> read_jsonl(const QString& path) {
    std::vector<nlohmann::json> out;
    std::ifstream f(path.toStdString());
    for (std::string line; std::getline(f, line);)
        if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
}

// Gates read straight from a model file: g = sigmoid(alpha / tau) of every blk.N.router_gate.
std::vector<double> gates_of(const QString& model_path) {
    auto m = load_model(model_path.toStdString());
    if (!m) qFatal("load %s: %s", qPrintable(model_path), m.message().c_str());
    std::vector<double> g;
    for (int64_t l = 0; l < m->config.n_layers; ++l) {
        const Tensor* t = m->find("blk." + std::to_string(l) + ".router_gate");
        if (!t) qFatal("no router gate in layer %lld", static_cast<long long>(l));
        const double alpha = double((*t->to_f32())[0]);
        g.push_back(1.0 / (1.0 + std::exp(-alpha / double(m->config.router_temperature))));
    }
    return g;
}

}  // namespace

class TestTrainingPanel : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString text_;        // a 40 KB slice of tinyshakespeare
    QString base_model_;  // a tiny edgefusion model trained in initTestCase

private slots:
    void initTestCase() {
        register_hdf5_format();
        QVERIFY(dir_.isValid());
        EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
        std::ifstream in(text.toStdString(), std::ios::binary);
        std::string part(40000, '\0');
        in.read(part.data(), std::streamsize(part.size()));
        text_ = dir_.filePath("text.txt");
        std::ofstream(text_.toStdString(), std::ios::binary) << part;
        // The model the lambda panel starts from: 30 steps of the tiny config.
        auto cfg = train::parse_train_config(tiny_yaml(text_, 30), dir_.filePath("base.yaml").toStdString());
        QVERIFY2(cfg.ok(), cfg.ok() ? "" : cfg.message().c_str());
        train::TrainOptions o;
        o.output_dir = dir_.filePath("base").toStdString();
        auto s = train::run_training(*cfg, o);
        QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
        base_model_ = QString::fromStdString(s->final_checkpoint) + "/model.h5";
    }

    void slider_scale() {
        QCOMPARE(LambdaPanel::lambdaAt(0), 0.0);
        QVERIFY(std::abs(LambdaPanel::lambdaAt(1) - 1e-4) < 1e-12);
        QVERIFY(std::abs(LambdaPanel::lambdaAt(41) - 1e-2) < 1e-12);
        QVERIFY(std::abs(LambdaPanel::lambdaAt(LambdaPanel::kSliderMax) - 1.0) < 1e-12);
        for (int p = 0; p <= LambdaPanel::kSliderMax; ++p) QCOMPARE(LambdaPanel::positionFor(LambdaPanel::lambdaAt(p)), p);
        QCOMPARE(lambda_text(0), QString("0"));
        QCOMPARE(lambda_text(1e-3), QString("1e-3"));
        QCOMPARE(lambda_text(0.5), QString("0.5"));
    }

    void curve_model() {
        LambdaCurveModel m;
        QAbstractItemModelTester tester(&m, QAbstractItemModelTester::FailureReportingMode::QtTest);
        for (float l : {0.1f, 0.0f, 1e-3f, 1.0f}) {
            LambdaPoint p;
            p.lambda = l;
            p.ssm_frac = l;
            p.kl = 2 * l;
            p.gflops_per_token = 1 - l / 2;
            p.dense_gflops_per_token = 1;
            m.addPoint(p);
        }
        QCOMPARE(m.rowCount(), 4);
        QCOMPARE(m.data(m.index(0, LambdaCurveModel::LambdaColumn)).toString(), QString("0"));
        QCOMPARE(m.data(m.index(1, LambdaCurveModel::LambdaColumn), LambdaCurveModel::SortRole).toFloat(), 1e-3f);
        QCOMPARE(m.data(m.index(3, LambdaCurveModel::KlColumn)).toString(), QString("2.0000"));
        QCOMPARE(m.data(m.index(3, LambdaCurveModel::GflopsColumn)).toString(), QString("0.5 (-50.0%)"));
        LambdaPoint again;  // the same lambda replaces its row
        again.lambda = 1e-3f;
        again.ssm_frac = 0.75;
        QCOMPARE(m.addPoint(again), 1);
        QCOMPARE(m.rowCount(), 4);
        QCOMPARE(m.data(m.index(1, LambdaCurveModel::SsmFracColumn)).toString(), QString("75.0%"));
        QVERIFY(!m.data(m.index(4, 0)).isValid());
        m.clear();
        QCOMPARE(m.rowCount(), 0);
    }

    void train_stop_resume() {
        const QString cfg = dir_.filePath("run.yaml");
        const int steps = 150;
        {
            QFile f(cfg);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(QByteArray::fromStdString(tiny_yaml(text_, steps)));
        }
        TrainingPanel panel;
        panel.resize(1200, 560);
        panel.show();
        panel.setConfigPath(cfg);
        const QString out = dir_.filePath("run");
        panel.setOutputDir(out);
        QVERIFY(!panel.resumeButton()->isEnabled());  // nothing to resume yet
        QSignalSpy finished(&panel, &TrainingPanel::runFinished);
        QSignalSpy gates(&panel, &TrainingPanel::gatesUpdated);
        // Stop as soon as a few steps have shown (from the UI thread, as the button does).
        connect(&panel, &TrainingPanel::gatesUpdated, &panel, [&panel] {
            if (panel.entries().size() == 4) panel.stop();
        });
        QVERIFY(panel.start());
        QVERIFY(panel.isRunning());
        QVERIFY(!panel.start());  // one run at a time
        QVERIFY(finished.wait(120000) || finished.size() == 1);
        QCOMPARE(finished.size(), 1);
        QCOMPARE(finished[0][0].toBool(), false);
        QVERIFY2(finished[0][1].toBool(), qPrintable(finished[0][2].toString()));  // cancelled
        const int64_t stopped_at = panel.entries().back().step;
        QVERIFY2(stopped_at < steps, "the run ended before Stop took effect");
        QVERIFY(panel.resumeButton()->isEnabled());
        QVERIFY(QFileInfo(out + "/checkpoint_" + QString::number(stopped_at)).isDir());

        QVERIFY(panel.resume());
        QVERIFY(finished.wait(300000) || finished.size() == 2);
        QCOMPARE(finished.size(), 2);
        QVERIFY2(finished[1][0].toBool(), qPrintable(finished[1][2].toString()));
        QVERIFY(panel.lastResult() && panel.lastResult()->ok);
        QCOMPARE(panel.lastResult()->summary.steps_done, int64_t(steps));

        // The charts against the trainer's own log: one point per logged step, steps 1..N once each.
        const auto log = read_jsonl(out + "/train_log.jsonl");
        QCOMPARE(log.size(), size_t(steps));
        const QList<QPointF> loss = panel.lossChart()->series()->points();
        const QList<QPointF> val = panel.lossChart()->markers()->points();
        const QList<QPointF> ssm = panel.ssmChart()->series()->points();
        const QList<QPointF> ent = panel.entropyChart()->series()->points();
        QCOMPARE(loss.size(), int(log.size()));
        QCOMPARE(ssm.size(), int(log.size()));
        QCOMPARE(ent.size(), int(log.size()));
        int vi = 0;
        for (size_t i = 0; i < log.size(); ++i) {
            const nlohmann::json& j = log[i];
            QCOMPARE(j["step"].get<int64_t>(), int64_t(i + 1));
            QCOMPARE(loss[int(i)].x(), double(i + 1));
            QCOMPARE(loss[int(i)].y(), j["loss"].get<double>());
            QCOMPARE(ssm[int(i)].y(), j["ssm_frac"].get<double>());
            QCOMPARE(ent[int(i)].y(), j["gate_entropy_bits"].get<double>());
            if (j.contains("val_loss")) {
                QVERIFY(vi < val.size());
                QCOMPARE(val[vi].x(), double(i + 1));
                QCOMPARE(val[vi].y(), j["val_loss"].get<double>());
                ++vi;
            }
        }
        QCOMPARE(vi, val.size());
        QCOMPARE(vi, steps / 10);
        // Every logged step's gates went out for the router view, the last ones as logged.
        QCOMPARE(gates.size(), int(log.size()));
        const auto last = gates.back()[0].value<std::vector<float>>();
        QCOMPARE(last, log.back()["gates"].get<std::vector<float>>());
        QVERIFY(panel.speedLabel()->text().contains("tokens/s"));
        QVERIFY(panel.logView()->toPlainText().contains("saved "));  // the trainer's messages
        QVERIFY(panel.openButton()->isEnabled());

        const QImage shot = panel.grab().toImage();
        QVERIFY(shot.save(screenshot_dir() + "/training-panel.png"));
        std::set<QRgb> colors;
        for (int y = 0; y < shot.height(); y += 3)
            for (int x = 0; x < shot.width(); x += 3) colors.insert(shot.pixel(x, y));
        QVERIFY2(colors.size() > 40, "blank screenshot?");
    }

    void resume_fills_charts_from_log() {
        // A new panel resuming a finished folder shows the history from train_log.jsonl; the trainer
        // then refuses (nothing left to train) with a clear message.
        TrainingPanel panel;
        panel.setConfigPath(dir_.filePath("run.yaml"));
        panel.setOutputDir(dir_.filePath("run"));
        QSignalSpy finished(&panel, &TrainingPanel::runFinished);
        QVERIFY(panel.resume());
        QVERIFY(finished.wait(60000) || finished.size() == 1);
        QCOMPARE(finished[0][0].toBool(), false);
        QVERIFY2(finished[0][2].toString().contains("nothing to resume"), qPrintable(finished[0][2].toString()));
        QCOMPARE(panel.lossChart()->pointCount(), 150);
    }

    void bad_config_is_refused() {
        TrainingPanel panel;
        const QString bad = dir_.filePath("bad.yaml");
        QFile f(bad);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("model:\n  arch: edgefusion\n  dimm: 32\n");
        f.close();
        panel.setConfigPath(bad);
        QSignalSpy msg(&panel, &TrainingPanel::message);
        QVERIFY(!panel.start());
        QVERIFY(!panel.isRunning());
        QCOMPARE(msg.size(), 1);
        QVERIFY2(msg[0][0].toString().contains("dimm"), qPrintable(msg[0][0].toString()));
    }

    void lambda_retrain() {
        auto m = load_model(base_model_.toStdString());
        QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
        auto model = std::make_shared<const Model>(std::move(*m));
        const std::vector<double> base_gates = gates_of(base_model_);

        LambdaPanel panel;
        QAbstractItemModelTester tester(panel.curveModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        panel.setModel(model, base_model_);
        QVERIFY(panel.applicable());
        panel.setTextPath(text_);
        panel.setSteps(8);
        panel.setBatch(2, 16);
        panel.setLearningRate(0.05);
        panel.setThreads(1);
        QSignalSpy done(&panel, &LambdaPanel::retrainFinished);
        QSignalSpy analysis(&panel, &LambdaPanel::analysisReady);

        // A slider release at lambda = 1.
        QSlider* s = panel.slider();
        s->setSliderDown(true);
        s->setValue(LambdaPanel::kSliderMax);
        s->setSliderDown(false);  // emits sliderReleased
        QVERIFY(panel.isRunning());
        QVERIFY(done.wait(120000) || done.size() == 1);
        QVERIFY2(done[0][0].toBool(), qPrintable(done[0][2].toString()));
        QCOMPARE(panel.curveModel()->rowCount(), 1);
        const LambdaPoint p = panel.curveModel()->points()[0];
        QCOMPARE(p.lambda, 1.0f);
        QCOMPARE(p.steps, int64_t(8));

        // The point against the re-trained model file, computed here.
        const std::vector<double> g = gates_of(QString::fromStdString(p.checkpoint) + "/model.h5");
        QCOMPARE(p.gates.size(), g.size());
        int on_ssm = 0;
        for (size_t i = 0; i < g.size(); ++i) {
            QVERIFY(std::abs(double(p.gates[i]) - g[i]) < 1e-6);
            on_ssm += g[i] < 0.5;
            QVERIFY2(g[i] < base_gates[i], "lambda = 1 should push every gate toward the SSM branch");
        }
        QCOMPARE(p.ssm_frac, double(on_ssm) / double(g.size()));
        QVERIFY(p.kl > 0 && p.val_ppl > 1);  // the gates moved: the hard-routed result differs from the start
        // (This tiny model's SSM branch is not cheaper than its attention at 32 positions: no order asserted.)
        QVERIFY2(p.gflops_per_token > 0 && p.dense_gflops_per_token > 0,
                 qPrintable(QString("%1 vs %2").arg(p.gflops_per_token).arg(p.dense_gflops_per_token)));
        QCOMPARE(analysis.size(), 1);
        QCOMPARE(analysis[0][0].value<RouterAnalysis>().ssm_frac, p.ssm_frac);
        const QList<QPointF> curve = panel.curveChart()->series(LambdaCurveChart::SsmFrac)->points();
        QCOMPARE(curve.size(), 1);
        QCOMPARE(curve[0], QPointF(0.0, p.ssm_frac));  // x = log10(1)
        QCOMPARE(panel.curveChart()->series(LambdaCurveChart::Gflops)->points()[0].y(), p.gflops_per_token);
        QCOMPARE(panel.curveChart()->series(LambdaCurveChart::Kl)->points()[0].y(), p.kl);

        // Cancel keeps the curve.
        QVERIFY(panel.retrain(1e-3));
        panel.cancel();
        QVERIFY(done.wait(120000) || done.size() == 2);
        QCOMPARE(done[1][0].toBool(), false);
        QVERIFY(done[1][1].toBool());
        QCOMPARE(panel.curveModel()->rowCount(), 1);
        QCOMPARE(panel.curveModel()->points()[0].checkpoint, p.checkpoint);
        QCOMPARE(panel.curveChart()->series(LambdaCurveChart::SsmFrac)->points().size(), 1);

        // A new lambda while one runs: the first is cancelled, the second lands on the curve.
        QVERIFY(panel.retrain(1e-2));
        QVERIFY(panel.retrain(0.0));
        QTRY_VERIFY_WITH_TIMEOUT(done.size() == 4, 240000);
        QVERIFY(done[2][1].toBool());   // 1e-2 cancelled
        QVERIFY2(done[3][0].toBool(), qPrintable(done[3][2].toString()));
        QCOMPARE(panel.curveModel()->rowCount(), 2);
        QCOMPARE(panel.curveModel()->points()[0].lambda, 0.0f);
        QCOMPARE(panel.curveModel()->points()[1].lambda, 1.0f);
        QCOMPARE(panel.curveChart()->series(LambdaCurveChart::SsmFrac)->points()[0].x(), -5.0);
        panel.resize(1100, 460);
        panel.show();
        QVERIFY(panel.grab().toImage().save(screenshot_dir() + "/lambda-panel.png"));
    }

    void lambda_needs_edgefusion() {
        LambdaPanel panel;
        QVERIFY(!panel.applicable());
        QVERIFY(!panel.slider()->isEnabled());
        QSignalSpy msg(&panel, &LambdaPanel::message);
        QVERIFY(!panel.retrain(0.1));
        QCOMPARE(msg.size(), 1);
    }

    void docks_in_main_window() {
        MainWindow w;
        QVERIFY(w.trainingPanel() && w.trainingDock());
        QVERIFY(w.lambdaPanel() && w.lambdaDock());
        QSignalSpy loaded(&w, &MainWindow::modelLoaded);
        w.openFile(base_model_);
        QVERIFY(loaded.wait(60000));
        QVERIFY(w.lambdaPanel()->applicable());
        QCOMPARE(w.lambdaPanel()->model(), w.model());
        // Gates from training reach the router view.
        const std::vector<float> g = {0.9f, 0.1f};
        emit w.trainingPanel()->gatesUpdated(g);
        QVERIFY(w.routerView()->analysis());
        QCOMPARE(w.routerView()->analysis()->layers.size(), size_t(2));
        QVERIFY(std::abs(w.routerView()->analysis()->layers[1].gate - 0.1) < 1e-6);
        QCOMPARE(w.routerView()->analysis()->ssm_frac, 0.5);
    }
};

QTEST_MAIN(TestTrainingPanel)
#include "test_training_panel.moc"
