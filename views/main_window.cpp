#include "views/main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDateTime>
#include <QDir>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QItemSelectionModel>
#include <QLabel>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QSettings>
#include <QSortFilterProxyModel>
#include <QStatusBar>
#include <QTableView>
#include <QTreeView>

#include "core/formats/format.h"
#include "views/format_util.h"
#include "views/heatmap_widget.h"
#include "views/outlier_view.h"
#include "views/router_view.h"
#include "views/lambda_panel.h"
#include "views/alloc_view.h"
#include "views/board_panel.h"
#include "views/compare_view.h"
#include "views/quantize_dialog.h"
#include "views/model_info_view.h"
#include "views/model_loader.h"
#include "views/model_tree_model.h"
#include "views/runtime_panel.h"
#include "views/tensor_table_model.h"

namespace ef::views {

namespace {
constexpr int kMaxRecent = 10;

bool is_llama2c(const QString& path) {
    const FormatHandler* f = format_for_extension(path.toStdString());
    return f && f->name == "llama2c";
}

// The tokenizer names the llama2.c loader tries beside a checkpoint (see core/formats/llama2c.h).
bool tokenizer_beside(const QString& path) {
    const QFileInfo fi(path);
    const QDir dir = fi.absoluteDir();
    if (dir.exists(fi.completeBaseName() + ".tok.bin") || dir.exists("tokenizer.bin")) return true;
    for (const QString& name : dir.entryList({"tok*.bin"}, QDir::Files))
        if (name != fi.fileName()) return true;
    return false;
}

bool looks_like_tokenizer(const QString& path) {
    const QString name = QFileInfo(path).fileName().toLower();
    return name.endsWith(".bin") && (name.startsWith("tok") || name.endsWith(".tok.bin"));
}
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setObjectName("EdgeFusionMainWindow");
    setWindowTitle(tr("EdgeFusion Workbench"));
    setAcceptDrops(true);
    setDockOptions(AnimatedDocks | AllowTabbedDocks | AllowNestedDocks);
    resize(1480, 920);

    loader_ = new ModelLoader(this);
    tree_model_ = new ModelTreeModel(this);
    table_model_ = new TensorTableModel(this);
    table_proxy_ = new QSortFilterProxyModel(this);
    table_proxy_->setSourceModel(table_model_);
    table_proxy_->setSortRole(TensorTableModel::SortRole);
    table_proxy_->setFilterKeyColumn(TensorTableModel::NameColumn);
    table_proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);

    heatmap_ = new HeatmapWidget(this);
    setCentralWidget(heatmap_);
    buildDocks();
    buildMenus();
    buildStatusBar();

    connect(loader_, &ModelLoader::loaded, this, &MainWindow::onLoaded);
    connect(loader_, &ModelLoader::failed, this, &MainWindow::onLoadFailed);
    connect(loader_, &ModelLoader::cancelled, this, &MainWindow::onLoadCancelled);
    connect(loader_, &ModelLoader::progress, this, &MainWindow::onLoadProgress);

    connect(tree_view_->selectionModel(), &QItemSelectionModel::currentChanged, this, [this](const QModelIndex& cur) {
        if (syncing_ || !cur.isValid()) return;
        const int t = cur.siblingAtColumn(0).data(ModelTreeModel::TensorIndexRole).toInt();
        if (t >= 0) selectTensor(t);
    });
    connect(table_view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& cur) {
        if (syncing_ || !cur.isValid()) return;
        selectTensor(table_proxy_->mapToSource(cur).row());
    });
    connect(table_model_, &TensorTableModel::statsProgress, this, [this](int done, int total) {
        stats_status_->setText(done < total ? tr("statistics %1 / %2").arg(done).arg(total) : tr("%1 tensors").arg(total));
    });
    connect(table_model_, &TensorTableModel::statsFinished, this, [this](bool complete) {
        if (!complete) log(tr("Some tensor statistics could not be computed (see the table's tooltips)."), true);
        else log(tr("Statistics of %1 tensors computed.").arg(table_model_->rowCount()));
    });
    connect(heatmap_, &HeatmapWidget::statusMessage, this, [this](const QString& s) { statusBar()->showMessage(s, 5000); });
    connect(heatmap_, &HeatmapWidget::inspectionFailed, this, [this](int t, const QString& msg) {
        if (model_ && t >= 0) log(tr("Cannot inspect %1: %2").arg(QString::fromStdString(model_->tensors[size_t(t)].name), msg), true);
    });

    QSettings settings;
    if (settings.contains("window/state")) {
        restoreGeometry(settings.value("window/geometry").toByteArray());
        restoreState(settings.value("window/state").toByteArray());
    }
    log(tr("EdgeFusion Workbench ready. Formats: %1.").arg([] {
        QStringList names;
        for (const auto& f : formats()) names << to_qstring(f.name);
        return names.join(", ");
    }()));
}

