// The Runtime panel inside the real MainWindow, offscreen: greedy generation on stories260K streams
// into the output box and ends with exactly ef::generate's text; Stop ends a long generation at
// once; the profile fills its numbers and draws one bar per layer; perplexity equals
// ef::eval::perplexity on the same text; cancels leave the panel usable; screenshots.
#include <QAbstractBarSeries>
#include <QBarSet>
#include <QCheckBox>
#include <QComboBox>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QHorizontalStackedBarSeries>
#include <QLabel>
#include <QLineEdit>
#include <QLineSeries>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <set>

#include "core/formats/format.h"
#include "core/synth.h"
#include "runtime/eval/perplexity.h"
#include "runtime/generate.h"
#include "tests/support/test_support.h"
#include "views/main_window.h"
#include "views/runtime_panel.h"
#include "views/runtime_panel_charts.h"
#include "views/runtime_worker.h"

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

// Saves the window, reads the file back, checks its size and that it is not blank.
void save_screenshot(QWidget& w, const QString& name) {
    QTest::qWait(50);
    const QImage shot = w.grab().toImage();
    const QString file = screenshot_dir() + "/" + name;
    QVERIFY(shot.save(file));
    const QImage back(file);
    QVERIFY(!back.isNull());
    QCOMPARE(back.size(), w.size() * w.devicePixelRatio());
    std::set<QRgb> colors;
    for (int y = 0; y < back.height(); y += 3)
        for (int x = 0; x < back.width(); x += 3) colors.insert(back.pixel(x, y));
    QVERIFY2(colors.size() > 200, qPrintable(QString("only %1 colours: blank screenshot?").arg(colors.size())));
}

std::shared_ptr<const Model> synth(const std::string& arch, int64_t dim, int64_t layers, int64_t ctx) {
    SynthOptions o;
    o.arch = arch;
    o.dim = dim;
    o.n_layers = layers;
    o.vocab = 512;
    o.context_length = ctx;
    o.seed = 7;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    return std::make_shared<const Model>(std::move(m).value());
}

// Sets the panel's model and waits until its tokenizer is ready (or known to be missing).
bool set_model(RuntimePanel* p, std::shared_ptr<const Model> m) {
    QSignalSpy ready(p, &RuntimePanel::tokenizerReady);
    p->setModel(std::move(m));
    return ready.wait(20000);
}

}  // namespace

class TestRuntimePanel : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void greedyGenerationMatchesLibrary();
    void perplexityMatchesLibrary();
    void cancelPerplexity();
    void screenshotGenerate();
    void generateErrorIsShown();
    void stopLongGeneration();
    void newModelStopsRunningJob();
    void profileFillsNumbersAndBars();
    void noTokenizerDisablesGenerate();
    void cleanupTestCase();

private:
    RuntimePanel* panel() const { return w_->runtimePanel(); }
    QTemporaryDir tmp_;
    std::unique_ptr<MainWindow> w_;
    QString stories_;
};

void TestRuntimePanel::initTestCase() {
    QVERIFY(tmp_.isValid());
    QCoreApplication::setOrganizationName("EdgeFusionTests");
    QCoreApplication::setApplicationName("test_runtime_panel");
    QSettings().clear();
    apply_workbench_style(*qApp);
    EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
    EF_REQUIRE_SHARED(tok, "models/tok512.bin");
    stories_ = stories;

    w_ = std::make_unique<MainWindow>();
    w_->resize(1480, 980);
    w_->show();
    QVERIFY(QTest::qWaitForWindowExposed(w_.get()));
    QSignalSpy loaded(w_.get(), &MainWindow::modelLoaded);
    QSignalSpy ready(panel(), &RuntimePanel::tokenizerReady);
    w_->openFile(stories_, tok);
    QVERIFY(loaded.wait(30000));
    QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty(), 20000);  // may already have come during the load
    QCOMPARE(ready.first().at(0).toBool(), true);
    QCOMPARE(panel()->model().get(), w_->model().get());  // the window hands its model to the panel
    QVERIFY(panel()->generateTab()->generate_button->isEnabled());
    QVERIFY(panel()->hintLabel()->isHidden());
    w_->showRuntime();
    QVERIFY(w_->runtimeDock()->isVisible());
}

