#include "views/lambda_panel.h"

#include <QCategoryAxis>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLineSeries>
#include <QProgressBar>
#include <QPushButton>
#include <QScatterSeries>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QValueAxis>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/formats/format.h"
#include "core/train/train_config.h"
#include "views/runtime_panel_charts.h"
#include "views/training_panel.h"

namespace ef::views {

double lambda_axis_x(double lambda) { return lambda > 0 ? std::log10(lambda) : -5.0; }

QString lambda_text(double lambda) {
    if (!(lambda > 0)) return "0";
    if (lambda >= 0.01) return QString::number(lambda, 'g', 2);
    const int e = int(std::floor(std::log10(lambda) + 1e-9));
    const double m = lambda / std::pow(10.0, e);
    return QString("%1e%2").arg(QString::number(m, 'g', 2)).arg(e);
}

// ---- LambdaCurveModel -------------------------------------------------------------------------

LambdaCurveModel::LambdaCurveModel(QObject* parent) : QAbstractTableModel(parent) {}

int LambdaCurveModel::addPoint(const LambdaPoint& p) {
    auto it = std::lower_bound(points_.begin(), points_.end(), p.lambda,
                               [](const LambdaPoint& a, double l) { return a.lambda < l; });
    const int row = int(it - points_.begin());
    if (it != points_.end() && it->lambda == p.lambda) {  // the same lambda again: the newer run
        *it = p;
        emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
        return row;
    }
    beginInsertRows({}, row, row);
    points_.insert(it, p);
    endInsertRows();
    return row;
}

void LambdaCurveModel::clear() {
    if (points_.empty()) return;
    beginResetModel();
    points_.clear();
    endResetModel();
}

int LambdaCurveModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(points_.size()); }
int LambdaCurveModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant LambdaCurveModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount) return {};
    const LambdaPoint& p = points_[size_t(index.row())];
    const int c = index.column();
    if (role == SortRole) {
        switch (c) {
            case LambdaColumn: return p.lambda;
            case SsmFracColumn: return p.ssm_frac;
            case EntropyColumn: return p.gate_entropy_bits;
            case KlColumn: return p.kl;
            case PplColumn: return p.val_ppl;
            case GflopsColumn: return p.gflops_per_token;
        }
        return {};
    }
    if (role == Qt::DisplayRole) {
        switch (c) {
            case LambdaColumn: return lambda_text(p.lambda);
            case SsmFracColumn: return QString("%1%").arg(100 * p.ssm_frac, 0, 'f', 1);
            case EntropyColumn: return QString::number(p.gate_entropy_bits, 'f', 3);
            case KlColumn: return QString::number(p.kl, 'f', 4);
            case PplColumn: return QString::number(p.val_ppl, 'f', 2);
            case GflopsColumn:
                return p.dense_gflops_per_token > 0
                           ? QString("%1 (%2%3%)")
                                 .arg(p.gflops_per_token, 0, 'g', 3)
                                 .arg(p.gflops_per_token > p.dense_gflops_per_token ? "+" : "")
                                 .arg(100 * (p.gflops_per_token / p.dense_gflops_per_token - 1), 0, 'f', 1)
                           : QString::number(p.gflops_per_token, 'g', 4);
        }
        return {};
    }
    if (role == Qt::TextAlignmentRole) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole)
        return tr("λ %1: %2 steps, final loss %3, checkpoint %4")
            .arg(lambda_text(p.lambda))
            .arg(p.steps)
            .arg(p.final_loss, 0, 'f', 4)
            .arg(QString::fromStdString(p.checkpoint));
    return {};
}

QVariant LambdaCurveModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, o, role);
    switch (section) {
        case LambdaColumn: return tr("λ");
        case SsmFracColumn: return tr("ssm_frac");
        case EntropyColumn: return tr("entropy (bits)");
        case KlColumn: return tr("KL (nats)");
        case PplColumn: return tr("PPL");
        case GflopsColumn: return tr("GFLOPs/token");
    }
    return {};
}

// ---- LambdaCurveChart -------------------------------------------------------------------------

namespace {
const char* const kMetricNames[] = {"ssm_frac", "KL to the loaded model (nats)", "GFLOPs/token"};
const QColor kMetricColors[] = {QColor(224, 123, 36), QColor(38, 110, 200), QColor(40, 150, 100)};

double metric_value(const LambdaPoint& p, LambdaCurveChart::Metric m) {
    switch (m) {
        case LambdaCurveChart::SsmFrac: return p.ssm_frac;
        case LambdaCurveChart::Kl: return p.kl;
        case LambdaCurveChart::Gflops: return p.gflops_per_token;
        default: return 0;
    }
}
}  // namespace

