#include "views/format_util.h"

#include <QLocale>
#include <cmath>

namespace ef::views {

QString human_bytes(quint64 b) {
    if (b >= (quint64(1) << 30)) return QString::number(double(b) / double(quint64(1) << 30), 'f', 2) + " GiB";
    if (b >= (quint64(1) << 20)) return QString::number(double(b) / double(quint64(1) << 20), 'f', 2) + " MiB";
    if (b >= 1024) return QString::number(double(b) / 1024.0, 'f', 1) + " KiB";
    return QString::number(b) + " B";
}

QString human_count(qint64 n) {
    const double v = double(n);
    if (n >= 1'000'000'000) return QString::number(v / 1e9, 'f', 2) + "B";
    if (n >= 1'000'000) return QString::number(v / 1e6, 'f', 2) + "M";
    if (n >= 1'000) return QString::number(v / 1e3, 'f', 1) + "K";
    return QString::number(n);
}

QString grouped(qint64 n) { return QLocale(QLocale::English).toString(n); }

QString shape_text(const Shape& s) { return QString::fromStdString(shape_to_string(s)); }

QString stat_text(double v) {
    if (std::isnan(v)) return QStringLiteral("—");
    if (std::isinf(v)) return v > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
    return QString::number(v, 'g', 4);
}

QString to_qstring(std::string_view s) { return QString::fromUtf8(s.data(), qsizetype(s.size())); }

}  // namespace ef::views
