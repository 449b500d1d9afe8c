// The Boards dock's widgets, the board list actions (add / edit / remove through boards.json) and
// the job bookkeeping. The worker jobs themselves are in board_jobs.cpp.
#include "views/board_panel.h"

#include <QCheckBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableView>
#include <QThreadPool>
#include <QVBoxLayout>
#include <algorithm>

#include "core/remote/board_tools.h"
#include "views/board_dialog.h"
#include "views/format_util.h"
#include "views/option_widgets.h"

namespace ef::views {

namespace {
QTableView* table(QAbstractItemModel* m, QAbstractItemView::SelectionMode mode) {
    auto* v = new QTableView;
    v->setModel(m);
    v->setSelectionBehavior(QAbstractItemView::SelectRows);
    v->setSelectionMode(mode);
    v->setAlternatingRowColors(true);
    v->verticalHeader()->hide();
    v->horizontalHeader()->setStretchLastSection(true);
    v->setWordWrap(false);
    return v;
}
}  // namespace

BoardPanel::BoardPanel(QWidget* parent, const QString& boards_path)
    : QWidget(parent), boards_path_(boards_path.isEmpty() ? to_qstring(remote::default_boards_path()) : boards_path) {
    boards_ = new BoardListModel(this);
    results_ = new ProfileResultsModel(this);
    layers_ = new LayerTimesModel(this);
    pool_ = new QThreadPool(this);
    pool_->setMaxThreadCount(1);

    // Boards: the list and its actions.
    board_view_ = table(boards_, QAbstractItemView::ExtendedSelection);
    board_view_->setObjectName("boardList");
    add_button = new QPushButton(tr("Add…"));
    edit_button = new QPushButton(tr("Edit…"));
    remove_button = new QPushButton(tr("Remove"));
    test_button = new QPushButton(tr("Test connection"));
    test_button->setToolTip(tr("Connect to the selected boards and compare their `uname -m` with the profile's arch"));
    auto* board_buttons = new QHBoxLayout;
    for (QPushButton* b : {add_button, edit_button, remove_button, test_button}) board_buttons->addWidget(b);
    board_buttons->addStretch(1);
    auto* board_box = new QGroupBox(tr("Boards"));
    auto* bl = new QVBoxLayout(board_box);
    bl->addWidget(board_view_, 1);
    bl->addLayout(board_buttons);

    // Run: push and profile of the workbench's model on the selected boards (+ this machine).
    model_label_ = new QLabel;
    model_label_->setWordWrap(true);
    local_ = new QCheckBox(tr("Also profile on this machine"));
    local_->setChecked(true);
    threadsSpin = make_int_spin(1, 256, 1, tr("Runner threads on every target"));
    ppSpin = make_int_spin(1, 65536, 32, tr("Prompt tokens per prefill run"));
    tgSpin = make_int_spin(1, 65536, 16, tr("Tokens per decode run"));
    repsSpin = make_int_spin(1, 100, 1, tr("Repetitions"));
    perplexityFile = new QLineEdit;
    perplexityFile->setToolTip(tr("Optional text file: also measure perplexity on every target"));
    auto* browse_text = new QPushButton(tr("Browse…"));
    pplCtxSpin = make_int_spin(8, 65536, 128, tr("Perplexity window (tokens)"));
    pplChunksSpin = make_int_spin(1, 100000, 4, tr("Perplexity: at most this many windows"));
    push_button = new QPushButton(tr("Push"));
    push_button->setToolTip(tr("Upload the runner and the model to the selected boards (unchanged files are skipped)"));
    profile_button = new QPushButton(tr("Profile"));
    cancel_button = new QPushButton(tr("Cancel"));
    progress_ = new QProgressBar;
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    status_ = new QLabel;
    status_->setObjectName("boardStatus");
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* params = new QGridLayout;
    params->addWidget(new QLabel(tr("Threads")), 0, 0);
    params->addWidget(threadsSpin, 0, 1);
    params->addWidget(new QLabel(tr("Repetitions")), 0, 2);
    params->addWidget(repsSpin, 0, 3);
    params->addWidget(new QLabel(tr("Prefill tokens")), 1, 0);
    params->addWidget(ppSpin, 1, 1);
    params->addWidget(new QLabel(tr("Decode tokens")), 1, 2);
    params->addWidget(tgSpin, 1, 3);
    auto* text_row = new QHBoxLayout;
    text_row->addWidget(new QLabel(tr("Perplexity text")));
    text_row->addWidget(perplexityFile, 1);
    text_row->addWidget(browse_text);
    auto* ppl_row = new QHBoxLayout;
    ppl_row->addWidget(new QLabel(tr("window")));
    ppl_row->addWidget(pplCtxSpin);
    ppl_row->addWidget(new QLabel(tr("chunks")));
    ppl_row->addWidget(pplChunksSpin);
    ppl_row->addStretch(1);
    auto* run_buttons = new QHBoxLayout;
    for (QPushButton* b : {push_button, profile_button, cancel_button}) run_buttons->addWidget(b, 1);
    auto* run_box = new QGroupBox(tr("Run the workbench's model"));
    auto* rl = new QVBoxLayout(run_box);
    rl->addWidget(model_label_);
    rl->addWidget(local_);
    rl->addLayout(params);
    rl->addLayout(text_row);
    rl->addLayout(ppl_row);
    rl->addLayout(run_buttons);
    rl->addWidget(progress_);
    rl->addWidget(status_);
    rl->addStretch(1);
    run_box->setMaximumWidth(480);

    // Results: the comparison table, per-layer times and the live log.
    results_view_ = table(results_, QAbstractItemView::SingleSelection);
    results_view_->setObjectName("boardResults");
    layer_view_ = table(layers_, QAbstractItemView::SingleSelection);
    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    log_->setMaximumBlockCount(20000);
    log_->setLineWrapMode(QPlainTextEdit::NoWrap);
    tabs_ = new QTabWidget;
    tabs_->addTab(results_view_, tr("Results"));
    layer_chart_ = new TargetLayerChart;
    layer_chart_->setModel(layers_);
    auto* layer_split = new QSplitter(Qt::Horizontal);
    layer_split->addWidget(layer_view_);
    layer_split->addWidget(layer_chart_);
    layer_split->setStretchFactor(1, 1);
    tabs_->addTab(layer_split, tr("Per layer"));
    tabs_->addTab(log_, tr("Output"));

    auto* top = new QWidget;
    auto* tl = new QHBoxLayout(top);
    tl->setContentsMargins(0, 0, 0, 0);
    tl->addWidget(board_box, 1);
    tl->addWidget(run_box);
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(top);
    split->addWidget(tabs_);
    split->setStretchFactor(1, 1);
    auto* l = new QVBoxLayout(this);
    l->setContentsMargins(4, 4, 4, 4);
    l->addWidget(split);

    connect(add_button, &QPushButton::clicked, this, [this] { addBoard(); });
    connect(edit_button, &QPushButton::clicked, this, [this] { editBoard(); });
    connect(remove_button, &QPushButton::clicked, this, [this] { removeBoard(); });
    connect(test_button, &QPushButton::clicked, this, &BoardPanel::testConnection);
    connect(push_button, &QPushButton::clicked, this, &BoardPanel::push);
    connect(profile_button, &QPushButton::clicked, this, &BoardPanel::profile);
    connect(cancel_button, &QPushButton::clicked, this, &BoardPanel::cancel);
    connect(board_view_, &QTableView::doubleClicked, this, [this] { editBoard(); });
    connect(board_view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &BoardPanel::refresh);
    connect(local_, &QCheckBox::toggled, this, &BoardPanel::refresh);
    connect(browse_text, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Perplexity text"), perplexityFile->text(), tr("Text (*.txt);;All files (*)"));
        if (!f.isEmpty()) perplexityFile->setText(f);
    });
    setModelFile({});
    reload();
}

