// One-click Quantize & Export (issue 4, GUI). The user picks the method (rtn / imatrix / gptq;
// the latter two calibrate on a text: the last 10% of ../shared/text/wikitext-2-raw-test.txt by
// default, or a file), the target (a ggml type, or the EF format with bits, block, affine, outlier
// share and selection), the output (llama.cpp GGUF, EdgeFusion GGUF, HDF5 checkpoint with the master
// weights plus the variant) and the path. "Quantize & Export" runs views/quantize_job.h's
// run_quantize_job on a worker thread with one progress bar over all stages and Cancel; the result
// comes back by queued signal and fills the summary (per-tensor table, fallbacks tinted, and the
// totals). Errors show the library's own message. A model quantized elsewhere (the allocation
// editor) can be handed in with setSourceModel and is exported without re-quantizing.
#pragma once
#include <QDialog>
#include <QThreadPool>
#include <memory>
#include <optional>

#include "core/model.h"
#include "core/progress.h"
#include "views/quantize_job.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QGroupBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QSpinBox;
class QTableView;

namespace ef::views {

class QuantSummaryModel;
using QuantizeJobResultPtr = std::shared_ptr<const QuantizeJobResult>;

class QuantizeDialog : public QDialog {
    Q_OBJECT
public:
    explicit QuantizeDialog(QWidget* parent = nullptr);
    ~QuantizeDialog() override;  // cancels and waits for a running job

    // The master model (what is quantized, and the HDF5 checkpoint's full-precision weights). A new
    // model cancels a running job and clears the summary and any pre-built source.
    void setModel(std::shared_ptr<const Model> master, const QString& label = {});
    // An already-quantized model (e.g. from the bit-allocation editor): exported as it is, no
    // calibration or quantization. `report`: its per-tensor report if the caller has one, else it
    // is derived (views/quantize_job.h describe_quantized). Null clears it.
    void setSourceModel(std::shared_ptr<const Model> quantized, const QString& label,
                        std::optional<ModelQuantReport> report = std::nullopt);
    bool hasSourceModel() const { return bool(prebuilt_); }
    std::shared_ptr<const Model> model() const { return master_; }
    std::shared_ptr<const Model> sourceModel() const { return prebuilt_; }

    // The options as the widgets say (and setting them through the widgets).
    QuantizeJobOptions options() const;
    void setOptions(const QuantizeJobOptions& o);
    // The explicit EF block must divide every row (no fallback).
    void setStrict(bool strict);

    // Starts the job; false (with failed) when there is no model or the path is empty.
    bool start();
    void cancel();
    bool busy() const { return busy_; }
    QuantizeJobResultPtr result() const { return result_; }

    QuantSummaryModel* summaryModel() const { return summary_; }
    QSortFilterProxyModel* summaryProxy() const { return proxy_; }
    QTableView* summaryTable() const { return table_; }
    QString errorText() const;
    QString totalsText() const;
    QProgressBar* progressBar() const { return bar_; }

signals:
    void finished(QString path);     // written; result() holds the summary
    void failed(QString message);
    void cancelled();
    // Worker -> UI (queued).
    void computed(quint64 job, ef::views::QuantizeJobResultPtr result, QString error);
    void progressed(quint64 job, double fraction, QString stage);

private:
    void onComputed(quint64 job, const QuantizeJobResultPtr& r, const QString& error);
    void setBusy(bool busy);
    void updateEnabled();
    void suggestPath();
    void browseOutput();
    void browseCalibration();
    void showError(const QString& message);

    std::shared_ptr<const Model> master_;
    QString master_label_;
    std::shared_ptr<const Model> prebuilt_;
    QString prebuilt_label_;
    std::optional<ModelQuantReport> prebuilt_report_;
    QuantizeJobResultPtr result_;
    std::shared_ptr<Progress> progress_;
    quint64 job_ = 0;
    bool busy_ = false;
    bool path_edited_ = false;

    QLabel* source_;
    QCheckBox* use_prebuilt_;
    QComboBox* method_;
    QComboBox* target_;
    QGroupBox* ef_box_;
    QComboBox* bits_;
    QComboBox* block_;
    QCheckBox* affine_;
    QDoubleSpinBox* outliers_;
    QComboBox* selection_;
    QCheckBox* strict_;
    QGroupBox* calib_box_;
    QLineEdit* calib_path_;
    QSpinBox* calib_tokens_;
    QSpinBox* threads_;
    QComboBox* output_;
    QLineEdit* path_;
    QPushButton* run_;
    QPushButton* cancel_;
    QProgressBar* bar_;
    QLabel* stage_;
    QLabel* error_;
    QLabel* totals_;
    QuantSummaryModel* summary_;
    QSortFilterProxyModel* proxy_;
    QTableView* table_;
    QThreadPool pool_;
};

}  // namespace ef::views

Q_DECLARE_METATYPE(ef::views::QuantizeJobResultPtr)