MainWindow::~MainWindow() = default;

QStringList MainWindow::recentFiles() const { return QSettings().value("recentFiles").toStringList(); }

void MainWindow::addRecentFile(const QString& path) {
    QStringList files = recentFiles();
    const QString abs = QFileInfo(path).absoluteFilePath();
    files.removeAll(abs);
    files.prepend(abs);
    while (files.size() > kMaxRecent) files.removeLast();
    QSettings().setValue("recentFiles", files);
    rebuildRecentMenu();
}

void MainWindow::openDialog() {
    const QString start = current_file_.isEmpty() ? QDir::homePath() : QFileInfo(current_file_).absolutePath();
    const QString path = QFileDialog::getOpenFileName(this, tr("Open checkpoint"), start,
                                                      QString(kFileFilter) + ";;" + tr("All files (*)"));
    if (!path.isEmpty()) openInteractive(path);
}

void MainWindow::openInteractive(const QString& path) {
    QString tokenizer;
    if (is_llama2c(path) && QFileInfo(path).isFile() && !tokenizer_beside(path)) {
        tokenizer = QFileDialog::getOpenFileName(
            this, tr("Tokenizer for %1 (Cancel: open without one)").arg(QFileInfo(path).fileName()),
            QFileInfo(path).absolutePath(), tr("llama2.c tokenizer (*.bin);;All files (*)"));
    }
    openFile(path, tokenizer);
}

void MainWindow::openFile(const QString& path, const QString& tokenizer) {
    log(tr("Opening %1%2").arg(path, tokenizer.isEmpty() ? QString() : tr(" with tokenizer %1").arg(tokenizer)));
    statusBar()->showMessage(tr("Loading %1…").arg(QFileInfo(path).fileName()));
    if (loader_->isLoading()) loader_->cancel();  // superseded
    setLoadingUi(true);
    loader_->start(path, tokenizer);
}

void MainWindow::cancelLoad() { loader_->cancel(); }

bool MainWindow::isLoading() const { return loader_->isLoading(); }

void MainWindow::onLoadProgress(double fraction, const QString& stage) {
    load_progress_->setValue(int(fraction * 1000));
    if (!stage.isEmpty()) load_progress_->setToolTip(stage);
}

void MainWindow::onLoaded(const QString& path, const std::shared_ptr<const Model>& model) {
    setLoadingUi(false);
    model_ = model;
    current_file_ = QFileInfo(path).absoluteFilePath();
    selected_ = -1;
    heatmap_->clear();
    tree_model_->setModel(model_);
    table_model_->setModel(model_);
    info_->setModel(model_);
    runtime_->setModel(model_);
    outliers_->setModel(model_);
    router_->setModel(model_);
    lambda_->setModel(model_, current_file_);
    boards_->setModelFile(current_file_);
    alloc_->setModel(model_);
    compare_->setModel(model_, QFileInfo(path).fileName());
    if (quantize_dialog_) quantize_dialog_->setModel(model_, QFileInfo(path).fileName());
    tree_view_->expandToDepth(0);
    setWindowTitle(tr("%1 — EdgeFusion Workbench").arg(QFileInfo(path).fileName()));
    setWindowFilePath(current_file_);
    const Model& m = *model_;
    summary_->setText(tr("%1 · %2 · %3 params · %4 · %5 bpw")
                          .arg(to_qstring(m.source_format), to_qstring(m.architecture), human_count(m.parameter_count()),
                               human_bytes(m.weight_bytes()), QString::number(m.bits_per_weight(), 'f', 2)));
    stats_status_->setText(tr("statistics 0 / %1").arg(m.tensors.size()));
    addRecentFile(path);
    statusBar()->showMessage(tr("Loaded %1").arg(QFileInfo(path).fileName()), 5000);
    log(tr("Loaded %1: %2 (%3), %4 layers, %5 tensors, %6 parameters")
            .arg(path, to_qstring(m.architecture), to_qstring(m.source_format))
            .arg(m.layers.size()).arg(m.tensors.size()).arg(grouped(m.parameter_count())));

    // Start on something worth looking at: the first attention/SSM input projection, else any matrix.
    int pick = -1, first_matrix = -1;
    for (size_t i = 0; i < m.tensors.size() && pick < 0; ++i) {
        if (m.tensors[i].shape.size() != 2) continue;
        if (first_matrix < 0) first_matrix = int(i);
        const std::string& n = m.tensors[i].name;
        if (n.find("attn_q.") != std::string::npos || n.find("ssm_in.") != std::string::npos) pick = int(i);
    }
    if (pick < 0) pick = first_matrix >= 0 ? first_matrix : (m.tensors.empty() ? -1 : 0);
    if (pick >= 0) selectTensor(pick);
    emit modelLoaded(current_file_);
}

