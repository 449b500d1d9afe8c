// The real MainWindow, offscreen: open checkpoints of several formats (synthetic ones written with
// ef::save_model, and the real stories260K llama2.c model from ../shared), check the tree and table
// against the model, inspect a tensor, take a screenshot, and survive corrupt files and cancels.
#include <QDir>
#include <QImage>
#include <QLineEdit>
#include <QMenu>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QMessageBox>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTemporaryDir>
#include <QTreeView>
#include <QtTest>
#include <set>

#include "core/formats/format.h"
#include "core/hdf5/hdf5_format.h"
#include "core/synth.h"
#include "tests/support/test_support.h"
#include "views/heatmap_widget.h"
#include "views/main_window.h"
#include "views/model_info_view.h"
#include "views/model_tree_model.h"
#include "views/tensor_table_model.h"

using namespace ef;
using ef::test::screenshot_dir;
using namespace ef::views;

namespace {

// Waits for the load to end; returns the signal that ended it ("loaded", "failed", "cancelled").
QString wait_load(MainWindow& w, int timeout_ms = 60000) {
    QSignalSpy ok(&w, &MainWindow::modelLoaded), bad(&w, &MainWindow::loadFailed), cancel(&w, &MainWindow::loadCancelled);
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < timeout_ms) {
        if (!ok.isEmpty()) return "loaded";
        if (!bad.isEmpty()) return "failed: " + bad.first().at(1).toString();
        if (!cancel.isEmpty()) return "cancelled";
        QTest::qWait(20);
    }
    return "timeout";
}

void close_message_boxes(QWidget& w) {
    for (QMessageBox* b : w.findChildren<QMessageBox*>()) b->done(0);
    QCoreApplication::processEvents();
}

}  // namespace

class TestMainWindow : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void openCheckpoint_data();
    void openCheckpoint();
    void corruptFileKeepsModel();
    void cancelDuringLoad();
    void selectionAndFilter();
    void recentFilesAndAbout();
    void dropFiles();

private:
    void checkAgainstModel(MainWindow& w);
    QTemporaryDir tmp_;
    QString gguf_, h5_, safetensors_;
};

void TestMainWindow::initTestCase() {
    QVERIFY(tmp_.isValid());
    // Isolated settings: recent files of the test never touch the user's.
    QCoreApplication::setOrganizationName("EdgeFusionTests");
    QCoreApplication::setApplicationName("test_main_window");
    QSettings().clear();
    register_hdf5_format();
    apply_workbench_style(*qApp);

    SynthOptions o;
    o.arch = "edgefusion";
    o.dim = 128;
    o.n_layers = 4;
    o.vocab = 512;
    o.context_length = 256;
    o.seed = 5;
    auto m = synth_model(o);
    QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
    gguf_ = tmp_.filePath("edgefusion-synth.gguf");
    h5_ = tmp_.filePath("edgefusion-synth.h5");
    QVERIFY2(save_model(*m, gguf_.toStdString()).ok(), "save gguf");
    auto h5 = save_model(*m, h5_.toStdString());
    QVERIFY2(h5.ok(), h5.ok() ? "" : h5.message().c_str());
    o.arch = "llama";
    auto l = synth_model(o);
    QVERIFY(l.ok());
    safetensors_ = tmp_.filePath("llama-synth.safetensors");
    auto st = save_model(*l, safetensors_.toStdString());
    QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
}

