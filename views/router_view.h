// The Router dock (issue 5): for an edgefusion model, per-layer gate bars (each layer's bar split
// into its attention share g, from the bottom, and SSM share 1 - g; the branch hard routing takes
// drawn saturated, the other pale; the 0.5 threshold dashed), the summary (ssm_frac, mean gate
// entropy, GFLOPs/token against the dense twin, converged by the paper's criterion) and the
// per-layer table (views/router_models.h). Other architectures get one line saying why there is
// nothing to show. The analysis is cheap (one float per layer), so it runs on the UI thread.
//
// setGates() lets a training panel push live gate values; setAnalysis() shows any analysis.
#pragma once
#include <QWidget>
#include <memory>
#include <vector>

#include "core/model.h"
#include "views/router_models.h"

class QLabel;
class QTableView;
class QSortFilterProxyModel;
class QSplitter;

namespace ef::views {

// Custom-painted gate bars; hovering a bar shows its layer's numbers.
class RouterBars : public QWidget {
    Q_OBJECT
public:
    explicit RouterBars(QWidget* parent = nullptr);
    void setAnalysis(RouterAnalysisPtr a);
    const RouterAnalysis* analysis() const { return analysis_.get(); }
    // The bar rectangle of a layer in widget coordinates (whole 0..1 column); empty out of range.
    QRect barRect(int layer) const;
    int layerAt(QPoint p) const;  // -1 when not over a bar
    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void paintEvent(QPaintEvent* e) override;
    bool event(QEvent* e) override;  // tooltips

private:
    QRect plotRect() const;
    RouterAnalysisPtr analysis_;
};

class RouterView : public QWidget {
    Q_OBJECT
public:
    explicit RouterView(QWidget* parent = nullptr);

    // Analyses the model's router (drops the previous analysis); a model without a router shows
    // the explanation instead of the bars.
    void setModel(std::shared_ptr<const Model> model);
    std::shared_ptr<const Model> model() const { return model_; }
    RouterAnalysisPtr analysis() const { return analysis_; }
    bool applicable() const { return analysis_ != nullptr; }

    RouterLayerModel* layerModel() const { return layers_; }
    QSortFilterProxyModel* layerProxy() const { return proxy_; }
    QTableView* layerTable() const { return table_; }
    RouterBars* bars() const { return bars_; }
    QString summaryText() const;  // the summary line as shown (plain text)
    QString messageText() const;  // the explanation shown for models without a router (empty otherwise)

public slots:
    // Shows an analysis (e.g. computed elsewhere); emits analysisChanged.
    void setAnalysis(const ef::RouterAnalysis& a);
    // Live gates (one per layer, g in [0, 1]) for the current model, e.g. pushed by training;
    // false (and the view unchanged) when there is no edgefusion model or the gates do not fit.
    bool setGates(const std::vector<float>& gates);

signals:
    void analysisChanged();

private:
    void show_message(const QString& text);
    void refresh();

    std::shared_ptr<const Model> model_;
    RouterAnalysisPtr analysis_;
    RouterLayerModel* layers_;
    QSortFilterProxyModel* proxy_;
    QLabel* summary_;
    QLabel* message_;
    RouterBars* bars_;
    QTableView* table_;
    QSplitter* splitter_;
};

}  // namespace ef::views