BoardPanel::~BoardPanel() {
    // The job's questions to the UI give up once cancelled, so this wait cannot deadlock.
    if (job_progress_) job_progress_->cancel();
    pool_->waitForDone();
}

void BoardPanel::setBoardsPath(const QString& path) {
    boards_path_ = path;
    reload();
}

void BoardPanel::reload() {
    auto all = remote::load_boards(boards_path_.toStdString());
    if (!all) {
        boards_->setBoards({});
        setStatus(to_qstring(all.message()), true);
    } else {
        boards_->setBoards(std::move(*all));
        board_view_->resizeColumnsToContents();
        for (int c = 0; c < BoardListModel::ColumnCount; ++c)  // long key paths must not push the rest out of sight
            board_view_->setColumnWidth(c, std::min(board_view_->columnWidth(c), 260));
    }
    refresh();
}

void BoardPanel::setModelFile(const QString& path) {
    model_file_ = path;
    model_label_->setText(path.isEmpty() ? tr("Model: none (open one in the workbench)")
                                         : tr("Model: %1").arg(QFileInfo(path).fileName()));
    model_label_->setToolTip(path);
    refresh();
}

void BoardPanel::selectBoards(const QStringList& names) {
    auto* sel = board_view_->selectionModel();
    sel->clearSelection();
    for (const QString& n : names)
        if (const int r = boards_->rowOf(n); r >= 0)
            sel->select(boards_->index(r, 0), QItemSelectionModel::Select | QItemSelectionModel::Rows);
}