void TestMainWindow::checkAgainstModel(MainWindow& w) {
    const auto m = w.model();
    QVERIFY(m);
    // Table: one row per tensor, in file order, with dtype and shape.
    auto* table = w.tableModel();
    QCOMPARE(table->rowCount(), int(m->tensors.size()));
    for (int r = 0; r < table->rowCount(); ++r) {
        const Tensor& t = m->tensors[size_t(r)];
        QCOMPARE(table->index(r, TensorTableModel::NameColumn).data().toString(), QString::fromStdString(t.name));
        QCOMPARE(table->index(r, TensorTableModel::DTypeColumn).data().toString(),
                 QString::fromStdString(std::string(dtype_name(t.dtype))));
        QCOMPARE(table->index(r, TensorTableModel::ShapeColumn).data().toString(), QString::fromStdString(shape_to_string(t.shape)));
    }
    // Tree: model -> globals + one node per layer; every tensor exactly once.
    auto* tree = w.treeModel();
    QCOMPARE(tree->rowCount(), 1);
    const QModelIndex top = tree->index(0, 0);
    int layers = 0;
    std::set<int> tensors;
    std::function<void(const QModelIndex&)> walk = [&](const QModelIndex& p) {
        for (int r = 0; r < tree->rowCount(p); ++r) {
            const QModelIndex i = tree->index(r, 0, p);
            const QString kind = i.data(ModelTreeModel::NodeKindRole).toString();
            if (kind == "layer") ++layers;
            if (kind == "tensor") QVERIFY(tensors.insert(i.data(ModelTreeModel::TensorIndexRole).toInt()).second);
            walk(i);
        }
    };
    walk(top);
    QCOMPARE(layers, int(m->config.n_layers));
    QCOMPARE(tensors.size(), m->tensors.size());
    QCOMPARE(w.infoView()->value("File", "architecture"), QString::fromStdString(m->architecture));
}

void TestMainWindow::openCheckpoint_data() {
    QTest::addColumn<QString>("which");
    QTest::addColumn<QString>("arch");
    QTest::addColumn<QString>("screenshot");
    QTest::newRow("gguf edgefusion") << "gguf" << "edgefusion" << "main_window.png";
    QTest::newRow("hdf5 edgefusion") << "h5" << "edgefusion" << "main_window_hdf5.png";
    QTest::newRow("safetensors llama") << "safetensors" << "llama" << "main_window_safetensors.png";
    QTest::newRow("llama2.c stories260K") << "llama2c" << "llama" << "main_window_stories260K.png";
}

void TestMainWindow::openCheckpoint() {
    QFETCH(QString, which);
    QFETCH(QString, arch);
    QFETCH(QString, screenshot);
    QString path = which == "gguf" ? gguf_ : which == "h5" ? h5_ : safetensors_;
    if (which == "llama2c") {
        EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
        EF_REQUIRE_SHARED(tok, "models/tok512.bin");
        path = stories;  // the window finds tok512.bin beside it
    }
    MainWindow w;
    w.resize(1480, 920);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QSignalSpy inspected(w.heatmapWidget(), &HeatmapWidget::inspectionReady);
    QSignalSpy stats_done(w.tableModel(), &TensorTableModel::statsFinished);
    w.openFile(path);
    QVERIFY(w.isLoading());
    QCOMPARE(wait_load(w), QString("loaded"));
    QCOMPARE(QString::fromStdString(w.model()->architecture), arch);
    QVERIFY2(w.windowTitle().contains(QFileInfo(path).fileName()), qPrintable(w.windowTitle()));
    checkAgainstModel(w);
    if (which == "llama2c") {
        QCOMPARE(w.model()->vocab.tokens.size(), size_t(512));  // tokenizer found beside the checkpoint
        QCOMPARE(w.model()->layers.size(), size_t(5));
    }
    QVERIFY(w.recentFiles().contains(QFileInfo(path).absoluteFilePath()));

    // A tensor is selected automatically; its heatmap and stats arrive from the worker.
    QTRY_VERIFY_WITH_TIMEOUT(!inspected.isEmpty(), 30000);
    QVERIFY(w.heatmapWidget()->heatmap());
    QCOMPARE(w.heatmapWidget()->tensorIndex(), w.selectedTensor());
    QTRY_VERIFY_WITH_TIMEOUT(!stats_done.isEmpty(), 30000);
    QCOMPARE(w.tableModel()->statsDone(), w.tableModel()->rowCount());
    QTest::qWait(50);

    const QImage shot = w.grab().toImage();
    const QString file = screenshot_dir() + "/" + screenshot;
    QVERIFY(shot.save(file));
    QImage back(file);
    QVERIFY(!back.isNull());
    QCOMPARE(back.size(), w.size() * w.devicePixelRatio());
    std::set<QRgb> colors;
    for (int y = 0; y < back.height(); y += 3)
        for (int x = 0; x < back.width(); x += 3) colors.insert(back.pixel(x, y));
    QVERIFY2(colors.size() > 200, qPrintable(QString("only %1 colours: blank screenshot?").arg(colors.size())));
}

