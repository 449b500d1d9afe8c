#include "views/board_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "views/format_util.h"

namespace ef::views {

BoardDialog::BoardDialog(const remote::BoardProfile& b, SaveFn save, QWidget* parent) : QDialog(parent), save_(std::move(save)) {
    setWindowTitle(b.name.empty() ? tr("Add board") : tr("Edit board %1").arg(to_qstring(b.name)));
    name = new QLineEdit(to_qstring(b.name));
    host = new QLineEdit(to_qstring(b.host));
    host->setToolTip(tr("Host name or IP address of the board"));
    port = new QLineEdit(QString::number(b.port));
    user = new QLineEdit(to_qstring(b.user));
    key_file = new QLineEdit(to_qstring(b.key_file));
    key_file->setToolTip(tr("Private key file; the key's passphrase, if any, is the ssh-agent's business"));
    browse_key = new QPushButton(tr("Browse…"));
    use_agent = new QCheckBox(tr("Use the ssh-agent"));
    use_agent->setChecked(b.use_agent());
    arch = new QComboBox;
    arch->addItems({"x86_64", "aarch64"});
    arch->setCurrentText(to_qstring(b.arch));
    work_dir = new QLineEdit(to_qstring(b.work_dir.empty() ? std::string("edgefusion") : b.work_dir));
    work_dir->setToolTip(tr("Remote directory for the runner and models (absolute, or relative to the user's home)"));
    exec_wrapper = new QLineEdit(to_qstring(b.exec_wrapper));
    exec_wrapper->setToolTip(tr("Program the runner is started through, e.g. qemu-aarch64 for an emulated board"));
    error_ = new QLabel;
    error_->setObjectName("boardDialogError");
    error_->setWordWrap(true);
    error_->setStyleSheet(QStringLiteral("color: #c03030"));
    error_->hide();

    auto* key_row = new QHBoxLayout;
    key_row->addWidget(key_file, 1);
    key_row->addWidget(browse_key);
    auto* form = new QFormLayout;
    form->addRow(tr("Name"), name);
    form->addRow(tr("Host"), host);
    form->addRow(tr("Port"), port);
    form->addRow(tr("User"), user);
    form->addRow(tr("Key file"), key_row);
    form->addRow(QString(), use_agent);
    form->addRow(tr("Arch"), arch);
    form->addRow(tr("Work dir"), work_dir);
    form->addRow(tr("Exec wrapper"), exec_wrapper);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Cancel);
    save_button = buttons->button(QDialogButtonBox::Save);
    auto* l = new QVBoxLayout(this);
    l->addLayout(form);
    l->addWidget(error_);
    l->addWidget(buttons);
    setMinimumWidth(460);

    auto sync_agent = [this] {
        key_file->setEnabled(!use_agent->isChecked());
        browse_key->setEnabled(!use_agent->isChecked());
    };
    sync_agent();
    connect(use_agent, &QCheckBox::toggled, this, sync_agent);
    connect(browse_key, &QPushButton::clicked, this, &BoardDialog::browseKey);
    connect(buttons, &QDialogButtonBox::accepted, this, &BoardDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &BoardDialog::reject);
}

void BoardDialog::browseKey() {
    const QString start = key_file->text().isEmpty() ? QDir::homePath() + "/.ssh" : key_file->text();
    const QString f = QFileDialog::getOpenFileName(this, tr("Private key"), start);
    if (!f.isEmpty()) key_file->setText(f);
}

remote::BoardProfile BoardDialog::profile() const {
    remote::BoardProfile b;
    b.name = name->text().trimmed().toStdString();
    b.host = host->text().trimmed().toStdString();
    bool ok = false;
    const int p = port->text().trimmed().toInt(&ok);
    b.port = ok ? p : 0;
    b.user = user->text().trimmed().toStdString();
    if (!use_agent->isChecked()) b.key_file = key_file->text().trimmed().toStdString();
    b.arch = arch->currentText().toStdString();
    b.work_dir = work_dir->text().trimmed().toStdString();
    b.exec_wrapper = exec_wrapper->text().trimmed().toStdString();
    return b;
}

QString BoardDialog::errorText() const { return error_->isHidden() ? QString() : error_->text(); }

void BoardDialog::accept() {
    const remote::BoardProfile b = profile();
    bool port_ok = false;
    port->text().trimmed().toInt(&port_ok);
    Status st = port_ok ? remote::validate(b) : Status(make_error("board: port '" + port->text().toStdString() + "' is not a number"));
    if (st && !use_agent->isChecked() && b.key_file.empty()) st = make_error("no key file: choose one or tick 'Use the ssh-agent'");
    if (st && save_) st = save_(b);
    if (!st) {
        error_->setText(to_qstring(st.message()));
        error_->show();
        return;
    }
    error_->hide();
    QDialog::accept();
}

}  // namespace ef::views