QStringList BoardPanel::selectedBoards() const {
    QStringList out;
    for (const auto& p : selectedProfiles()) out << to_qstring(p.name);
    return out;
}

std::vector<remote::BoardProfile> BoardPanel::selectedProfiles() const {
    std::vector<remote::BoardProfile> out;
    const auto& all = boards_->boards();
    for (size_t r = 0; r < all.size(); ++r)  // in list order, whatever the click order
        if (board_view_->selectionModel()->isRowSelected(int(r), {})) out.push_back(all[r]);
    return out;
}

void BoardPanel::refresh() {
    const bool idle = !isBusy();
    const bool any = board_view_->selectionModel()->hasSelection();
    add_button->setEnabled(idle);
    edit_button->setEnabled(idle && any);
    remove_button->setEnabled(idle && any);
    test_button->setEnabled(idle && any);
    push_button->setEnabled(idle && any && !model_file_.isEmpty());
    profile_button->setEnabled(idle && !model_file_.isEmpty() && (any || local_->isChecked()));
    cancel_button->setEnabled(!idle);
    for (QWidget* w : std::initializer_list<QWidget*>{local_, threadsSpin, ppSpin, tgSpin, repsSpin, perplexityFile, pplCtxSpin, pplChunksSpin})
        w->setEnabled(idle);
}

void BoardPanel::setStatus(const QString& text, bool error) {
    status_->setStyleSheet(error ? QStringLiteral("color: #c03030") : QString());
    status_->setText(text);
}

// ---------------------------------------------------------------------------------------------
// Board list actions

BoardDialog* BoardPanel::openDialog(const remote::BoardProfile& initial, const QString& old_name) {
    const std::string path = boards_path_.toStdString();
    auto save = [path, old_name](const remote::BoardProfile& b) -> Status {
        EF_TRY_STATUS(remote::upsert_board(path, b));
        // A renamed board: the new entry is written first, so a failure here loses nothing.
        if (!old_name.isEmpty() && old_name.toStdString() != b.name) EF_TRY_STATUS(remote::remove_board(path, old_name.toStdString()));
        return {};
    };
    auto* d = new BoardDialog(initial, save, this);
    d->setAttribute(Qt::WA_DeleteOnClose);
    connect(d, &QDialog::accepted, this, [this, d] {
        const QString name = to_qstring(d->profile().name);
        reload();
        selectBoards({name});
        setStatus(tr("Board '%1' saved in %2").arg(name, boards_path_), false);
        emit message(tr("Boards: '%1' saved").arg(name), false);
    });
    d->open();
    return d;
}