void TestMainWindow::corruptFileKeepsModel() {
    MainWindow w;
    w.show();
    w.openFile(gguf_);
    QCOMPARE(wait_load(w), QString("loaded"));
    const auto before = w.model();
    const QString title = w.windowTitle();

    // GGUF magic followed by an absurd tensor count: must be refused, not allocated.
    const QString bad = tmp_.filePath("corrupt.gguf");
    {
        QFile f(bad);
        QVERIFY(f.open(QIODevice::WriteOnly));
        QByteArray bytes("GGUF");
        bytes.append(QByteArray::fromHex("03000000ffffffffffffff7f0000000000000000"));
        bytes.append(QByteArray(100, '\x5a'));
        f.write(bytes);
    }
    w.openFile(bad);
    const QString result = wait_load(w);
    QVERIFY2(result.startsWith("failed"), qPrintable(result));
    QCoreApplication::processEvents();
    const auto boxes = w.findChildren<QMessageBox*>();
    QCOMPARE(boxes.size(), 1);
    QVERIFY(boxes.first()->isVisible());
    QVERIFY2(boxes.first()->text().contains("corrupt.gguf"), qPrintable(boxes.first()->text()));
    QVERIFY(!boxes.first()->informativeText().isEmpty());
    QVERIFY(w.logView()->toPlainText().contains("Could not open " + bad));  // and in the log dock
    QCOMPARE(w.model(), before);  // the previous model stays
    QCOMPARE(w.windowTitle(), title);
    QCOMPARE(w.tableModel()->rowCount(), int(before->tensors.size()));
    close_message_boxes(w);

    // A file that does not exist, and a file of an unknown kind.
    w.openFile(tmp_.filePath("missing.gguf"));
    QVERIFY(wait_load(w).startsWith("failed"));
    close_message_boxes(w);
    QCOMPARE(w.model(), before);
}

void TestMainWindow::cancelDuringLoad() {
    MainWindow w;
    w.show();
    w.openFile(gguf_);
    QCOMPARE(wait_load(w), QString("loaded"));
    const auto before = w.model();
    QSignalSpy loaded(&w, &MainWindow::modelLoaded);
    w.openFile(h5_);
    QVERIFY(w.isLoading());
    w.cancelLoad();
    QVERIFY(!w.isLoading());
    QTest::qWait(1500);  // a late result from the worker must be dropped
    QCOMPARE(loaded.size(), 0);
    QCOMPARE(w.model(), before);
    QVERIFY(w.findChildren<QMessageBox*>().isEmpty());  // a cancel is not an error
    // The window still works afterwards.
    w.openFile(h5_);
    QCOMPARE(wait_load(w), QString("loaded"));
    QVERIFY(w.model() != before);
}

