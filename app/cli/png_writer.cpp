#include "app/cli/png_writer.h"

#include <zlib.h>

#include "core/storage.h"

namespace ef::cli {
namespace {

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

// length, type, data, CRC-32 over type + data
void chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
    put_u32(out, uint32_t(data.size()));
    const size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    const uLong crc = crc32(0L, out.data() + start, uInt(out.size() - start));
    put_u32(out, uint32_t(crc));
}

}  // namespace

RgbImage::RgbImage(int w, int h, uint32_t fill) : width(w), height(h), rgb(size_t(w) * size_t(h) * 3) {
    fill_rect(0, 0, w, h, fill);
}

void RgbImage::set(int x, int y, uint32_t c) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    uint8_t* p = rgb.data() + (size_t(y) * size_t(width) + size_t(x)) * 3;
    p[0] = uint8_t(c >> 16);
    p[1] = uint8_t(c >> 8);
    p[2] = uint8_t(c);
}

void RgbImage::fill_rect(int x, int y, int w, int h, uint32_t c) {
    for (int yy = y; yy < y + h; ++yy)
        for (int xx = x; xx < x + w; ++xx) set(xx, yy, c);
}

Result<std::vector<uint8_t>> encode_png(const RgbImage& img) {
    if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width) * size_t(img.height) * 3)
        return make_error("PNG: bad image size " + std::to_string(img.width) + "x" + std::to_string(img.height));
    // Raw scanlines: a filter byte (0 = None) before each row.
    const size_t row = size_t(img.width) * 3;
    std::vector<uint8_t> raw;
    raw.reserve((row + 1) * size_t(img.height));
    for (int y = 0; y < img.height; ++y) {
        raw.push_back(0);
        raw.insert(raw.end(), img.rgb.begin() + std::ptrdiff_t(size_t(y) * row), img.rgb.begin() + std::ptrdiff_t(size_t(y + 1) * row));
    }
    uLongf zlen = compressBound(uLong(raw.size()));
    std::vector<uint8_t> z(zlen);
    if (compress2(z.data(), &zlen, raw.data(), uLong(raw.size()), 9) != Z_OK) return make_error("PNG: zlib compression failed");
    z.resize(zlen);

    std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<uint8_t> ihdr;
    put_u32(ihdr, uint32_t(img.width));
    put_u32(ihdr, uint32_t(img.height));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
    chunk(out, "IHDR", ihdr);
    chunk(out, "IDAT", z);
    chunk(out, "IEND", {});
    return out;
}

Status write_png(const RgbImage& img, const std::string& path) {
    auto bytes = encode_png(img);
    if (!bytes) return make_error(path + ": " + bytes.message());
    auto w = AtomicFileWriter::create(path);
    if (!w) return w.error();
    EF_TRY_STATUS((*w)->write(bytes->data(), bytes->size()));
    return (*w)->commit();
}

}  // namespace ef::cli
