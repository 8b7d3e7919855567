// Image grids and their text bands. Text is drawn by Cairo into an 8-bit coverage mask the size
// of the labelled picture; only the bands take ink from it, so the cells stay the grid's bytes.
#include "output/picture.hpp"

#include <cairo.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "loom/error.hpp"

namespace loom {

namespace {

constexpr double kLabelSize = 12;  // pixels: readable beside 28-pixel cells
constexpr int64_t kGap = 5;        // between a label and the grid, and at the picture's edge

using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using Context = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

}  // namespace

void set_picture_font(cairo_t* cr, double size) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_font_options_t* o = cairo_font_options_create();
  cairo_font_options_set_antialias(o, CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style(o, CAIRO_HINT_STYLE_NONE);
  cairo_font_options_set_hint_metrics(o, CAIRO_HINT_METRICS_OFF);
  cairo_set_font_options(cr, o);
  cairo_font_options_destroy(o);
}

void check_cairo(cairo_t* cr, const std::string& what) {
  cairo_status_t s = cairo_status(cr);
  if (s == CAIRO_STATUS_SUCCESS) s = cairo_font_face_status(cairo_get_font_face(cr));
  if (s != CAIRO_STATUS_SUCCESS)
    throw Error(what + ": Cairo cannot draw its text (" + std::string(cairo_status_to_string(s)) +
                ")");
}

Picture grid_picture(const std::vector<const float*>& images, const Shape& image_shape,
                     int64_t cols, float lo, float hi, GridLayout* layout,
                     const std::string& path_for_errors) {
  Shape shape = image_shape;
  if (shape.size() == 2) shape.insert(shape.begin(), 1);
  if (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3))
    throw Error(path_for_errors + ": a PNG grid needs (H, W), (1, H, W) or (3, H, W) images, got " +
                to_string(image_shape));
  int64_t c = shape[0], h = shape[1], w = shape[2];
  int64_t n = int64_t(images.size());
  cols = std::max<int64_t>(1, std::min(cols, n));
  int64_t rows = (n + cols - 1) / cols, pad = 2;
  Picture p;
  p.width = cols * (w + pad) + pad;
  p.height = rows * (h + pad) + pad;
  p.channels = c;
  p.pix.assign(size_t(p.width * p.height * c), 255);
  float scale = 255.f / (hi - lo);
  for (int64_t k = 0; k < n; ++k) {
    int64_t oy = pad + (k / cols) * (h + pad), ox = pad + (k % cols) * (w + pad);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          float v = (images[size_t(k)][(ch * h + y) * w + x] - lo) * scale;
          p.at(ox + x, oy + y)[ch] = uint8_t(std::min(255.f, std::max(0.f, v + 0.5f)));
        }
  }
  if (layout) *layout = GridLayout{rows, cols, w, h, pad};
  return p;
}