LambdaCurveChart::LambdaCurveChart(QWidget* parent) : QChartView(parent), ax_(new QCategoryAxis), ay_(new QValueAxis) {
    auto* chart = new QChart;
    style_chart(chart, tr("λ → trade-off"));
    chart->legend()->hide();
    ax_->setLabelsPosition(QCategoryAxis::AxisLabelsPositionOnValue);
    ax_->setRange(-5.3, 0.3);
    ax_->setStartValue(-5.3);
    ax_->append("0", -5);
    for (int e = -4; e <= 0; ++e) ax_->append(e == 0 ? QString("1") : QString("1e%1").arg(e), e);
    ax_->setTitleText(tr("λ (log scale)"));
    ay_->setLabelFormat("%.3g");
    chart->addAxis(ax_, Qt::AlignBottom);
    chart->addAxis(ay_, Qt::AlignLeft);
    for (int m = 0; m < MetricCount; ++m) {
        lines_[m] = new QLineSeries;
        dots_[m] = new QScatterSeries;
        QPen pen(kMetricColors[m]);
        pen.setWidthF(2);
        lines_[m]->setPen(pen);
        lines_[m]->setName(kMetricNames[m]);
        dots_[m]->setColor(kMetricColors[m]);
        dots_[m]->setBorderColor(kMetricColors[m]);
        dots_[m]->setMarkerSize(8);
        for (QXYSeries* s : {static_cast<QXYSeries*>(lines_[m]), static_cast<QXYSeries*>(dots_[m])}) {
            chart->addSeries(s);
            s->attachAxis(ax_);
            s->attachAxis(ay_);
        }
    }
    setChart(chart);
    setRenderHint(QPainter::Antialiasing);
    setMinimumSize(260, 160);
    setMetric(SsmFrac);
}

void LambdaCurveChart::setPoints(const std::vector<LambdaPoint>& points) {
    for (int m = 0; m < MetricCount; ++m) {
        QList<QPointF> pts;
        for (const LambdaPoint& p : points) {
            pts.append(QPointF(lambda_axis_x(p.lambda), metric_value(p, Metric(m))));
        }
        lines_[m]->replace(pts);
        dots_[m]->replace(pts);
    }
    rescale();
}

void LambdaCurveChart::setMetric(Metric m) {
    metric_ = m;
    for (int i = 0; i < MetricCount; ++i) {
        lines_[i]->setVisible(i == m);
        dots_[i]->setVisible(i == m);
    }
    ay_->setTitleText(kMetricNames[m]);
    rescale();
}

void LambdaCurveChart::rescale() {
    if (metric_ == SsmFrac) {
        ay_->setRange(0, 1);
        return;
    }
    double lo = 1e300, hi = -1e300;
    for (const QPointF& p : lines_[metric_]->points()) {
        lo = std::min(lo, p.y());
        hi = std::max(hi, p.y());
    }
    if (lo > hi) {
        ay_->setRange(0, 1);
        return;
    }
    const double pad = std::max((hi - lo) * 0.1, std::max(std::abs(hi), 1e-6) * 0.02);
    ay_->setRange(std::max(0.0, lo - pad), hi + pad);
}

// ---- LambdaPanel ------------------------------------------------------------------------------

double LambdaPanel::lambdaAt(int position) {
    if (position <= 0) return 0;
    position = std::min(position, kSliderMax);
    return std::pow(10.0, -4.0 + double(position - 1) / 20.0);
}

int LambdaPanel::positionFor(double lambda) {
    if (!(lambda > 0)) return 0;
    return std::clamp(int(std::lround((std::log10(lambda) + 4.0) * 20.0)) + 1, 1, kSliderMax);
}

