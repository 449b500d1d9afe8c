// The model's description as a property tree: file, configuration, layer plan, tokenizer and the
// free-form metadata keys (GGUF general.*, ...).
#pragma once
#include <QTreeWidget>
#include <memory>

#include "core/model.h"

namespace ef::views {

class ModelInfoView : public QTreeWidget {
    Q_OBJECT
public:
    explicit ModelInfoView(QWidget* parent = nullptr);
    void setModel(const std::shared_ptr<const Model>& model);
    // Value shown for `key` under the section `section` ("" when absent); used by tests.
    QString value(const QString& section, const QString& key) const;
};

}  // namespace ef::views
