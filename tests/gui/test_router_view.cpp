// The Router dock (issue 5), offscreen: the per-layer model under QAbstractItemModelTester with its
// values against the analysis and against the gate formula g = sigmoid(alpha / tau) written here;
// the painted bars (pixel colours of the branch taken); a model without a router; live gates
// (setGates); the dock in the real MainWindow; and a screenshot of a synthetic edgefusion model
// with varied gates (screenshots/router-view.png in the build directory).
#include <QAbstractItemModelTester>
#include <QDockWidget>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <set>

#include "core/formats/format.h"
#include "core/synth.h"
#include "tests/support/test_support.h"
#include "views/main_window.h"
#include "views/router_models.h"
#include "views/router_view.h"

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

// A routed model after training might look like this: most layers firmly on the SSM branch, a
// few on attention, one or two still undecided.
const std::vector<float> kAlphas = {-4.5f, -3.8f, 3.2f, -5.0f, -0.6f, -4.1f, 4.4f, -3.5f, 0.4f, -4.8f, -2.9f, 3.9f};
constexpr float kTau = 0.8f;

double gate_of(float alpha, float tau = kTau) { return 1.0 / (1.0 + std::exp(-double(alpha) / double(tau))); }

std::shared_ptr<Model> routed_model(const std::vector<float>& alphas = kAlphas, const char* arch = "edgefusion") {
    SynthOptions o;
    o.arch = arch;
    o.dim = 64;
    o.n_layers = int64_t(alphas.size());
    o.vocab = 300;
    o.seed = 9;
    o.context_length = 2048;  // FLOPs at position 1024: attention costs what it costs at real lengths
    if (std::string(arch) == "edgefusion") o.router_temperature = kTau;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model: %s", m.message().c_str());
    if (std::string(arch) == "edgefusion")
        for (size_t i = 0; i < alphas.size(); ++i) {
            const std::string name = "blk." + std::to_string(i) + ".router_gate";
            auto t = Tensor::from_f32(name, {1}, std::span<const float>(&alphas[i], 1));
            if (!t) qFatal("%s", t.message().c_str());
            *m->find(name) = std::move(t).value();
        }
    return std::make_shared<Model>(std::move(m).value());
}

}  // namespace

class TestRouterView : public QObject {
    Q_OBJECT
private slots:
    void modelUnderTester();
    void viewMatchesAnalysis();
    void barsPaintBranches();
    void modelWithoutRouter();
    void liveGates();
    void mainWindowDock();
    void screenshot();
};

