#include "views/router_view.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QHelpEvent>
#include <QLabel>
#include <QPainter>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "views/format_util.h"

namespace ef::views {
namespace {

// The branch not taken: the same hue, mostly white.
QColor pale(const QColor& c) {
    const double t = 0.28;
    return QColor::fromRgbF(float(1 - t + t * c.redF()), float(1 - t + t * c.greenF()), float(1 - t + t * c.blueF()));
}

}  // namespace

RouterBars::RouterBars(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void RouterBars::setAnalysis(RouterAnalysisPtr a) {
    analysis_ = std::move(a);
    update();
}

QSize RouterBars::sizeHint() const { return {560, 300}; }
QSize RouterBars::minimumSizeHint() const { return {240, 160}; }

QRect RouterBars::plotRect() const { return rect().adjusted(52, 30, -14, -30); }

QRect RouterBars::barRect(int layer) const {
    if (!analysis_ || layer < 0 || size_t(layer) >= analysis_->layers.size()) return {};
    const QRect p = plotRect();
    const double slot = double(p.width()) / double(analysis_->layers.size());
    const int x = p.left() + int(std::lround((layer + 0.15) * slot));
    const int w = std::max(2, int(std::lround(0.7 * slot)));
    return QRect(x, p.top(), w, p.height());
}

int RouterBars::layerAt(QPoint pt) const {
    if (!analysis_) return -1;
    for (int i = 0; i < int(analysis_->layers.size()); ++i)
        if (barRect(i).contains(pt)) return i;
    return -1;
}

bool RouterBars::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        const int i = layerAt(he->pos());
        if (i < 0) {
            QToolTip::hideText();
            e->ignore();
            return true;
        }
        const RouterLayer& l = analysis_->layers[size_t(i)];
        QToolTip::showText(he->globalPos(), tr("Layer %1\ng = %2 (attention share)\n1 − g = %3 (SSM share)\nhard routing: %4\nentropy %5 bits")
                                                .arg(l.layer)
                                                .arg(l.gate, 0, 'f', 4)
                                                .arg(1 - l.gate, 0, 'f', 4)
                                                .arg(l.ssm ? tr("SSM") : tr("attention"))
                                                .arg(l.entropy_bits, 0, 'f', 4),
                           this);
        return true;
    }
    return QWidget::event(e);
}

void RouterBars::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), palette().base());
    if (!analysis_ || analysis_->layers.empty()) return;
    const QRect r = plotRect();
    const QColor ink = palette().color(QPalette::Text);
    const QColor att = router_branch_color(false), ssm = router_branch_color(true);
    const QFontMetrics fm(font());

    // Grid and y labels (g, the attention share).
    for (int k = 0; k <= 4; ++k) {
        const int y = r.bottom() - int(std::lround(0.25 * k * r.height()));
        p.setPen(QColor(0xdd, 0xdd, 0xdd));
        p.drawLine(r.left(), y, r.right(), y);
        p.setPen(ink);
        const QString t = QString::number(0.25 * k, 'f', 2);
        p.drawText(QRect(0, y - fm.height() / 2, r.left() - 6, fm.height()), Qt::AlignRight | Qt::AlignVCenter, t);
    }
    // Bars: attention share from the bottom, SSM share above it; the branch taken saturated.
    const size_t n = analysis_->layers.size();
    const double slot = double(r.width()) / double(n);
    const int label_every = std::max(1, int(std::ceil(double(fm.horizontalAdvance(QString::number(n - 1)) + 6) / slot)));
    for (size_t i = 0; i < n; ++i) {
        const RouterLayer& l = analysis_->layers[i];
        const QRect b = barRect(int(i));
        const int ha = int(std::lround(std::clamp(l.gate, 0.0, 1.0) * r.height()));
        p.fillRect(QRect(b.left(), r.bottom() - ha + 1, b.width(), ha), l.ssm ? pale(att) : att);
        p.fillRect(QRect(b.left(), r.top(), b.width(), r.height() - ha), l.ssm ? ssm : pale(ssm));
        if (int(i) % label_every == 0) {
            p.setPen(ink);
            p.drawText(QRect(b.center().x() - 30, r.bottom() + 4, 60, fm.height()), Qt::AlignHCenter | Qt::AlignTop,
                       QString::number(l.layer));
        }
    }
    // The 0.5 threshold and the axes.
    const int y5 = r.bottom() - int(std::lround(0.5 * r.height()));
    p.setPen(QPen(QColor(0xc0, 0x39, 0x2b), 2, Qt::DashLine));
    p.drawLine(r.left(), y5, r.right(), y5);
    p.setPen(QPen(ink, 1));
    p.drawLine(r.bottomLeft(), r.bottomRight());
    p.drawLine(r.bottomLeft(), r.topLeft());
    // Legend above the plot.
    int x = r.left();
    const int ly = 8;
    for (auto [c, text] : {std::pair{att, tr("attention share g")}, std::pair{ssm, tr("SSM share 1 − g")}}) {
        p.fillRect(QRect(x, ly + 1, 12, 12), c);
        p.setPen(ink);
        p.drawText(QPoint(x + 16, ly + fm.ascent()), text);
        x += 16 + fm.horizontalAdvance(text) + 18;
    }
    p.setPen(ink);
    p.drawText(QPoint(x, ly + fm.ascent()), tr("saturated: the branch the layer runs · dashed: g = 0.5"));
}

