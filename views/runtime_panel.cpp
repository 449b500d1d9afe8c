#include "views/runtime_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QScrollArea>
#include <QSpinBox>
#include <QTabWidget>
#include <QThread>
#include <QVBoxLayout>
#include <algorithm>

#include "views/format_util.h"
#include "views/runtime_worker.h"

namespace ef::views {

namespace {
// Tabs scroll when the dock is short, so the panel does not force its height on the docks it is
// tabbed with.
QScrollArea* scrolled(QWidget* w) {
    auto* a = new QScrollArea;
    a->setWidget(w);
    a->setWidgetResizable(true);
    a->setFrameShape(QFrame::NoFrame);
    return a;
}

bool has_routed_layers(const Model& m) {
    return std::any_of(m.layers.begin(), m.layers.end(), [](const LayerDesc& d) { return d.mixer == MixerKind::Routed; });
}
}  // namespace

RuntimePanel::RuntimePanel(QWidget* parent) : QWidget(parent), worker_(new RuntimeWorker(this)) {
    setObjectName("runtimePanel");
    hint_ = new QLabel;
    hint_->setObjectName("runtimeHint");
    hint_->setWordWrap(true);
    hint_->setStyleSheet("QLabel#runtimeHint { background: #fff7e0; border: 1px solid #e8d49a; border-radius: 3px;"
                         " padding: 4px 8px; color: #6b5410; }");

    // Threads and routing apply to every tab: they sit in the tab bar's corner.
    threads_ = new QSpinBox;
    threads_->setRange(1, 256);
    threads_->setValue(std::clamp(QThread::idealThreadCount(), 1, 4));
    threads_->setToolTip(tr("Threads for the matrix-vector products (SessionOptions::threads)"));
    routing_ = new QComboBox;
    routing_->addItem(tr("Hard routing"), int(Routing::Hard));
    routing_->addItem(tr("Soft routing"), int(Routing::Soft));
    auto* corner = new QWidget;
    auto* cl = new QHBoxLayout(corner);
    cl->setContentsMargins(8, 0, 4, 2);
    cl->addWidget(new QLabel(tr("Threads")));
    cl->addWidget(threads_);
    cl->addSpacing(8);
    cl->addWidget(routing_);

    tabs_ = new QTabWidget;
    tabs_->setDocumentMode(true);
    generate_ = new GenerateTab(this);
    profile_ = new ProfileTab(this);
    evaluate_ = new EvaluateTab(this);
    tabs_->addTab(scrolled(generate_), tr("Generate"));
    tabs_->addTab(scrolled(profile_), tr("Profile"));
    tabs_->addTab(scrolled(evaluate_), tr("Evaluate"));
    tabs_->setCornerWidget(corner, Qt::TopRightCorner);

    auto* l = new QVBoxLayout(this);
    l->setContentsMargins(4, 4, 4, 4);
    l->setSpacing(4);
    l->addWidget(hint_);
    l->addWidget(tabs_, 1);

    connect(worker_, &RuntimeWorker::tokenizerReady, this, &RuntimePanel::onTokenizer, Qt::QueuedConnection);
    refresh();
}

RuntimePanel::~RuntimePanel() = default;

SessionOptions RuntimePanel::sessionOptions() const {
    SessionOptions o;
    o.threads = threads_->value();
    o.routing = Routing(routing_->currentData().toInt());
    return o;
}

bool RuntimePanel::isBusy() const { return worker_->isBusy(); }

void RuntimePanel::setModel(std::shared_ptr<const Model> model) {
    if (worker_->isBusy()) worker_->cancel();
    model_ = std::move(model);
    tok_.reset();
    tok_error_.clear();
    tok_pending_ = bool(model_);
    ++tok_request_;
    if (model_) worker_->prepareTokenizer(model_, tok_request_);
    refresh();
}

void RuntimePanel::onTokenizer(quint64 request, std::shared_ptr<const Tokenizer> tok, const QString& error) {
    if (!model_ || request != tok_request_) return;  // for a model that has since been replaced
    tok_pending_ = false;
    tok_ = std::move(tok);
    tok_error_ = error;
    if (!tok_) emit message(tr("Runtime: Generate and Evaluate are off: %1").arg(error), false);
    refresh();
    emit tokenizerReady(bool(tok_));
}

void RuntimePanel::refresh() {
    QString hint;
    if (!model_) hint = tr("Open a model to run it: generate text, profile its speed and memory, measure perplexity.");
    else if (tok_pending_) hint = tr("Preparing the tokenizer…");
    else if (!tok_)
        hint = tr("This model has no usable tokenizer (%1), so Generate and Evaluate are off; Profile works with random "
                  "tokens. For a llama2.c checkpoint, open it with its tokenizer .bin (File ▸ Open, or drop both files).")
                   .arg(tok_error_);
    hint_->setText(hint);
    hint_->setVisible(!hint.isEmpty());
    const bool routed = model_ && has_routed_layers(*model_);
    routing_->setEnabled(routed && !isBusy());
    routing_->setToolTip(routed ? tr("EdgeFusion routed layers: hard runs only the branch the gate selects (as on the "
                                     "board); soft mixes attention and SSM by the gate (analysis)")
                                : tr("Routing applies to EdgeFusion routed layers; this model has none"));
    threads_->setEnabled(!isBusy());
    generate_->refresh();
    profile_->refresh();
    evaluate_->refresh();
}

}  // namespace ef::views
