#include "app/cli/router_plot.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>

namespace ef::cli {
namespace {

constexpr uint32_t kBackground = 0xffffff, kInk = 0x222222, kGrid = 0xdddddd, kThreshold = 0xc0392b;
constexpr int kGlyphW = 5, kGlyphH = 7, kScale = 2;
constexpr int kAdvance = (kGlyphW + 1) * kScale;  // raster pixels per character

// Geometry shared by the SVG and the raster: the plot area and one slot per layer.
struct Layout {
    int width = 0, height = 0;
    int left = 100, right = 30, top = 96, bottom = 64;
    int plot_w = 0, plot_h = 260;
    double slot = 0;
    int label_every = 1;  // x tick labels on every k-th layer so they do not overlap
    std::string title1, title2;

    int baseline() const { return top + plot_h; }
    int bar_x(size_t i) const { return left + int(std::lround(double(i) * slot + 0.15 * slot)); }
    int bar_w() const { return std::max(1, int(std::lround(0.7 * slot))); }
    int bar_h(double g) const { return int(std::lround(std::clamp(g, 0.0, 1.0) * plot_h)); }
    int y_of(double g) const { return baseline() - int(std::lround(g * plot_h)); }
};

std::string fmt(const char* f, double x) {
    char b[64];
    std::snprintf(b, sizeof b, f, x);
    return b;
}

Layout layout_of(const RouterAnalysis& a) {
    Layout L;
    const size_t n = std::max<size_t>(a.layers.size(), 1);
    L.plot_w = std::max(600, int(n) * 12);
    L.slot = double(L.plot_w) / double(n);
    char b[256];
    std::snprintf(b, sizeof b, "Router gates: ssm_frac %.1f%% (%lld/%zu), mean entropy %.3f bits", 100.0 * a.ssm_frac,
                  static_cast<long long>(a.ssm_layers), a.layers.size(), a.mean_entropy_bits);
    L.title1 = b;
    std::snprintf(b, sizeof b, "%.4g vs %.4g GFLOPs/token (dense twin), %+.1f%%, converged: %s", a.gflops_per_token,
                  a.dense_gflops_per_token, -a.flops_reduction_pct, a.converged ? "yes" : "no");
    L.title2 = b;
    const int text_w = int(std::max(L.title1.size(), L.title2.size())) * kAdvance + 40;
    L.width = std::max(L.left + L.plot_w + L.right, text_w);
    L.plot_w = L.width - L.left - L.right;  // a long title widens the plot too
    L.slot = double(L.plot_w) / double(n);
    L.height = L.top + L.plot_h + L.bottom;
    const int label_px = int(std::to_string(n - 1).size()) * kAdvance + 6;
    L.label_every = std::max(1, int(std::ceil(double(label_px) / L.slot)));
    return L;
}

std::string hex(uint32_t c) {
    char b[8];
    std::snprintf(b, sizeof b, "#%06x", c & 0xffffff);
    return b;
}

std::string esc(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '&') o += "&amp;";
        else if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else o += c;
    }
    return o;
}

