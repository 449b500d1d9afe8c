// Fixture for qt_free_scan_rejects_qt: the scanner must refuse this file.
#include <QString>
int probe() { return QString("x").size(); }
