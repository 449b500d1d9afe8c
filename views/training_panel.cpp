#include "views/training_panel.h"

#include <QCheckBox>
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "core/train/train_checkpoint.h"
#include "core/train/train_config.h"
#include "views/runtime_panel_charts.h"

namespace ef::views {

QString find_default_train_config() {
    const QString rel = "resources/configs/demo_scratch.yaml";
    for (QString start : {QDir::currentPath(), QCoreApplication::applicationDirPath()}) {
        QDir d(start);
        for (int up = 0; up < 5; ++up) {
            if (QFileInfo::exists(d.filePath(rel))) return QDir::cleanPath(d.absoluteFilePath(rel));
            if (!d.cdUp()) break;
        }
    }
    return {};
}

namespace {

QPushButton* browse_button(QWidget* parent) {
    auto* b = new QPushButton(QObject::tr("…"), parent);
    b->setFixedWidth(32);
    return b;
}

QHBoxLayout* row(QWidget* edit, QWidget* button) {
    auto* h = new QHBoxLayout;
    h->setContentsMargins(0, 0, 0, 0);
    h->addWidget(edit, 1);
    h->addWidget(button);
    return h;
}

}  // namespace

TrainingPanel::TrainingPanel(QWidget* parent) : QWidget(parent), job_(new TrainJob(this)) {
    config_ = new QLineEdit;
    config_->setToolTip(tr("The training config (YAML), as `edgefusion train --config` reads it"));
    output_ = new QLineEdit;
    output_->setToolTip(tr("Checkpoints, train_log.jsonl and the quantized model go here (--output-dir)"));
    base_ = new QLineEdit;
    base_->setToolTip(tr("--base-model: a dense llama model to hybridize, or an edgefusion model to fine-tune (empty: the config's model.base, or from scratch)"));
    freeze_ = new QCheckBox(tr("Freeze base"));
    freeze_->setToolTip(tr("--freeze-base: only the router gates and the SSM branches train"));
    debug_ = new QCheckBox(tr("Debug (100 steps)"));
    debug_->setToolTip(tr("--debug: 100 steps"));
    threads_ = new QSpinBox;
    threads_->setRange(0, 256);
    threads_->setSpecialValueText(tr("config"));
    threads_->setToolTip(tr("Training threads (config: training.threads)"));

    auto* config_browse = browse_button(this);
    auto* output_browse = browse_button(this);
    auto* base_browse = browse_button(this);
    connect(config_browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Training config"), QFileInfo(configPath()).absolutePath(),
                                                       tr("YAML (*.yaml *.yml)"));
        if (!f.isEmpty()) setConfigPath(f);
    });
    connect(output_browse, &QPushButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Output folder"), outputDir());
        if (!d.isEmpty()) setOutputDir(d);
    });
    connect(base_browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Base model"), QFileInfo(baseModel()).absolutePath(),
                                                       tr("Checkpoints (*.gguf *.safetensors *.h5 *.hdf5 *.bin)"));
        if (!f.isEmpty()) setBaseModel(f);
    });
    connect(output_, &QLineEdit::textChanged, this, [this] { refresh(); });

    auto* form = new QFormLayout;
    form->setContentsMargins(0, 0, 0, 0);
    form->addRow(tr("Config:"), row(config_, config_browse));
    form->addRow(tr("Output:"), row(output_, output_browse));
    form->addRow(tr("Base model:"), row(base_, base_browse));
    auto* opts = new QHBoxLayout;
    opts->addWidget(freeze_);
    opts->addWidget(debug_);
    opts->addStretch(1);
    opts->addWidget(new QLabel(tr("Threads:")));
    opts->addWidget(threads_);
    form->addRow(opts);

    start_button_ = new QPushButton(tr("Start"));
    start_button_->setToolTip(tr("Train from the start (a previous run in this folder is overwritten)"));
    stop_button_ = new QPushButton(tr("Stop"));
    stop_button_->setToolTip(tr("Stop after the current step; a checkpoint is saved to resume from"));
    resume_button_ = new QPushButton(tr("Resume"));
    resume_button_->setToolTip(tr("Continue from the output folder's latest checkpoint"));
    open_button_ = new QPushButton(tr("Open result"));
    open_button_->setToolTip(tr("Open the final checkpoint's model in the workbench"));
    connect(start_button_, &QPushButton::clicked, this, [this] { start(); });
    connect(stop_button_, &QPushButton::clicked, this, &TrainingPanel::stop);
    connect(resume_button_, &QPushButton::clicked, this, [this] { resume(); });
    connect(open_button_, &QPushButton::clicked, this, [this] {
        if (last_ && last_->ok) emit openModelRequested(QString::fromStdString(last_->summary.final_checkpoint) + "/model.h5");
    });
    auto* buttons = new QHBoxLayout;
    for (QPushButton* b : {start_button_, stop_button_, resume_button_, open_button_}) buttons->addWidget(b);
    buttons->addStretch(1);

    progress_ = new QProgressBar;
    progress_->setRange(0, 1000);
    progress_->setTextVisible(true);
    progress_->setFormat("%p%");
    status_ = new QLabel(tr("Idle"));
    // One line that never widens the dock; the whole text is the tooltip (and in the log).
    status_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    speed_ = new QLabel(tr("– tokens/s"));
    auto* status_row = new QHBoxLayout;
    status_row->addWidget(progress_, 1);
    status_row->addWidget(speed_);

    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    log_->setMaximumBlockCount(5000);
    log_->setLineWrapMode(QPlainTextEdit::NoWrap);
    QFont mono("Monospace");
    mono.setStyleHint(QFont::TypeWriter);
    mono.setPointSizeF(font().pointSizeF() * 0.9);
    log_->setFont(mono);

    auto* controls = new QWidget;
    auto* cl = new QVBoxLayout(controls);
    cl->setContentsMargins(0, 0, 0, 0);
    cl->addLayout(form);
    cl->addLayout(buttons);
    cl->addLayout(status_row);
    cl->addWidget(status_);
    cl->addWidget(log_, 1);

    loss_chart_ = new LiveLineChart(tr("Loss"), tr("step"), tr("nats"), QColor(38, 110, 200));
    loss_chart_->setSeriesNames(tr("loss"), tr("val loss"));
    ssm_chart_ = new LiveLineChart(tr("ssm_frac (share of layers on SSM)"), tr("step"), tr("share"), QColor(224, 123, 36));
    entropy_chart_ = new LiveLineChart(tr("Mean gate entropy"), tr("step"), tr("bits"), QColor(130, 96, 210));
    auto* charts = new QWidget;
    auto* grid = new QGridLayout(charts);
    grid->setContentsMargins(0, 0, 0, 0);
    grid->addWidget(loss_chart_, 0, 0, 1, 2);
    grid->addWidget(ssm_chart_, 1, 0);
    grid->addWidget(entropy_chart_, 1, 1);

    auto* split = new QSplitter(Qt::Horizontal);
    split->addWidget(controls);
    split->addWidget(charts);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    auto* l = new QVBoxLayout(this);
    l->setContentsMargins(4, 4, 4, 4);
    l->addWidget(split);

    connect(job_, &TrainJob::logged, this, &TrainingPanel::addEntry);
    connect(job_, &TrainJob::messageLine, this, [this](const QString& s) { appendLog(s); });
    connect(job_, &TrainJob::progressed, this, [this](double f, const QString& stage) {
        progress_->setValue(int(std::clamp(f, 0.0, 1.0) * 1000));
        if (!stage.isEmpty() && !job_->isCancelling()) setStatus(stage);
    });
    connect(job_, &TrainJob::finished, this, &TrainingPanel::onFinished);

    setConfigPath(find_default_train_config());
    clearCharts();
    refresh();
}

