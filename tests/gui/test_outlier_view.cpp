// The outlier view (issue 4), offscreen: its two item models under QAbstractItemModelTester, the real
// worker path (analysis on the view's thread pool, result by queued signal) checked against a direct
// ef::analyze_outliers call, the overview's documented aggregate recomputed here from the per-block
// arrays, cancel keeping the previous result, the clicked tensor's outlier markers, and screenshots.
#include <QAbstractItemModelTester>
#include <QDir>
#include <QDockWidget>
#include <QImage>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QtTest>
#include <cmath>
#include <set>

#include "core/outlier_analysis.h"
#include "core/synth.h"
#include "tests/support/test_support.h"
#include "views/heatmap_canvas.h"
#include "views/heatmap_widget.h"
#include "views/main_window.h"
#include "views/outlier_models.h"
#include "views/outlier_view.h"

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

std::shared_ptr<const Model> synth(int64_t dim = 64, int64_t layers = 3) {
    SynthOptions o;
    o.arch = "llama";
    o.dim = dim;
    o.n_layers = layers;
    o.vocab = 300;
    o.seed = 5;
    o.context_length = 64;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    return std::make_shared<const Model>(std::move(m).value());
}

OutlierAnalysisOptions opts(int64_t block, double k, double p) {
    OutlierAnalysisOptions o;
    o.block = block;
    o.k = k;
    o.fraction = p;
    return o;
}

// The overview's documented cell value, written out independently of overview_value().
double expected_cell(const TensorOutliers& t, OutlierStatistic s, int64_t b) {
    if (b >= t.blocks_per_row) return NAN;
    double sum = 0;
    int n = 0;
    for (int64_t r = 0; r < t.rows; ++r) {
        const size_t i = size_t(r * t.blocks_per_row + b);
        const double v = s == OutlierStatistic::MaxOverRms ? double(t.block_max_over_rms[i])
                         : s == OutlierStatistic::Kurtosis ? double(t.block_kurtosis[i])
                         : s == OutlierStatistic::BeyondKSigma ? double(t.block_beyond_k_sigma[i])
                                                              : double(t.block_budget[i]);
        if (v == v) {
            sum += v;
            ++n;
        }
    }
    return n ? sum / n : NAN;
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b)); }

bool wait_for(QSignalSpy& spy, int ms = 60000) {
    if (!spy.isEmpty()) return true;
    return spy.wait(ms);
}

void save_and_check(QWidget& w, const QString& name) {
    const QImage shot = w.grab().toImage();
    const QString file = screenshot_dir() + "/" + name;
    QVERIFY(shot.save(file, "PNG", 0));  // quality 0: strongest zlib compression, same pixels
    QImage back(file);
    QVERIFY(!back.isNull());
    std::set<QRgb> colors;
    for (int y = 0; y < back.height(); y += 3)
        for (int x = 0; x < back.width(); x += 3) colors.insert(back.pixel(x, y));
    QVERIFY2(colors.size() > 60, qPrintable(QString("only %1 colours: blank screenshot?").arg(colors.size())));
}

}  // namespace

class TestOutlierView : public QObject {
    Q_OBJECT
private slots:
    void modelsUnderTester();
    void workerMatchesDirect();
    void overviewAggregate_data();
    void overviewAggregate();
    void cancelKeepsPrevious();
    void markersAreKeptOutliers();
    void mainWindowStories260K();
};