LambdaPanel::LambdaPanel(QWidget* parent) : QWidget(parent), job_(new TrainJob(this)) {
    model_label_ = new QLabel;
    model_label_->setWordWrap(true);
    slider_ = new QSlider(Qt::Horizontal);
    slider_->setRange(0, kSliderMax);
    slider_->setPageStep(20);
    slider_->setTickPosition(QSlider::TicksBelow);
    slider_->setTickInterval(20);
    slider_->setValue(positionFor(0.01));
    slider_->setToolTip(tr("Router sparsity weight λ (log scale: 0, 1e-4 … 1). Release to re-train the gates at this λ."));
    lambda_label_ = new QLabel;
    lambda_label_->setMinimumWidth(90);
    connect(slider_, &QSlider::valueChanged, this, &LambdaPanel::showLambda);
    connect(slider_, &QSlider::sliderReleased, this, [this] { retrain(lambdaAt(slider_->value())); });
    // Keyboard and clicks on the groove move the slider without a release: re-train on those too.
    connect(slider_, &QSlider::actionTriggered, this, [this](int action) {
        if (action != QAbstractSlider::SliderMove)
            QMetaObject::invokeMethod(this, [this] { retrain(lambdaAt(slider_->value())); }, Qt::QueuedConnection);
    });

    text_ = new QLineEdit;
    text_->setToolTip(tr("The text the gates re-train on (tokenized with the model's own tokenizer)"));
    auto* browse = new QPushButton(tr("…"));
    browse->setFixedWidth(32);
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Training text"), QFileInfo(textPath()).absolutePath(),
                                                       tr("Text (*.txt);;All files (*)"));
        if (!f.isEmpty()) setTextPath(f);
    });
    steps_ = new QSpinBox;
    steps_->setRange(1, 100000);
    steps_->setValue(40);
    steps_->setToolTip(tr("Optimizer steps per re-training (base frozen: only gates and SSM branches train)"));
    threads_ = new QSpinBox;
    threads_->setRange(1, 256);
    threads_->setValue(2);
    cancel_button_ = new QPushButton(tr("Cancel"));
    connect(cancel_button_, &QPushButton::clicked, this, &LambdaPanel::cancel);
    open_button_ = new QPushButton(tr("Open re-trained"));
    open_button_->setToolTip(tr("Open the selected point's re-trained model in the workbench"));
    connect(open_button_, &QPushButton::clicked, this, [this] {
        const QModelIndex i = table_->currentIndex();
        const auto& pts = curve_->points();
        if (i.isValid() && size_t(i.row()) < pts.size())
            emit openModelRequested(QString::fromStdString(pts[size_t(i.row())].checkpoint) + "/model.h5");
    });
    progress_ = new QProgressBar;
    progress_->setRange(0, 1000);
    progress_->setTextVisible(true);
    progress_->setFormat("%p%");
    status_ = new QLabel(tr("Idle"));
    status_->setWordWrap(true);

    auto* slider_row = new QHBoxLayout;
    slider_row->addWidget(new QLabel(tr("λ:")));
    slider_row->addWidget(slider_, 1);
    slider_row->addWidget(lambda_label_);
    auto* text_row = new QHBoxLayout;
    text_row->addWidget(text_, 1);
    text_row->addWidget(browse);
    auto* opts = new QHBoxLayout;
    opts->addWidget(new QLabel(tr("Steps:")));
    opts->addWidget(steps_);
    opts->addWidget(new QLabel(tr("Threads:")));
    opts->addWidget(threads_);
    opts->addStretch(1);
    auto* run_row = new QHBoxLayout;
    run_row->addWidget(progress_, 1);
    run_row->addWidget(cancel_button_);
    run_row->addWidget(open_button_);

    metric_ = new QComboBox;
    for (const char* n : kMetricNames) metric_->addItem(tr(n));
    chart_ = new LambdaCurveChart;
    connect(metric_, &QComboBox::currentIndexChanged, this,
            [this](int i) { chart_->setMetric(LambdaCurveChart::Metric(std::clamp(i, 0, int(LambdaCurveChart::MetricCount) - 1))); });
    curve_ = new LambdaCurveModel(this);
    table_ = new QTableView;
    table_->setModel(curve_);
    table_->verticalHeader()->hide();
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setStretchLastSection(true);

    auto* controls = new QWidget;
    auto* form = new QFormLayout(controls);
    form->setContentsMargins(0, 0, 0, 0);
    form->addRow(model_label_);
    form->addRow(slider_row);
    form->addRow(tr("Text:"), text_row);
    form->addRow(opts);
    form->addRow(run_row);
    form->addRow(status_);
    form->addRow(table_);

    auto* chart_box = new QWidget;
    auto* cb = new QVBoxLayout(chart_box);
    cb->setContentsMargins(0, 0, 0, 0);
    auto* metric_row = new QHBoxLayout;
    metric_row->addWidget(new QLabel(tr("Show:")));
    metric_row->addWidget(metric_);
    metric_row->addStretch(1);
    cb->addLayout(metric_row);
    cb->addWidget(chart_, 1);

    auto* split = new QSplitter(Qt::Horizontal);
    split->addWidget(controls);
    split->addWidget(chart_box);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    split->setSizes({560, 520});
    auto* l = new QVBoxLayout(this);
    l->setContentsMargins(4, 4, 4, 4);
    l->addWidget(split);

    connect(job_, &TrainJob::logged, this, [this](const train::TrainLogEntry& e) {
        if (!e.gates.empty()) emit gatesUpdated(e.gates);
    });
    connect(job_, &TrainJob::progressed, this, [this](double f, const QString& stage) {
        progress_->setValue(int(std::clamp(f, 0.0, 1.0) * 1000));
        if (!stage.isEmpty() && !job_->isCancelling()) status_->setText(tr("λ = %1: %2").arg(lambda_text(running_lambda_), stage));
    });
    connect(job_, &TrainJob::finished, this, &LambdaPanel::onFinished);

    // The demo config's text: what the bundled model was trained on.
    if (const QString cfg = find_default_train_config(); !cfg.isEmpty())
        if (auto c = train::load_train_config(cfg.toStdString()); c.ok()) setTextPath(QString::fromStdString(c->data.train_text));
    showLambda(slider_->value());
    setModel(nullptr);
}