Picture label_grid(const Picture& grid, const GridLayout& L, const GridLabels& labels) {
  if (labels.empty()) return grid;
  // Measure on a scratch surface, then size the bands.
  Surface scratch(cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1), cairo_surface_destroy);
  Context m(cairo_create(scratch.get()), cairo_destroy);
  set_picture_font(m.get(), kLabelSize);
  auto advance = [&](const std::string& t) {
    cairo_text_extents_t e;
    cairo_text_extents(m.get(), t.c_str(), &e);
    return e.x_advance;
  };
  cairo_font_extents_t fe;
  cairo_font_extents(m.get(), &fe);
  check_cairo(m.get(), "a labelled picture");
  double row_w = 0, col_w = 0;
  for (const auto& t : labels.rows) row_w = std::max(row_w, advance(t));
  for (const auto& t : labels.columns) col_w = std::max(col_w, advance(t));
  // Headers wider than their column are turned to read upwards, so neighbours never overlap.
  const bool upright = col_w > double(L.cell_w + L.pad - 2);
  const double line = std::ceil(fe.ascent + fe.descent);
  const int64_t left = labels.rows.empty() ? 0 : int64_t(std::ceil(row_w)) + 2 * kGap;
  const int64_t top = labels.columns.empty() ? 0
                      : upright              ? int64_t(std::ceil(col_w)) + 2 * kGap
                                             : int64_t(line) + 2 * kGap;

  Picture out;
  out.width = grid.width + left;
  out.height = grid.height + top;
  out.channels = grid.channels;
  out.pix.assign(size_t(out.width * out.height * out.channels), 255);
  for (int64_t y = 0; y < grid.height; ++y)
    std::memcpy(out.at(left, top + y), grid.at(0, y), size_t(grid.width * grid.channels));

  Surface ink(cairo_image_surface_create(CAIRO_FORMAT_A8, int(out.width), int(out.height)),
              cairo_surface_destroy);
  Context cr(cairo_create(ink.get()), cairo_destroy);
  set_picture_font(cr.get(), kLabelSize);
  cairo_set_source_rgba(cr.get(), 0, 0, 0, 1);
  // Baseline offset that centres a line of text on a point.
  const double centre = (fe.ascent - fe.descent) / 2;
  for (size_t r = 0; r < labels.rows.size() && int64_t(r) < L.rows; ++r) {
    double cy = double(top + L.pad + int64_t(r) * (L.cell_h + L.pad)) + double(L.cell_h) / 2;
    cairo_move_to(cr.get(), double(left - kGap) - advance(labels.rows[r]), cy + centre);
    cairo_show_text(cr.get(), labels.rows[r].c_str());
  }
  for (size_t c = 0; c < labels.columns.size() && int64_t(c) < L.cols; ++c) {
    const std::string& t = labels.columns[c];
    double cx = double(left + L.pad + int64_t(c) * (L.cell_w + L.pad)) + double(L.cell_w) / 2;
    if (upright) {
      cairo_save(cr.get());
      cairo_move_to(cr.get(), cx + centre, double(top - kGap));
      cairo_rotate(cr.get(), -M_PI / 2);
      cairo_show_text(cr.get(), t.c_str());
      cairo_restore(cr.get());
    } else {
      cairo_move_to(cr.get(), cx - advance(t) / 2, double(top - kGap) - fe.descent);
      cairo_show_text(cr.get(), t.c_str());
    }
  }
  check_cairo(cr.get(), "a labelled picture");
  cairo_surface_flush(ink.get());
  const unsigned char* a = cairo_image_surface_get_data(ink.get());
  const int stride = cairo_image_surface_get_stride(ink.get());
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x) {
      if (y >= top && x >= left) continue;  // the grid itself is never drawn on
      unsigned cover = a[y * stride + x];
      if (!cover) continue;
      auto v = uint8_t(255 - (cover * (255 - kInk) + 127) / 255);
      std::fill_n(out.at(x, y), out.channels, v);
    }
  return out;
}

void write_picture(const std::string& path, const Picture& p) {
  if (int64_t(p.pix.size()) != p.width * p.height * p.channels)
    throw Error(path + ": a picture of " + std::to_string(p.pix.size()) + " bytes is not " +
                std::to_string(p.width) + " x " + std::to_string(p.height) + " x " +
                std::to_string(p.channels));
  write_atomically(path, [&](const std::string& tmp) {
    encode_png(tmp, p.pix.data(), p.width, p.height, p.channels, -1, path);
  });
}

void write_png_grid(const std::string& path, const std::vector<const float*>& images,
                    const Shape& image_shape, int64_t cols, float lo, float hi,
                    const GridLabels& labels) {
  GridLayout layout;
  Picture grid = grid_picture(images, image_shape, cols, lo, hi, &layout, path);
  Picture out;
  try {
    out = label_grid(grid, layout, labels);
  } catch (const Error& e) {
    // Only the text can fail here: a run keeps its pictures, unlabelled, and says why once.
    static std::atomic<bool> told{false};
    if (!told.exchange(true))
      std::fprintf(stderr, "warning: %s; pictures are written without labels\n", e.what());
    out = std::move(grid);
  }
  write_picture(path, out);
}

void write_png_grid(const std::string& path, const std::vector<const float*>& images,
                    const Shape& image_shape, int64_t cols, float lo, float hi) {
  write_png_grid(path, images, image_shape, cols, lo, hi, GridLabels{});
}

std::vector<std::string> known_class_names(const std::string& origin) {
  std::string o = origin;
  for (char& ch : o) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  if (o.find("fashion-mnist") != std::string::npos || o.find("fashion_mnist") != std::string::npos)
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return {};
}

std::string class_name(int32_t label, const std::vector<std::string>& names) {
  if (label >= 0 && size_t(label) < names.size() && !names[size_t(label)].empty())
    return names[size_t(label)];
  return std::to_string(label);
}

std::vector<std::string> class_row_labels(const std::vector<int32_t>& labels, int64_t cols,
                                          const std::vector<std::string>& names) {
  std::vector<std::string> rows;
  if (labels.empty() || cols <= 0) return rows;
  for (size_t first = 0; first < labels.size(); first += size_t(cols)) {
    size_t end = std::min(labels.size(), first + size_t(cols));
    bool one = std::all_of(labels.begin() + long(first), labels.begin() + long(end),
                           [&](int32_t l) { return l == labels[first]; });
    rows.push_back(one ? class_name(labels[first], names) : "");
  }
  return rows;
}

}  // namespace loom
