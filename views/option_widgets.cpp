#include "views/option_widgets.h"

#include <QDoubleSpinBox>
#include <QSpinBox>

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

QSpinBox* make_int_spin(int lo, int hi, int value, const QString& tooltip) {
    auto* s = new QSpinBox;
    s->setRange(lo, hi);
    s->setValue(value);
    s->setToolTip(tooltip);
    return s;
}

}  // namespace ef::views
