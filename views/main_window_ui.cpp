// MainWindow's widgets: docks, menus, status bar and the application style.
#include <QAction>
#include <QApplication>
#include <QDockWidget>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSortFilterProxyModel>
#include <QStatusBar>
#include <QStyleFactory>
#include <QTableView>
#include <QTreeView>
#include <QVBoxLayout>

#include "views/heatmap_widget.h"
#include "views/outlier_view.h"
#include "views/alloc_view.h"
#include "views/board_panel.h"
#include "views/compare_view.h"
#include "views/quantize_dialog.h"
#include "views/main_window.h"
#include "views/model_info_view.h"
#include "views/model_tree_model.h"
#include "views/router_view.h"
#include "views/lambda_panel.h"
#include "views/training_panel.h"
#include "views/runtime_panel.h"
#include "views/tensor_table_model.h"

namespace ef::views {

void apply_workbench_style(QApplication& app) {
    app.setStyle(QStyleFactory::create("Fusion"));
    QPalette p = app.style()->standardPalette();
    p.setColor(QPalette::Window, QColor(243, 244, 246));
    p.setColor(QPalette::Base, QColor(255, 255, 255));
    p.setColor(QPalette::AlternateBase, QColor(246, 248, 250));
    p.setColor(QPalette::Highlight, QColor(38, 110, 200));
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Mid, QColor(120, 126, 134));
    app.setPalette(p);
    QFont f = app.font();
    if (f.pointSizeF() < 10) f.setPointSizeF(10);
    app.setFont(f);
}

namespace {
QDockWidget* make_dock(QMainWindow* w, const QString& title, const QString& object_name, QWidget* content) {
    auto* d = new QDockWidget(title, w);
    d->setObjectName(object_name);  // for saveState/restoreState
    d->setWidget(content);
    d->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable | QDockWidget::DockWidgetClosable);
    return d;
}
}  // namespace