// 5x7 glyphs, one string of 7 rows x 5 columns ('#' = ink) per character.
const std::map<char, const char*>& font() {
    static const std::map<char, const char*> f = {
        {'A', ".###.#...##...#######...##...##...#"}, {'B', "####.#...##...#####.#...##...#####."},
        {'C', ".###.#...##....#....#....#...#.###."}, {'D', "####.#...##...##...##...##...#####."},
        {'E', "######....#....####.#....#....#####"}, {'F', "######....#....####.#....#....#...."},
        {'G', ".###.#...##....#.####...##...#.####"}, {'H', "#...##...##...#######...##...##...#"},
        {'I', ".###...#....#....#....#....#...###."}, {'J', "..###...#....#....#....#.#..#..##.."},
        {'K', "#...##..#.#.#..##...#.#..#..#.#...#"}, {'L', "#....#....#....#....#....#....#####"},
        {'M', "#...###.###.#.##.#.##...##...##...#"}, {'N', "#...##...###..##.#.##..###...##...#"},
        {'O', ".###.#...##...##...##...##...#.###."}, {'P', "####.#...##...#####.#....#....#...."},
        {'Q', ".###.#...##...##...##.#.##..#..##.#"}, {'R', "####.#...##...#####.#.#..#..#.#...#"},
        {'S', ".#####....#.....###.....#....#####."}, {'T', "#####..#....#....#....#....#....#.."},
        {'U', "#...##...##...##...##...##...#.###."}, {'V', "#...##...##...##...##...#.#.#...#.."},
        {'W', "#...##...##...##.#.##.#.##.#.#.#.#."}, {'X', "#...##...#.#.#...#...#.#.#...##...#"},
        {'Y', "#...##...#.#.#...#....#....#....#.."}, {'Z', "#####....#...#...#...#...#....#####"},
        {'0', ".###.#...##..###.#.###..##...#.###."}, {'1', "..#...##....#....#....#....#...###."},
        {'2', ".###.#...#....#...#...#...#...#####"}, {'3', "#####...#...#.....#.....##...#.###."},
        {'4', "...#...##..#.#.#..#.#####...#....#."}, {'5', "######....####.....#....##...#.###."},
        {'6', "..##..#...#....####.#...##...#.###."}, {'7', "#####....#...#...#...#....#....#..."},
        {'8', ".###.#...##...#.###.#...##...#.###."}, {'9', ".###.#...##...#.####....#...#..##.."},
        {' ', "..................................."}, {'.', ".........................##...##..."},
        {',', "....................##....#...#...."}, {':', ".....##...##.........##...##......."},
        {'%', "##...##..#...#...#...#...#..##...##"}, {'/', ".........#...#...#...#...#........."},
        {'-', "...............#####..............."}, {'+', ".......#....#..#####..#....#......."},
        {'(', "...#...#...#....#....#.....#.....#."}, {')', ".#.....#.....#....#....#...#...#..."},
        {'=', "..........#####.....#####.........."}, {'<', "...#...#...#...#.....#.....#.....#."},
        {'>', ".#.....#.....#.....#...#...#...#..."}, {'_', "..............................#####"},
        {'|', "..#....#....#....#....#....#....#.."}, {'?', ".###.#...#....#...#...#.........#.."},
    };
    return f;
}

const char* glyph(char c) {
    const auto& f = font();
    auto it = f.find(char(std::toupper(static_cast<unsigned char>(c))));
    return it != f.end() ? it->second : f.at('?');
}

// Text with its top-left corner at (x, y); vertical: rotated 90 degrees counter-clockwise, reading
// upward from (x, y) = its bottom-left corner.
void draw_text(RgbImage& img, int x, int y, const std::string& s, uint32_t color, bool vertical = false) {
    for (size_t i = 0; i < s.size(); ++i) {
        const char* g = glyph(s[i]);
        for (int r = 0; r < kGlyphH; ++r)
            for (int c = 0; c < kGlyphW; ++c) {
                if (g[r * kGlyphW + c] != '#') continue;
                if (!vertical)
                    img.fill_rect(x + int(i) * kAdvance + c * kScale, y + r * kScale, kScale, kScale, color);
                else
                    img.fill_rect(x + r * kScale, y - int(i) * kAdvance - (c + 1) * kScale, kScale, kScale, color);
            }
    }
}

int text_w(const std::string& s) { return int(s.size()) * kAdvance - kScale; }

}  // namespace