void TestRuntimePanel::greedyGenerationMatchesLibrary() {
    GenerateTab* g = panel()->generateTab();
    panel()->threadsSpin()->setValue(1);
    g->prompt->setPlainText("Once upon a time");
    g->temperature->setValue(0.0);
    g->max_tokens->setValue(96);
    g->ignore_eos->setChecked(false);
    QSignalSpy tokens(panel()->worker(), &RuntimeWorker::tokenGenerated);
    QSignalSpy done(g, &GenerateTab::finished);
    int text_updates = 0;
    connect(g->output, &QPlainTextEdit::textChanged, this, [&] { ++text_updates; });
    QTest::mouseClick(g->generate_button, Qt::LeftButton);
    QVERIFY(g->isRunning());
    QVERIFY(!g->generate_button->isEnabled());
    QVERIFY(g->stop_button->isEnabled());
    QVERIFY(done.wait(30000));
    QCOMPARE(done.first().at(0).toBool(), true);
    disconnect(g->output, nullptr, this, nullptr);

    // The library, run directly with the same options.
    const auto& model = *w_->model();
    auto tok = Tokenizer::create(model.vocab);
    QVERIFY(tok.ok());
    SessionOptions so;
    so.threads = 1;
    auto s = Session::create(model, so);
    QVERIFY2(s.ok(), s.ok() ? "" : s.message().c_str());
    GenerateOptions o;
    o.n_predict = 96;
    o.sampling.temperature = 0.0f;
    auto r = generate(*s, *tok, "Once upon a time", o);
    QVERIFY2(r.ok(), r.ok() ? "" : r.message().c_str());
    QVERIFY(r->text.size() > 20);

    // Streamed: one queued signal per token, the box updated as they came.
    QTRY_COMPARE(tokens.size(), int(r->tokens.size()));  // the spy records in the worker thread: it may lag
    QVERIFY2(text_updates > 10, qPrintable(QString::number(text_updates)));
    QCOMPARE(g->generatedText(), QString::fromStdString(r->text));
    QCOMPARE(g->output->toPlainText(), QString("Once upon a time") + QString::fromStdString(r->text));
    QVERIFY2(g->status->text().contains("decode") && g->status->text().contains("peak RSS"), qPrintable(g->status->text()));
    QVERIFY(g->speed_chart->pointCount() >= 1);
    QVERIFY(g->memory_chart->pointCount() >= 2);
    QVERIFY(g->generate_button->isEnabled());
    QVERIFY(!g->stop_button->isEnabled());
}

