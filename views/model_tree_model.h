// The model as a tree: model -> global tensors, then layers -> blocks -> tensors.
//   stories260K.bin            llama          260,544 params
//     token_embd.weight        f32  (512, 64)
//     layer 3 · routed (attention | mamba2) · swiglu
//       attention              blk.3.attn_q.weight, ...
//       ssm / router / ffn / norms / other
// Blocks group a layer's tensors by the role in their canonical name "blk.N.<role>...".
#pragma once
#include <QAbstractItemModel>
#include <memory>
#include <vector>

#include "core/model.h"

namespace ef::views {

// Block a layer tensor belongs to, from its role ("attn_q" -> "attention", "ssm_in" -> "ssm",
// "router_gate" -> "router", "ffn_up" -> "ffn", "attn_norm" -> "norms").
QString block_of_role(const std::string& role);
// "layer 3 · routed (attention | mamba2) · swiglu"
QString layer_label(int index, const LayerDesc& d);

class ModelTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { NameColumn, KindColumn, ShapeColumn, ParametersColumn, BytesColumn, ColumnCount };
    enum Role {
        TensorIndexRole = Qt::UserRole + 1,  // int index into Model::tensors, -1 for group rows
        NodeKindRole,                         // "model", "layer", "block", "tensor"
    };

    explicit ModelTreeModel(QObject* parent = nullptr);
    ~ModelTreeModel() override;

    void setModel(std::shared_ptr<const Model> model);
    const std::shared_ptr<const Model>& model() const { return model_; }
    // Index (column 0) of the row showing tensor `tensor_index`; invalid if none.
    QModelIndex indexForTensor(int tensor_index) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;

private:
    struct Node;
    Node* node(const QModelIndex& index) const;
    std::shared_ptr<const Model> model_;
    std::unique_ptr<Node> root_;
    std::vector<Node*> tensor_nodes_;  // by tensor index
};

}  // namespace ef::views
