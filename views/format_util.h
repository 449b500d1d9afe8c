// Display formatting shared by the views: sizes, counts, shapes and statistics.
#pragma once
#include <QString>

#include "core/tensor.h"

namespace ef::views {

QString human_bytes(quint64 bytes);        // "1.01 MiB"
QString human_count(qint64 n);             // "260.5K", "1.10B"
QString grouped(qint64 n);                 // "260,544"
QString shape_text(const Shape& s);        // "(512, 64)"
QString stat_text(double v);               // 4 significant digits, "—" for NaN
QString to_qstring(std::string_view s);

}  // namespace ef::views