std::string router_plot_svg(const RouterAnalysis& a) {
    const Layout L = layout_of(a);
    std::string s;
    const auto add = [&](const std::string& x) { s += x; s += '\n'; };
    add("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(L.width) + "\" height=\"" + std::to_string(L.height) +
        "\" viewBox=\"0 0 " + std::to_string(L.width) + " " + std::to_string(L.height) + "\" font-family=\"DejaVu Sans, sans-serif\">");
    add("<title>" + esc(L.title1 + "; " + L.title2) + "</title>");
    add("<rect x=\"0\" y=\"0\" width=\"" + std::to_string(L.width) + "\" height=\"" + std::to_string(L.height) + "\" fill=\"" +
        hex(kBackground) + "\"/>");
    add("<text x=\"" + std::to_string(L.width / 2) + "\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\" fill=\"" +
        hex(kInk) + "\">" + esc(L.title1) + "</text>");
    add("<text x=\"" + std::to_string(L.width / 2) + "\" y=\"48\" text-anchor=\"middle\" font-size=\"14\" fill=\"" + hex(kInk) + "\">" +
        esc(L.title2) + "</text>");
    // Legend above the plot's right end.
    const int ly = L.top - 24, lx = L.left + L.plot_w - 330;
    add("<rect x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly) + "\" width=\"14\" height=\"14\" fill=\"" +
        hex(kPlotAttentionColor) + "\"/>");
    add("<text x=\"" + std::to_string(lx + 20) + "\" y=\"" + std::to_string(ly + 12) + "\" font-size=\"13\" fill=\"" + hex(kInk) +
        "\">attention (g &gt;= 0.5)</text>");
    add("<rect x=\"" + std::to_string(lx + 175) + "\" y=\"" + std::to_string(ly) + "\" width=\"14\" height=\"14\" fill=\"" +
        hex(kPlotSsmColor) + "\"/>");
    add("<text x=\"" + std::to_string(lx + 195) + "\" y=\"" + std::to_string(ly + 12) + "\" font-size=\"13\" fill=\"" + hex(kInk) +
        "\">SSM (g &lt; 0.5)</text>");
    // Grid and y ticks.
    for (int k = 0; k <= 4; ++k) {
        const double g = 0.25 * k;
        const int y = L.y_of(g);
        add("<line x1=\"" + std::to_string(L.left) + "\" y1=\"" + std::to_string(y) + "\" x2=\"" + std::to_string(L.left + L.plot_w) +
            "\" y2=\"" + std::to_string(y) + "\" stroke=\"" + hex(kGrid) + "\" stroke-width=\"1\"/>");
        add("<text x=\"" + std::to_string(L.left - 8) + "\" y=\"" + std::to_string(y + 5) + "\" text-anchor=\"end\" font-size=\"13\" fill=\"" +
            hex(kInk) + "\">" + fmt("%.2f", g) + "</text>");
    }
    // Bars.
    for (size_t i = 0; i < a.layers.size(); ++i) {
        const auto& l = a.layers[i];
        const int h = L.bar_h(l.gate);
        add("<rect class=\"bar\" data-layer=\"" + std::to_string(l.layer) + "\" x=\"" + std::to_string(L.bar_x(i)) + "\" y=\"" +
            std::to_string(L.baseline() - h) + "\" width=\"" + std::to_string(L.bar_w()) + "\" height=\"" + std::to_string(h) +
            "\" fill=\"" + hex(l.ssm ? kPlotSsmColor : kPlotAttentionColor) + "\"><title>layer " + std::to_string(l.layer) + ": g = " +
            fmt("%.4f", l.gate) + ", " + (l.ssm ? "SSM" : "attention") + ", entropy " + fmt("%.4f", l.entropy_bits) +
            " bits</title></rect>");
        // g above each bar when there is room: a layer on the SSM branch has g near 0 and no visible bar.
        if (L.label_every == 1 && text_w(fmt("%.2f", l.gate)) <= L.bar_w())
            add("<text class=\"value\" x=\"" + std::to_string(L.bar_x(i) + L.bar_w() / 2) + "\" y=\"" + std::to_string(L.baseline() - h - 6) +
                "\" text-anchor=\"middle\" font-size=\"12\" fill=\"" + hex(kInk) + "\">" + fmt("%.2f", l.gate) + "</text>");
        if (i % size_t(L.label_every) == 0)
            add("<text x=\"" + std::to_string(L.bar_x(i) + L.bar_w() / 2) + "\" y=\"" + std::to_string(L.baseline() + 18) +
                "\" text-anchor=\"middle\" font-size=\"13\" fill=\"" + hex(kInk) + "\">" + std::to_string(l.layer) + "</text>");
    }
    // The 0.5 threshold and the axes.
    const int y5 = L.y_of(0.5);
    add("<line x1=\"" + std::to_string(L.left) + "\" y1=\"" + std::to_string(y5) + "\" x2=\"" + std::to_string(L.left + L.plot_w) +
        "\" y2=\"" + std::to_string(y5) + "\" stroke=\"" + hex(kThreshold) + "\" stroke-width=\"2\" stroke-dasharray=\"8 5\"/>");
    add("<text x=\"" + std::to_string(L.left + L.plot_w - 4) + "\" y=\"" + std::to_string(y5 - 6) +
        "\" text-anchor=\"end\" font-size=\"12\" fill=\"" + hex(kThreshold) + "\">0.5</text>");
    add("<line x1=\"" + std::to_string(L.left) + "\" y1=\"" + std::to_string(L.top) + "\" x2=\"" + std::to_string(L.left) + "\" y2=\"" +
        std::to_string(L.baseline()) + "\" stroke=\"" + hex(kInk) + "\" stroke-width=\"1.5\"/>");
    add("<line x1=\"" + std::to_string(L.left) + "\" y1=\"" + std::to_string(L.baseline()) + "\" x2=\"" + std::to_string(L.left + L.plot_w) +
        "\" y2=\"" + std::to_string(L.baseline()) + "\" stroke=\"" + hex(kInk) + "\" stroke-width=\"1.5\"/>");
    add("<text x=\"" + std::to_string(L.left + L.plot_w / 2) + "\" y=\"" + std::to_string(L.height - 16) +
        "\" text-anchor=\"middle\" font-size=\"14\" fill=\"" + hex(kInk) + "\">layer</text>");
    add("<text transform=\"translate(24 " + std::to_string(L.top + L.plot_h / 2) +
        ") rotate(-90)\" text-anchor=\"middle\" font-size=\"14\" fill=\"" + hex(kInk) + "\">gate g (attention share)</text>");
    add("</svg>");
    return s;
}