TrainingPanel::~TrainingPanel() = default;  // job_ (a child) cancels and waits

QString TrainingPanel::configPath() const { return config_->text().trimmed(); }
void TrainingPanel::setConfigPath(const QString& path) {
    config_->setText(path);
    if (!path.isEmpty() && !isRunning())
        setOutputDir(QDir(QDir::currentPath()).filePath("runs/" + QFileInfo(path).completeBaseName()));
}
QString TrainingPanel::outputDir() const { return output_->text().trimmed(); }
void TrainingPanel::setOutputDir(const QString& dir) { output_->setText(dir); }
QString TrainingPanel::baseModel() const { return base_->text().trimmed(); }
void TrainingPanel::setBaseModel(const QString& path) { base_->setText(path); }
bool TrainingPanel::freezeBase() const { return freeze_->isChecked(); }
void TrainingPanel::setFreezeBase(bool on) { freeze_->setChecked(on); }
int TrainingPanel::threads() const { return threads_->value(); }
void TrainingPanel::setThreads(int n) { threads_->setValue(n); }
bool TrainingPanel::debugRun() const { return debug_->isChecked(); }
void TrainingPanel::setDebugRun(bool on) { debug_->setChecked(on); }

bool TrainingPanel::start() { return launch(false); }
bool TrainingPanel::resume() { return launch(true); }

void TrainingPanel::stop() {
    if (!isRunning()) return;
    job_->cancel();
    setStatus(tr("Stopping after the current step (saving a checkpoint)…"));
    refresh();
}