RouterView::RouterView(QWidget* parent) : QWidget(parent) {
    layers_ = new RouterLayerModel(this);
    proxy_ = new QSortFilterProxyModel(this);
    proxy_->setSourceModel(layers_);
    proxy_->setSortRole(RouterLayerModel::SortRole);
    summary_ = new QLabel(this);
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    message_ = new QLabel(this);
    message_->setWordWrap(true);
    message_->setAlignment(Qt::AlignCenter);
    bars_ = new RouterBars(this);
    table_ = new QTableView(this);
    table_->setModel(proxy_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(RouterLayerModel::LayerColumn, Qt::AscendingOrder);
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 6);
    splitter_ = new QSplitter(Qt::Horizontal, this);
    splitter_->addWidget(bars_);
    splitter_->addWidget(table_);
    splitter_->setStretchFactor(0, 3);
    splitter_->setStretchFactor(1, 2);
    splitter_->setSizes({640, 480});
    auto* v = new QVBoxLayout(this);
    v->addWidget(summary_);
    v->addWidget(message_);
    v->addWidget(splitter_, 1);
    show_message(tr("Open an edgefusion model to see its router."));
}

void RouterView::show_message(const QString& text) {
    analysis_.reset();
    layers_->setAnalysis(nullptr);
    bars_->setAnalysis(nullptr);
    summary_->clear();
    summary_->hide();
    splitter_->hide();
    message_->setText(text);
    message_->show();
    emit analysisChanged();
}

void RouterView::setModel(std::shared_ptr<const Model> model) {
    model_ = std::move(model);
    if (!model_) {
        show_message(tr("Open an edgefusion model to see its router."));
        return;
    }
    bool routed = false;
    for (const auto& d : model_->layers) routed = routed || d.mixer == MixerKind::Routed;
    if (!routed) {
        show_message(tr("This %1 model has no router: only edgefusion models mix an attention and an SSM branch per layer "
                        "with a learned gate.")
                         .arg(to_qstring(model_->architecture)));
        return;
    }
    auto a = analyze_router(*model_);
    if (!a) {
        show_message(tr("No router analysis: %1").arg(to_qstring(a.message())));
        return;
    }
    setAnalysis(*a);
}

void RouterView::setAnalysis(const ef::RouterAnalysis& a) {
    analysis_ = std::make_shared<const RouterAnalysis>(a);
    refresh();
}

bool RouterView::setGates(const std::vector<float>& gates) {
    if (!model_) return false;
    auto a = analyze_router_gates(*model_, gates);
    if (!a) return false;
    setAnalysis(*a);
    return true;
}

QString RouterView::summaryText() const { return analysis_ ? summary_->text() : QString(); }
QString RouterView::messageText() const { return analysis_ ? QString() : message_->text(); }

void RouterView::refresh() {
    const RouterAnalysis& a = *analysis_;
    layers_->setAnalysis(analysis_);
    bars_->setAnalysis(analysis_);
    summary_->setTextFormat(Qt::PlainText);
    summary_->setText(tr("ssm_frac %1 % (%2 of %3 layers on the SSM branch; paper ~%4 %)   ·   mean gate entropy %5 bits   ·   "
                         "converged: %10 (paper: mean entropy < %11 bits)\n"
                         "%6 vs %7 GFLOPs/token for the dense twin (%8, at position %9)")
                          .arg(100.0 * a.ssm_frac, 0, 'f', 1)
                          .arg(a.ssm_layers)
                          .arg(a.layers.size())
                          .arg(100.0 * kPaperSsmFrac, 0, 'f', 0)
                          .arg(a.mean_entropy_bits, 0, 'f', 3)
                          .arg(a.gflops_per_token, 0, 'g', 4)
                          .arg(a.dense_gflops_per_token, 0, 'g', 4)
                          .arg(QString::asprintf("%+.1f %%", -a.flops_reduction_pct))
                          .arg(a.position)
                          .arg(a.converged ? tr("yes") : tr("no"))
                          .arg(kRouterConvergedEntropyBits, 0, 'f', 2));
    message_->hide();
    summary_->show();
    splitter_->show();
    emit analysisChanged();
}

}  // namespace ef::views
