// A minimal PNG writer for the CLI's plots (no display, no Qt): 8-bit RGB, filter 0 on every row,
// the IDAT stream compressed by zlib (Debian's libz), chunk CRCs from zlib's crc32.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace ef::cli {

struct RgbImage {
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;  // (height, width, 3) row-major

    RgbImage(int w, int h, uint32_t fill);
    void set(int x, int y, uint32_t color);  // 0xRRGGBB; outside the image: ignored
    void fill_rect(int x, int y, int w, int h, uint32_t color);
};

// The PNG file's bytes.
Result<std::vector<uint8_t>> encode_png(const RgbImage& img);
// Encodes and writes atomically.
Status write_png(const RgbImage& img, const std::string& path);

}  // namespace ef::cli