bool TrainingPanel::launch(bool resume) {
    if (isRunning()) return false;
    auto fail = [this](const QString& m) {
        appendLog(m, true);
        setStatus(m);
        emit message(tr("Training: %1").arg(m), true);
        return false;
    };
    if (configPath().isEmpty()) return fail(tr("choose a training config (YAML)"));
    if (outputDir().isEmpty()) return fail(tr("choose an output folder"));
    auto cfg = train::load_train_config(configPath().toStdString());
    if (!cfg) return fail(QString::fromStdString(cfg.message()));
    train::TrainOptions o;
    o.output_dir = QDir::cleanPath(QDir(outputDir()).absolutePath()).toStdString();
    o.base_model = baseModel().toStdString();
    o.freeze_base = freezeBase();
    o.debug = debugRun();
    o.threads = threads();
    o.resume = resume;
    if (resume && train::latest_checkpoint(o.output_dir).empty())
        return fail(tr("%1 holds no checkpoint to resume from").arg(outputDir()));

    const QString dir = QString::fromStdString(o.output_dir);
    if (!resume && !train::latest_checkpoint(o.output_dir).empty())
        appendLog(tr("note: %1 already holds checkpoints of an earlier run; they stay until this run writes its own").arg(dir));
    if (!resume || dir != run_dir_) clearCharts();
    // Resuming a run this panel did not show: its history from the trainer's log.
    if (resume && entries_.empty()) loadLog(QDir(dir).filePath("train_log.jsonl"));
    run_dir_ = dir;
    last_.reset();
    progress_->setValue(0);
    appendLog(resume ? tr("— resume %1 from %2").arg(configPath(), dir) : tr("— start %1 → %2").arg(configPath(), dir));
    job_->start(*cfg, std::move(o));
    setStatus(resume ? tr("Resuming…") : tr("Preparing…"));
    refresh();
    return true;
}

void TrainingPanel::addEntry(const train::TrainLogEntry& e) {
    const double x = double(e.step);
    loss_chart_->append(x, e.loss);
    if (e.val_loss >= 0) loss_chart_->appendMarker(x, e.val_loss);
    ssm_chart_->append(x, e.ssm_frac);
    entropy_chart_->append(x, e.gate_entropy_bits);
    speed_->setText(tr("%1 tokens/s").arg(e.tokens_per_s, 0, 'f', 0));
    entries_.push_back(e);
    if (!e.gates.empty()) emit gatesUpdated(e.gates);
}

void TrainingPanel::clearCharts() {
    entries_.clear();
    for (LiveLineChart* c : {loss_chart_, ssm_chart_, entropy_chart_}) c->clear();
    speed_->setText(tr("– tokens/s"));
}

void TrainingPanel::loadLog(const QString& jsonl) {
    QFile f(jsonl);
    if (!f.open(QIODevice::ReadOnly)) return;
    int lines = 0;
    while (!f.atEnd()) {
        const QByteArray line = f.readLine().trimmed();
        if (line.isEmpty()) continue;
        auto j = nlohmann::json::parse(line.constData(), line.constData() + line.size(), nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        train::TrainLogEntry e;
        e.step = j.value("step", int64_t(0));
        e.total_steps = j.value("total_steps", int64_t(0));
        e.loss = j.value("loss", 0.0);
        e.task_loss = j.value("task_loss", 0.0);
        e.router_loss = j.value("router_loss", 0.0);
        e.val_loss = j.value("val_loss", -1.0);
        e.grad_norm = j.value("grad_norm", 0.0);
        e.lr = j.value("lr", 0.0f);
        e.tau = j.value("tau", 1.0f);
        e.ssm_frac = j.value("ssm_frac", 0.0);
        e.gate_entropy_bits = j.value("gate_entropy_bits", 0.0);
        e.gates = j.value("gates", std::vector<float>{});
        e.tokens_per_s = j.value("tokens_per_s", 0.0);
        addEntry(e);
        ++lines;
    }
    if (lines) appendLog(tr("%1 logged steps read from %2").arg(lines).arg(jsonl));
}

void TrainingPanel::onFinished(TrainJobResultPtr r) {
    last_ = r;
    if (r->ok) {
        progress_->setValue(1000);
        const QString m = tr("Done: %1 steps; %2").arg(r->summary.steps_done).arg(QString::fromStdString(r->summary.final_checkpoint));
        setStatus(m);
        appendLog(m);
        emit message(tr("Training: %1").arg(m), false);
    } else if (r->cancelled) {
        setStatus(tr("Stopped: %1").arg(r->message));
        appendLog(tr("stopped: %1").arg(r->message));
        emit message(tr("Training stopped: %1").arg(r->message), false);
    } else {
        setStatus(tr("Failed: %1").arg(r->message));
        appendLog(r->message, true);
        emit message(tr("Training failed: %1").arg(r->message), true);
    }
    refresh();
    emit runFinished(r->ok, r->cancelled, r->message);
}

void TrainingPanel::refresh() {
    const bool running = isRunning();
    start_button_->setEnabled(!running);
    stop_button_->setEnabled(running && !job_->isCancelling());
    resume_button_->setEnabled(!running && !outputDir().isEmpty() &&
                               !train::latest_checkpoint(QDir(outputDir()).absolutePath().toStdString()).empty());
    open_button_->setEnabled(!running && last_ && last_->ok);
    for (QWidget* w : std::initializer_list<QWidget*>{config_, output_, base_, freeze_, debug_, threads_}) w->setEnabled(!running);
}

void TrainingPanel::setStatus(const QString& text) {
    status_->setText(text);
    status_->setToolTip(text);
}

void TrainingPanel::appendLog(const QString& line, bool error) {
    for (const QString& l : line.split('\n', Qt::SkipEmptyParts))
        log_->appendPlainText(error ? tr("error: %1").arg(l) : l);
}

}  // namespace ef::views
