// The Evaluate tab: perplexity over a text file the way llama-perplexity measures it, with a
// running-PPL chart that grows chunk by chunk.
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>

#include "views/format_util.h"
#include "views/runtime_panel.h"
#include "views/runtime_panel_charts.h"
#include "views/runtime_worker.h"

namespace ef::views {

namespace {
constexpr const char* kDefaultText = "../shared/text/wikitext-2-raw-test.txt";
}

EvaluateTab::EvaluateTab(RuntimePanel* panel) : panel_(panel) {
    file = new QLineEdit;
    file->setObjectName("runtimeTextFile");
    const QFileInfo def(QDir::current().filePath(kDefaultText));
    if (def.isFile()) file->setText(QDir::cleanPath(def.absoluteFilePath()));
    const auto file_tip = [this](const QString& t) {
        file->setToolTip(t.isEmpty() ? tr("Text file to evaluate (Run asks for one when empty)") : t);
    };
    connect(file, &QLineEdit::textChanged, file, file_tip);
    file_tip(file->text());
    browse_button = new QPushButton(tr("Browse…"));
    n_ctx = new QSpinBox;
    n_ctx->setRange(8, 1 << 16);
    n_ctx->setValue(128);
    n_ctx->setToolTip(tr("Window size: each chunk of n_ctx tokens is scored on its second half"));
    max_chunks = new QSpinBox;
    max_chunks->setRange(0, 1 << 20);
    max_chunks->setValue(8);
    max_chunks->setSpecialValueText(tr("all"));
    max_chunks->setToolTip(tr("Chunks to evaluate at most (all: the whole text)"));
    run_button = new QPushButton(tr("Run perplexity"));
    cancel_button = new QPushButton(tr("Cancel"));
    progress = new QProgressBar;
    progress->setRange(0, 1000);
    progress->setValue(0);
    result = new QLabel(QStringLiteral("—"));
    result->setObjectName("runtimePplResult");
    result->setTextInteractionFlags(Qt::TextSelectableByMouse);
    QFont rf = result->font();
    rf.setPointSizeF(rf.pointSizeF() * 1.5);
    rf.setBold(true);
    result->setFont(rf);
    status = new QLabel(tr("Perplexity the way llama-perplexity computes it: windows of n_ctx, second half scored."));
    status->setObjectName("runtimeEvaluateStatus");
    status->setWordWrap(true);

    auto* grid = new QGridLayout;
    grid->setHorizontalSpacing(8);
    grid->addWidget(new QLabel(tr("Text")), 0, 0);
    auto* file_row = new QHBoxLayout;
    file_row->addWidget(file, 1);
    file_row->addWidget(browse_button);
    grid->addLayout(file_row, 0, 1, 1, 3);
    grid->addWidget(new QLabel(tr("n_ctx")), 1, 0);
    grid->addWidget(n_ctx, 1, 1);
    grid->addWidget(new QLabel(tr("Max chunks")), 1, 2);
    grid->addWidget(max_chunks, 1, 3);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(run_button, 1);
    buttons->addWidget(cancel_button, 1);
    auto* left = new QVBoxLayout;
    left->setContentsMargins(0, 0, 0, 0);
    left->addLayout(grid);
    left->addLayout(buttons);
    left->addWidget(progress);
    left->addSpacing(8);
    left->addWidget(new QLabel(tr("Perplexity")));
    left->addWidget(result);
    left->addWidget(status);
    left->addStretch(1);
    auto* left_box = new QWidget;
    left_box->setLayout(left);
    left_box->setFixedWidth(420);

    ppl_chart = new LiveLineChart(tr("Perplexity by chunk"), tr("chunk"), tr("PPL"), QColor(38, 110, 200));
    ppl_chart->setXMinimum(1);
    ppl_chart->setIntegerX(true);
    ppl_chart->clear();
    ppl_chart->setSeriesNames(tr("running PPL (chunks 1..i)"), tr("PPL of chunk i alone"));
    ppl_chart->setToolTip(tr("Line: running PPL over chunks 1..i (llama-perplexity's [i]); grey dots: each chunk alone"));
    auto* l = new QHBoxLayout(this);
    l->setContentsMargins(6, 6, 6, 4);
    l->setSpacing(10);
    l->addWidget(left_box);
    l->addWidget(ppl_chart, 1);

    connect(browse_button, &QPushButton::clicked, this, &EvaluateTab::browse);
    connect(run_button, &QPushButton::clicked, this, &EvaluateTab::start);
    connect(cancel_button, &QPushButton::clicked, this, &EvaluateTab::stop);
    RuntimeWorker* w = panel_->worker();
    connect(w, &RuntimeWorker::perplexityFinished, this, &EvaluateTab::onFinished, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::failed, this, &EvaluateTab::onEnded, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::cancelled, this, [this](quint64 job) { onEnded(job, QString()); }, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::progress, this, [this](quint64 job, double f, const QString& stage) {
        if (job != job_) return;
        progress->setValue(int(f * 1000));
        if (stage == "tokenizing") status->setText(tr("Tokenizing the text…"));
    }, Qt::QueuedConnection);
    connect(w, &RuntimeWorker::chunkDone, this, [this](quint64 job, int c, int n, double running, double chunk) {
        if (job != job_) return;
        ppl_chart->append(c + 1, running);
        ppl_chart->appendMarker(c + 1, chunk);
        result->setText(QString::number(running, 'f', 4));
        status->setText(tr("Chunk %1 / %2: running PPL %3, this chunk %4")
                            .arg(c + 1)
                            .arg(n)
                            .arg(running, 0, 'f', 4)
                            .arg(chunk, 0, 'f', 4));
    }, Qt::QueuedConnection);
}

void EvaluateTab::refresh() {
    const bool can = panel_->model() && panel_->tokenizer() && !panel_->isBusy();
    run_button->setEnabled(can);
    cancel_button->setEnabled(job_ != 0);
    for (QWidget* wdg : {static_cast<QWidget*>(file), static_cast<QWidget*>(browse_button), static_cast<QWidget*>(n_ctx),
                         static_cast<QWidget*>(max_chunks)})
        wdg->setEnabled(panel_->tokenizer() != nullptr && job_ == 0);
}

void EvaluateTab::browse() {
    const QString start = file->text().isEmpty() ? QDir::currentPath() : QFileInfo(file->text()).absolutePath();
    const QString path = QFileDialog::getOpenFileName(this, tr("Text for perplexity"), start,
                                                      tr("Text (*.txt *.raw *.md);;All files (*)"));
    if (!path.isEmpty()) file->setText(path);
}

void EvaluateTab::start() {
    if (!panel_->model() || !panel_->tokenizer() || panel_->isBusy()) return;
    if (file->text().isEmpty()) browse();
    if (file->text().isEmpty()) return;
    ppl_chart->clear();
    progress->setValue(0);
    ppl_ = ppl_error_ = 0;
    result->setText(QStringLiteral("…"));
    status->setStyleSheet({});
    status->setText(tr("Reading %1…").arg(QFileInfo(file->text()).fileName()));
    job_ = panel_->worker()->startPerplexity(panel_->model(), panel_->tokenizer(), file->text(), n_ctx->value(),
                                             max_chunks->value(), panel_->sessionOptions());
    panel_->refresh();
}

void EvaluateTab::stop() {
    if (job_ == 0) return;
    panel_->worker()->cancel();
}

void EvaluateTab::onFinished(quint64 job, const PerplexitySummary& s) {
    if (job != job_) return;
    job_ = 0;
    ppl_ = s.ppl;
    ppl_error_ = s.ppl_error;
    progress->setValue(1000);
    result->setText(tr("%1 ± %2").arg(s.ppl, 0, 'f', 4).arg(s.ppl_error, 0, 'f', 4));
    status->setText(tr("%1 chunks of %2 tokens, %3 tokens scored (text: %4 tokens) in %5 s.")
                        .arg(s.n_chunks)
                        .arg(s.n_ctx)
                        .arg(grouped(s.count))
                        .arg(grouped(s.n_text_tokens))
                        .arg(s.seconds, 0, 'f', 2));
    panel_->refresh();
    emit panel_->message(tr("Perplexity of %1: %2 ± %3 (%4 chunks of %5)")
                             .arg(QFileInfo(file->text()).fileName())
                             .arg(s.ppl, 0, 'f', 4)
                             .arg(s.ppl_error, 0, 'f', 4)
                             .arg(s.n_chunks)
                             .arg(s.n_ctx),
                         false);
    emit finished(true);
}

void EvaluateTab::onEnded(quint64 job, const QString& message) {
    if (job != job_) return;
    job_ = 0;
    progress->setValue(0);
    result->setText(QStringLiteral("—"));
    status->setStyleSheet(message.isEmpty() ? QString() : QStringLiteral("color: #c03030"));
    status->setText(message.isEmpty() ? tr("Cancelled.") : tr("Failed: %1").arg(message));
    panel_->refresh();
    if (!message.isEmpty()) emit panel_->message(tr("Perplexity failed: %1").arg(message), true);
    emit finished(false);
}

}  // namespace ef::views
