#include "views/model_info_view.h"

#include <QFileInfo>
#include <QHeaderView>

#include "core/model_json.h"
#include "views/format_util.h"
#include "views/model_tree_model.h"

namespace ef::views {

namespace {

QString json_text(const nlohmann::json& v) {
    if (v.is_string()) return QString::fromStdString(v.get<std::string>());
    if (v.is_number_float()) return QString::number(v.get<double>(), 'g', 7);
    return QString::fromStdString(v.dump());
}

// Adds `j`'s keys under `parent`, nested objects as sub-items.
void add_json(QTreeWidgetItem* parent, const nlohmann::json& j) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        auto* item = new QTreeWidgetItem(parent, {QString::fromStdString(it.key())});
        if (it->is_object()) add_json(item, *it);
        else item->setText(1, json_text(*it));
    }
}

}  // namespace

ModelInfoView::ModelInfoView(QWidget* parent) : QTreeWidget(parent) {
    setColumnCount(2);
    setHeaderLabels({tr("Property"), tr("Value")});
    setAlternatingRowColors(true);
    setUniformRowHeights(true);
    header()->setSectionResizeMode(0, QHeaderView::Interactive);
    header()->resizeSection(0, 200);
    header()->setStretchLastSection(true);
}

void ModelInfoView::setModel(const std::shared_ptr<const Model>& model) {
    clear();
    if (!model) return;
    const Model& m = *model;
    auto section = [this](const QString& title) {
        auto* s = new QTreeWidgetItem(this, {title});
        QFont f = s->font(0);
        f.setBold(true);
        s->setFont(0, f);
        s->setFirstColumnSpanned(false);
        return s;
    };
    auto add = [](QTreeWidgetItem* parent, const QString& k, const QString& v) {
        auto* item = new QTreeWidgetItem(parent, {k, v});
        item->setToolTip(1, v);
        return item;
    };

    auto* file = section(tr("File"));
    add(file, "path", QString::fromStdString(m.source_path));
    add(file, "format", QString::fromStdString(m.source_format));
    if (QFileInfo fi(QString::fromStdString(m.source_path)); fi.exists()) add(file, "file size", human_bytes(quint64(fi.size())));
    add(file, "architecture", QString::fromStdString(m.architecture));
    add(file, "parameters", grouped(m.parameter_count()) + "  (" + human_count(m.parameter_count()) + ")");
    add(file, "weight bytes", human_bytes(m.weight_bytes()));
    add(file, "bits per weight", QString::number(m.bits_per_weight(), 'f', 3));
    add(file, "tensors", QString::number(m.tensors.size()));

    auto* cfg = section(tr("Configuration"));
    add_json(cfg, config_to_json(m.config));

    // Runs of identical layers collapse into one line: "layers 0–3".
    auto* plan = section(tr("Layer plan"));
    for (size_t i = 0; i < m.layers.size();) {
        size_t j = i;
        while (j + 1 < m.layers.size() && m.layers[j + 1] == m.layers[i]) ++j;
        QString label = layer_label(int(i), m.layers[i]).section(" · ", 1);
        add(plan, i == j ? QString("layer %1").arg(i) : QString("layers %1–%2").arg(i).arg(j), label);
        i = j + 1;
    }

    auto* tok = section(tr("Tokenizer"));
    if (m.vocab.empty()) {
        add(tok, "vocabulary", tr("none in this file"));
    } else {
        add(tok, "model", QString::fromStdString(m.vocab.model));
        if (!m.vocab.pre.empty()) add(tok, "pre-tokenizer", QString::fromStdString(m.vocab.pre));
        add(tok, "tokens", grouped(qint64(m.vocab.tokens.size())));
        if (!m.vocab.merges.empty()) add(tok, "merges", grouped(qint64(m.vocab.merges.size())));
        auto id = [&](int32_t v) {
            if (v < 0) return QString("—");
            QString t = size_t(v) < m.vocab.tokens.size() ? QString::fromStdString(m.vocab.tokens[size_t(v)]) : QString("?");
            return QString("%1  %2").arg(v).arg(t.trimmed());
        };
        add(tok, "bos", id(m.vocab.bos_id));
        add(tok, "eos", id(m.vocab.eos_id));
        add(tok, "unk", id(m.vocab.unk_id));
    }

    auto* meta = section(tr("Metadata"));
    if (m.metadata.empty()) add(meta, tr("(no keys)"), QString());
    for (const auto& [k, v] : m.metadata) add(meta, QString::fromStdString(k), QString::fromStdString(v.to_display_string(8)));

    expandAll();
    plan->setExpanded(m.layers.size() <= 64);
}

QString ModelInfoView::value(const QString& section, const QString& key) const {
    for (int i = 0; i < topLevelItemCount(); ++i) {
        const QTreeWidgetItem* s = topLevelItem(i);
        if (s->text(0) != section) continue;
        for (int j = 0; j < s->childCount(); ++j)
            if (s->child(j)->text(0) == key) return s->child(j)->text(1);
    }
    return {};
}

}  // namespace ef::views
