// Option widgets that several views share, so the same option reads and behaves the same everywhere.
#pragma once
#include <QString>

class QDoubleSpinBox;
class QSpinBox;
class QWidget;

namespace ef::views {

// The outlier share p in percent: 0–5 % (the format's limit), 0.5 % default, steps of 0.1.
QDoubleSpinBox* make_outlier_percent_box(QWidget* parent, const QString& tooltip);

// An integer spin box over [lo, hi] starting at value, with a tooltip.
QSpinBox* make_int_spin(int lo, int hi, int value, const QString& tooltip);

}  // namespace ef::views