void TestRuntimePanel::perplexityMatchesLibrary() {
    // A small text: a few short stories' worth of sentences (the model was trained on such text).
    QString text;
    const QStringList lines = {"Once upon a time, there was a little girl named Lily.", "She liked to play outside in the sun.",
                               "One day, she saw a big red ball in the park.", "Lily ran to the ball and kicked it very high.",
                               "Her friend Tom came to play with her.", "They laughed and played all day long."};
    for (int i = 0; i < 12; ++i) text += lines.join(' ') + "\n";
    const QString path = tmp_.filePath("small.txt");
    {
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(text.toUtf8());
    }
    EvaluateTab* e = panel()->evaluateTab();
    panel()->tabs()->setCurrentIndex(2);
    e->file->setText(path);
    e->n_ctx->setValue(64);
    e->max_chunks->setValue(5);
    QSignalSpy chunks(panel()->worker(), &RuntimeWorker::chunkDone);
    QSignalSpy done(e, &EvaluateTab::finished);
    QTest::mouseClick(e->run_button, Qt::LeftButton);
    QVERIFY(e->isRunning());
    QVERIFY(e->cancel_button->isEnabled());
    QVERIFY(done.wait(30000));
    QVERIFY2(done.first().at(0).toBool(), qPrintable(e->status->text()));

    const auto& model = *w_->model();
    auto tok = Tokenizer::create(model.vocab);
    QVERIFY(tok.ok());
    eval::PerplexityOptions po;
    po.n_ctx = 64;
    po.max_chunks = 5;
    po.session = panel()->sessionOptions();
    auto ref = eval::perplexity(model, *tok, text.toStdString(), po);
    QVERIFY2(ref.ok(), ref.ok() ? "" : ref.message().c_str());
    QCOMPARE(ref->n_chunks, 5);
    QVERIFY(ref->ppl > 1.0);
    QCOMPARE(e->lastPpl(), ref->ppl);
    QCOMPARE(e->lastPplError(), ref->ppl_error);
    QTRY_COMPARE(chunks.size(), 5);
    QCOMPARE(e->ppl_chart->pointCount(), 5);
    QCOMPARE(e->ppl_chart->markerCount(), 5);
    for (int i = 0; i < 5; ++i) QCOMPARE(e->ppl_chart->series()->at(i).y(), ref->cumulative_ppl[size_t(i)]);
    QVERIFY2(e->result->text().startsWith(QString::number(ref->ppl, 'f', 4)), qPrintable(e->result->text()));
    QCOMPARE(e->progress->value(), 1000);
    w_->showRuntime();
    save_screenshot(*w_, "runtime_panel_evaluate.png");
}

void TestRuntimePanel::cancelPerplexity() {
    EF_REQUIRE_SHARED(text, "text/tinyshakespeare.txt");
    EvaluateTab* e = panel()->evaluateTab();
    e->file->setText(text);
    e->n_ctx->setValue(256);
    e->max_chunks->setValue(0);  // the whole text: far longer than this test waits
    QSignalSpy chunks(panel()->worker(), &RuntimeWorker::chunkDone);
    QSignalSpy done(e, &EvaluateTab::finished);
    QTest::mouseClick(e->run_button, Qt::LeftButton);
    QVERIFY(chunks.wait(30000));  // running, past tokenizing
    QTest::mouseClick(e->cancel_button, Qt::LeftButton);
    QElapsedTimer t;
    t.start();
    QVERIFY(done.wait(5000));
    QVERIFY2(t.elapsed() < 2000, qPrintable(QString::number(t.elapsed())));
    QCOMPARE(done.first().at(0).toBool(), false);
    QCOMPARE(e->status->text(), QString("Cancelled."));
    QVERIFY(!panel()->isBusy());
    QVERIFY(e->run_button->isEnabled());
    QVERIFY(panel()->generateTab()->generate_button->isEnabled());
}

void TestRuntimePanel::screenshotGenerate() {
    GenerateTab* g = panel()->generateTab();
    panel()->tabs()->setCurrentIndex(0);
    w_->showRuntime();
    g->prompt->setPlainText("Once upon a time");
    g->temperature->setValue(0.8);
    g->seed->setValue(42);
    g->max_tokens->setValue(400);
    QSignalSpy done(g, &GenerateTab::finished);
    QTest::mouseClick(g->generate_button, Qt::LeftButton);
    QVERIFY(done.wait(30000));
    QVERIFY(done.first().at(0).toBool());
    QVERIFY(!g->output->toPlainText().isEmpty());
    save_screenshot(*w_, "runtime_panel.png");
}

void TestRuntimePanel::generateErrorIsShown() {
    // A prompt longer than stories260K's context of 512: a clear error in the status line, no crash.
    GenerateTab* g = panel()->generateTab();
    const QString old_prompt = g->prompt->toPlainText();
    g->prompt->setPlainText(QString("Once upon a time there was a cat. ").repeated(80));
    QSignalSpy done(g, &GenerateTab::finished);
    QTest::mouseClick(g->generate_button, Qt::LeftButton);
    QVERIFY(done.wait(20000));
    QCOMPARE(done.first().at(0).toBool(), false);
    QVERIFY2(g->status->text().contains("more than the context of 512"), qPrintable(g->status->text()));
    QVERIFY(g->generate_button->isEnabled());
    g->prompt->setPlainText(old_prompt);
}

