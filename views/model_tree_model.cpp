#include "views/model_tree_model.h"

#include <QFileInfo>
#include <QColor>
#include <QFont>
#include <array>
#include <map>

#include "core/inspect.h"
#include "views/format_util.h"

namespace ef::views {

struct ModelTreeModel::Node {
    QString kind;          // "model", "layer", "block", "tensor"
    QString name, detail;  // detail: architecture / block kind / dtype
    QString shape;
    qint64 parameters = 0;
    quint64 bytes = 0;
    int tensor = -1;
    Node* parent = nullptr;
    int row = 0;
    std::vector<std::unique_ptr<Node>> children;

    Node* add(std::unique_ptr<Node> child) {
        child->parent = this;
        child->row = int(children.size());
        children.push_back(std::move(child));
        return children.back().get();
    }
};

namespace {
bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, std::string_view p) {
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
// Fixed display order of the blocks inside a layer.
constexpr std::array<const char*, 6> kBlockOrder{"norms", "attention", "ssm", "router", "ffn", "other"};
}  // namespace

QString block_of_role(const std::string& role) {
    if (starts_with(role, "ssm_")) return "ssm";  // includes mamba2's inner ssm_norm
    if (starts_with(role, "router") || starts_with(role, "route") ||
        (!starts_with(role, "ffn_") && role.find("gate") != std::string::npos))
        return "router";
    if (ends_with(role, "norm")) return "norms";
    if (starts_with(role, "attn_")) return "attention";
    if (starts_with(role, "ffn_")) return "ffn";
    return "other";
}

QString layer_label(int index, const LayerDesc& d) {
    QString s = QString("layer %1 · %2").arg(index).arg(to_qstring(mixer_name(d.mixer)));
    if (d.mixer == MixerKind::Routed) s += QString(" (attention | %1)").arg(to_qstring(mixer_name(d.ssm_branch)));
    if (d.ffn != FfnKind::None) s += " · " + to_qstring(ffn_name(d.ffn));
    return s;
}

ModelTreeModel::ModelTreeModel(QObject* parent) : QAbstractItemModel(parent), root_(std::make_unique<Node>()) {}
ModelTreeModel::~ModelTreeModel() = default;

void ModelTreeModel::setModel(std::shared_ptr<const Model> model) {
    beginResetModel();
    model_ = std::move(model);
    root_ = std::make_unique<Node>();
    tensor_nodes_.clear();
    if (model_) {
        const Model& m = *model_;
        tensor_nodes_.assign(m.tensors.size(), nullptr);
        auto top = std::make_unique<Node>();
        top->kind = "model";
        top->name = m.source_path.empty() ? QString("model") : QFileInfo(QString::fromStdString(m.source_path)).fileName();
        top->detail = QString::fromStdString(m.architecture);
        Node* model_node = root_->add(std::move(top));

        auto make_tensor = [&](size_t i) {
            const Tensor& t = m.tensors[i];
            auto n = std::make_unique<Node>();
            n->kind = "tensor";
            n->name = QString::fromStdString(t.name);
            n->detail = to_qstring(dtype_name(t.dtype));
            n->shape = shape_text(t.shape);
            n->parameters = t.numel();
            n->bytes = t.nbytes();
            n->tensor = int(i);
            return n;
        };
        // Group layer tensors: layer -> block -> tensor indices, in file order within a block.
        std::vector<std::map<QString, std::vector<size_t>>> by_layer(m.layers.size());
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            int layer = -1;
            std::string role;
            split_tensor_name(m.tensors[i].name, layer, role);
            if (layer >= 0 && size_t(layer) < m.layers.size()) {
                by_layer[size_t(layer)][block_of_role(role)].push_back(i);
            } else {
                Node* n = model_node->add(make_tensor(i));
                tensor_nodes_[i] = n;
            }
        }
        for (size_t l = 0; l < m.layers.size(); ++l) {
            auto ln = std::make_unique<Node>();
            ln->kind = "layer";
            ln->name = layer_label(int(l), m.layers[l]);
            ln->detail = "layer";
            Node* layer_node = model_node->add(std::move(ln));
            for (const char* block : kBlockOrder) {
                auto it = by_layer[l].find(block);
                if (it == by_layer[l].end()) continue;
                auto bn = std::make_unique<Node>();
                bn->kind = "block";
                bn->name = block;
                bn->detail = "block";
                Node* block_node = layer_node->add(std::move(bn));
                for (size_t i : it->second) {
                    Node* tn = block_node->add(make_tensor(i));
                    tensor_nodes_[i] = tn;
                    block_node->parameters += tn->parameters;
                    block_node->bytes += tn->bytes;
                }
                layer_node->parameters += block_node->parameters;
                layer_node->bytes += block_node->bytes;
            }
        }
        for (auto& c : model_node->children) {
            model_node->parameters += c->parameters;
            model_node->bytes += c->bytes;
        }
    }
    endResetModel();
}

