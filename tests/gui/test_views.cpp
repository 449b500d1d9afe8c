// views/: the item models under QAbstractItemModelTester on synthetic models of every architecture
// row, the tensor table's background statistics, and the heatmap widget's worker round trip.
#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QMouseEvent>
#include <QSortFilterProxyModel>
#include <QWheelEvent>
#include <QtTest>
#include <cmath>
#include <map>
#include <set>

#include "core/arch/architecture.h"
#include "core/synth.h"
#include "views/heatmap_canvas.h"
#include "views/heatmap_widget.h"
#include "views/model_tree_model.h"
#include "views/tensor_table_model.h"

using namespace ef;
using namespace ef::views;

namespace {

std::shared_ptr<const Model> synth(const QString& arch, int64_t dim = 64, int64_t layers = 4) {
    SynthOptions o;
    o.arch = arch.toStdString();
    o.dim = dim;
    o.n_layers = layers;
    o.vocab = 300;
    o.seed = 11;
    o.context_length = 128;
    auto m = synth_model(o);
    if (!m) qFatal("synth_model(%s): %s", qPrintable(arch), m.message().c_str());
    m->source_path = "/tmp/" + o.arch + ".gguf";
    return std::make_shared<const Model>(std::move(m).value());
}

void add_arch_rows() {
    QTest::addColumn<QString>("arch");
    for (const ArchitectureInfo* a : architectures()) QTest::newRow(std::string(a->name).c_str()) << QString::fromUtf8(a->name.data(), qsizetype(a->name.size()));
}

// Layer number of "blk.N....", -1 otherwise; parsed here, not with core's helper.
int layer_of(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    return std::stoi(name.substr(4, name.find('.', 4) - 4));
}

}  // namespace

class TestViews : public QObject {
    Q_OBJECT
private slots:
    void treeModel_data() { add_arch_rows(); }
    void treeModel();
    void treeBlocks_data();
    void treeBlocks();
    void tableModel_data() { add_arch_rows(); }
    void tableModel();
    void tableSupersededJob();
    void colorMap();
    void heatmapWidget();
    void heatmapLatestSelectionWins();
};

void TestViews::treeModel() {
    QFETCH(QString, arch);
    ModelTreeModel tree;
    QAbstractItemModelTester tester(&tree, QAbstractItemModelTester::FailureReportingMode::QtTest);
    const auto m = synth(arch);
    tree.setModel(m);
    QCOMPARE(tree.rowCount(), 1);
    const QModelIndex top = tree.index(0, 0);
    QCOMPARE(top.data().toString(), QString(arch + ".gguf"));
    QCOMPARE(top.data(ModelTreeModel::NodeKindRole).toString(), QString("model"));

    int globals = 0;
    std::map<int, int64_t> layer_params;
    for (const Tensor& t : m->tensors) {
        const int l = layer_of(t.name);
        if (l < 0) ++globals;
        else layer_params[l] += t.numel();
    }
    QCOMPARE(tree.rowCount(top), globals + int(m->layers.size()));
    // Globals first, then layers with their plan in the label.
    for (int r = 0; r < globals; ++r) QCOMPARE(tree.index(r, 0, top).data(ModelTreeModel::NodeKindRole).toString(), QString("tensor"));
    std::set<int> seen;
    for (size_t l = 0; l < m->layers.size(); ++l) {
        const QModelIndex li = tree.index(globals + int(l), 0, top);
        QCOMPARE(li.data(ModelTreeModel::NodeKindRole).toString(), QString("layer"));
        const LayerDesc& d = m->layers[l];
        QString expect = QString("layer %1 · %2").arg(l).arg(QString::fromStdString(std::string(mixer_name(d.mixer))));
        if (d.mixer == MixerKind::Routed) expect += QString(" (attention | %1)").arg(QString::fromStdString(std::string(mixer_name(d.ssm_branch))));
        if (d.ffn == FfnKind::SwiGLU) expect += " · swiglu";
        QCOMPARE(li.data().toString(), expect);
        QCOMPARE(tree.index(li.row(), ModelTreeModel::ParametersColumn, top).data().toString().remove(',').toLongLong(),
                 qlonglong(layer_params[int(l)]));
        for (int b = 0; b < tree.rowCount(li); ++b) {
            const QModelIndex bi = tree.index(b, 0, li);
            QCOMPARE(bi.data(ModelTreeModel::NodeKindRole).toString(), QString("block"));
            for (int t = 0; t < tree.rowCount(bi); ++t) {
                const int ti = tree.index(t, 0, bi).data(ModelTreeModel::TensorIndexRole).toInt();
                QVERIFY(ti >= 0 && size_t(ti) < m->tensors.size());
                QCOMPARE(layer_of(m->tensors[size_t(ti)].name), int(l));
                QVERIFY(seen.insert(ti).second);
            }
        }
    }
    QCOMPARE(seen.size() + size_t(globals), m->tensors.size());
    // Every tensor can be found again by index (what selection sync uses).
    for (size_t i = 0; i < m->tensors.size(); ++i) {
        const QModelIndex idx = tree.indexForTensor(int(i));
        QCOMPARE(idx.data().toString(), QString::fromStdString(m->tensors[i].name));
    }
    tree.setModel(synth(arch, 32, 2));  // reset under the tester
    tree.setModel(nullptr);
    QCOMPARE(tree.rowCount(), 0);
}

