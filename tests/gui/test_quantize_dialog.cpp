// Quantize & Export (issue 4, GUI), offscreen: the summary model under QAbstractItemModelTester; the
// dialog's worker path (calibration -> quantize_model -> export -> atomic save on its thread pool,
// result by queued signal) for ggml and EF targets and all three outputs, each file reloaded and its
// tensor types checked against the summary, the summary checked against a direct quantize_model call
// with the same calibration; the llama.cpp file parsed by @huggingface/gguf and loaded by llama.cpp
// (node-llama-cpp) where the reference tools are installed; cancel leaving no file; bad options
// showing the library's error; a pre-built model exported without re-quantizing; a screenshot.
#include <QAbstractItemModelTester>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProgressBar>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_checkpoint.h"
#include "core/hdf5/hdf5_format.h"
#include "core/synth.h"
#include "runtime/calib/calibration.h"
#include "tests/support/test_support.h"
#include "views/quant_summary_model.h"
#include "views/main_window.h"
#include "views/quantize_dialog.h"
#include <QAction>
#include <QDockWidget>
#include <QMenuBar>

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

// dim 256 so the k-quants' 256-blocks divide the rows (no fallback) except where a test wants one.
std::shared_ptr<const Model> synth(int64_t dim = 256, int64_t layers = 2, int64_t ffn = 512) {
    SynthOptions o;
    o.arch = "llama";
    o.dim = dim;
    o.n_layers = layers;
    o.ffn_hidden = ffn;
    o.vocab = 300;
    o.seed = 11;
    o.context_length = 64;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    return std::make_shared<const Model>(std::move(m).value());
}

enum class Outcome { Finished, Failed, Cancelled, Timeout };

Outcome run(QuantizeDialog& d, int ms = 120000) {
    QSignalSpy done(&d, &QuantizeDialog::finished), failed(&d, &QuantizeDialog::failed), cancelled(&d, &QuantizeDialog::cancelled);
    if (!d.start()) return Outcome::Failed;
    QElapsedTimer t;
    t.start();
    while (done.isEmpty() && failed.isEmpty() && cancelled.isEmpty() && t.elapsed() < ms) QTest::qWait(20);
    if (!done.isEmpty()) return Outcome::Finished;
    if (!failed.isEmpty()) return Outcome::Failed;
    if (!cancelled.isEmpty()) return Outcome::Cancelled;
    return Outcome::Timeout;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Same-named rows, field by field.
void compare_reports(const ModelQuantReport& got, const ModelQuantReport& want) {
    QCOMPARE(got.tensors.size(), want.tensors.size());
    for (size_t i = 0; i < want.tensors.size(); ++i) {
        const TensorQuantReport &g = got.tensors[i], &w = want.tensors[i];
        QCOMPARE(g.name, w.name);
        QCOMPARE(g.rows, w.rows);
        QCOMPARE(g.cols, w.cols);
        QCOMPARE(g.source_dtype, w.source_dtype);
        QCOMPARE(g.dtype, w.dtype);
        QCOMPARE(g.method, w.method);
        QCOMPARE(g.fallback, w.fallback);
        QCOMPARE(g.code_bits, w.code_bits);
        QCOMPARE(g.effective_bits, w.effective_bits);
        QCOMPARE(g.rmse, w.rmse);
        QCOMPARE(g.nnz, w.nnz);
        QCOMPARE(g.bytes, w.bytes);
    }
    QCOMPARE(got.params, want.params);
    QCOMPARE(got.bytes, want.bytes);
    QCOMPARE(got.quantized_params, want.quantized_params);
    QCOMPARE(got.quantized_bytes, want.quantized_bytes);
    QCOMPARE(got.quantized_effective_bits, want.quantized_effective_bits);
    QCOMPARE(got.fallbacks, want.fallbacks);
}

// The summary table shows the report: one row per tensor, numbers under SortRole.
void check_table(const QuantSummaryModel& t, const ModelQuantReport& r) {
    QCOMPARE(t.rowCount(), int(r.tensors.size()));
    for (int i = 0; i < t.rowCount(); ++i) {
        const TensorQuantReport& x = r.tensors[size_t(i)];
        auto v = [&](int c) { return t.index(i, c).data(QuantSummaryModel::SortRole); };
        QCOMPARE(v(QuantSummaryModel::NameColumn).toString().toStdString(), x.name);
        QCOMPARE(v(QuantSummaryModel::ToColumn).toString().toStdString(), x.dtype);
        QCOMPARE(v(QuantSummaryModel::FromColumn).toString().toStdString(), x.source_dtype);
        QCOMPARE(v(QuantSummaryModel::MethodColumn).toString().toStdString(), x.method);
        QCOMPARE(v(QuantSummaryModel::EffectiveBitsColumn).toDouble(), x.effective_bits);
        QCOMPARE(v(QuantSummaryModel::RmseColumn).toDouble(), x.rmse);
        QCOMPARE(v(QuantSummaryModel::BytesColumn).toULongLong(), quint64(x.bytes));
        QCOMPARE(t.index(i, 0).data(QuantSummaryModel::FallbackRole).toBool(), x.fallback);
        QCOMPARE(t.index(i, 0).data(Qt::BackgroundRole).isValid(), x.fallback);
    }
}

// The written model's weights carry the summary's types (and EF outliers their companions).
void check_types(const Model& written, const ModelQuantReport& r) {
    for (const TensorQuantReport& x : r.tensors) {
        const Tensor* t = written.find(x.name);
        QVERIFY2(t, x.name.c_str());
        QCOMPARE(std::string(dtype_name(t->dtype)), x.dtype);
        QCOMPARE(t->shape.back(), x.cols);
        QCOMPARE(bool(written.find(x.name + ".outlier_rowptr")), x.nnz > 0);
    }
}

}  // namespace

