// The tensor inspector: the selected tensor's statistics above its |w| heatmap (log colour scale,
// colour bar, hover read-out, wheel and button zoom). Statistics and heatmap are computed on a
// worker thread and handed back by a queued signal; selecting another tensor cancels the old job.
#pragma once
#include <QFuture>
#include <QThreadPool>
#include <QWidget>
#include <memory>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/stats.h"

class QLabel;
class QProgressBar;
class QScrollArea;
class QToolButton;

namespace ef::views {

class HeatmapCanvas;
class ColorBar;

// What a job hands back: immutable once built.
struct TensorInspection {
    int tensor = -1;
    TensorStats stats;
    std::shared_ptr<const Heatmap> heatmap;
    QString error;  // empty on success
};

class HeatmapWidget : public QWidget {
    Q_OBJECT
public:
    explicit HeatmapWidget(QWidget* parent = nullptr);
    ~HeatmapWidget() override;

    // Starts inspecting model->tensors[tensor_index]; a null model clears the view.
    void showTensor(std::shared_ptr<const Model> model, int tensor_index);
    void clear();
    // Marks source (row, col) positions of the shown tensor (the outlier view's kept outliers); ignored
    // unless `tensor_index` is the tensor on screen; showing another tensor drops them.
    void setMarkers(int tensor_index, std::vector<std::pair<int64_t, int64_t>> positions);
    size_t markerCount() const;
    int tensorIndex() const { return tensor_; }
    bool busy() const { return busy_; }
    // The heatmap on screen (null while computing or after an error).
    const Heatmap* heatmap() const { return current_.heatmap.get(); }
    const TensorStats* stats() const { return current_.heatmap ? &current_.stats : nullptr; }
    double zoom() const { return zoom_; }
    // Largest cell grid requested (defaults follow the viewport size, capped at 2048).
    void setMaxCells(int rows, int cols) { max_rows_ = rows; max_cols_ = cols; }
    // Read-out for a cell: "rows 8–15, cols 0–3 · max|w| 0.0123 · mean|w| 0.0041".
    QString describeCell(int row, int col) const;

public slots:
    void zoomIn();
    void zoomOut();
    void zoomToFit();

signals:
    void inspectionReady(int tensor_index);  // stats and heatmap are on screen
    void inspectionFailed(int tensor_index, QString message);
    void statusMessage(QString text);
    // Worker -> UI (queued).
    void inspectionComputed(quint64 generation, std::shared_ptr<const ef::views::TensorInspection> result);
    void inspectionProgress(quint64 generation, double fraction);

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void onComputed(quint64 generation, const std::shared_ptr<const TensorInspection>& r);
    void onHover(int row, int col);
    void setZoom(double zoom, QPoint anchor);
    void applyZoom();
    void setStatsText(const TensorStats* s);

    std::shared_ptr<const Model> model_;
    int tensor_ = -1;
    TensorInspection current_;
    QImage image_;
    double zoom_ = 1.0;  // 1 = fit the viewport
    int max_rows_ = 0, max_cols_ = 0;
    quint64 generation_ = 0;
    bool busy_ = false;
    std::shared_ptr<Progress> progress_;

    QLabel* title_;
    QLabel* stats_label_;
    QLabel* readout_;
    QLabel* zoom_label_;
    QProgressBar* progress_bar_;
    QScrollArea* scroll_;
    HeatmapCanvas* canvas_;
    ColorBar* colorbar_;
    QFuture<void> future_;
    QThreadPool pool_;
};

}  // namespace ef::views

Q_DECLARE_METATYPE(std::shared_ptr<const ef::views::TensorInspection>)
