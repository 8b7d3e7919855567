// Internal: the pictures Loom writes, composed in one place — an image grid (gray or RGB cells
// with 2-pixel gaps), the same grid with text bands around it (a label left of each row, a
// header above each column), and the text itself, drawn with Cairo. The cells of a labelled grid
// are the unlabelled grid's bytes, moved: labels only ever touch the bands.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/io.hpp"
#include "loom/tensor.hpp"

typedef struct _cairo cairo_t;

namespace loom {

// 8-bit pixels, `channels` (1 gray, 3 RGB) per pixel, rows top to bottom.
struct LOOM_API Picture {
  int64_t width = 0, height = 0, channels = 1;
  std::vector<uint8_t> pix;
  uint8_t* at(int64_t x, int64_t y) { return &pix[size_t((y * width + x) * channels)]; }
  const uint8_t* at(int64_t x, int64_t y) const { return &pix[size_t((y * width + x) * channels)]; }
};

// Where the cells of a grid lie: cell (r, c) starts at (pad + c * (cell_w + pad),
// pad + r * (cell_h + pad)).
struct LOOM_API GridLayout {
  int64_t rows = 0, cols = 0, cell_w = 0, cell_h = 0, pad = 2;
};

// The plain grid of `images` (each of `image_shape`: (H, W), (1, H, W) or (3, H, W), values in
// [lo, hi]), `cols` to a row, white gaps; `layout` (if given) receives where the cells lie.
LOOM_API Picture grid_picture(const std::vector<const float*>& images, const Shape& image_shape,
                              int64_t cols, float lo, float hi, GridLayout* layout = nullptr,
                              const std::string& path_for_errors = "");

// `grid` inside white bands: `labels.rows[r]` at the left of row r (right-aligned, centred on the
// row), `labels.columns[c]` above column c (centred; turned to read upwards when one is wider
// than its column). Empty labels leave their band blank; no band is added for an empty list.
// Throws an Error when Cairo cannot draw the text (with no font installed it still can: it
// falls back to its own built-in font).
LOOM_API Picture label_grid(const Picture& grid, const GridLayout& layout,
                            const GridLabels& labels);

// Text for pictures, drawn by Cairo in the "sans-serif" family (fontconfig picks the font,
// DejaVu Sans on Debian), grey antialiasing, no hinting, so the same text looks the same on any
// machine with the same font. `size` is the em size in pixels.
LOOM_API void set_picture_font(cairo_t* cr, double size);
// Throws an Error naming `what` when Cairo failed (out of memory, a font file it cannot read).
LOOM_API void check_cairo(cairo_t* cr, const std::string& what);

// Writes a picture as an 8-bit gray or RGB PNG (atomically).
LOOM_API void write_picture(const std::string& path, const Picture& picture);

// The colour of dark text on the white bands.
constexpr uint8_t kInk = 20;

}  // namespace loom