LambdaPanel::~LambdaPanel() {
    // The run writes under tmp_: stop it before the folder goes.
    job_->cancel();
    job_->waitForWorker();
}

void LambdaPanel::showLambda(int position) { lambda_label_->setText(tr("λ = %1").arg(lambda_text(lambdaAt(position)))); }

bool LambdaPanel::applicable() const { return model_ && model_->architecture == "edgefusion"; }

void LambdaPanel::setModel(std::shared_ptr<const Model> model, const QString& path) {
    pending_.reset();
    job_->cancel();  // its result belongs to the previous model: onFinished drops it
    model_ = std::move(model);
    model_path_ = path;
    base_file_.clear();
    ++model_serial_;
    curve_->clear();
    chart_->setPoints({});
    run_dir_.clear();
    if (!model_) model_label_->setText(tr("Load an edgefusion model to re-train its gates at other values of λ."));
    else if (!applicable())
        model_label_->setText(tr("The loaded model is %1: λ applies to edgefusion models (routed layers).")
                                  .arg(QString::fromStdString(model_->architecture)));
    else
        model_label_->setText(tr("Re-trains the gates of %1 (base frozen) at the λ the slider is released on.")
                                  .arg(path.isEmpty() ? tr("the loaded model") : QFileInfo(path).fileName()));
    refresh();
}

QString LambdaPanel::textPath() const { return text_->text().trimmed(); }
void LambdaPanel::setTextPath(const QString& path) { text_->setText(path); }
int LambdaPanel::steps() const { return steps_->value(); }
void LambdaPanel::setSteps(int n) { steps_->setValue(n); }
void LambdaPanel::setBatch(int batch, int seq_len) {
    batch_ = std::max(1, batch);
    seq_len_ = std::max(2, seq_len);
}
void LambdaPanel::setLearningRate(double lr) { lr_ = lr; }
void LambdaPanel::setEvalWindows(int n) { eval_windows_ = std::max(1, n); }
void LambdaPanel::setThreads(int n) { threads_->setValue(n); }

void LambdaPanel::cancel() {
    pending_.reset();
    if (job_->isRunning()) {
        job_->cancel();
        status_->setText(tr("Cancelling λ = %1…").arg(lambda_text(running_lambda_)));
    }
    refresh();
}