RgbImage router_plot_image(const RouterAnalysis& a) {
    const Layout L = layout_of(a);
    RgbImage img(L.width, L.height, kBackground);
    draw_text(img, (L.width - text_w(L.title1)) / 2, 12, L.title1, kInk);
    draw_text(img, (L.width - text_w(L.title2)) / 2, 36, L.title2, kInk);
    const int ly = L.top - 24, lx = L.left + L.plot_w - 400;
    img.fill_rect(lx, ly, 14, 14, kPlotAttentionColor);
    draw_text(img, lx + 20, ly, "attention (g>=0.5)", kInk);
    img.fill_rect(lx + 250, ly, 14, 14, kPlotSsmColor);
    draw_text(img, lx + 270, ly, "SSM (g<0.5)", kInk);
    for (int k = 0; k <= 4; ++k) {
        const double g = 0.25 * k;
        const int y = L.y_of(g);
        img.fill_rect(L.left, y, L.plot_w, 1, kGrid);
        const std::string t = fmt("%.2f", g);
        draw_text(img, L.left - 8 - text_w(t), y - kGlyphH * kScale / 2, t, kInk);
    }
    for (size_t i = 0; i < a.layers.size(); ++i) {
        const auto& l = a.layers[i];
        const int h = L.bar_h(l.gate);
        img.fill_rect(L.bar_x(i), L.baseline() - h, L.bar_w(), h, l.ssm ? kPlotSsmColor : kPlotAttentionColor);
        if (const std::string v = fmt("%.2f", l.gate); L.label_every == 1 && text_w(v) <= L.bar_w())
            draw_text(img, L.bar_x(i) + L.bar_w() / 2 - text_w(v) / 2, L.baseline() - h - 6 - kGlyphH * kScale, v, kInk);
        if (i % size_t(L.label_every) == 0) {
            const std::string t = std::to_string(l.layer);
            draw_text(img, L.bar_x(i) + L.bar_w() / 2 - text_w(t) / 2, L.baseline() + 8, t, kInk);
        }
    }
    const int y5 = L.y_of(0.5);
    for (int x = L.left; x < L.left + L.plot_w; x += 13) img.fill_rect(x, y5 - 1, std::min(8, L.left + L.plot_w - x), 2, kThreshold);
    img.fill_rect(L.left - 1, L.top, 2, L.plot_h + 1, kInk);
    img.fill_rect(L.left - 1, L.baseline(), L.plot_w + 1, 2, kInk);
    draw_text(img, L.left + L.plot_w / 2 - text_w("layer") / 2, L.height - 26, "layer", kInk);
    const std::string ylabel = "gate g (attention share)";
    draw_text(img, 14, L.top + L.plot_h / 2 + text_w(ylabel) / 2, ylabel, kInk, true);
    return img;
}

}  // namespace ef::cli
