// The Compare dock (issue 4, GUI), offscreen: the variants table under QAbstractItemModelTester, the
// view's worker path (compare_variants on its thread pool, result by queued signal) checked against
// a direct compare_variants call with the same options (every deterministic metric; tokens/s is a
// timing), the two charts' points (one per variant at (memory MB, KL) and (memory MB, tokens/s)),
// the Markdown / CSV / JSON export, cancel, a refused start, and a stories260K screenshot.
#include <QAbstractItemModelTester>
#include <QChart>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QScatterSeries>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTemporaryDir>
#include <QtTest>
#include <fstream>
#include <set>
#include <sstream>

#include "core/formats/format.h"
#include "core/synth.h"
#include "quant/compare.h"
#include "tests/support/test_support.h"
#include "views/compare_models.h"
#include "views/compare_view.h"

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

std::shared_ptr<const Model> synth() {
    SynthOptions o;
    o.arch = "llama";
    o.dim = 64;
    o.n_layers = 2;
    o.ffn_hidden = 96;
    o.vocab = 300;
    o.seed = 3;
    o.context_length = 64;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    return std::make_shared<const Model>(std::move(m).value());
}

// Tiny options: two held-out windows of 32 tokens, one calibration window, no tasks.
CompareOptions tiny(const QString& text) {
    CompareOptions o;
    o.variants = {"f32", "q8_0", "ef"};
    o.bits = 4.0;
    o.n_ctx = 32;
    o.chunks = 2;
    o.calib_windows = 1;
    o.tasks = {};
    o.limit = 0;
    o.bench_tokens = 4;
    o.threads = 1;
    o.text_origin = text.toStdString();
    return o;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool wait_ready(CompareView& v, int ms = 120000) {
    QSignalSpy ready(&v, &CompareView::compareReady), failed(&v, &CompareView::compareFailed);
    if (!v.start()) return false;
    QElapsedTimer t;
    t.start();
    while (ready.isEmpty() && failed.isEmpty() && t.elapsed() < ms) QTest::qWait(20);
    if (!failed.isEmpty()) qWarning("compare failed: %s", qPrintable(failed.first().first().toString()));
    return !ready.isEmpty();
}

// The chart's points: variant name -> (x, y).
std::map<std::string, QPointF> points(QChart* c) {
    std::map<std::string, QPointF> out;
    for (QAbstractSeries* s : c->series()) {
        auto* sc = qobject_cast<QScatterSeries*>(s);
        if (!sc || sc->count() != 1) return {};
        out[sc->name().toStdString()] = sc->at(0);
        if (sc->pointLabelsFormat() != sc->name() || !sc->pointLabelsVisible()) return {};  // labelled by name
    }
    return out;
}

}  // namespace

class TestCompareView : public QObject {
    Q_OBJECT
private slots:
    void tableModelUnderTester();
    void workerMatchesDirect();
    void exportTable_data();
    void exportTable();
    void cancelAndRefuse();
    void screenshotStories260K();

private:
    CompareResultPtr shared_result_;  // from workerMatchesDirect, for the export rows
};

