// Add / Edit board: a form over BoardProfile (name, host, port, user, key file or the ssh-agent,
// arch, remote work dir, exec wrapper). No password field: keys and the agent only. Accept checks
// the fields with remote::validate and then saves through the caller's function; either error is
// shown in the dialog, which stays open, and nothing is written.
#pragma once
#include <QDialog>
#include <functional>

#include "core/remote/board_profile.h"
#include "core/result.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace ef::views {

class BoardDialog : public QDialog {
    Q_OBJECT
public:
    using SaveFn = std::function<Status(const remote::BoardProfile&)>;
    BoardDialog(const remote::BoardProfile& initial, SaveFn save, QWidget* parent = nullptr);

    // The profile as the fields say (an unparsable port reads as 0, which validate refuses).
    remote::BoardProfile profile() const;
    QString errorText() const;
    void accept() override;

    QLineEdit *name, *host, *port, *user, *key_file, *work_dir, *exec_wrapper;
    QCheckBox* use_agent;
    QComboBox* arch;
    QPushButton *browse_key, *save_button;

private:
    void browseKey();
    SaveFn save_;
    QLabel* error_;
};

}  // namespace ef::views