class TestQuantizeDialog : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() { register_hdf5_format(); }  // as the workbench's main() does
    void summaryModelUnderTester();
    void workerPath_data();
    void workerPath();
    void cancelLeavesNoFile();
    void badOptions_data();
    void badOptions();
    void prebuiltModel();
    void screenshotStories260K();
    void mainWindowMenu();
};

void TestQuantizeDialog::summaryModelUnderTester() {
    auto m = synth(64, 2, 96);  // 96: q4_0's 32 divides, so no fallback; k-quants' 256 does not
    ModelQuantOptions o;
    o.ggml_type = DType::Q4_K;
    ModelQuantReport rep;
    auto q = quantize_model(*m, o, nullptr, &rep);
    QVERIFY2(q, q ? "" : q.message().c_str());
    QVERIFY(rep.fallbacks > 0);
    QuantSummaryModel model;
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setSortRole(QuantSummaryModel::SortRole);
    QAbstractItemModelTester t1(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester t2(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setReport(rep);
    check_table(model, rep);
    for (int c = 0; c < model.columnCount(); ++c) proxy.sort(c, Qt::DescendingOrder);
    // Fallback rows say why in their tooltip.
    for (int r = 0; r < model.rowCount(); ++r)
        if (rep.tensors[size_t(r)].fallback)
            QVERIFY(model.index(r, 0).data(Qt::ToolTipRole).toString().contains("does not divide"));
    model.clear();
    QCOMPARE(model.rowCount(), 0);
}

void TestQuantizeDialog::workerPath_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<QString>("target");  // ggml type or "efK_bB"
    QTest::addColumn<int>("output");
    QTest::addColumn<bool>("saliency");
    QTest::newRow("q4_0 rtn native") << "rtn" << "q4_0" << int(QuantOutput::NativeGguf) << false;
    QTest::newRow("q4_K rtn llama.cpp") << "rtn" << "q4_K" << int(QuantOutput::LlamacppGguf) << false;
    QTest::newRow("q4_K imatrix llama.cpp") << "imatrix" << "q4_K" << int(QuantOutput::LlamacppGguf) << false;
    QTest::newRow("ef3_b64 rtn native") << "rtn" << "ef3_b64" << int(QuantOutput::NativeGguf) << false;
    QTest::newRow("ef3_b128 rtn llama.cpp") << "rtn" << "ef3_b128" << int(QuantOutput::LlamacppGguf) << false;
    QTest::newRow("ef4_b128 saliency imatrix hdf5") << "imatrix" << "ef4_b128" << int(QuantOutput::Hdf5Checkpoint) << true;
    QTest::newRow("q4_0 gptq native") << "gptq" << "q4_0" << int(QuantOutput::NativeGguf) << false;
}

void TestQuantizeDialog::workerPath() {
    QFETCH(QString, method);
    QFETCH(QString, target);
    QFETCH(int, output);
    QFETCH(bool, saliency);
    auto m = synth();
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto out = QuantOutput(output);
    const QString path = dir.filePath(out == QuantOutput::Hdf5Checkpoint ? "out.h5" : "out.gguf");

    QuantizeJobOptions o;
    o.quant.method = method == "gptq" ? QuantMethod::Gptq : method == "imatrix" ? QuantMethod::Imatrix : QuantMethod::Rtn;
    if (target.startsWith("ef")) {
        o.quant.ef_format = true;
        o.quant.ef.bits = target.mid(2, 1).toInt();
        o.quant.ef.block = target.mid(target.indexOf("_b") + 2).toInt();
        o.quant.ef.outlier_fraction = 0.005;
        o.quant.ef.selection = saliency ? OutlierSelection::Saliency : OutlierSelection::Magnitude;
    } else {
        o.quant.ggml_type = *dtype_from_name(target.toStdString());
    }
    o.quant.threads = 2;
    o.output = out;
    o.path = path.toStdString();
    o.calib_tokens = 256;
    const bool calibrates = o.quant.method != QuantMethod::Rtn || saliency;
    if (calibrates) {
        EF_REQUIRE_SHARED(text, "text/wikitext-2-raw-test.txt");
    }

    QuantizeDialog d;
    d.setModel(m, "synth");
    d.setOptions(o);
    // The widgets round-trip the options (what the worker gets is what the user set).
    const QuantizeJobOptions back = d.options();
    QCOMPARE(int(back.quant.method), int(o.quant.method));
    QCOMPARE(back.quant.ef_format, o.quant.ef_format);
    QCOMPARE(back.quant.ef.outlier_fraction, o.quant.ef.outlier_fraction);
    QCOMPARE(back.path, o.path);
    QCOMPARE(run(d), Outcome::Finished);
    QVERIFY2(d.errorText().isEmpty(), qPrintable(d.errorText()));
    QCOMPARE(d.progressBar()->value(), 1000);
    QVERIFY(d.result());
    const QuantizeJobResult& r = *d.result();
    QVERIFY(QFile::exists(path));
    QCOMPARE(qint64(r.file_bytes), QFileInfo(path).size());

    // The same quantization called directly (same calibration text, tokens and window).
    std::optional<CalibrationResult> calib;
    if (calibrates) {
        const std::string text = read_all(kDefaultCalibrationText);
        QVERIFY(!text.empty());
        auto tok = Tokenizer::create(m->vocab);
        QVERIFY(tok);
        CalibrationOptions co;
        co.tokens = 256;
        co.hessian = o.quant.method == QuantMethod::Gptq;
        co.session.threads = 2;
        auto c = calibrate(*m, *tok, split_calibration_text(text).calib, "calib", co);
        QVERIFY2(c, c ? "" : c.message().c_str());
        QCOMPARE(r.calib_tokens, c->tokens);
        calib = std::move(*c);
    }
    ModelQuantReport direct;
    auto q = quantize_model(*m, o.quant, calib ? &calib->stats : nullptr, &direct);
    QVERIFY2(q, q ? "" : q.message().c_str());
    QVERIFY(direct.quantized_params > 0);
    compare_reports(r.report, direct);
    if (QTest::currentTestFailed()) return;
    check_table(*d.summaryModel(), direct);
    QVERIFY(d.totalsText().contains(QString::number(direct.fallbacks)));
    QVERIFY(d.totalsText().contains(QFileInfo(path).fileName()));

    // The file as written.
    if (out == QuantOutput::Hdf5Checkpoint) {
        auto master = load_model(path.toStdString());
        QVERIFY2(master, master ? "" : master.message().c_str());
        for (const Tensor& t : master->tensors) QCOMPARE(t.dtype, m->find(t.name)->dtype);  // full precision kept
        auto names = list_variants(path.toStdString());
        QVERIFY(names);
        QCOMPARE(names->size(), size_t(1));
        QCOMPARE(names->front(), target.toStdString());
        auto v = load_variant(path.toStdString(), names->front());
        QVERIFY2(v, v ? "" : v.message().c_str());
        auto applied = apply_variant(*master, *v);
        QVERIFY2(applied, applied ? "" : applied.message().c_str());
        check_types(*applied, direct);
        return;
    }
    auto written = load_model(path.toStdString());
    QVERIFY2(written, written ? "" : written.message().c_str());
    if (out == QuantOutput::NativeGguf) {
        check_types(*written, direct);
        QCOMPARE(written->weight_bytes(), direct.bytes);
        return;
    }
    // llama.cpp: ggml targets keep their types; EF blocks become the nearest ggml type (q3_K for
    // 3-bit rows of 256) and the outlier companions are folded in and dropped.
    for (const TensorQuantReport& x : direct.tensors) {
        const Tensor* t = written->find(x.name);
        QVERIFY2(t, x.name.c_str());
        const std::string want = o.quant.ef_format && x.method != "kept" ? "q3_K" : x.dtype;
        QCOMPARE(std::string(dtype_name(t->dtype)), want);
        QVERIFY(!written->find(x.name + ".outlier_rowptr"));
    }
    // Independent readers: @huggingface/gguf's tensor types, and llama.cpp loading the file.
    const auto parsed = test::run_node_script("gguf_parse.mjs", {path});
    if (parsed.exit_code == 2 && parsed.err.contains("lacks")) QSKIP("reference tools not installed (scripts/setup.sh)");
    QVERIFY2(parsed.exit_code == 0, qPrintable(parsed.err));
    const QJsonArray infos = QJsonDocument::fromJson(parsed.out.toUtf8()).object().value("tensorInfos").toArray();
    QCOMPARE(qsizetype(infos.size()), qsizetype(written->tensors.size()));
    for (const auto& v : infos) {
        const QJsonObject info = v.toObject();
        const Tensor* t = written->find(info.value("name").toString().toStdString());
        QVERIFY(t);
        const auto id = dtype_from_ggml_id(uint32_t(info.value("dtype").toInt()));
        QVERIFY(id);
        QCOMPARE(*id, t->dtype);
    }
    const auto llama = test::run_node_script("llama_eval.mjs", {"--model", path, "--inspect"});
    QVERIFY2(llama.exit_code == 0, qPrintable(llama.err.right(2000)));
    const QJsonObject info = QJsonDocument::fromJson(llama.out.toUtf8()).object();
    QCOMPARE(info.value("architecture").toString(), QString("llama"));
    QCOMPARE(info.value("tensorCount").toInt(), int(written->tensors.size()));
}

void TestQuantizeDialog::cancelLeavesNoFile() {
    auto m = synth(512, 6, 1536);  // ~17M weights: EF with outliers takes seconds, the cancel lands first
    QTemporaryDir dir;
    const QString path = dir.filePath("cancelled.gguf");
    QuantizeJobOptions o;
    o.quant.ef_format = true;
    o.quant.ef.bits = 3;
    o.quant.ef.block = 128;
    o.quant.threads = 1;
    o.path = path.toStdString();
    QuantizeDialog d;
    d.setModel(m, "big synth");
    d.setOptions(o);
    QSignalSpy cancelled(&d, &QuantizeDialog::cancelled), done(&d, &QuantizeDialog::finished);
    QVERIFY(d.start());
    QVERIFY(d.busy());
    QTest::qWait(50);
    d.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(!cancelled.isEmpty() || !done.isEmpty(), 120000);
    QCOMPARE(done.size(), 0);
    QVERIFY(!d.busy());
    QVERIFY(!QFile::exists(path));
    QVERIFY(!d.result());
    // Nothing else was left in the folder either (the atomic writer's temporary is removed).
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), qsizetype(0));
}

