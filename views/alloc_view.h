// The bit-allocation dock (issue 4): measures every unit's sensitivity at each candidate width on a
// worker thread (ef::measure_sensitivity: KL on calibration windows, or the cheaper output-error
// proxy; progress and cancel), then re-solves ef::allocate_bits on every budget or pin change and
// shows the result live: the per-unit table (pins editable there), a bar chart of the chosen bits
// per unit (pinned units in their own colour) with the sensitivity or the bytes as a second series,
// and the summary (predicted loss, model size, average effective and code bits, or the error with the
// minimum possible budget). The solver is exact and takes milliseconds for per-layer units, so it runs
// on the UI thread.
//
// Budget modes (ef::BudgetKind): average effective bits per weight over the quantized units, average
// code bits, or the whole deployment in bytes (units + kept-precision tensors + KV cache and SSM
// state at the chosen context). The slider spans "every free unit at its smallest width" to "every
// free unit at its widest" (pinned units at their pins) in the mode's terms; the spin box takes any
// value (a budget below the minimum shows the error with the minimum).
//
// "Quantize" runs ef::apply_allocation on the worker (progress, cancel) and emits quantized(model):
// "Export…" asks the main window (exportRequested) to open Quantize & Export with that model as its
// source; "Save…" writes it with ef::save_model (atomic).
#pragma once
#include <QThreadPool>
#include <QWidget>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/progress.h"
#include "quant/bit_alloc.h"
#include "views/alloc_models.h"
#include "views/model_loader.h"  // the metatype of std::shared_ptr<const Model>

class QBarCategoryAxis;
class QBarSet;
class QChart;
class QChartView;
class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QLineSeries;
class QProgressBar;
class QPushButton;
class QSlider;
class QSpinBox;
class QStackedBarSeries;
class QTableView;
class QValueAxis;

namespace ef::views {

// The calibration windows the view measures on: `text_path`'s text (the default text, kDefaultCalibrationText,
// contributes only its calibration part, the last 10% of its lines; any other file is used whole),
// tokenized and cut into `windows` windows of `window_tokens` tokens (0: min(128, the model's context)).
Result<std::vector<std::vector<int32_t>>> alloc_calibration_windows(const Model& m, const std::string& text_path,
                                                                    int windows, int window_tokens);

class AllocView : public QWidget {
    Q_OBJECT
public:
    enum class Secondary { Sensitivity, Bytes };

    explicit AllocView(QWidget* parent = nullptr);
    ~AllocView() override;  // cancels and waits for a running job

    // A new model drops the measurement and any quantized result (running jobs are cancelled).
    void setModel(std::shared_ptr<const Model> model);

    // Measurement options.
    SensitivityOptions sensitivityOptions() const;  // throws nothing; widths from the text field (invalid -> empty)
    void setMeasureOptions(const std::vector<int>& widths, int block, double outlier_fraction, bool proxy, bool per_tensor = false);
    void setCalibration(int windows, int window_tokens, const QString& text_path = {});
    QString calibrationPath() const;
    bool startMeasure();  // false (with measurementFailed) when there is no model or the options are invalid
    void cancel();        // the running measurement or quantization
    bool busy() const { return busy_; }
    AllocMeasurementPtr measurement() const { return measurement_; }

    // Budget.
    void setBudgetKind(BudgetKind k);
    BudgetKind budgetKind() const;
    void setBudgetValue(double v);  // bits per weight, or bytes for TotalBytes
    double budgetValue() const;
    void setContext(int64_t n_ctx);  // KV cache length for TotalBytes
    int64_t context() const;
    AllocBudget budget() const;      // what allocate_bits gets (fixed bytes filled for TotalBytes)
    uint64_t stateBytes() const { return state_bytes_; }  // KV cache + SSM state at context()
    // The smallest budget possible with the current pins, in the mode's terms (NaN without a measurement).
    double minimumBudget() const;
    double maximumBudget() const;   // every unit at its widest (pins respected)
    void setSliderPosition(int pos);  // 0..1000: acts as a user drag
    void setSecondary(Secondary s);

    // The current solve (nullopt without measurement or when the budget is infeasible) and its error.
    const std::optional<AllocResult>& allocation() const { return units_->allocation(); }
    QString solveError() const { return solve_error_; }
    std::vector<AllocUnit> units() const { return units_->unitsWithPins(); }