void TestViews::treeBlocks_data() {
    QTest::addColumn<QString>("role");
    QTest::addColumn<QString>("block");
    QTest::newRow("attn_q") << "attn_q" << "attention";
    QTest::newRow("attn_output") << "attn_output" << "attention";
    QTest::newRow("attn_norm") << "attn_norm" << "norms";
    QTest::newRow("ffn_norm") << "ffn_norm" << "norms";
    QTest::newRow("ffn_gate") << "ffn_gate" << "ffn";
    QTest::newRow("ffn_down") << "ffn_down" << "ffn";
    QTest::newRow("ssm_in") << "ssm_in" << "ssm";
    QTest::newRow("ssm_norm (mamba2 inner)") << "ssm_norm" << "ssm";
    QTest::newRow("ssm_conv1d") << "ssm_conv1d" << "ssm";
    QTest::newRow("router_gate") << "router_gate" << "router";
    QTest::newRow("unknown") << "something" << "other";
}

void TestViews::treeBlocks() {
    QFETCH(QString, role);
    QFETCH(QString, block);
    QCOMPARE(block_of_role(role.toStdString()), block);
}

void TestViews::tableModel() {
    QFETCH(QString, arch);
    TensorTableModel table;
    QAbstractItemModelTester tester(&table, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&table);
    proxy.setSortRole(TensorTableModel::SortRole);
    QAbstractItemModelTester proxy_tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy finished(&table, &TensorTableModel::statsFinished);
    const auto m = synth(arch);
    table.setModel(m);
    QCOMPARE(table.rowCount(), int(m->tensors.size()));
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.first().first().toBool(), true);
    QCOMPARE(table.statsDone(), int(m->tensors.size()));
    for (int r = 0; r < table.rowCount(); ++r) {
        const Tensor& t = m->tensors[size_t(r)];
        QCOMPARE(table.index(r, TensorTableModel::NameColumn).data().toString(), QString::fromStdString(t.name));
        // Independent reference: plain loops over the dequantized values.
        auto v = t.to_f32();
        QVERIFY(v.ok());
        double sum = 0, mx = -INFINITY;
        for (float f : *v) {
            sum += f;
            mx = std::max(mx, double(f));
        }
        const double mean = sum / double(v->size());
        QVERIFY(std::fabs(table.index(r, TensorTableModel::MeanColumn).data(TensorTableModel::SortRole).toDouble() - mean) <=
                1e-9 * std::max(1.0, std::fabs(mean)));
        QCOMPARE(table.index(r, TensorTableModel::MaxColumn).data(TensorTableModel::SortRole).toDouble(), mx);
    }
    // Sorting by max|w|/rms descending gives a non-increasing column.
    proxy.sort(TensorTableModel::MaxOverRmsColumn, Qt::DescendingOrder);
    double prev = INFINITY;
    for (int r = 0; r < proxy.rowCount(); ++r) {
        const double v = proxy.index(r, TensorTableModel::MaxOverRmsColumn).data(TensorTableModel::SortRole).toDouble();
        QVERIFY(v <= prev);
        prev = v;
    }
    // Filtering by name.
    proxy.setFilterKeyColumn(TensorTableModel::NameColumn);
    proxy.setFilterRegularExpression("norm");
    int norms = 0;
    for (const Tensor& t : m->tensors) norms += t.name.find("norm") != std::string::npos;
    QCOMPARE(proxy.rowCount(), norms);
}