void MainWindow::buildDocks() {
    // Model tree (left).
    tree_view_ = new QTreeView;
    tree_view_->setModel(tree_model_);
    tree_view_->setUniformRowHeights(true);
    tree_view_->setAlternatingRowColors(true);
    tree_view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    tree_view_->header()->setStretchLastSection(false);
    tree_view_->header()->resizeSection(ModelTreeModel::NameColumn, 364);
    tree_view_->header()->resizeSection(ModelTreeModel::KindColumn, 64);
    tree_view_->header()->resizeSection(ModelTreeModel::ShapeColumn, 84);
    tree_view_->header()->resizeSection(ModelTreeModel::ParametersColumn, 96);
    tree_view_->header()->resizeSection(ModelTreeModel::BytesColumn, 90);
    tree_dock_ = make_dock(this, tr("Model"), "modelTreeDock", tree_view_);
    addDockWidget(Qt::LeftDockWidgetArea, tree_dock_);

    // Tensor table with filter (bottom).
    auto* table_panel = new QWidget;
    filter_ = new QLineEdit;
    filter_->setToolTip(tr("Filter tensors by name (regular expression), e.g. attn_q|ssm_in"));
    filter_->setClearButtonEnabled(true);
    stats_status_ = new QLabel;
    auto* filter_row = new QHBoxLayout;
    filter_row->addWidget(new QLabel(tr("Filter (regex):")));
    filter_row->addWidget(filter_, 1);
    filter_row->addWidget(stats_status_);
    table_view_ = new QTableView;
    table_view_->setModel(table_proxy_);
    table_view_->setSortingEnabled(true);
    table_view_->sortByColumn(-1, Qt::AscendingOrder);  // file order until the user sorts
    table_view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_view_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_view_->setAlternatingRowColors(true);
    table_view_->verticalHeader()->hide();
    table_view_->verticalHeader()->setDefaultSectionSize(table_view_->fontMetrics().height() + 6);
    table_view_->horizontalHeader()->setStretchLastSection(false);
    table_view_->horizontalHeader()->resizeSection(TensorTableModel::NameColumn, 260);
    table_view_->horizontalHeader()->resizeSection(TensorTableModel::DTypeColumn, 64);
    table_view_->horizontalHeader()->resizeSection(TensorTableModel::ShapeColumn, 110);
    for (int c = TensorTableModel::BytesColumn; c < TensorTableModel::ColumnCount; ++c)
        table_view_->horizontalHeader()->resizeSection(c, 104);
    table_view_->horizontalHeader()->setSectionResizeMode(TensorTableModel::NameColumn, QHeaderView::Stretch);
    auto* tl = new QVBoxLayout(table_panel);
    tl->setContentsMargins(4, 4, 4, 4);
    tl->addLayout(filter_row);
    tl->addWidget(table_view_);
    table_dock_ = make_dock(this, tr("Tensors"), "tensorTableDock", table_panel);
    addDockWidget(Qt::BottomDockWidgetArea, table_dock_);
    connect(filter_, &QLineEdit::textChanged, this, [this](const QString& text) {
        table_proxy_->setFilterRegularExpression(QRegularExpression(text, QRegularExpression::CaseInsensitiveOption));
    });

    // Model info (tabbed with the tree, so the heatmap keeps the width).
    info_ = new ModelInfoView;
    info_dock_ = make_dock(this, tr("Model info"), "modelInfoDock", info_);
    addDockWidget(Qt::LeftDockWidgetArea, info_dock_);
    tabifyDockWidget(tree_dock_, info_dock_);
    tree_dock_->raise();

    // Log (tabbed with the table).
    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    log_->setMaximumBlockCount(5000);
    log_dock_ = make_dock(this, tr("Log"), "logDock", log_);
    addDockWidget(Qt::BottomDockWidgetArea, log_dock_);
    tabifyDockWidget(table_dock_, log_dock_);

    // Runtime (tabbed with the table and the log: its charts and output want the full width).
    runtime_ = new RuntimePanel;
    runtime_dock_ = make_dock(this, tr("Runtime"), "runtimeDock", runtime_);
    addDockWidget(Qt::BottomDockWidgetArea, runtime_dock_);
    tabifyDockWidget(log_dock_, runtime_dock_);
    connect(runtime_, &RuntimePanel::message, this, [this](const QString& text, bool error) { log(text, error); });
    // Raised (its tab clicked): give the output, the controls and the charts their room.
    connect(runtime_dock_, &QDockWidget::visibilityChanged, this, [this](bool visible) {
        if (visible && !runtime_dock_->isFloating() && runtime_dock_->height() < 400)
            resizeDocks({runtime_dock_}, {430}, Qt::Vertical);
    });
    // Outliers (issue 4): analysis on demand; a clicked overview row opens the tensor with its outliers marked.
    outliers_ = new OutlierView;
    outlier_dock_ = make_dock(this, tr("Outliers"), "outlierDock", outliers_);
    addDockWidget(Qt::BottomDockWidgetArea, outlier_dock_);
    tabifyDockWidget(runtime_dock_, outlier_dock_);
    connect(outliers_, &OutlierView::tensorActivated, this, [this](int tensor, std::vector<std::pair<int64_t, int64_t>> marks) {
        selectTensor(tensor);
        heatmap_->setMarkers(tensor, std::move(marks));
    });
    connect(outliers_, &OutlierView::analysisFailed, this, [this](const QString& m) { log(tr("Outlier analysis: %1").arg(m), true); });
    connect(outlier_dock_, &QDockWidget::visibilityChanged, this, [this](bool visible) {
        if (visible && !outlier_dock_->isFloating() && outlier_dock_->height() < 400)
            resizeDocks({outlier_dock_}, {430}, Qt::Vertical);
    });
    // Bit allocation (issue 4): measure sensitivities, then the budget slider and pins re-solve live.
    alloc_ = new AllocView;
    alloc_dock_ = make_dock(this, tr("Allocation"), "allocDock", alloc_);
    addDockWidget(Qt::BottomDockWidgetArea, alloc_dock_);
    tabifyDockWidget(outlier_dock_, alloc_dock_);
    connect(alloc_, &AllocView::message, this, [this](const QString& text, bool error) { log(text, error); });
    connect(alloc_, &AllocView::exportRequested, this, [this] { openQuantizeDialog(); });
    connect(alloc_dock_, &QDockWidget::visibilityChanged, this, [this](bool visible) {
        if (visible && !alloc_dock_->isFloating() && alloc_dock_->height() < 460)
            resizeDocks({alloc_dock_}, {480}, Qt::Vertical);
    });
    // Compare (issue 4, the paper's table): variants side by side, table + size-vs-KL / size-vs-speed charts.
    compare_ = new CompareView;
    compare_dock_ = make_dock(this, tr("Compare"), "compareDock", compare_);
    addDockWidget(Qt::BottomDockWidgetArea, compare_dock_);
    tabifyDockWidget(alloc_dock_, compare_dock_);
    connect(compare_, &CompareView::compareFailed, this, [this](const QString& m) { log(tr("Compare: %1").arg(m), true); });
    connect(compare_dock_, &QDockWidget::visibilityChanged, this, [this](bool visible) {
        if (visible && !compare_dock_->isFloating() && compare_dock_->height() < 460)
            resizeDocks({compare_dock_}, {480}, Qt::Vertical);
    });
    // Router (issue 5): per-layer gates of an edgefusion model, ssm_frac, entropy, GFLOPs vs the dense twin.
    router_ = new RouterView;
    router_dock_ = make_dock(this, tr("Router"), "routerDock", router_);
    addDockWidget(Qt::BottomDockWidgetArea, router_dock_);
    tabifyDockWidget(compare_dock_, router_dock_);
    connect(router_dock_, &QDockWidget::visibilityChanged, this, [this](bool visible) {
        if (visible && !router_dock_->isFloating() && router_dock_->height() < 360)
            resizeDocks({router_dock_}, {400}, Qt::Vertical);
    });
    // Training (issue 5): `edgefusion train` with live charts; each logged step's gates go to the router view.
    training_ = new TrainingPanel;
    training_dock_ = make_dock(this, tr("Training"), "trainingDock", training_);
    addDockWidget(Qt::BottomDockWidgetArea, training_dock_);
    tabifyDockWidget(router_dock_, training_dock_);
    connect(training_, &TrainingPanel::gatesUpdated, router_, &RouterView::setGates);
    connect(training_, &TrainingPanel::message, this, [this](const QString& text, bool error) { log(text, error); });
    connect(training_, &TrainingPanel::openModelRequested, this, [this](const QString& p) { openFile(p); });
    // Lambda (issue 5): re-train the loaded model's gates at the slider's lambda; the result goes to the router view.
    lambda_ = new LambdaPanel;
    lambda_dock_ = make_dock(this, tr("Lambda"), "lambdaDock", lambda_);
    addDockWidget(Qt::BottomDockWidgetArea, lambda_dock_);
    tabifyDockWidget(training_dock_, lambda_dock_);
    connect(lambda_, &LambdaPanel::analysisReady, router_, &RouterView::setAnalysis);
    connect(lambda_, &LambdaPanel::gatesUpdated, router_, &RouterView::setGates);
    connect(lambda_, &LambdaPanel::message, this, [this](const QString& text, bool error) { log(text, error); });
    connect(lambda_, &LambdaPanel::openModelRequested, this, [this](const QString& p) { openFile(p); });
    // Boards (issue 6): the loaded model's file pushed to and profiled on boards over SSH.
    boards_ = new BoardPanel;
    board_dock_ = make_dock(this, tr("Boards"), "boardDock", boards_);
    addDockWidget(Qt::BottomDockWidgetArea, board_dock_);
    tabifyDockWidget(lambda_dock_, board_dock_);
    connect(boards_, &BoardPanel::message, this, [this](const QString& text, bool error) { log(text, error); });
    for (QDockWidget* d : {training_dock_, lambda_dock_, board_dock_})
        connect(d, &QDockWidget::visibilityChanged, this, [this, d](bool visible) {
            if (visible && !d->isFloating() && d->height() < 420) resizeDocks({d}, {460}, Qt::Vertical);
        });
    table_dock_->raise();

    // The table spans the whole width below: ten columns of statistics need the room.
    setCorner(Qt::BottomLeftCorner, Qt::BottomDockWidgetArea);
    setCorner(Qt::BottomRightCorner, Qt::BottomDockWidgetArea);
    resizeDocks({tree_dock_}, {720}, Qt::Horizontal);
    resizeDocks({table_dock_}, {290}, Qt::Vertical);
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* open = file->addAction(tr("&Open…"), this, &MainWindow::openDialog);
    open->setShortcut(QKeySequence::Open);
    recent_menu_ = file->addMenu(tr("Open &Recent"));
    rebuildRecentMenu();
    file->addSeparator();
    QAction* cancel = file->addAction(tr("&Cancel Loading"), this, &MainWindow::cancelLoad);
    cancel->setShortcut(Qt::Key_Escape);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);

    view_menu_ = menuBar()->addMenu(tr("&View"));
    for (QDockWidget* d : {tree_dock_, table_dock_, info_dock_, log_dock_}) view_menu_->addAction(d->toggleViewAction());
    view_menu_->addAction(runtime_dock_->toggleViewAction());
    view_menu_->addAction(outlier_dock_->toggleViewAction());
    view_menu_->addAction(alloc_dock_->toggleViewAction());
    view_menu_->addAction(compare_dock_->toggleViewAction());
    view_menu_->addAction(router_dock_->toggleViewAction());
    view_menu_->addAction(training_dock_->toggleViewAction());
    view_menu_->addAction(lambda_dock_->toggleViewAction());
    view_menu_->addAction(board_dock_->toggleViewAction());
    view_menu_->addAction(tr("Show &Runtime Panel"), QKeySequence(Qt::CTRL | Qt::Key_R), this, &MainWindow::showRuntime);
    view_menu_->addSeparator();
    view_menu_->addAction(tr("Zoom &In"), QKeySequence::ZoomIn, heatmap_, &HeatmapWidget::zoomIn);
    view_menu_->addAction(tr("Zoom &Out"), QKeySequence::ZoomOut, heatmap_, &HeatmapWidget::zoomOut);
    view_menu_->addAction(tr("&Fit Heatmap"), QKeySequence(Qt::CTRL | Qt::Key_0), heatmap_, &HeatmapWidget::zoomToFit);

    QMenu* model_menu = menuBar()->addMenu(tr("&Model"));
    model_menu->addAction(tr("&Quantize && Export…"), QKeySequence(Qt::CTRL | Qt::Key_E), this, [this] { openQuantizeDialog(); });

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About EdgeFusion Workbench"), this, &MainWindow::showAbout);
    help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