ModelTreeModel::Node* ModelTreeModel::node(const QModelIndex& index) const {
    return index.isValid() ? static_cast<Node*>(index.internalPointer()) : root_.get();
}

QModelIndex ModelTreeModel::indexForTensor(int tensor_index) const {
    if (tensor_index < 0 || size_t(tensor_index) >= tensor_nodes_.size() || !tensor_nodes_[size_t(tensor_index)])
        return {};
    Node* n = tensor_nodes_[size_t(tensor_index)];
    return createIndex(n->row, 0, n);
}

QModelIndex ModelTreeModel::index(int row, int column, const QModelIndex& parent) const {
    if (!hasIndex(row, column, parent)) return {};
    Node* p = node(parent);
    return createIndex(row, column, p->children[size_t(row)].get());
}

QModelIndex ModelTreeModel::parent(const QModelIndex& child) const {
    if (!child.isValid()) return {};
    Node* p = node(child)->parent;
    if (!p || p == root_.get()) return {};
    return createIndex(p->row, 0, p);
}

int ModelTreeModel::rowCount(const QModelIndex& parent) const {
    if (parent.isValid() && parent.column() != 0) return 0;
    return int(node(parent)->children.size());
}

int ModelTreeModel::columnCount(const QModelIndex&) const { return ColumnCount; }

QVariant ModelTreeModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid()) return {};
    const Node* n = node(index);
    switch (role) {
        case Qt::DisplayRole:
            switch (index.column()) {
                case NameColumn: return n->name;
                case KindColumn: return n->detail;
                case ShapeColumn: return n->shape;
                case ParametersColumn: return grouped(n->parameters);
                case BytesColumn: return human_bytes(n->bytes);
            }
            return {};
        case Qt::ToolTipRole:
            if (n->kind == "tensor")
                return QString("%1\n%2 %3 · %4 parameters · %5")
                    .arg(n->name, n->detail, n->shape, grouped(n->parameters), human_bytes(n->bytes));
            return QString("%1\n%2 parameters · %3").arg(n->name, grouped(n->parameters), human_bytes(n->bytes));
        case Qt::TextAlignmentRole:
            if (index.column() >= ParametersColumn) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
            return {};
        case Qt::FontRole:
            if (n->kind == "model") {
                QFont f;
                f.setBold(true);
                return f;
            }
            return {};
        case Qt::ForegroundRole:
            if (n->kind == "layer") return QColor(20, 70, 140);  // layers stand out without bold's width
            if (n->kind == "block") return QColor(90, 96, 104);
            return {};
        case TensorIndexRole: return n->tensor;
        case NodeKindRole: return n->kind;
    }
    return {};
}

QVariant ModelTreeModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* names[] = {"Name", "Kind", "Shape", "Parameters", "Bytes"};
    return section >= 0 && section < ColumnCount ? QString(names[section]) : QVariant();
}

Qt::ItemFlags ModelTreeModel::flags(const QModelIndex& index) const {
    return index.isValid() ? Qt::ItemIsEnabled | Qt::ItemIsSelectable : Qt::NoItemFlags;
}

}  // namespace ef::views