void TestMainWindow::selectionAndFilter() {
    MainWindow w;
    w.show();
    w.openFile(gguf_);
    QCOMPARE(wait_load(w), QString("loaded"));
    const auto m = w.model();
    // Selecting a row in the table selects the same tensor in the tree and inspects it.
    int target = -1;
    for (size_t i = 0; i < m->tensors.size(); ++i)
        if (m->tensors[i].name == "blk.2.ffn_down.weight") target = int(i);
    QVERIFY(target >= 0);
    QSignalSpy inspected(w.heatmapWidget(), &HeatmapWidget::inspectionReady);
    const QModelIndex pi = w.tableProxy()->mapFromSource(w.tableModel()->index(target, 0));
    w.tableView()->selectionModel()->setCurrentIndex(pi, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    QCOMPARE(w.selectedTensor(), target);
    QCOMPARE(w.treeView()->currentIndex().data().toString(), QString("blk.2.ffn_down.weight"));
    QCOMPARE(w.treeView()->currentIndex().parent().data().toString(), QString("ffn"));
    QTRY_VERIFY_WITH_TIMEOUT(w.heatmapWidget()->heatmap() && w.heatmapWidget()->tensorIndex() == target, 30000);

    // And the other way round, from the tree.
    const QModelIndex ti = w.treeModel()->indexForTensor(0);
    w.treeView()->selectionModel()->setCurrentIndex(ti, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    QCOMPARE(w.selectedTensor(), 0);
    QCOMPARE(w.tableProxy()->mapToSource(w.tableView()->currentIndex()).row(), 0);

    // The filter box narrows the table.
    w.filterEdit()->setText("ssm_in");
    int expected = 0;
    for (const Tensor& t : m->tensors) expected += t.name.find("ssm_in") != std::string::npos;
    QVERIFY(expected > 0);
    QCOMPARE(w.tableProxy()->rowCount(), expected);
}

void TestMainWindow::recentFilesAndAbout() {
    MainWindow w;
    w.show();
    w.openFile(h5_);
    QCOMPARE(wait_load(w), QString("loaded"));
    w.openFile(gguf_);
    QCOMPARE(wait_load(w), QString("loaded"));
    const QStringList recent = w.recentFiles();
    QVERIFY(recent.size() >= 2);
    QCOMPARE(recent[0], QFileInfo(gguf_).absoluteFilePath());  // most recent first, no duplicates
    QCOMPARE(recent[1], QFileInfo(h5_).absoluteFilePath());
    QCOMPARE(recent.count(recent[0]), 1);
    // File > Open Recent lists them and reopens one.
    QMenu* menu = nullptr;
    for (QMenu* m : w.findChildren<QMenu*>())
        if (m->title().contains("Recent")) menu = m;
    QVERIFY(menu);
    QAction* h5_action = nullptr;
    for (QAction* a : menu->actions())
        if (a->text() == QFileInfo(h5_).fileName()) h5_action = a;
    QVERIFY(h5_action);
    h5_action->trigger();
    QCOMPARE(wait_load(w), QString("loaded"));
    QCOMPARE(QString::fromStdString(w.model()->source_format), QString("hdf5"));

    w.showAbout();
    QCoreApplication::processEvents();
    const auto boxes = w.findChildren<QMessageBox*>();
    QCOMPARE(boxes.size(), 1);
    QVERIFY(boxes.first()->text().contains("EdgeFusion Workbench"));
    QVERIFY(boxes.first()->informativeText().contains("gguf"));
    close_message_boxes(w);
}

void TestMainWindow::dropFiles() {
    MainWindow w;
    w.show();
    auto drop = [&](const QStringList& files) {
        QMimeData mime;
        QList<QUrl> urls;
        for (const QString& f : files) urls << QUrl::fromLocalFile(f);
        mime.setUrls(urls);
        QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(&w, &enter);
        if (!enter.isAccepted()) return false;
        QDropEvent ev(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(&w, &ev);
        return true;
    };
    QVERIFY(drop({gguf_}));
    QCOMPARE(wait_load(w), QString("loaded"));
    QCOMPARE(w.currentFile(), QFileInfo(gguf_).absoluteFilePath());
    // A llama2.c checkpoint dropped together with its tokenizer (tokenizer first, as a file manager may order them).
    EF_REQUIRE_SHARED(stories, "models/stories260K.bin");
    EF_REQUIRE_SHARED(tok, "models/tok512.bin");
    QVERIFY(drop({tok, stories}));
    QCOMPARE(wait_load(w), QString("loaded"));
    QCOMPARE(w.currentFile(), QFileInfo(stories).absoluteFilePath());
    QCOMPARE(w.model()->vocab.tokens.size(), size_t(512));
    QVERIFY(w.logView()->toPlainText().contains("with tokenizer " + tok));
}

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