BoardDialog* BoardPanel::addBoard() {
    if (isBusy()) return nullptr;
    remote::BoardProfile b;
    b.user = qEnvironmentVariable("USER").toStdString();
    return openDialog(b, {});
}

BoardDialog* BoardPanel::editBoard() {
    const auto sel = selectedProfiles();
    if (isBusy() || sel.empty()) return nullptr;
    return openDialog(sel.front(), to_qstring(sel.front().name));
}

bool BoardPanel::removeBoard() {
    const QStringList names = selectedBoards();
    if (isBusy() || names.isEmpty()) return false;
    const QString q = tr("Remove %1 from %2?").arg(names.join(", "), boards_path_);
    const bool yes = confirm ? confirm(q)
                             : QMessageBox::question(this, tr("Remove board"), q, QMessageBox::Yes | QMessageBox::Cancel,
                                                     QMessageBox::Cancel) == QMessageBox::Yes;
    if (!yes) return false;
    bool removed = false;
    for (const QString& n : names) {
        if (auto st = remote::remove_board(boards_path_.toStdString(), n.toStdString()); !st) {
            setStatus(to_qstring(st.message()), true);
            break;
        }
        removed = true;
    }
    reload();
    if (removed) setStatus(tr("Removed %1").arg(names.join(", ")), false);
    return removed;
}

// ---------------------------------------------------------------------------------------------
// Jobs

Result<std::string> BoardPanel::runnerFor(const std::string& arch) const {
    return remote::find_runner(arch, runners_.value(to_qstring(arch)).toStdString());
}

BoardPanel::ProgressPtr BoardPanel::beginJob(Job kind, const QString& what) {
    if (isBusy()) return nullptr;
    const quint64 job = ++next_job_;
    job_ = job;
    job_kind_ = kind;
    // Called from the worker (and run_profiles' target threads, serialized there): posted to the UI.
    job_progress_ = std::make_shared<Progress>([this, job](double f, const std::string& stage) {
        QMetaObject::invokeMethod(this, [this, job, f, s = to_qstring(stage)] { onProgress(job, f, s); }, Qt::QueuedConnection);
    });
    progress_->setValue(0);
    setStatus(what, false);
    refresh();
    return job_progress_;
}

void BoardPanel::endJob(quint64 job, const QString& text, bool error) {
    if (job != job_) return;
    job_ = 0;
    job_kind_ = Job::None;
    job_progress_.reset();
    progress_->setValue(error ? 0 : 1000);
    setStatus(text, error);
    refresh();
    emit message(tr("Boards: %1").arg(text), error);
    emit jobFinished();
}

void BoardPanel::cancel() {
    if (!job_progress_) return;
    job_progress_->cancel();
    setStatus(tr("Cancelling…"), false);
}

void BoardPanel::onProgress(quint64 job, double fraction, const QString& stage) {
    if (job != job_) return;
    progress_->setValue(int(std::clamp(fraction, 0.0, 1.0) * 1000));
    if (!stage.isEmpty() && !(job_progress_ && job_progress_->cancelled())) status_->setText(stage);
}

void BoardPanel::onOutput(quint64 job, const QString& target, const QByteArray& chunk, bool is_stderr) {
    if (job != job_) return;
    // Whole lines, each with its target in front; several targets write at once.
    QByteArray& pending = pending_lines_[target + (is_stderr ? QStringLiteral("\x01") : QString())];
    pending.append(chunk);
    qsizetype nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
        log_->appendPlainText(QStringLiteral("[%1] %2").arg(target, QString::fromUtf8(pending.left(nl))));
        pending.remove(0, nl + 1);
    }
}

}  // namespace ef::views