bool LambdaPanel::retrain(double lambda) {
    auto fail = [this](const QString& m) {
        status_->setText(m);
        emit message(tr("λ re-training: %1").arg(m), true);
        return false;
    };
    if (!applicable()) return fail(tr("load an edgefusion model first"));
    if (textPath().isEmpty() || !QFileInfo(textPath()).isFile()) return fail(tr("choose a text file to re-train on"));
    if (job_->isRunning()) {  // the newest lambda wins; it starts once the current run has stopped
        pending_ = lambda;
        job_->cancel();
        status_->setText(tr("Cancelling λ = %1 for λ = %2…").arg(lambda_text(running_lambda_), lambda_text(lambda)));
        refresh();
        return true;
    }
    if (!tmp_) {
        tmp_ = std::make_unique<QTemporaryDir>();
        if (!tmp_->isValid()) {
            tmp_.reset();
            return fail(tr("cannot create a temporary folder"));
        }
    }
    // The trainer reads its base model from a file: the loaded one, or the model written once.
    std::function<Status(Progress&)> before;
    QString base = model_path_;
    if (base.isEmpty() || !QFileInfo(base).isFile()) {
        if (base_file_.isEmpty()) base_file_ = tmp_->filePath(QString("base_%1.h5").arg(model_serial_));
        base = base_file_;
        before = [model = model_, file = base.toStdString()](Progress& p) -> Status {
            if (std::filesystem::exists(file)) return Status::success();
            return save_model(*model, file, SaveOptions{}, p);
        };
    }
    auto cfg = train::gate_training_config(base.toStdString(), QFileInfo(textPath()).absoluteFilePath().toStdString());
    if (!cfg) return fail(QString::fromStdString(cfg.message()));
    // The panel's sizes, and the loaded model's own router temperature: its gates as it runs them.
    const int steps = steps_->value();
    cfg->data.seq_len = model_->config.context_length > 1 ? std::min<int64_t>(seq_len_, model_->config.context_length) : seq_len_;
    cfg->data.batch = batch_;
    cfg->training.steps = steps;
    cfg->training.lr = float(lr_);
    cfg->training.min_lr = float(lr_ / 10);
    cfg->training.warmup = std::min<int64_t>(cfg->training.warmup, steps / 10);
    cfg->training.log_every = std::max(1, steps / 10);
    cfg->training.threads = threads_->value();
    cfg->router.tau_start = cfg->router.tau_end = model_->config.router_temperature;
    cfg->router.anneal = train::Anneal::None;
    run_dir_ = tmp_->filePath(QString("run_%1").arg(++runs_));
    train::LambdaSweepOptions o;
    o.output_dir = run_dir_.toStdString();
    o.steps = steps;
    o.threads = threads_->value();
    o.eval_windows = eval_windows_;
    running_lambda_ = lambda;
    running_serial_ = model_serial_;
    progress_->setValue(0);
    job_->startLambda(*cfg, float(lambda), std::move(o), TrainJobOptions{true, std::move(before)});
    status_->setText(tr("λ = %1: preparing…").arg(lambda_text(lambda)));
    refresh();
    return true;
}

void LambdaPanel::onFinished(TrainJobResultPtr r) {
    const double lambda = running_lambda_;
    const bool current = running_serial_ == model_serial_;
    if (current && r->ok && r->point && r->analysis) {
        const RouterAnalysis& a = *r->analysis;
        const int row = curve_->addPoint(*r->point);
        chart_->setPoints(curve_->points());
        table_->selectRow(row);
        progress_->setValue(1000);
        const QString line = tr("%1; KL %2 nats, PPL %3")
                                 .arg(QString::fromStdString(router_summary_line(a)))
                                 .arg(r->point->kl, 0, 'f', 4)
                                 .arg(r->point->val_ppl, 0, 'f', 2);
        status_->setText(tr("λ = %1: %2").arg(lambda_text(lambda), line));
        emit analysisReady(a);
        emit message(tr("λ = %1 re-trained: %2").arg(lambda_text(lambda), line), false);
    } else if (r->ok && current) {
        status_->setText(tr("λ = %1: the re-trained model has no router to analyse").arg(lambda_text(lambda)));
    } else if (r->cancelled || !current) {
        status_->setText(tr("λ = %1 cancelled; the curve is unchanged").arg(lambda_text(lambda)));
    } else {
        status_->setText(tr("λ = %1 failed: %2").arg(lambda_text(lambda), r->message));
        emit message(tr("λ re-training failed: %1").arg(r->message), true);
    }
    const bool ok = current && r->ok && r->point && r->analysis;
    emit retrainFinished(ok, r->cancelled || !current, r->message);
    refresh();
    if (pending_) {
        const double next = *pending_;
        pending_.reset();
        retrain(next);
    }
}

void LambdaPanel::refresh() {
    const bool on = applicable();
    slider_->setEnabled(on);
    text_->setEnabled(on && !isRunning());
    steps_->setEnabled(!isRunning());
    threads_->setEnabled(!isRunning());
    cancel_button_->setEnabled(isRunning() && !job_->isCancelling());
    open_button_->setEnabled(!isRunning() && !curve_->points().empty());
}

}  // namespace ef::views
