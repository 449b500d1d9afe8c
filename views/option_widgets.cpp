#include "views/option_widgets.h"

#include <QDoubleSpinBox>

namespace ef::views {

QDoubleSpinBox* make_outlier_percent_box(QWidget* parent, const QString& tooltip) {
    auto* box = new QDoubleSpinBox(parent);
    box->setRange(0, 5);
    box->setDecimals(3);
    box->setSingleStep(0.1);
    box->setValue(0.5);
    box->setSuffix(" %");
    box->setToolTip(tooltip);
    return box;
}

}  // namespace ef::views