void TestRuntimePanel::stopLongGeneration() {
    // A synthetic model big enough that 2000 tokens take many seconds.
    QVERIFY(set_model(panel(), synth("llama", 384, 8, 4096)));
    GenerateTab* g = panel()->generateTab();
    panel()->threadsSpin()->setValue(2);  // the session's thread pool, stopped mid-run
    g->temperature->setValue(0.8);
    g->max_tokens->setValue(2000);
    g->ignore_eos->setChecked(true);
    QSignalSpy tokens(panel()->worker(), &RuntimeWorker::tokenGenerated);
    QSignalSpy done(g, &GenerateTab::finished);
    QTest::mouseClick(g->generate_button, Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(tokens.size() >= 150, 20000);
    QVERIFY(done.isEmpty());
    QTest::mouseClick(g->stop_button, Qt::LeftButton);
    QElapsedTimer t;
    t.start();
    QVERIFY(done.wait(5000));
    QVERIFY2(t.elapsed() < 1000, qPrintable(QString::number(t.elapsed())));
    QVERIFY2(g->status->text().contains("stop: stopped"), qPrintable(g->status->text()));
    const int n = tokens.size();
    QVERIFY2(n < 2000, qPrintable(QString::number(n)));
    QVERIFY(g->speed_chart->pointCount() >= 2);
    QVERIFY(g->memory_chart->pointCount() >= 2);

    // Still usable: a short run completes.
    QVERIFY(g->generate_button->isEnabled());
    g->max_tokens->setValue(8);
    done.clear();
    QTest::mouseClick(g->generate_button, Qt::LeftButton);
    QVERIFY(done.wait(20000));
    QVERIFY(done.first().at(0).toBool());
    QVERIFY2(g->status->text().startsWith("8 tokens (stop: count)"), qPrintable(g->status->text()));
    panel()->threadsSpin()->setValue(1);
}

void TestRuntimePanel::newModelStopsRunningJob() {
    // A model opened while a generation runs: the job is stopped (its model kept alive by the job
    // until it returns) and the panel runs the new model.
    GenerateTab* g = panel()->generateTab();
    g->max_tokens->setValue(2000);
    QSignalSpy tokens(panel()->worker(), &RuntimeWorker::tokenGenerated);
    QSignalSpy done(g, &GenerateTab::finished);
    QTest::mouseClick(g->generate_button, Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(tokens.size() >= 20, 20000);
    QVERIFY(set_model(panel(), w_->model()));  // back to stories260K
    QTRY_VERIFY_WITH_TIMEOUT(!done.isEmpty(), 5000);  // may have come during set_model
    QVERIFY2(g->status->text().contains("stop: stopped"), qPrintable(g->status->text()));
    QTRY_VERIFY(!panel()->isBusy());
    QVERIFY(g->generate_button->isEnabled());
    QCOMPARE(panel()->model().get(), w_->model().get());
}

void TestRuntimePanel::profileFillsNumbersAndBars() {
    // An EdgeFusion model written to GGUF and opened in the window: routed layers in both branches.
    const auto m = synth("edgefusion", 128, 6, 512);
    const QString path = tmp_.filePath("edgefusion.gguf");
    QVERIFY(save_model(*m, path.toStdString()).ok());
    QSignalSpy loaded(w_.get(), &MainWindow::modelLoaded);
    QSignalSpy ready(panel(), &RuntimePanel::tokenizerReady);
    w_->openFile(path);
    QVERIFY(loaded.wait(30000));
    QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty(), 20000);  // may already have come during the load
    QVERIFY(panel()->routingCombo()->isEnabled());

    ProfileTab* p = panel()->profileTab();
    panel()->tabs()->setCurrentIndex(1);
    p->pp->setValue(64);
    p->tg->setValue(32);
    p->reps->setValue(2);
    QSignalSpy report(panel()->worker(), &RuntimeWorker::profileFinished);
    QSignalSpy done(p, &ProfileTab::finished);
    QTest::mouseClick(p->run_button, Qt::LeftButton);
    QVERIFY(done.wait(60000));
    QVERIFY2(done.first().at(0).toBool(), qPrintable(p->status->text()));
    // The spy records in the worker thread, after the queued signals were posted: it may lag.
    QTRY_COMPARE(report.size(), 1);
    const auto r = qvariant_cast<ProfileReport>(report.first().at(1));
    const Model& model = *w_->model();
    QVERIFY(r.prefill.mean > 0 && r.decode.mean > 0);
    QCOMPARE(r.prefill.samples.size(), size_t(2));
    QVERIFY(r.peak_rss > 0);
    QCOMPARE(r.weight_bytes, model.weight_bytes());
    QVERIFY(r.kv_bytes > 0);
    QVERIFY(r.ssm_bytes > 0);
    QVERIFY(r.gflops_per_token > 0);
    for (QLabel* l : {p->prefill, p->decode, p->peak_rss, p->weights, p->kv_cache, p->ssm_state, p->gflops})
        QVERIFY2(l->text() != QString("—") && !l->text().startsWith("0 "), qPrintable(l->text()));

    // One bar per layer, in the colour of the branch hard routing takes (from the gates, checked here).
    auto* s = p->layer_chart->series();
    QCOMPARE(p->layer_chart->barCount(), int(model.layers.size()));
    auto sess = Session::create(model, {});
    QVERIFY(sess.ok());
    const auto& gates = sess->gates();
    std::set<QString> kinds;
    for (size_t il = 0; il < model.layers.size(); ++il) {
        const int cat = int(model.layers.size() - 1 - il);  // layer 0 is the top bar
        int nonzero = 0;
        QString name;
        for (QBarSet* set : s->barSets()) {
            QCOMPARE(set->count(), int(model.layers.size()));
            if (set->at(cat) > 0) ++nonzero, name = set->label();
        }
        QCOMPARE(nonzero, 1);
        QCOMPARE(model.layers[il].mixer, MixerKind::Routed);
        QCOMPARE(name, gates[il] >= 0.5f ? QString("routed → attention") : QString("routed → SSM"));
        kinds.insert(name);
    }
    QVERIFY2(kinds.size() == 2, "the synthetic gates should send layers both ways");
    save_screenshot(*w_, "runtime_panel_profile.png");

    // Cancel: ends after the current repetition, the panel stays usable.
    p->pp->setValue(256);
    p->reps->setValue(50);
    done.clear();
    QTest::mouseClick(p->run_button, Qt::LeftButton);
    QTest::qWait(150);
    QTest::mouseClick(p->cancel_button, Qt::LeftButton);
    QVERIFY(done.wait(10000));
    QCOMPARE(done.first().at(0).toBool(), false);
    QCOMPARE(p->status->text(), QString("Profile cancelled."));
    QVERIFY(p->run_button->isEnabled());
}

void TestRuntimePanel::noTokenizerDisablesGenerate() {
    auto m = synth("llama", 64, 2, 128);
    Model copy = *m;
    copy.vocab = Vocab{};
    QVERIFY(set_model(panel(), std::make_shared<const Model>(std::move(copy))));
    QVERIFY(!panel()->hintLabel()->isHidden());
    QVERIFY2(panel()->hintLabel()->text().contains("no usable tokenizer"), qPrintable(panel()->hintLabel()->text()));
    QVERIFY(!panel()->generateTab()->generate_button->isEnabled());
    QVERIFY(!panel()->evaluateTab()->run_button->isEnabled());
    QVERIFY(panel()->profileTab()->run_button->isEnabled());  // profiling needs no tokenizer
    panel()->setModel(nullptr);
    QVERIFY(panel()->hintLabel()->text().contains("Open a model"));
    QVERIFY(!panel()->profileTab()->run_button->isEnabled());
}

void TestRuntimePanel::cleanupTestCase() { w_.reset(); }

QTEST_MAIN(TestRuntimePanel)
#include "test_runtime_panel.moc"