void TestRouterView::modelUnderTester() {
    auto m = routed_model();
    auto a = analyze_router(*m);
    QVERIFY2(a.ok(), a.ok() ? "" : a.message().c_str());
    RouterLayerModel model;
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setSortRole(RouterLayerModel::SortRole);
    QAbstractItemModelTester t1(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester t2(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setAnalysis(std::make_shared<const RouterAnalysis>(*a));
    QCOMPARE(model.rowCount(), int(kAlphas.size()));
    QCOMPARE(model.columnCount(), int(RouterLayerModel::ColumnCount));
    for (int r = 0; r < model.rowCount(); ++r) {
        const double g = gate_of(kAlphas[size_t(r)]);
        const bool ssm = g < 0.5;
        const double h = -(g * std::log2(g) + (1 - g) * std::log2(1 - g));
        const auto v = [&](int c, int role) { return model.data(model.index(r, c), role); };
        QCOMPARE(v(RouterLayerModel::LayerColumn, RouterLayerModel::SortRole).toLongLong(), qlonglong(r));
        QVERIFY(std::abs(v(RouterLayerModel::GateColumn, RouterLayerModel::SortRole).toDouble() - g) < 1e-6);
        QVERIFY(std::abs(v(RouterLayerModel::SsmShareColumn, RouterLayerModel::SortRole).toDouble() - (1 - g)) < 1e-6);
        QCOMPARE(v(RouterLayerModel::BranchColumn, RouterLayerModel::SortRole).toInt(), ssm ? 1 : 0);
        QVERIFY(std::abs(v(RouterLayerModel::EntropyColumn, RouterLayerModel::SortRole).toDouble() - h) < 1e-5);
        QCOMPARE(v(RouterLayerModel::BranchColumn, Qt::DisplayRole).toString(), QString(ssm ? "SSM" : "attention"));
        QCOMPARE(v(RouterLayerModel::GateColumn, Qt::DisplayRole).toString(), QString::number(g, 'f', 4));
        const QColor want = ssm ? QColor("#e07b24") : QColor("#2f6fb5");
        QCOMPARE(v(RouterLayerModel::LayerColumn, RouterLayerModel::BranchColorRole).value<QColor>(), want);
        QCOMPARE(v(RouterLayerModel::BranchColumn, Qt::DecorationRole).value<QColor>(), want);
    }
    for (int c = 0; c < model.columnCount(); ++c) {
        proxy.sort(c, Qt::DescendingOrder);
        for (int r = 1; r < proxy.rowCount(); ++r)
            QVERIFY(proxy.data(proxy.index(r - 1, c), RouterLayerModel::SortRole).toDouble() >=
                    proxy.data(proxy.index(r, c), RouterLayerModel::SortRole).toDouble());
    }
    model.setAnalysis(nullptr);
    QCOMPARE(model.rowCount(), 0);
}

void TestRouterView::viewMatchesAnalysis() {
    auto m = routed_model();
    RouterView v;
    QSignalSpy changed(&v, &RouterView::analysisChanged);
    v.setModel(m);
    QCOMPARE(changed.count(), 1);
    QVERIFY(v.applicable());
    auto direct = analyze_router(*m);
    QVERIFY(direct.ok());
    const RouterAnalysis& a = *v.analysis();
    QCOMPARE(a.layers.size(), direct->layers.size());
    for (size_t i = 0; i < a.layers.size(); ++i) QCOMPARE(a.layers[i].gate, direct->layers[i].gate);
    int n_ssm = 0;
    for (float al : kAlphas) n_ssm += gate_of(al) < 0.5;
    QCOMPARE(a.ssm_layers, int64_t(n_ssm));
    QCOMPARE(a.gflops_per_token, direct->gflops_per_token);
    QCOMPARE(a.dense_gflops_per_token, direct->dense_gflops_per_token);
    const QString s = v.summaryText();
    QVERIFY2(s.contains(QString("ssm_frac %1 %").arg(100.0 * n_ssm / double(kAlphas.size()), 0, 'f', 1)), qPrintable(s));
    QVERIFY2(s.contains(QString("%1 of %2 layers").arg(n_ssm).arg(kAlphas.size())), qPrintable(s));
    QVERIFY2(s.contains(QString("mean gate entropy %1 bits").arg(a.mean_entropy_bits, 0, 'f', 3)), qPrintable(s));
    QVERIFY2(s.contains("GFLOPs/token") && s.contains("dense twin"), qPrintable(s));
    QVERIFY2(s.contains(a.converged ? "converged: yes" : "converged: no"), qPrintable(s));
    QVERIFY(v.messageText().isEmpty());
    QCOMPARE(v.layerModel()->rowCount(), int(kAlphas.size()));
    QCOMPARE(v.layerTable()->model(), static_cast<QAbstractItemModel*>(v.layerProxy()));
}

void TestRouterView::barsPaintBranches() {
    auto m = routed_model();
    RouterView v;
    v.resize(1100, 420);
    v.setModel(m);
    v.show();
    QVERIFY(QTest::qWaitForWindowExposed(&v));
    RouterBars* bars = v.bars();
    const QImage img = bars->grab().toImage();
    const qreal dpr = img.devicePixelRatio();
    const QColor att("#2f6fb5"), ssm("#e07b24");
    for (int i = 0; i < int(kAlphas.size()); ++i) {
        const QRect r = bars->barRect(i);
        QVERIFY(r.isValid());
        const double g = gate_of(kAlphas[size_t(i)]);
        // Sample inside the taken branch's segment, a quarter of the way in (clear of the dashed 0.5 line):
        // from the bottom for attention (g >= 0.5), from the top for SSM.
        const int x = r.center().x();
        const int y = g < 0.5 ? r.top() + int(0.25 * (1 - g) * r.height()) : r.bottom() - int(0.25 * g * r.height());
        const QColor c = img.pixelColor(int(x * dpr), int(y * dpr));
        QCOMPARE(c.rgb(), (g < 0.5 ? ssm : att).rgb());
        QCOMPARE(bars->layerAt(QPoint(x, y)), i);
        // The branch not taken is drawn pale: the other segment is neither branch colour.
        const int yo = g < 0.5 ? r.bottom() - 1 : r.top() + 1;
        const QRgb other = img.pixelColor(int(x * dpr), int(yo * dpr)).rgb();
        if ((g < 0.5 ? g : 1 - g) * r.height() > 3) QVERIFY(other != att.rgb() && other != ssm.rgb());
    }
    QCOMPARE(bars->layerAt(QPoint(1, 1)), -1);
}

void TestRouterView::modelWithoutRouter() {
    RouterView v;
    v.setModel(routed_model());
    QVERIFY(v.applicable());
    v.setModel(routed_model({1.0f, 2.0f}, "llama"));
    QVERIFY(!v.applicable());
    QVERIFY(v.analysis() == nullptr);
    QCOMPARE(v.layerModel()->rowCount(), 0);
    QVERIFY2(v.messageText().contains("llama") && v.messageText().contains("no router"), qPrintable(v.messageText()));
    QVERIFY(v.summaryText().isEmpty());
    QVERIFY(!v.setGates({0.1f, 0.9f}));
    v.setModel(nullptr);
    QVERIFY(!v.applicable());
}

void TestRouterView::liveGates() {
    auto m = routed_model();
    RouterView v;
    v.setModel(m);
    QSignalSpy changed(&v, &RouterView::analysisChanged);
    std::vector<float> g(kAlphas.size(), 0.9f);
    g[3] = 0.05f;
    QVERIFY(v.setGates(g));
    QCOMPARE(changed.count(), 1);
    QCOMPARE(v.analysis()->ssm_layers, int64_t(1));
    QCOMPARE(v.layerModel()->data(v.layerModel()->index(3, RouterLayerModel::BranchColumn)).toString(), QString("SSM"));
    QVERIFY(std::abs(v.layerModel()->data(v.layerModel()->index(0, RouterLayerModel::GateColumn), RouterLayerModel::SortRole).toDouble() -
                     double(0.9f)) < 1e-12);
    QVERIFY(v.summaryText().contains("1 of 12 layers"));
    // Wrong length: refused, the view keeps what it shows.
    QVERIFY(!v.setGates({0.5f}));
    QCOMPARE(changed.count(), 1);
    QCOMPARE(v.analysis()->ssm_layers, int64_t(1));
    // Back to the checkpoint's own gates.
    v.setModel(m);
    QVERIFY(std::abs(v.analysis()->layers[3].gate - gate_of(kAlphas[3])) < 1e-6);
}

void TestRouterView::mainWindowDock() {
    QTemporaryDir dir;
    const QString path = dir.filePath("hybrid.gguf");
    QVERIFY(save_model(*routed_model(), path.toStdString()).ok());
    MainWindow w;
    QVERIFY(w.routerView() != nullptr);
    QVERIFY(w.routerDock() != nullptr);
    QCOMPARE(w.routerDock()->widget(), static_cast<QWidget*>(w.routerView()));
    QSignalSpy loaded(&w, &MainWindow::modelLoaded);
    w.openFile(path);
    QVERIFY(loaded.wait(60000));
    QVERIFY(w.routerView()->applicable());
    QCOMPARE(w.routerView()->layerModel()->rowCount(), int(kAlphas.size()));
    QCOMPARE(w.routerView()->model(), w.model());
}

void TestRouterView::screenshot() {
    auto m = routed_model();
    RouterView v;
    v.resize(1180, 440);
    v.setModel(m);
    v.show();
    QVERIFY(QTest::qWaitForWindowExposed(&v));
    const QImage shot = v.grab().toImage();
    const QString file = screenshot_dir() + "/router-view.png";
    QVERIFY(shot.save(file, "PNG", 0));
    QImage back(file);
    QVERIFY(!back.isNull());
    std::set<QRgb> colors;
    for (int y = 0; y < back.height(); y += 3)
        for (int x = 0; x < back.width(); x += 3) colors.insert(back.pixel(x, y));
    QVERIFY2(colors.size() > 20, qPrintable(QString("only %1 colours: blank screenshot?").arg(colors.size())));
}

QTEST_MAIN(TestRouterView)
#include "test_router_view.moc"