void TestOutlierView::modelsUnderTester() {
    auto m = synth();
    auto a = analyze_outliers(*m, opts(16, 3.0, 0.01));
    QVERIFY2(a, a ? "" : a.message().c_str());
    OutlierOverviewModel overview;
    OutlierLayerModel layers;
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&layers);
    proxy.setSortRole(OutlierLayerModel::SortRole);
    QAbstractItemModelTester t1(&overview, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester t2(&layers, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester t3(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    overview.setAnalysis(*a);
    layers.setAnalysis(*a);
    QCOMPARE(overview.rowCount(), int((*a)->tensors.size()));
    QCOMPARE(layers.rowCount(), int((*a)->layers.size()));
    for (auto s : {OutlierStatistic::Kurtosis, OutlierStatistic::BeyondKSigma, OutlierStatistic::Budget}) overview.setStatistic(s);
    for (int c = 0; c < layers.columnCount(); ++c) proxy.sort(c, Qt::DescendingOrder);
    overview.setAnalysis(nullptr);
    layers.setAnalysis(nullptr);
    QCOMPARE(overview.rowCount(), 0);
    QCOMPARE(layers.rowCount(), 0);
}

void TestOutlierView::workerMatchesDirect() {
    auto m = synth();
    OutlierView v;
    v.setModel(m);
    v.setOptions(16, 2.5, 0.01);
    QSignalSpy ready(&v, &OutlierView::analysisReady);
    QVERIFY(v.startAnalysis());
    QVERIFY(v.busy());
    QVERIFY(wait_for(ready));
    QVERIFY(!v.busy());
    auto direct = analyze_outliers(*m, opts(16, 2.5, 0.01));
    QVERIFY2(direct, direct ? "" : direct.message().c_str());
    const OutlierAnalysis& d = **direct;
    QVERIFY(d.budget > 0);
    QCOMPARE(v.analysis()->budget, d.budget);
    QCOMPARE(v.analysis()->threshold, d.threshold);
    OutlierLayerModel* lm = v.layerModel();
    QCOMPARE(lm->rowCount(), int(d.layers.size()));
    for (int r = 0; r < lm->rowCount(); ++r) {
        const LayerOutliers& l = d.layers[size_t(r)];
        auto val = [&](int col) { return lm->index(r, col).data(OutlierLayerModel::SortRole); };
        QCOMPARE(val(OutlierLayerModel::WeightsColumn).toLongLong(), l.weights);
        QCOMPARE(val(OutlierLayerModel::BudgetColumn).toLongLong(), l.budget);
        QCOMPARE(val(OutlierLayerModel::BeyondColumn).toLongLong(), l.beyond_k_sigma);
        QCOMPARE(val(OutlierLayerModel::BudgetShareColumn).toDouble(), l.budget_share);
        QCOMPARE(val(OutlierLayerModel::MaxOverRmsColumn).toDouble(), l.max_over_rms);
        QCOMPARE(lm->index(r, OutlierLayerModel::LayerColumn).data().toString(),
                 l.layer < 0 ? QString("other") : QString::number(l.layer));
    }
    // Sorting the table by budget share (descending) through the view's proxy.
    v.layerTable()->sortByColumn(OutlierLayerModel::BudgetShareColumn, Qt::DescendingOrder);
    QSortFilterProxyModel* px = v.layerProxy();
    for (int r = 1; r < px->rowCount(); ++r)
        QVERIFY(px->index(r - 1, OutlierLayerModel::BudgetShareColumn).data(OutlierLayerModel::SortRole).toDouble() >=
                px->index(r, OutlierLayerModel::BudgetShareColumn).data(OutlierLayerModel::SortRole).toDouble());
    // Per-layer sums of the per-tensor numbers match the table (independent of summarize_outlier_layers).
    for (const LayerOutliers& l : d.layers) {
        int64_t w = 0, b = 0;
        for (const TensorOutliers& t : d.tensors)
            if (t.layer == l.layer) {
                w += t.finite;
                b += t.budget;
            }
        QCOMPARE(l.weights, w);
        QCOMPARE(l.budget, b);
    }
    v.resize(1100, 520);
    v.show();
    QVERIFY(QTest::qWaitForWindowExposed(&v));
    v.setStatistic(OutlierStatistic::MaxOverRms);
    QTest::qWait(30);
    save_and_check(v, "outlier_view_synth.png");
}

void TestOutlierView::overviewAggregate_data() {
    QTest::addColumn<int>("stat");
    QTest::newRow("max/rms") << int(OutlierStatistic::MaxOverRms);
    QTest::newRow("kurtosis") << int(OutlierStatistic::Kurtosis);
    QTest::newRow("beyond k sigma") << int(OutlierStatistic::BeyondKSigma);
    QTest::newRow("budget") << int(OutlierStatistic::Budget);
}

void TestOutlierView::overviewAggregate() {
    QFETCH(int, stat);
    const auto s = OutlierStatistic(stat);
    auto m = synth();
    auto direct = analyze_outliers(*m, opts(24, 3.0, 0.02));  // B = 24 leaves short last blocks
    QVERIFY2(direct, direct ? "" : direct.message().c_str());
    const OutlierAnalysis& d = **direct;
    OutlierView v;
    v.setModel(m);
    v.setOptions(24, 3.0, 0.02);
    v.setStatistic(s);
    QSignalSpy ready(&v, &OutlierView::analysisReady);
    QVERIFY(v.startAnalysis());
    QVERIFY(wait_for(ready));
    OutlierOverviewModel* om = v.overviewModel();
    QCOMPARE(om->rowCount(), int(d.tensors.size()));
    int64_t widest = 0;
    for (const auto& t : d.tensors) widest = std::max(widest, t.blocks_per_row);
    QCOMPARE(om->columnCount(), int(widest));
    int prev_layer = -1;
    bool seen_other = false;
    std::set<std::string> names;
    for (int r = 0; r < om->rowCount(); ++r) {
        const TensorOutliers* t = om->tensorAt(r);
        QVERIFY(t);
        names.insert(t->name);
        // Grouped by layer: ascending layers, tensors outside the stack last.
        if (t->layer < 0) seen_other = true;
        else {
            QVERIFY(!seen_other);
            QVERIFY(t->layer >= prev_layer);
            prev_layer = t->layer;
        }
        const TensorOutliers* dt = d.find(t->name);
        QVERIFY(dt);
        QCOMPARE(om->headerData(r, Qt::Vertical).toString(), QString::fromStdString(t->name));
        for (int c = 0; c < om->columnCount(); ++c) {
            const double want = expected_cell(*dt, s, c);
            const double got = om->index(r, c).data(OutlierOverviewModel::ValueRole).toDouble();
            QVERIFY2(same(got, want), qPrintable(QString("%1 block %2: %3 vs %4").arg(t->name.c_str()).arg(c).arg(got).arg(want)));
        }
    }
    QCOMPARE(names.size(), d.tensors.size());
    // The canvas shows the overview grid; the read-out names the tensor and the block's columns.
    QVERIFY(!v.describeCell(0, 0).isEmpty());
    QVERIFY(v.describeCell(0, 0).contains(QString::fromStdString(om->tensorAt(0)->name)));
}

void TestOutlierView::cancelKeepsPrevious() {
    auto m = synth(128, 4);
    OutlierView v;
    v.setModel(m);
    v.setOptions(32, 3.0, 0.005);
    QSignalSpy ready(&v, &OutlierView::analysisReady), cancelled(&v, &OutlierView::analysisCancelled);
    QVERIFY(v.startAnalysis());
    QVERIFY(wait_for(ready));
    const OutlierAnalysisPtr first = v.analysis();
    const auto share0 = v.layerModel()->index(0, OutlierLayerModel::BudgetShareColumn).data(OutlierLayerModel::SortRole);
    v.setOptions(16, 2.0, 0.03);
    QVERIFY(v.startAnalysis());
    v.cancel();
    QVERIFY(wait_for(cancelled));
    QCOMPARE(ready.size(), 1);
    QVERIFY(!v.busy());
    QCOMPARE(v.analysis().get(), first.get());
    QCOMPARE(v.overviewModel()->analysis(), first.get());
    QCOMPARE(v.layerModel()->index(0, OutlierLayerModel::BudgetShareColumn).data(OutlierLayerModel::SortRole), share0);
    // A fresh run after the cancel goes through with the new options.
    QVERIFY(v.startAnalysis());
    QVERIFY(ready.wait(60000));
    QCOMPARE(v.analysis()->block, int64_t(16));
    // Invalid options: p above 5 % cannot be entered; a model-less view refuses.
    OutlierView empty;
    QSignalSpy failed(&empty, &OutlierView::analysisFailed);
    QVERIFY(!empty.startAnalysis());
    QCOMPARE(failed.size(), 1);
}

void TestOutlierView::markersAreKeptOutliers() {
    auto m = synth();
    OutlierView v;
    v.setModel(m);
    v.setOptions(16, 3.0, 0.01);
    QSignalSpy ready(&v, &OutlierView::analysisReady);
    QVERIFY(v.startAnalysis());
    QVERIFY(wait_for(ready));
    const OutlierAnalysis& a = *v.analysis();
    QSignalSpy activated(&v, &OutlierView::tensorActivated);
    int64_t marked_total = 0;
    for (int r = 0; r < v.overviewModel()->rowCount(); ++r) {
        activated.clear();
        v.activateRow(r);
        QTRY_COMPARE_WITH_TIMEOUT(activated.size(), 1, 30000);  // found on a worker thread
        const int ti = activated.first().at(0).toInt();
        const auto pos = activated.first().at(1).value<std::vector<std::pair<int64_t, int64_t>>>();
        const Tensor& t = m->tensors[size_t(ti)];
        const TensorOutliers* to = v.overviewModel()->tensorAt(r);
        QCOMPARE(t.name, to->name);
        // Random float weights have no ties at the threshold: the marks are exactly the tensor's budget,
        // and they fall in the blocks the per-block budget counts name.
        QCOMPARE(int64_t(pos.size()), to->budget);
        std::vector<int32_t> per_block(to->block_budget.size(), 0);
        auto vals = t.to_f32();
        QVERIFY(vals);
        for (auto [row, col] : pos) {
            QVERIFY(std::abs((*vals)[size_t(row * to->cols + col)]) >= a.threshold);
            ++per_block[to->index(row, col / to->block)];
        }
        QCOMPARE(per_block, to->block_budget);
        marked_total += int64_t(pos.size());
    }
    QCOMPARE(marked_total, a.budget);

    // Two clicks before the scans report: only the later one is shown (the earlier result is dropped).
    QVERIFY(v.overviewModel()->rowCount() >= 2);
    activated.clear();
    v.activateRow(0);
    v.activateRow(1);
    QTRY_COMPARE_WITH_TIMEOUT(activated.size(), 1, 30000);
    QTest::qWait(100);
    QCOMPARE(activated.size(), 1);
    QCOMPARE(m->tensors[size_t(activated.first().at(0).toInt())].name, v.overviewModel()->tensorAt(1)->name);
}

void TestOutlierView::mainWindowStories260K() {
    EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
    EF_REQUIRE_SHARED(tok, "models/tok512.bin");
    QCoreApplication::setOrganizationName("EdgeFusionTests");
    QCoreApplication::setApplicationName("test_outlier_view");
    MainWindow w;
    w.resize(1480, 920);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QSignalSpy loaded(&w, &MainWindow::modelLoaded);
    w.openFile(stories);
    QVERIFY(loaded.wait(60000));
    w.outlierDock()->show();
    w.outlierDock()->raise();
    OutlierView* v = w.outlierView();
    v->setOptions(16, 3.0, 0.005);
    QSignalSpy ready(v, &OutlierView::analysisReady);
    QVERIFY(v->startAnalysis());
    QVERIFY(wait_for(ready));
    QCOMPARE(v->overviewModel()->rowCount(), int(v->analysis()->tensors.size()));
    // Click the row of the first layer's query projection: the tensor heatmap shows it, marked.
    int row = -1;
    for (int r = 0; r < v->overviewModel()->rowCount(); ++r)
        if (v->overviewModel()->tensorAt(r)->name == "blk.0.attn_q.weight") row = r;
    QVERIFY(row >= 0);
    v->activateRow(row);
    // The kept outliers are found on a worker; the tensor is selected once they are.
    auto selected_name = [&] {
        return w.selectedTensor() < 0 ? QString() : QString::fromStdString(w.model()->tensors[size_t(w.selectedTensor())].name);
    };
    QTRY_COMPARE_WITH_TIMEOUT(selected_name(), QString("blk.0.attn_q.weight"), 30000);
    QTRY_VERIFY_WITH_TIMEOUT(w.heatmapWidget()->heatmap() && !w.heatmapWidget()->busy(), 30000);
    QTRY_COMPARE_WITH_TIMEOUT(int64_t(w.heatmapWidget()->markerCount()), v->overviewModel()->tensorAt(row)->budget, 30000);
    QTest::qWait(50);
    save_and_check(w, "outlier_view_stories260K.png");
}

QTEST_MAIN(TestOutlierView)
#include "test_outlier_view.moc"