void TestQuantizeDialog::badOptions_data() {
    QTest::addColumn<QString>("what");
    QTest::addColumn<QString>("expected");  // part of the library's message
    QTest::newRow("p above 5%") << "p" << "outside [0%, 5%]";
    QTest::newRow("B does not divide a row, no fallback") << "strict" << "does not divide the row length";
    QTest::newRow("calibration text too short") << "short" << "short.txt: calibration text too short";
    QTest::newRow("wrong extension") << "ext" << "is written as .gguf";
    QTest::newRow("gptq to q4_K") << "gptq" << "GPTQ makes EF, q4_0 or q8_0";
}

void TestQuantizeDialog::badOptions() {
    QFETCH(QString, what);
    QFETCH(QString, expected);
    auto m = synth(96, 1, 160);  // rows of 96: B = 64 does not divide them
    QTemporaryDir dir;
    QString path = dir.filePath("bad.gguf");
    QuantizeJobOptions o;
    o.quant.ef_format = true;
    o.quant.ef.bits = 3;
    o.quant.ef.block = 32;
    if (what == "p") o.quant.ef.outlier_fraction = 0.06;
    if (what == "strict") {
        o.quant.ef.block = 64;
        o.quant.allow_fallback = false;
    }
    if (what == "short") {
        QFile f(dir.filePath("short.txt"));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("hi");
        f.close();
        o.quant.method = QuantMethod::Imatrix;
        o.calib_path = dir.filePath("short.txt").toStdString();
    }
    if (what == "ext") path = dir.filePath("bad.bin");
    if (what == "gptq") {
        o.quant.ef_format = false;
        o.quant.ggml_type = DType::Q4_K;
        o.quant.method = QuantMethod::Gptq;
        o.calib_path = dir.filePath("unused.txt").toStdString();
        QFile f(QString::fromStdString(o.calib_path));
        QVERIFY(f.open(QIODevice::WriteOnly));
        for (int i = 0; i < 400; ++i) f.write("once upon a time there was a little robot. ");
    }
    o.path = path.toStdString();
    QuantizeDialog d;
    d.setModel(m, "synth");
    d.setOptions(o);
    QSignalSpy failed(&d, &QuantizeDialog::failed);
    QCOMPARE(run(d), Outcome::Failed);
    QCOMPARE(failed.size(), 1);
    QVERIFY2(d.errorText().contains(expected), qPrintable(d.errorText()));
    QCOMPARE(failed.first().first().toString(), d.errorText());
    QVERIFY(!QFile::exists(path));
    QVERIFY(!d.result());
}

