// The workbench's main window: open a checkpoint (any registered format, drag and drop, recent
// files), see its layers and tensors (model tree, tensor table with statistics, model info), and
// inspect a tensor (statistics + |w| heatmap). Loading and all statistics run off the UI thread.
// Lives in views/ so the GUI tests drive the real window.
#pragma once
#include <QMainWindow>
#include <memory>

#include "core/model.h"

class QDockWidget;
class QLabel;
class QLineEdit;
class QMenu;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QTableView;
class QTreeView;
class QApplication;

namespace ef::views {

class HeatmapWidget;
class ModelInfoView;
class ModelLoader;
class ModelTreeModel;
class OutlierView;
class AllocView;
class BoardPanel;
class CompareView;
class QuantizeDialog;
class RouterView;
class TrainingPanel;
class LambdaPanel;
class RuntimePanel;
class TensorTableModel;

// Fusion style, a neutral palette and a readable default font, shared by the app and the tests.
void apply_workbench_style(QApplication& app);

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    static constexpr const char* kFileFilter = "Checkpoints (*.gguf *.safetensors *.h5 *.hdf5 *.bin)";

    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // Starts loading `path` on a worker thread (llama2.c: `tokenizer`, else the loader looks beside
    // the checkpoint). The current model stays until the new one has loaded.
    void openFile(const QString& path, const QString& tokenizer = {});
    // Like openFile, but for a llama2.c checkpoint with no tokenizer beside it, asks for one first.
    void openInteractive(const QString& path);
    void cancelLoad();
    bool isLoading() const;
    // Selects a tensor in the tree and the table and inspects it.
    void selectTensor(int tensor_index);
    void showAbout();

    std::shared_ptr<const Model> model() const { return model_; }
    QString currentFile() const { return current_file_; }
    int selectedTensor() const { return selected_; }
    QStringList recentFiles() const;

    QTreeView* treeView() const { return tree_view_; }
    QTableView* tableView() const { return table_view_; }
    ModelTreeModel* treeModel() const { return tree_model_; }
    TensorTableModel* tableModel() const { return table_model_; }
    QSortFilterProxyModel* tableProxy() const { return table_proxy_; }
    QLineEdit* filterEdit() const { return filter_; }
    HeatmapWidget* heatmapWidget() const { return heatmap_; }
    ModelInfoView* infoView() const { return info_; }
    QPlainTextEdit* logView() const { return log_; }
    RuntimePanel* runtimePanel() const { return runtime_; }
    QDockWidget* runtimeDock() const { return runtime_dock_; }
    OutlierView* outlierView() const { return outliers_; }
    QDockWidget* outlierDock() const { return outlier_dock_; }
    AllocView* allocView() const { return alloc_; }
    QDockWidget* allocDock() const { return alloc_dock_; }
    CompareView* compareView() const { return compare_; }
    QDockWidget* compareDock() const { return compare_dock_; }
    RouterView* routerView() const { return router_; }
    QDockWidget* routerDock() const { return router_dock_; }
    TrainingPanel* trainingPanel() const { return training_; }
    QDockWidget* trainingDock() const { return training_dock_; }
    LambdaPanel* lambdaPanel() const { return lambda_; }
    QDockWidget* lambdaDock() const { return lambda_dock_; }
    // Boards (issue 6): push / profile of the loaded model's file on boards over SSH.
    BoardPanel* boardPanel() const { return boards_; }
    QDockWidget* boardDock() const { return board_dock_; }
    // Model ▸ Quantize & Export…: the dialog for the loaded model (made on first use; the
    // allocation editor's quantized model, if any, is offered as a pre-built source).
    QuantizeDialog* openQuantizeDialog();
    QuantizeDialog* quantizeDialog() const { return quantize_dialog_; }
    // Raises the Runtime dock and gives it room (View ▸ Runtime).
    void showRuntime();

signals:
    void modelLoaded(QString path);
    void loadFailed(QString path, QString message);
    void loadCancelled(QString path);

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    void closeEvent(QCloseEvent* e) override;

private:
    void buildDocks();
    void buildMenus();
    void buildStatusBar();
    void onLoaded(const QString& path, const std::shared_ptr<const Model>& model);
    void onLoadFailed(const QString& path, const QString& message);
    void onLoadCancelled(const QString& path);
    void onLoadProgress(double fraction, const QString& stage);
    void showError(const QString& title, const QString& text, const QString& detail);
    void log(const QString& text, bool error = false);
    void addRecentFile(const QString& path);
    void rebuildRecentMenu();
    void openDialog();
    void setLoadingUi(bool loading);

    std::shared_ptr<const Model> model_;
    QString current_file_;
    int selected_ = -1;
    bool syncing_ = false;

    ModelLoader* loader_;
    ModelTreeModel* tree_model_;
    TensorTableModel* table_model_;
    QSortFilterProxyModel* table_proxy_;
    QTreeView* tree_view_ = nullptr;
    QTableView* table_view_ = nullptr;
    QLineEdit* filter_ = nullptr;
    QLabel* stats_status_ = nullptr;
    HeatmapWidget* heatmap_;
    ModelInfoView* info_ = nullptr;
    QPlainTextEdit* log_ = nullptr;
    QMenu* recent_menu_ = nullptr;
    QMenu* view_menu_ = nullptr;
    QLabel* summary_ = nullptr;
    QProgressBar* load_progress_ = nullptr;
    QPushButton* cancel_button_ = nullptr;
    QDockWidget* tree_dock_ = nullptr;
    QDockWidget* table_dock_ = nullptr;
    QDockWidget* info_dock_ = nullptr;
    QDockWidget* log_dock_ = nullptr;
    RuntimePanel* runtime_ = nullptr;
    QDockWidget* runtime_dock_ = nullptr;
    OutlierView* outliers_ = nullptr;
    QDockWidget* outlier_dock_ = nullptr;
    AllocView* alloc_ = nullptr;
    QDockWidget* alloc_dock_ = nullptr;
    CompareView* compare_ = nullptr;
    QDockWidget* compare_dock_ = nullptr;
    RouterView* router_ = nullptr;
    QDockWidget* router_dock_ = nullptr;
    TrainingPanel* training_ = nullptr;
    QDockWidget* training_dock_ = nullptr;
    LambdaPanel* lambda_ = nullptr;
    QDockWidget* lambda_dock_ = nullptr;
    BoardPanel* boards_ = nullptr;
    QDockWidget* board_dock_ = nullptr;
    QuantizeDialog* quantize_dialog_ = nullptr;
};

}  // namespace ef::views