void MainWindow::buildStatusBar() {
    summary_ = new QLabel(tr("No model loaded"));
    load_progress_ = new QProgressBar;
    load_progress_->setRange(0, 1000);
    load_progress_->setMaximumWidth(220);
    load_progress_->setTextVisible(true);
    load_progress_->setFormat("%p%");
    cancel_button_ = new QPushButton(tr("Cancel"));
    cancel_button_->setToolTip(tr("Cancel loading (Esc)"));
    connect(cancel_button_, &QPushButton::clicked, this, &MainWindow::cancelLoad);
    statusBar()->addPermanentWidget(summary_);
    statusBar()->addPermanentWidget(load_progress_);
    statusBar()->addPermanentWidget(cancel_button_);
    setLoadingUi(false);
}

QuantizeDialog* MainWindow::openQuantizeDialog() {
    if (!model_) {
        showError(tr("Quantize & Export"), tr("Load a model first."), {});
        return nullptr;
    }
    if (!quantize_dialog_) {
        quantize_dialog_ = new QuantizeDialog(this);
        connect(quantize_dialog_, &QuantizeDialog::finished, this, [this](const QString& path) { log(tr("Exported %1").arg(path)); });
        connect(quantize_dialog_, &QuantizeDialog::failed, this, [this](const QString& m) { log(tr("Quantize & Export: %1").arg(m), true); });
    }
    if (quantize_dialog_->model() != model_) quantize_dialog_->setModel(model_, QFileInfo(current_file_).fileName());
    // The allocation editor's model, exported as it is unless the user unticks it.
    if (auto q = alloc_ ? alloc_->quantizedModel() : nullptr; q && q != quantize_dialog_->sourceModel())
        quantize_dialog_->setSourceModel(q, tr("allocation"));
    quantize_dialog_->show();
    quantize_dialog_->raise();
    quantize_dialog_->activateWindow();
    return quantize_dialog_;
}

void MainWindow::showRuntime() {
    runtime_dock_->show();
    runtime_dock_->raise();
    if (!runtime_dock_->isFloating() && runtime_dock_->height() < 400) resizeDocks({runtime_dock_}, {430}, Qt::Vertical);
}

void MainWindow::setLoadingUi(bool loading) {
    load_progress_->setVisible(loading);
    cancel_button_->setVisible(loading);
    if (loading) load_progress_->setValue(0);
}

void MainWindow::rebuildRecentMenu() {
    recent_menu_->clear();
    const QStringList files = recentFiles();
    for (const QString& f : files) {
        QAction* a = recent_menu_->addAction(QFileInfo(f).fileName(), this, [this, f] { openInteractive(f); });
        a->setToolTip(f);
        a->setStatusTip(f);
    }
    if (files.isEmpty()) recent_menu_->addAction(tr("(none)"))->setEnabled(false);
    recent_menu_->addSeparator();
    recent_menu_->addAction(tr("Clear Recent Files"), this, [this] {
        QSettings().setValue("recentFiles", QStringList());
        rebuildRecentMenu();
    });
}

}  // namespace ef::views