void TestQuantizeDialog::prebuiltModel() {
    auto m = synth(64, 2, 96);
    // Quantized elsewhere (as the allocation editor does): mixed types, one tensor kept.
    ModelQuantOptions qo;
    qo.ggml_type = DType::Q4_0;
    qo.keep = {"blk.1.ffn_down.weight"};
    ModelQuantReport direct;
    auto q = quantize_model(*m, qo, nullptr, &direct);
    QVERIFY2(q, q ? "" : q.message().c_str());
    auto quantized = std::make_shared<const Model>(std::move(*q));
    QTemporaryDir dir;
    const QString path = dir.filePath("prebuilt.gguf");
    QuantizeDialog d;
    d.setModel(m, "synth");
    d.setSourceModel(quantized, "alloc 4.5");
    QVERIFY(d.hasSourceModel());
    QuantizeJobOptions o;
    o.quant.ggml_type = DType::Q8_0;  // not used: the pre-built model is exported as it is
    o.output = QuantOutput::NativeGguf;
    o.path = path.toStdString();
    d.setOptions(o);
    QCOMPARE(run(d), Outcome::Finished);
    const QuantizeJobResult& r = *d.result();
    QVERIFY(r.prebuilt);
    auto written = load_model(path.toStdString());
    QVERIFY(written);
    QCOMPARE(written->tensors.size(), quantized->tensors.size());
    for (const Tensor& t : quantized->tensors) QCOMPARE(written->find(t.name)->dtype, t.dtype);
    // The derived report: the same rows as quantize_model's, with the caller's label as the method.
    QCOMPARE(r.report.tensors.size(), direct.tensors.size());
    for (size_t i = 0; i < direct.tensors.size(); ++i) {
        const TensorQuantReport &g = r.report.tensors[i], &w = direct.tensors[i];
        QCOMPARE(g.name, w.name);
        QCOMPARE(g.dtype, w.dtype);
        QCOMPARE(g.source_dtype, w.source_dtype);
        QCOMPARE(g.method, w.method == "kept" ? std::string("kept") : std::string("alloc 4.5"));
        QCOMPARE(g.bytes, w.bytes);
        QCOMPARE(g.effective_bits, w.effective_bits);
        QVERIFY2(std::abs(g.rmse - w.rmse) <= 1e-9 * std::max(1.0, w.rmse), g.name.c_str());
    }
    QCOMPARE(r.report.quantized_params, direct.quantized_params);
    QCOMPARE(r.report.bytes, direct.bytes);
    QVERIFY(d.totalsText().contains("alloc 4.5"));
}