void MainWindow::onLoadFailed(const QString& path, const QString& message) {
    setLoadingUi(false);
    statusBar()->showMessage(tr("Could not open %1").arg(QFileInfo(path).fileName()), 8000);
    log(tr("Could not open %1: %2").arg(path, message), true);
    showError(tr("Could not open file"), tr("Could not open %1").arg(QFileInfo(path).fileName()),
              tr("%1\n\n%2").arg(path, message));
    emit loadFailed(path, message);
}

void MainWindow::onLoadCancelled(const QString& path) {
    setLoadingUi(false);
    statusBar()->showMessage(tr("Loading cancelled"), 5000);
    log(tr("Loading %1 cancelled; %2").arg(path, model_ ? tr("keeping %1").arg(QFileInfo(current_file_).fileName())
                                                         : tr("no model open")));
    emit loadCancelled(path);
}

void MainWindow::selectTensor(int tensor_index) {
    if (!model_ || tensor_index < 0 || size_t(tensor_index) >= model_->tensors.size()) return;
    if (tensor_index == selected_) return;
    selected_ = tensor_index;
    syncing_ = true;
    const QModelIndex ti = tree_model_->indexForTensor(tensor_index);
    if (ti.isValid()) {
        tree_view_->selectionModel()->setCurrentIndex(ti, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        tree_view_->scrollTo(ti);
    }
    const QModelIndex pi = table_proxy_->mapFromSource(table_model_->index(tensor_index, 0));
    if (pi.isValid()) {
        table_view_->selectionModel()->setCurrentIndex(pi, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        table_view_->scrollTo(pi);
    }
    syncing_ = false;
    heatmap_->showTensor(model_, tensor_index);
}

void MainWindow::showError(const QString& title, const QString& text, const QString& detail) {
    // Window-modal but not blocking (open(), not exec()): loading and tests keep running.
    auto* box = new QMessageBox(QMessageBox::Critical, title, text, QMessageBox::Ok, this);
    box->setInformativeText(detail);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::showAbout() {
    QStringList names;
    for (const auto& f : formats()) names << to_qstring(f.name);
    auto* box = new QMessageBox(this);
    box->setWindowTitle(tr("About EdgeFusion Workbench"));
    box->setIconPixmap(windowIcon().pixmap(64, 64));
    box->setText(tr("<h3>EdgeFusion Workbench %1</h3>"
                    "<p>Model surgery for edge LLMs: open checkpoints, inspect layers and tensors, "
                    "convert and quantize.</p>")
                     .arg(QApplication::applicationVersion()));
    box->setInformativeText(tr("Formats: %1<br>Qt %2").arg(names.join(", "), qVersion()));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::log(const QString& text, bool error) {
    const QString time = QDateTime::currentDateTime().toString("HH:mm:ss");
    const QString color = error ? "#c03030" : "#555";
    log_->appendHtml(QString("<span style='color:#888'>%1</span> <span style='color:%2'>%3</span>")
                         .arg(time, color, text.toHtmlEscaped()));
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (!e->mimeData()->hasUrls()) return;
    for (const QUrl& u : e->mimeData()->urls())
        if (u.isLocalFile()) return e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
    QStringList files;
    for (const QUrl& u : e->mimeData()->urls())
        if (u.isLocalFile()) files << u.toLocalFile();
    if (files.isEmpty()) return;
    e->acceptProposedAction();
    // A llama2.c checkpoint dropped together with its tokenizer.
    if (files.size() == 2 && looks_like_tokenizer(files[0]) != looks_like_tokenizer(files[1])) {
        const bool first_is_tok = looks_like_tokenizer(files[0]);
        return openFile(files[first_is_tok ? 1 : 0], files[first_is_tok ? 0 : 1]);
    }
    openInteractive(files.first());
}

void MainWindow::closeEvent(QCloseEvent* e) {
    loader_->cancel();
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState());
    QMainWindow::closeEvent(e);
}

}  // namespace ef::views