void TestCompareView::tableModelUnderTester() {
    auto r = std::make_shared<CompareResult>();
    r->tasks = {"arc_easy", "piqa"};
    for (int i = 0; i < 3; ++i) {
        VariantResult v;
        v.name = "v" + std::to_string(i);
        v.kl = 0.1 * i;
        v.ppl = 10 + i;
        v.task_acc = {{"arc_easy", 0.25 * i}, {"piqa", 0.5}};
        v.memory_bytes = uint64_t(1000000) * uint64_t(3 - i);
        v.dtypes = {{"f32", 3}, {"q8_0", 4}};
        r->variants.push_back(v);
    }
    CompareTableModel model;
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setSortRole(CompareTableModel::SortRole);
    QAbstractItemModelTester t1(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester t2(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setResult(r);
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.columnCount(), 16 + 2);  // 16 fixed metrics + one per task
    // Column <-> metric mapping is a bijection, the task columns named after the tasks.
    std::set<int> seen;
    for (int c = 0; c < model.columnCount(); ++c) {
        int task = -1;
        const auto m = model.metricOf(c, &task);
        QCOMPARE(model.column(m, task), c);
        seen.insert(c);
    }
    QCOMPARE(model.headerData(model.column(CompareTableModel::TaskMetric, 1), Qt::Horizontal).toString(), QString("piqa"));
    QCOMPARE(model.index(2, model.column(CompareTableModel::TaskMetric, 0)).data(CompareTableModel::SortRole).toDouble(), 0.5);
    QCOMPARE(model.index(1, model.column(CompareTableModel::MemoryMbMetric)).data(CompareTableModel::SortRole).toDouble(), 2.0);
    QCOMPARE(model.index(0, model.column(CompareTableModel::DTypesMetric)).data().toString(), QString("3 f32, 4 q8_0"));
    for (int c = 0; c < model.columnCount(); ++c) proxy.sort(c, Qt::DescendingOrder);
    model.setResult(nullptr);
    QCOMPARE(model.rowCount(), 0);
}

void TestCompareView::workerMatchesDirect() {
    EF_REQUIRE_SHARED(text, "text/wikitext-2-raw-test.txt");
    auto m = synth();
    const CompareOptions o = tiny(text);
    CompareView v;
    v.setModel(m, "synth");
    v.setOptions(o);
    const CompareOptions back = v.options();
    QCOMPARE(back.variants, o.variants);
    QCOMPARE(back.n_ctx, o.n_ctx);
    QVERIFY(back.tasks.empty());
    QVERIFY(wait_ready(v));
    QVERIFY(!v.busy());
    const CompareResult& got = *v.result();
    QCOMPARE(got.model, std::string("synth"));

    CompareOptions direct_o = o;
    direct_o.text = read_all(o.text_origin);
    auto direct = compare_variants(*m, direct_o);
    QVERIFY2(direct, direct ? "" : direct.message().c_str());
    QCOMPARE(got.variants.size(), direct->variants.size());
    QCOMPARE(got.bits_used, direct->bits_used);
    QCOMPARE(got.scored_tokens, direct->scored_tokens);
    CompareTableModel* t = v.tableModel();
    QCOMPARE(t->rowCount(), int(direct->variants.size()));
    for (int r = 0; r < t->rowCount(); ++r) {
        const VariantResult& d = direct->variants[size_t(r)];
        auto val = [&](CompareTableModel::Metric mm) { return t->index(r, t->column(mm)).data(CompareTableModel::SortRole); };
        QCOMPARE(val(CompareTableModel::VariantMetric).toString().toStdString(), d.name);
        QCOMPARE(val(CompareTableModel::PplMetric).toDouble(), d.ppl);
        QCOMPARE(val(CompareTableModel::PplErrorMetric).toDouble(), d.ppl_error);
        QCOMPARE(val(CompareTableModel::KlMetric).toDouble(), d.kl);
        QCOMPARE(val(CompareTableModel::KlErrorMetric).toDouble(), d.kl_error);
        QCOMPARE(val(CompareTableModel::Top1Metric).toDouble(), d.top1);
        QCOMPARE(val(CompareTableModel::MeanAccMetric).toDouble(), d.mean_acc);
        QCOMPARE(val(CompareTableModel::WeightMbMetric).toDouble(), double(d.weight_bytes) / 1e6);
        QCOMPARE(val(CompareTableModel::StateMbMetric).toDouble(), double(d.state_bytes) / 1e6);
        QCOMPARE(val(CompareTableModel::MemoryMbMetric).toDouble(), double(d.memory_bytes) / 1e6);
        QCOMPARE(val(CompareTableModel::GflopsMetric).toDouble(), d.gflops_per_token);
        QCOMPARE(val(CompareTableModel::BitsMetric).toDouble(), d.bits_per_weight);
        QCOMPARE(val(CompareTableModel::QuantBitsMetric).toDouble(), d.quant_bits_per_weight);
        // tokens/s is measured (timing): the table shows the view's own run.
        QCOMPARE(val(CompareTableModel::TokensPerSecondMetric).toDouble(), got.variants[size_t(r)].tokens_per_s);
        QVERIFY(got.variants[size_t(r)].tokens_per_s > 0);
    }
    // The reference has KL 0 to itself; the quantized variants do not.
    QCOMPARE(direct->variants[0].kl, 0.0);
    QVERIFY(direct->variants[1].kl > 0);

    // One labelled point per variant: (memory MB, KL) and (memory MB, tokens/s).
    const auto kl = points(v.klChart()), speed = points(v.speedChart());
    QCOMPARE(kl.size(), got.variants.size());
    QCOMPARE(speed.size(), got.variants.size());
    for (const VariantResult& x : got.variants) {
        QVERIFY(kl.count(x.name) && speed.count(x.name));
        QCOMPARE(kl.at(x.name).x(), double(x.memory_bytes) / 1e6);
        QCOMPARE(kl.at(x.name).y(), x.kl);
        QCOMPARE(speed.at(x.name).x(), double(x.memory_bytes) / 1e6);
        QCOMPARE(speed.at(x.name).y(), x.tokens_per_s);
    }
    shared_result_ = v.result();
}

void TestCompareView::exportTable_data() {
    QTest::addColumn<QString>("ext");
    QTest::newRow("markdown") << "md";
    QTest::newRow("csv") << "csv";
    QTest::newRow("json") << "json";
    QTest::newRow("unknown extension") << "txt";
}

void TestCompareView::exportTable() {
    QFETCH(QString, ext);
    EF_REQUIRE_SHARED(text, "text/wikitext-2-raw-test.txt");
    CompareView v;
    v.setModel(synth(), "synth");
    CompareOptions o = tiny(text);
    o.variants = {"f32", "q8_0"};
    v.setOptions(o);
    QTemporaryDir dir;
    const QString path = dir.filePath("table." + ext);
    QVERIFY(!v.saveTable(path).isEmpty());  // nothing to export yet
    QVERIFY(wait_ready(v));
    const QString err = v.saveTable(path);
    if (ext == "txt") {
        QVERIFY(err.contains(".md, .csv or .json"));
        QVERIFY(!QFile::exists(path));
        return;
    }
    QVERIFY2(err.isEmpty(), qPrintable(err));
    const std::string got = read_all(path.toStdString());
    const CompareResult& r = *v.result();
    if (ext == "md") QCOMPARE(got, compare_markdown(r));
    if (ext == "csv") QCOMPARE(got, compare_csv(r));
    if (ext == "json") {
        QCOMPARE(got, compare_json(r) + "\n");
        // Read back with Qt's JSON parser: one entry per table row, the same KL.
        const QJsonDocument doc = QJsonDocument::fromJson(QByteArray::fromStdString(got));
        QVERIFY(doc.isObject());
        const QJsonArray vars = doc.object().value("variants").toArray();
        QCOMPARE(vars.size(), qsizetype(v.tableModel()->rowCount()));
        for (int i = 0; i < vars.size(); ++i) {
            const QJsonObject x = vars[i].toObject();
            QCOMPARE(x.value("variant").toString(), v.tableModel()->index(i, 0).data().toString());
            QCOMPARE(x.value("kl").toDouble(),
                     v.tableModel()->index(i, v.tableModel()->column(CompareTableModel::KlMetric)).data(CompareTableModel::SortRole).toDouble());
        }
    }
    // Every row of the table is in the file.
    for (const VariantResult& x : r.variants) QVERIFY(got.find(x.name) != std::string::npos);
}

void TestCompareView::cancelAndRefuse() {
    EF_REQUIRE_SHARED(text, "text/wikitext-2-raw-test.txt");
    CompareView v;
    QSignalSpy failed(&v, &CompareView::compareFailed);
    QVERIFY(!v.start());  // no model
    QCOMPARE(failed.size(), 1);
    v.setModel(synth(), "synth");
    CompareOptions o = tiny(text);
    o.variants = {"f32", "q8_0", "gptq4", "q4_k_m", "q3_k_m", "ef"};
    o.chunks = 0;  // every held-out window: long enough for the cancel to land
    v.setOptions(o);
    QSignalSpy cancelled(&v, &CompareView::compareCancelled), ready(&v, &CompareView::compareReady);
    QVERIFY(v.start());
    QVERIFY(v.busy());
    QTest::qWait(30);
    v.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(!cancelled.isEmpty(), 120000);
    QCOMPARE(ready.size(), 0);
    QVERIFY(!v.busy());
    QVERIFY(!v.result());
    QCOMPARE(v.tableModel()->rowCount(), 0);
    // An empty variant list means all of them (as compare_variants reads it).
    o.variants = {};
    v.setOptions(o);
    QCOMPARE(v.options().variants.size(), compare_variant_names().size());
    failed.clear();
    // A text that does not exist: the worker's error is shown.
    v.setTextPath("/nonexistent/text.txt");
    QVERIFY(v.start());
    QTRY_VERIFY_WITH_TIMEOUT(!failed.isEmpty(), 30000);
    QVERIFY(failed.first().first().toString().contains("cannot open"));
    QVERIFY(v.statusText().contains("cannot open"));
}

void TestCompareView::screenshotStories260K() {
    EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
    EF_REQUIRE_SHARED(tok, "models/tok512.bin");
    EF_REQUIRE_SHARED(text, "text/wikitext-2-raw-test.txt");
    EF_REQUIRE_SHARED(evals, "eval/arc_easy.jsonl");
    LoadOptions lo;
    lo.tokenizer_path = tok.toStdString();
    auto m = load_model(stories.toStdString(), lo);
    QVERIFY2(m, m ? "" : m.message().c_str());
    CompareView v;
    v.setModel(std::make_shared<const Model>(std::move(*m)), "stories260K");
    CompareOptions o = tiny(text);
    o.variants = {"f32", "q8_0", "q4_k_m", "q3_k_m", "ef"};
    o.bits = 3.1;
    o.n_ctx = 64;
    o.chunks = 4;
    o.tasks = {"arc_easy"};
    o.limit = 10;
    o.bench_tokens = 16;
    o.eval_dir = QFileInfo(evals).absolutePath().toStdString();
    v.setOptions(o);
    v.resize(1500, 820);
    v.show();
    QVERIFY(QTest::qWaitForWindowExposed(&v));
    QVERIFY(wait_ready(v));
    QCOMPARE(v.tableModel()->rowCount(), 5);
    QTest::qWait(80);
    const QImage shot = v.grab().toImage();
    const QString file = screenshot_dir() + "/compare-view-stories260k.png";
    QVERIFY(shot.save(file, "PNG", 0));
    QImage back(file);
    QVERIFY(!back.isNull());
    std::set<QRgb> colors;
    for (int y = 0; y < back.height(); y += 3)
        for (int x = 0; x < back.width(); x += 3) colors.insert(back.pixel(x, y));
    QVERIFY2(colors.size() > 20, qPrintable(QString("only %1 colours: blank screenshot?").arg(colors.size())));
}

QTEST_MAIN(TestCompareView)
#include "test_compare_view.moc"