    // Quantize with the current allocation (worker thread) -> quantized(); Save writes the result.
    bool startQuantize();
    bool startSave(const QString& path);
    std::shared_ptr<const Model> quantizedModel() const { return quantized_; }

    AllocUnitModel* unitModel() const { return units_; }
    AllocOptionModel* optionModel() const { return options_; }
    QTableView* unitTable() const { return unit_table_; }
    QSlider* slider() const { return slider_; }
    QDoubleSpinBox* budgetSpin() const { return budget_spin_; }
    QLabel* lossLabel() const { return loss_label_; }
    QLabel* sizeLabel() const { return size_label_; }
    QLabel* bitsLabel() const { return bits_label_; }
    QLabel* errorLabel() const { return error_label_; }
    QLabel* statusLabel() const { return status_; }
    QChart* chart() const { return chart_; }
    // Chart values per unit (what the bars and the line show), for tests.
    std::vector<double> chartBits() const;
    std::vector<double> chartSecondary() const;

signals:
    void measurementReady();
    void measurementFailed(QString message);
    void measurementCancelled();
    void allocationChanged();  // after every solve (also a failed one)
    void quantized(std::shared_ptr<const ef::Model> model, QString summary);
    void quantizeFailed(QString message);
    void exportRequested();  // "Export…": the main window opens Quantize & Export with quantizedModel()
    void saved(QString path);
    void saveFailed(QString message);
    void message(QString text, bool error);
    // Worker -> UI (queued).
    void measuredInternal(quint64 job, ef::views::AllocMeasurementPtr result, QString error);
    void quantizedInternal(quint64 job, std::shared_ptr<const ef::Model> model, QString error);
    void savedInternal(quint64 job, QString path, QString error);
    void progressed(quint64 job, double fraction, QString stage);

private:
    enum class Job { None, Measure, Quantize, Save };
    void onMeasured(quint64 job, const AllocMeasurementPtr& r, const QString& error);
    void onQuantized(quint64 job, const std::shared_ptr<const Model>& m, const QString& error);
    void onSaved(quint64 job, const QString& path, const QString& error);
    void setBusy(Job job);
    void resolve();
    void onBudgetKindChanged();
    void updateSpinRange();
    void syncSliderFromSpin();
    void updateState();
    void updateChart();
    void updateOptions();
    void updateSummary();
    std::shared_ptr<Progress> newJob(quint64& job);

    std::shared_ptr<const Model> model_;
    AllocMeasurementPtr measurement_;
    std::shared_ptr<const Model> quantized_;
    std::vector<int> quantized_choice_, quantizing_choice_;  // the choice quantized_ (the running job) was made with
    std::shared_ptr<Progress> progress_;
    quint64 job_ = 0;
    bool busy_ = false;
    Job running_ = Job::None;
    bool syncing_ = false;
    uint64_t state_bytes_ = 0;
    QString solve_error_;
    double last_bits_ = 4.0;  // the bits value kept while the byte mode is shown

    AllocUnitModel* units_;
    AllocOptionModel* options_;
    QLineEdit* widths_;
    QSpinBox* block_;
    QDoubleSpinBox* p_;
    QComboBox* measure_;
    QCheckBox* per_tensor_;
    QSpinBox* windows_;
    QSpinBox* window_tokens_;
    QLineEdit* calib_path_;
    QPushButton* run_;
    QPushButton* cancel_;
    QProgressBar* bar_;
    QLabel* status_;
    QComboBox* budget_kind_;
    QSlider* slider_;
    QDoubleSpinBox* budget_spin_;
    QLabel* ctx_label_;
    QSpinBox* ctx_;
    QPushButton* clear_pins_;
    QPushButton* quantize_;
    QPushButton* save_;
    QPushButton* export_;
    QLabel* loss_label_;
    QLabel* size_label_;
    QLabel* bits_label_;
    QLabel* error_label_;
    QComboBox* secondary_;
    QTableView* unit_table_;
    QTableView* option_table_;
    QChartView* chart_view_;
    QChart* chart_;
    QStackedBarSeries* bars_;
    QBarSet* auto_set_;
    QBarSet* pinned_set_;
    QLineSeries* line_;
    QBarCategoryAxis* x_axis_;
    QValueAxis* bits_axis_;
    QValueAxis* second_axis_;
    QThreadPool pool_;
};

}  // namespace ef::views

Q_DECLARE_METATYPE(ef::views::AllocMeasurementPtr)