void TestQuantizeDialog::screenshotStories260K() {
    EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
    EF_REQUIRE_SHARED(tok, "models/tok512.bin");
    LoadOptions lo;
    lo.tokenizer_path = tok.toStdString();
    auto m = load_model(stories.toStdString(), lo);
    QVERIFY2(m, m ? "" : m.message().c_str());
    auto model = std::make_shared<const Model>(std::move(*m));
    QTemporaryDir dir;
    QuantizeJobOptions o;
    o.quant.ef_format = true;
    o.quant.ef.bits = 3;
    o.quant.ef.block = 128;  // rows of 64 and 172: the fallback to B = 64 / f16 is shown
    o.quant.ef.outlier_fraction = 0.005;
    o.output = QuantOutput::NativeGguf;
    o.path = dir.filePath("stories260K-ef3_b128.gguf").toStdString();
    QuantizeDialog d;
    d.setModel(model, "stories260K.bin");
    d.setOptions(o);
    d.resize(1280, 720);
    d.show();
    QVERIFY(QTest::qWaitForWindowExposed(&d));
    QCOMPARE(run(d), Outcome::Finished);
    QVERIFY(d.result()->report.fallbacks > 0);
    QTest::qWait(50);
    const QImage shot = d.grab().toImage();
    const QString file = screenshot_dir() + "/quantize-dialog.png";
    QVERIFY(shot.save(file, "PNG", 0));
    QImage back(file);
    QVERIFY(!back.isNull());
    std::set<QRgb> colors;
    for (int y = 0; y < back.height(); y += 3)
        for (int x = 0; x < back.width(); x += 3) colors.insert(back.pixel(x, y));
    QVERIFY2(colors.size() > 20, qPrintable(QString("only %1 colours: blank screenshot?").arg(colors.size())));
}

