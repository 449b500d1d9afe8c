// The Profile tab: llama-bench-style pp/tg speed (mean ± std), memory, FLOPs per token and the
// measured decode time of each layer, coloured by the branch the layer takes.
#include <QFormLayout>
#include <QGridLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>

#include "views/format_util.h"
#include "views/runtime_panel.h"
#include "views/runtime_panel_charts.h"
#include "views/runtime_worker.h"
#include "views/option_widgets.h"

namespace ef::views {

namespace {
QLabel* value_label() {
    auto* l = new QLabel(QStringLiteral("—"));
    l->setTextInteractionFlags(Qt::TextSelectableByMouse);
    QFont f = l->font();
    f.setBold(true);
    l->setFont(f);
    return l;
}
QString speed_text(const SpeedStats& s) {
    return QObject::tr("%1 ± %2 t/s").arg(s.mean, 0, 'f', 1).arg(s.stddev, 0, 'f', 1);
}
}  // namespace

ProfileTab::ProfileTab(RuntimePanel* panel) : panel_(panel) {
    pp = make_int_spin(1, 65536, 128, tr("Prompt tokens per prefill run (llama-bench's pp)"));
    tg = make_int_spin(1, 65536, 32, tr("Tokens per decode run (llama-bench's tg)"));
    reps = make_int_spin(1, 100, 3, tr("Repetitions after one warm-up run"));
    run_button = new QPushButton(tr("Run profile"));
    cancel_button = new QPushButton(tr("Cancel"));
    progress = new QProgressBar;
    progress->setRange(0, 1000);
    progress->setFormat("%p%");
    progress->setValue(0);

    auto* params = new QGridLayout;
    params->setHorizontalSpacing(8);
    params->addWidget(new QLabel(tr("Prefill tokens")), 0, 0);
    params->addWidget(pp, 0, 1);
    params->addWidget(new QLabel(tr("Decode tokens")), 0, 2);
    params->addWidget(tg, 0, 3);
    params->addWidget(new QLabel(tr("Repetitions")), 1, 0);
    params->addWidget(reps, 1, 1);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(run_button, 1);
    buttons->addWidget(cancel_button, 1);

    prefill = value_label();
    decode = value_label();
    peak_rss = value_label();
    weights = value_label();
    kv_cache = value_label();
    ssm_state = value_label();
    gflops = value_label();
    op_kinds = new QLabel(QStringLiteral("—"));
    op_kinds->setWordWrap(true);
    op_kinds->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* form = new QFormLayout;
    form->setHorizontalSpacing(12);
    form->setVerticalSpacing(3);
    form->setLabelAlignment(Qt::AlignLeft);
    form->addRow(tr("Prefill"), prefill);
    form->addRow(tr("Decode"), decode);
    form->addRow(tr("Peak RSS"), peak_rss);
    form->addRow(tr("Weights"), weights);
    form->addRow(tr("KV cache"), kv_cache);
    form->addRow(tr("SSM state"), ssm_state);
    form->addRow(tr("Work"), gflops);
    form->addRow(tr("Time by op"), op_kinds);

    auto* left = new QVBoxLayout;
    left->setContentsMargins(0, 0, 0, 0);
    left->addLayout(params);
    left->addLayout(buttons);
    left->addWidget(progress);
    left->addSpacing(4);
    left->addLayout(form);
    left->addStretch(1);
    auto* left_box = new QWidget;
    left_box->setLayout(left);
    left_box->setFixedWidth(420);

    layer_chart = new LayerBarChart;
    layer_chart->chart()->setTitle(tr("Decode time per layer (run a profile)"));
    auto* top = new QHBoxLayout;
    top->setSpacing(10);
    top->addWidget(left_box);
    top->addWidget(layer_chart, 1);
    status = new QLabel(tr("Measures with seeded random tokens, so it runs without a tokenizer."));
    status->setObjectName("runtimeProfileStatus");
    auto* l = new QVBoxLayout(this);
    l->setContentsMargins(6, 6, 6, 4);
    l->addLayout(top, 1);
    l->addWidget(status);

    connect(run_button, &QPushButton::clicked, this, &ProfileTab::start);
    connect(cancel_button, &QPushButton::clicked, this, &ProfileTab::stop);
    RuntimeWorker* w = panel_->worker();
    connect(w, &RuntimeWorker::profileFinished, this, &ProfileTab::onFinished, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::failed, this, &ProfileTab::onEnded, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::cancelled, this, [this](quint64 job) { onEnded(job, QString()); }, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::progress, this, [this](quint64 job, double f, const QString& stage) {
        if (job != job_) return;
        progress->setValue(int(f * 1000));
        if (!stage.isEmpty()) status->setText(tr("Measuring %1…").arg(stage));
    }, Qt::QueuedConnection);
}

void ProfileTab::refresh() {
    run_button->setEnabled(panel_->model() && !panel_->isBusy());
    cancel_button->setEnabled(job_ != 0);
    for (QWidget* wdg : {static_cast<QWidget*>(pp), static_cast<QWidget*>(tg), static_cast<QWidget*>(reps)})
        wdg->setEnabled(job_ == 0);
}

void ProfileTab::start() {
    if (!panel_->model() || panel_->isBusy()) return;
    progress->setValue(0);
    status->setStyleSheet({});
    status->setText(tr("Measuring…"));
    job_ = panel_->worker()->startProfile(panel_->model(), pp->value(), tg->value(), reps->value(), panel_->sessionOptions());
    panel_->refresh();
}

void ProfileTab::stop() {
    if (job_ == 0) return;
    panel_->worker()->cancel();
    status->setText(tr("Cancelling (after the current repetition)…"));
}

void ProfileTab::onFinished(quint64 job, const ProfileReport& r) {
    if (job != job_) return;
    job_ = 0;
    progress->setValue(1000);
    prefill->setText(tr("%1   (pp%2, %3 reps)").arg(speed_text(r.prefill)).arg(r.prefill.n_tokens).arg(r.prefill.samples.size()));
    decode->setText(tr("%1   (tg%2, %3 reps)").arg(speed_text(r.decode)).arg(r.decode.n_tokens).arg(r.decode.samples.size()));
    peak_rss->setText(human_bytes(r.peak_rss));
    weights->setText(human_bytes(r.weight_bytes));
    kv_cache->setText(tr("%1   (F32, %2 positions)").arg(human_bytes(r.kv_bytes)).arg(r.n_ctx));
    ssm_state->setText(human_bytes(r.ssm_bytes));
    gflops->setText(tr("%1 GFLOP/token   (at position %2)").arg(r.gflops_per_token, 0, 'g', 3).arg(r.decode.n_tokens / 2));
    auto ms = [](double v) { return QString::number(v, 'g', 3); };
    QStringList ops;
    if (r.attention_ms > 0) ops << tr("attention %1").arg(ms(r.attention_ms));
    if (r.mamba_ms > 0) ops << tr("SSM %1").arg(ms(r.mamba_ms));
    if (r.ffn_ms > 0) ops << tr("FFN %1").arg(ms(r.ffn_ms));
    ops << tr("output %1").arg(ms(r.output_ms)) << tr("embed %1").arg(ms(r.embed_ms));
    op_kinds->setText(tr("%1 ms/token").arg(ops.join(" · ")));
    // Measured per-layer time (Session::set_timings during the decode test), never an estimate.
    layer_chart->setLayers(r.layer_ms, r.branch, tr("Decode time per layer (measured, tg%1)").arg(r.decode.n_tokens),
                           tr("ms / token"));
    status->setText(tr("Done. Bars: measured decode time of each layer (norm, mixer, FFN and residuals) per token."));
    panel_->refresh();
    emit panel_->message(tr("Profile: prefill %1, decode %2, peak RSS %3")
                             .arg(speed_text(r.prefill), speed_text(r.decode), human_bytes(r.peak_rss)),
                         false);
    emit finished(true);
}

void ProfileTab::onEnded(quint64 job, const QString& message) {
    if (job != job_) return;
    job_ = 0;
    progress->setValue(0);
    status->setStyleSheet(message.isEmpty() ? QString() : QStringLiteral("color: #c03030"));
    status->setText(message.isEmpty() ? tr("Profile cancelled.") : tr("Profile failed: %1").arg(message));
    panel_->refresh();
    if (!message.isEmpty()) emit panel_->message(tr("Profile failed: %1").arg(message), true);
    emit finished(false);
}

}  // namespace ef::views