void TestViews::tableSupersededJob() {
    TensorTableModel table;
    QAbstractItemModelTester tester(&table, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy finished(&table, &TensorTableModel::statsFinished);
    const auto big = synth("llama", 256, 8);
    const auto small = synth("mamba2", 64, 2);
    table.setModel(big);
    table.setModel(small);  // cancels the first job; its late results must not land in the new rows
    QVERIFY(finished.wait(30000));
    QCOMPARE(finished.size(), 1);
    QCOMPARE(table.rowCount(), int(small->tensors.size()));
    for (int r = 0; r < table.rowCount(); ++r) {
        auto v = small->tensors[size_t(r)].to_f32();
        QCOMPARE(table.stats(r)->max, double(*std::max_element(v->begin(), v->end())));
    }
    table.setModel(big);
    table.cancelStats();
    QVERIFY(finished.wait(30000));  // the job ends, complete or not, and nothing crashes
    if (!finished.last().first().toBool()) QVERIFY(table.statsDone() < table.rowCount());
}

void TestViews::colorMap() {
    const LogColorMap c(1e-3, 10.0);
    QCOMPARE(c.position(0.0), 0.0);
    QCOMPARE(c.position(1e-3), 0.0);
    QCOMPARE(c.position(10.0), 1.0);
    QCOMPARE(c.position(INFINITY), 1.0);
    QVERIFY(std::fabs(c.position(0.1) - 0.5) < 1e-12);  // log scale: 1e-1 is halfway between 1e-3 and 1e1
    // The ramp gets brighter monotonically (luma), so magnitude order is visible without a legend.
    double prev = -1;
    for (int i = 0; i <= 100; ++i) {
        const QColor col = QColor::fromRgb(LogColorMap::ramp(i / 100.0));
        const double luma = 0.299 * col.red() + 0.587 * col.green() + 0.114 * col.blue();
        QVERIFY2(luma >= prev - 0.5, qPrintable(QString("step %1").arg(i)));
        prev = luma;
    }
}

void TestViews::heatmapWidget() {
    // A model whose first matrix has one planted outlier.
    auto base = synth("llama", 64, 2);
    Model m = *base;
    size_t ti = 0;
    while (m.tensors[ti].shape.size() != 2) ++ti;
    Tensor& t = m.tensors[ti];
    auto v = t.to_f32();
    QVERIFY(v.ok());
    const int64_t rows = t.shape[0], cols = t.shape[1], orow = rows - 3, ocol = 17;
    (*v)[size_t(orow * cols + ocol)] = 50.0f;
    auto nt = Tensor::from_f32(t.name, t.shape, *v);
    QVERIFY(nt.ok());
    t = std::move(nt).value();
    const QString tname = QString::fromStdString(t.name);
    auto model = std::make_shared<const Model>(std::move(m));

    HeatmapWidget w;
    w.resize(700, 500);
    w.setMaxCells(16, 16);
    w.show();
    QSignalSpy ready(&w, &HeatmapWidget::inspectionReady);
    w.showTensor(model, int(ti));
    QVERIFY(w.busy());
    QVERIFY(ready.wait(30000));
    QCOMPARE(ready.first().first().toInt(), int(ti));
    const Heatmap* h = w.heatmap();
    QVERIFY(h);
    QCOMPARE(h->rows, 16);
    int cell_r = -1, cell_c = -1;
    for (int i = 0; i < 16; ++i) {
        if (orow >= rows * i / 16 && orow < rows * (i + 1) / 16) cell_r = i;
        if (ocol >= cols * i / 16 && ocol < cols * (i + 1) / 16) cell_c = i;
    }
    QCOMPARE(h->max_at(cell_r, cell_c), 50.0f);
    QCOMPARE(w.stats()->max, 50.0);
    QVERIFY2(w.describeCell(cell_r, cell_c).contains("max|w| 50"), qPrintable(w.describeCell(cell_r, cell_c)));
    // Hovering the outlier's cell reports its rows, columns and value.
    auto* canvas = w.findChild<HeatmapCanvas*>();
    QVERIFY(canvas);
    QSignalSpy status(&w, &HeatmapWidget::statusMessage);
    const QPointF centre((cell_c + 0.5) * canvas->width() / 16.0, (cell_r + 0.5) * canvas->height() / 16.0);
    QMouseEvent move(QEvent::MouseMove, centre, canvas->mapToGlobal(centre), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
    QCoreApplication::sendEvent(canvas, &move);
    QCOMPARE(status.size(), 1);
    const QString text = status.first().first().toString();
    QVERIFY2(text.contains(tname) && text.contains("max|w| 50"), qPrintable(text));
    QVERIFY2(text.contains(QString("rows %1–%2").arg(rows * cell_r / 16).arg(rows * (cell_r + 1) / 16 - 1)), qPrintable(text));

    // Wheel up zooms in, the buttons' slots zoom out and back to fit.
    const double z = w.zoom();
    QWheelEvent wheel(centre, canvas->mapToGlobal(centre), QPoint(), QPoint(0, 240), Qt::NoButton, Qt::NoModifier,
                      Qt::NoScrollPhase, false);
    QCoreApplication::sendEvent(canvas, &wheel);
    QVERIFY(w.zoom() > z);
    QVERIFY(canvas->width() > 0);
    const double zoomed = w.zoom();
    w.zoomOut();
    QVERIFY(w.zoom() < zoomed);
    w.zoomIn();
    w.zoomToFit();
    QCOMPARE(w.zoom(), 1.0);
}

void TestViews::heatmapLatestSelectionWins() {
    const auto m = synth("edgefusion", 64, 2);
    HeatmapWidget w;
    QSignalSpy ready(&w, &HeatmapWidget::inspectionReady);
    const int last = int(m->tensors.size()) - 1;
    for (int i = 0; i <= last; ++i) w.showTensor(m, i);  // each cancels the one before
    QVERIFY(ready.wait(30000));
    QTest::qWait(200);
    QCOMPARE(ready.size(), 1);
    QCOMPARE(ready.first().first().toInt(), last);
    QCOMPARE(w.tensorIndex(), last);
}

QTEST_MAIN(TestViews)
#include "test_views.moc"
