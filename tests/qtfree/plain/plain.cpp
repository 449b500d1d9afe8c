// Fixture for qt_free_scan_accepts_plain: plain C++ that the scanner must accept.
#include <string>
int probe() { return int(std::string("x").size()); }