void TestQuantizeDialog::mainWindowMenu() {
    QCoreApplication::setOrganizationName("EdgeFusionTests");
    QCoreApplication::setApplicationName("test_quantize_dialog");
    QTemporaryDir dir;
    const QString file = dir.filePath("synth.gguf");
    QVERIFY(save_model(*synth(64, 1, 96), file.toStdString()));
    MainWindow w;
    QVERIFY(!w.openQuantizeDialog());  // no model yet
    QVERIFY(w.compareDock());
    QCOMPARE(w.compareDock()->windowTitle(), QString("Compare"));
    QAction* action = nullptr;
    for (QAction* menu : w.menuBar()->actions())
        if (menu->menu())
            for (QAction* a : menu->menu()->actions())
                if (a->text().contains("Quantize")) action = a;
    QVERIFY(action);
    QSignalSpy loaded(&w, &MainWindow::modelLoaded);
    w.openFile(file);
    QVERIFY(loaded.wait(60000));
    action->trigger();
    QuantizeDialog* d = w.quantizeDialog();
    QVERIFY(d);
    QVERIFY(d->isVisible());
    QCOMPARE(d->model().get(), w.model().get());
    QVERIFY(!d->hasSourceModel());
    d->close();
}

QTEST_MAIN(TestQuantizeDialog)
#include "test_quantize_dialog.moc"
