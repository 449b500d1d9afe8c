// The Generate tab: prompt, sampling controls, streaming output and live speed / memory charts.
#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QGridLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTextCursor>
#include <QTimer>
#include <algorithm>
#include <limits>

#include "views/format_util.h"
#include "views/runtime_panel.h"
#include "views/runtime_panel_charts.h"
#include "views/runtime_worker.h"
#include "views/option_widgets.h"

namespace ef::views {

namespace {
QDoubleSpinBox* dspin(double lo, double hi, double step, double value, int decimals, const QString& tip) {
    auto* s = new QDoubleSpinBox;
    s->setRange(lo, hi);
    s->setSingleStep(step);
    s->setDecimals(decimals);
    s->setValue(value);
    s->setToolTip(tip);
    return s;
}
QLabel* caption(const QString& text) {
    auto* l = new QLabel(text);
    QFont f = l->font();
    f.setBold(true);
    l->setFont(f);
    return l;
}
double mib(uint64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }
}  // namespace

GenerateTab::GenerateTab(RuntimePanel* panel) : panel_(panel), rss_timer_(new QTimer(this)) {
    const SamplerParams d;  // the runtime's defaults (llama.cpp's)
    prompt = new QPlainTextEdit("Once upon a time");
    prompt->setObjectName("runtimePrompt");
    prompt->setFixedHeight(prompt->fontMetrics().lineSpacing() * 3 + 14);
    prompt->setTabChangesFocus(true);
    temperature = dspin(0, 5, 0.05, d.temperature, 2, tr("Temperature; 0 is greedy (argmax)"));
    top_k = make_int_spin(0, 100000, d.top_k, tr("Keep the k most likely tokens (0: off)"));
    top_p = dspin(0, 1, 0.01, d.top_p, 2, tr("Nucleus: keep the smallest set reaching this probability (1: off)"));
    min_p = dspin(0, 1, 0.01, d.min_p, 2, tr("Drop tokens below this fraction of the top probability (0: off)"));
    repeat_penalty = dspin(0.5, 3, 0.05, d.repeat_penalty, 2, tr("Repetition penalty over the last 64 tokens (1: off)"));
    seed = make_int_spin(0, std::numeric_limits<int>::max(), int(d.seed), tr("Sampling seed: the same seed gives the same text"));
    max_tokens = make_int_spin(1, 1000000, 128, tr("Tokens to generate at most"));
    ignore_eos = new QCheckBox(tr("Ignore EOS"));
    ignore_eos->setToolTip(tr("Keep generating past end-of-generation tokens (llama.cpp's --ignore-eos)"));
    generate_button = new QPushButton(tr("Generate"));
    generate_button->setDefault(true);
    stop_button = new QPushButton(tr("Stop"));

    auto* grid = new QGridLayout;
    grid->setHorizontalSpacing(8);
    grid->setVerticalSpacing(4);
    auto row = [&](int r, const QString& a, QWidget* wa, const QString& b, QWidget* wb) {
        grid->addWidget(new QLabel(a), r, 0);
        grid->addWidget(wa, r, 1);
        if (!b.isEmpty()) grid->addWidget(new QLabel(b), r, 2);
        grid->addWidget(wb, r, b.isEmpty() ? 2 : 3, 1, b.isEmpty() ? 2 : 1);
    };
    row(0, tr("Temperature"), temperature, tr("Top-k"), top_k);
    row(1, tr("Top-p"), top_p, tr("Min-p"), min_p);
    row(2, tr("Repeat pen."), repeat_penalty, tr("Seed"), seed);
    row(3, tr("Max tokens"), max_tokens, QString(), ignore_eos);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(generate_button, 1);
    buttons->addWidget(stop_button, 1);

    auto* left = new QVBoxLayout;
    left->addWidget(caption(tr("Prompt")));
    left->addWidget(prompt);
    left->addSpacing(2);
    left->addWidget(caption(tr("Sampling")));
    left->addLayout(grid);
    left->addSpacing(4);
    left->addLayout(buttons);
    left->addStretch(1);
    auto* left_box = new QWidget;
    left_box->setLayout(left);
    left_box->setFixedWidth(360);
    left->setContentsMargins(0, 0, 0, 0);

    output = new QPlainTextEdit;
    output->setObjectName("runtimeOutput");
    output->setReadOnly(true);
    auto* mid = new QVBoxLayout;
    mid->setContentsMargins(0, 0, 0, 0);
    mid->addWidget(caption(tr("Output")));
    mid->addWidget(output, 1);

    speed_chart = new LiveLineChart(tr("Decode speed"), tr("seconds"), tr("tokens/s"), QColor(38, 110, 200));
    memory_chart = new LiveLineChart(tr("Resident memory"), tr("seconds"), tr("MiB"), QColor(40, 150, 100));
    auto* charts = new QVBoxLayout;
    charts->setContentsMargins(0, 0, 0, 0);
    charts->setSpacing(4);
    charts->addWidget(speed_chart, 1);
    charts->addWidget(memory_chart, 1);

    auto* top = new QHBoxLayout;
    top->setSpacing(10);
    top->addWidget(left_box);
    top->addLayout(mid, 3);
    top->addLayout(charts, 2);
    status = new QLabel(tr("Ready."));
    status->setObjectName("runtimeGenerateStatus");
    status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* l = new QVBoxLayout(this);
    l->setContentsMargins(6, 6, 6, 4);
    l->addLayout(top, 1);
    l->addWidget(status);

    connect(generate_button, &QPushButton::clicked, this, &GenerateTab::start);
    connect(stop_button, &QPushButton::clicked, this, &GenerateTab::stop);
    RuntimeWorker* w = panel_->worker();
    connect(w, &RuntimeWorker::tokenGenerated, this, &GenerateTab::onToken, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::generateFinished, this, &GenerateTab::onFinished, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::failed, this, &GenerateTab::onFailed, Qt::QueuedConnection);
    rss_timer_->setInterval(100);
    connect(rss_timer_, &QTimer::timeout, this, [this] { addMemoryPoint(clock_.elapsed() / 1000.0); });
}

void GenerateTab::refresh() {
    const bool can = panel_->model() && panel_->tokenizer() && !panel_->isBusy();
    generate_button->setEnabled(can);
    stop_button->setEnabled(job_ != 0);
    for (QWidget* wdg : std::initializer_list<QWidget*>{prompt, temperature, top_k, top_p, min_p, repeat_penalty, seed,
                                                        max_tokens, ignore_eos})
        wdg->setEnabled(panel_->tokenizer() != nullptr && job_ == 0);
}

void GenerateTab::addMemoryPoint(double seconds) { memory_chart->append(seconds, mib(current_rss_bytes())); }

void GenerateTab::start() {
    if (!panel_->model() || !panel_->tokenizer() || panel_->isBusy()) return;
    GenerateOptions o;
    o.n_predict = max_tokens->value();
    o.sampling.temperature = float(temperature->value());
    o.sampling.top_k = top_k->value();
    o.sampling.top_p = float(top_p->value());
    o.sampling.min_p = float(min_p->value());
    o.sampling.repeat_penalty = float(repeat_penalty->value());
    o.sampling.seed = uint64_t(seed->value());
    o.stop_at_eog = !ignore_eos->isChecked();

    output->clear();
    QTextCharFormat pf;
    pf.setForeground(QColor(95, 102, 112));
    pf.setFontWeight(QFont::DemiBold);
    QTextCursor c(output->document());
    c.insertText(prompt->toPlainText(), pf);
    generated_.clear();
    speed_chart->clear();
    memory_chart->clear();
    times_.clear();
    last_t_ = -1;
    last_n_ = tok_n_ = 0;
    window_ = std::max(4, o.n_predict / 40);
    clock_.start();
    addMemoryPoint(0);
    rss_timer_->start();
    status->setStyleSheet({});
    status->setText(tr("Generating up to %1 tokens…").arg(o.n_predict));
    job_ = panel_->worker()->startGenerate(panel_->model(), panel_->tokenizer(), prompt->toPlainText(), o,
                                           panel_->sessionOptions());
    panel_->refresh();
}

void GenerateTab::stop() {
    if (job_ == 0) return;
    panel_->worker()->cancel();
    status->setText(tr("Stopping…"));
}

void GenerateTab::onToken(quint64 job, const QByteArray& piece, int n, double seconds) {
    if (job != job_) return;
    generated_ += piece;
    QTextCursor c(output->document());
    c.movePosition(QTextCursor::End);
    c.insertText(QString::fromUtf8(piece), QTextCharFormat());
    output->ensureCursorVisible();
    // Speed: a point every window_ tokens (and at least four a second), each the rate over the
    // trailing 4 * window_ tokens, which evens out the scheduler's jitter on a busy machine. The
    // first token's time includes the prefill, so rates are measured from it on.
    if (n == tok_n_) return;  // the tail of a split character, not a new token
    times_.push_back(seconds);
    tok_n_ = n;
    if (times_.size() < 2) return;
    if (n - last_n_ >= window_ || seconds - last_t_ >= 0.25) addSpeedPoint();
}

void GenerateTab::addSpeedPoint() {
    if (times_.size() < 2) return;
    const size_t k = std::min(times_.size() - 1, size_t(4 * window_));
    const double dt = times_.back() - times_[times_.size() - 1 - k];
    if (dt <= 0) return;
    speed_chart->append(times_.back(), double(k) / dt);
    addMemoryPoint(clock_.elapsed() / 1000.0);
    last_t_ = times_.back();
    last_n_ = tok_n_;
}

void GenerateTab::onFinished(quint64 job, const GenerateSummary& s) {
    if (job != job_) return;
    job_ = 0;
    rss_timer_->stop();
    // The last window, however short; a one-token run still shows its decode rate.
    if (tok_n_ > last_n_) addSpeedPoint();
    if (speed_chart->pointCount() == 0 && s.decode_seconds > 0)
        speed_chart->append(times_.empty() ? 0.0 : times_.back(), s.tokens / s.decode_seconds);
    addMemoryPoint(clock_.elapsed() / 1000.0);
    const double pp = s.prefill_seconds > 0 ? s.prompt_tokens / s.prefill_seconds : 0;
    const double tg = s.decode_seconds > 0 ? s.tokens / s.decode_seconds : 0;
    status->setText(tr("%1 tokens (stop: %2) · prompt %3 tokens · prefill %4 t/s · decode %5 t/s · peak RSS %6")
                        .arg(s.tokens)
                        .arg(s.stop)
                        .arg(s.prompt_tokens)
                        .arg(pp, 0, 'f', 1)
                        .arg(tg, 0, 'f', 1)
                        .arg(human_bytes(s.peak_rss)));
    panel_->refresh();
    emit panel_->message(tr("Generated %1 tokens at %2 t/s (prefill %3 t/s), stop: %4")
                             .arg(s.tokens)
                             .arg(tg, 0, 'f', 1)
                             .arg(pp, 0, 'f', 1)
                             .arg(s.stop),
                         false);
    emit finished(true);
}

void GenerateTab::onFailed(quint64 job, const QString& message) {
    if (job != job_) return;
    job_ = 0;
    rss_timer_->stop();
    status->setStyleSheet("color: #c03030");
    status->setText(tr("Generation failed: %1").arg(message));
    panel_->refresh();
    emit panel_->message(tr("Generation failed: %1").arg(message), true);
    emit finished(false);
}

}  // namespace ef::views
