// The router plot of `edgefusion analyze-router --plot`: per-layer gate bars (g, the attention
// share) coloured by the branch hard routing takes, the 0.5 threshold, axes and a title with
// ssm_frac, mean entropy and GFLOPs/token. One layout, drawn twice: as hand-written SVG and as an
// RGB raster (our own 5x7 bitmap font; text upper-cased there) for the PNG — no display needed.
#pragma once
#include <cstdint>
#include <string>

#include "app/cli/png_writer.h"
#include "runtime/router_analysis.h"

namespace ef::cli {

inline constexpr uint32_t kPlotAttentionColor = 0x2f6fb5;  // layers on attention (g >= 0.5)
inline constexpr uint32_t kPlotSsmColor = 0xe07b24;        // layers on the SSM branch (g < 0.5)

std::string router_plot_svg(const RouterAnalysis& a);
RgbImage router_plot_image(const RouterAnalysis& a);

}  // namespace ef::cli
