// 2-D views of codings: PCA by a cyclic Jacobi eigen-decomposition of the covariance (double
// precision), and the scatter-plot renderer (Cairo).
#include "output/scatter.hpp"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>

#include "loom/error.hpp"
#include "output/picture.hpp"

namespace loom {

Eigen symmetric_eigen(std::vector<double> a, int64_t d) {
  if (d <= 0 || int64_t(a.size()) != d * d) throw Error("symmetric_eigen: expected a d x d matrix");
  std::vector<double> v(size_t(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) v[size_t(i * d + i)] = 1.0;
  auto at = [&](std::vector<double>& m, int64_t r, int64_t c) -> double& {
    return m[size_t(r * d + c)];
  };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t p = 0; p < d; ++p) {
      diag += at(a, p, p) * at(a, p, p);
      for (int64_t q = p + 1; q < d; ++q) off += at(a, p, q) * at(a, p, q);
    }
    if (off <= 1e-30 * (diag + 1e-300)) break;
    for (int64_t p = 0; p < d; ++p)
      for (int64_t q = p + 1; q < d; ++q) {
        double apq = at(a, p, q);
        if (std::fabs(apq) < 1e-300) continue;
        // The rotation that zeroes a[p][q]: t = tan(angle), the smaller root.
        double theta = (at(a, q, q) - at(a, p, p)) / (2 * apq);
        double t = std::fabs(theta) > 1e150 ? 0.5 / theta
                                            : (theta >= 0 ? 1.0 : -1.0) /
                                                  (std::fabs(theta) + std::sqrt(theta * theta + 1));
        double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < d; ++k) {  // A J
          double akp = at(a, k, p), akq = at(a, k, q);
          at(a, k, p) = c * akp - s * akq;
          at(a, k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < d; ++k) {  // J^T (A J)
          double apk = at(a, p, k), aqk = at(a, q, k);
          at(a, p, k) = c * apk - s * aqk;
          at(a, q, k) = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < d; ++k) {  // V J
          double vkp = at(v, k, p), vkq = at(v, k, q);
          at(v, k, p) = c * vkp - s * vkq;
          at(v, k, q) = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int64_t> order(static_cast<size_t>(d));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t i, int64_t j) { return at(a, i, i) > at(a, j, j); });
  Eigen e;
  for (int64_t r = 0; r < d; ++r) {
    int64_t col = order[size_t(r)];
    e.values.push_back(at(a, col, col));
    int64_t big = 0;
    for (int64_t k = 1; k < d; ++k)
      if (std::fabs(at(v, k, col)) > std::fabs(at(v, big, col))) big = k;
    double sign = at(v, big, col) < 0 ? -1.0 : 1.0;
    for (int64_t k = 0; k < d; ++k) e.vectors.push_back(sign * at(v, k, col));
  }
  return e;
}

Pca fit_pca(const float* x, int64_t n, int64_t d) {
  if (n <= 0 || d <= 0) throw Error("PCA needs at least one sample of at least one value");
  Pca p;
  p.dim = d;
  p.mean.assign(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) p.mean[size_t(k)] += x[i * d + k];
  for (auto& m : p.mean) m /= double(n);
  std::vector<double> cov(static_cast<size_t>(d * d), 0.0), row(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < d; ++k) row[size_t(k)] = x[i * d + k] - p.mean[size_t(k)];
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = a; b < d; ++b) cov[size_t(a * d + b)] += row[size_t(a)] * row[size_t(b)];
  }
  for (int64_t a = 0; a < d; ++a)
    for (int64_t b = a; b < d; ++b) {
      cov[size_t(a * d + b)] /= double(n);
      cov[size_t(b * d + a)] = cov[size_t(a * d + b)];
    }
  p.eigen = symmetric_eigen(std::move(cov), d);
  return p;
}

std::vector<double> project(const Pca& pca, const float* x, int64_t n, int64_t k) {
  int64_t d = pca.dim;
  k = std::min(k, d);
  std::vector<double> out(size_t(n * k), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t j = 0; j < d; ++j)
        s += (x[i * d + j] - pca.mean[size_t(j)]) * pca.eigen.vectors[size_t(c * d + j)];
      out[size_t(i * k + c)] = s;
    }
  return out;
}

std::vector<double> scatter_points(const Tensor& values) {
  if (values.rank() < 1 || values.dim(0) == 0)
    throw Error("a scatter plot needs at least one point");
  int64_t n = values.dim(0), d = values.size() / n;
  std::vector<double> xy(size_t(n * 2), 0.0);
  if (d <= 2) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < d; ++k) xy[size_t(i * 2 + k)] = values[i * d + k];
    return xy;
  }
  Pca pca = fit_pca(values.data(), n, d);
  return project(pca, values.data(), n, 2);
}

namespace {

// 512-pixel plot; room on the left for tick values and the axis name, below for the same, on
// the right for a legend of names as long as "T-shirt/top".
constexpr ScatterLayout kLayout{
    /*width*/ 740,      /*height*/ 620, /*title_band*/ 44,          /*x0*/ 78,
    /*y0*/ 52,          /*side*/ 512,   /*legend_x*/ 78 + 512 + 20,
    /*legend_step*/ 20, /*swatch*/ 12};
constexpr uint8_t kPalette[10][3] = {
    {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

// Tick values: multiples of 1, 2 or 5 times a power of ten, about five across [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  double raw = (hi - lo) / 5, p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step)
    t.push_back(std::fabs(v) < 1e-9 * step ? 0.0 : v);
  return t;
}

std::string tick_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

void set_rgb(cairo_t* cr, const uint8_t* c, double alpha = 1) {
  cairo_set_source_rgba(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0, alpha);
}

double advance(cairo_t* cr, const std::string& t) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, t.c_str(), &e);
  return e.x_advance;
}

}  // namespace

ScatterLayout scatter_layout() { return kLayout; }

const uint8_t* scatter_colour(int32_t k) { return kPalette[size_t(std::max(k, 0) % 10)]; }

std::pair<int64_t, int64_t> scatter_png_size() { return {kLayout.width, kLayout.height}; }

std::vector<uint8_t> render_scatter(const std::vector<double>& xy,
                                    const std::vector<int32_t>& labels, const ScatterText& text) {
  const ScatterLayout& L = kLayout;
  int64_t n = int64_t(xy.size() / 2);
  double lo[2] = {0, 0}, hi[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    bool first = true;
    for (int64_t i = 0; i < n; ++i) {
      double v = xy[size_t(i * 2 + k)];
      if (!std::isfinite(v)) continue;
      lo[k] = first ? v : std::min(lo[k], v);
      hi[k] = first ? v : std::max(hi[k], v);
      first = false;
    }
    double span = hi[k] - lo[k];
    if (span <= 0) span = 2, lo[k] -= 1, hi[k] += 1;
    lo[k] -= 0.04 * span;
    hi[k] += 0.04 * span;
  }
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, int(L.width), int(L.height)),
      cairo_surface_destroy);
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> owner(cairo_create(surface.get()),
                                                           cairo_destroy);
  cairo_t* cr = owner.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const double x0 = double(L.x0), y0 = double(L.y0), side = double(L.side);
  auto px = [&](double v) { return x0 + (v - lo[0]) / (hi[0] - lo[0]) * side; };
  auto py = [&](double v) { return y0 + side - (v - lo[1]) / (hi[1] - lo[1]) * side; };
  const uint8_t axis[3] = {40, 40, 40}, grid[3] = {228, 228, 228}, ink[3] = {kInk, kInk, kInk};

  // Grid lines at the ticks, then the points, then the box, ticks and their values.
  cairo_set_line_width(cr, 1);
  set_rgb(cr, grid);
  std::vector<double> tx = ticks(lo[0], hi[0]), ty = ticks(lo[1], hi[1]);
  for (double v : tx) {
    cairo_move_to(cr, std::round(px(v)) + 0.5, y0);
    cairo_line_to(cr, std::round(px(v)) + 0.5, y0 + side);
  }
  for (double v : ty) {
    cairo_move_to(cr, x0, std::round(py(v)) + 0.5);
    cairo_line_to(cr, x0 + side, std::round(py(v)) + 0.5);
  }
  cairo_stroke(cr);
  for (int64_t i = 0; i < n; ++i) {
    double vx = xy[size_t(i * 2)], vy = xy[size_t(i * 2 + 1)];
    if (!std::isfinite(vx) || !std::isfinite(vy)) continue;
    set_rgb(cr, scatter_colour(labels.empty() ? 0 : labels[size_t(i)]), 0.6);
    cairo_new_sub_path(cr);
    cairo_arc(cr, px(vx), py(vy), 2.2, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  set_rgb(cr, axis);
  cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, side + 1, side + 1);
  for (double v : tx) {
    cairo_move_to(cr, std::round(px(v)) + 0.5, y0 + side);
    cairo_line_to(cr, std::round(px(v)) + 0.5, y0 + side + 5);
  }
  for (double v : ty) {
    cairo_move_to(cr, x0 - 5, std::round(py(v)) + 0.5);
    cairo_line_to(cr, x0, std::round(py(v)) + 0.5);
  }
  cairo_stroke(cr);

  set_picture_font(cr, 11);
  set_rgb(cr, ink);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const double mid = (fe.ascent - fe.descent) / 2;
  for (double v : tx) {
    std::string t = tick_text(v);
    cairo_move_to(cr, px(v) - advance(cr, t) / 2, y0 + side + 8 + fe.ascent);
    cairo_show_text(cr, t.c_str());
  }
  for (double v : ty) {
    std::string t = tick_text(v);
    cairo_move_to(cr, x0 - 8 - advance(cr, t), py(v) + mid);
    cairo_show_text(cr, t.c_str());
  }
  set_picture_font(cr, 12);
  cairo_font_extents(cr, &fe);
  cairo_move_to(cr, x0 + side / 2 - advance(cr, text.x_axis) / 2, y0 + side + 30 + fe.ascent);
  cairo_show_text(cr, text.x_axis.c_str());
  cairo_save(cr);
  cairo_move_to(cr, 8 + fe.ascent, y0 + side / 2 + advance(cr, text.y_axis) / 2);
  cairo_rotate(cr, -M_PI / 2);
  cairo_show_text(cr, text.y_axis.c_str());
  cairo_restore(cr);

  // Legend: a swatch and the class's name, as many as fit beside the plot.
  if (!labels.empty()) {
    int32_t classes = *std::max_element(labels.begin(), labels.end()) + 1;
    for (int32_t k = 0; k < classes && (k + 1) * L.legend_step <= L.side; ++k) {
      double ly = y0 + double(k * L.legend_step);
      set_rgb(cr, scatter_colour(k));
      cairo_rectangle(cr, double(L.legend_x), ly, double(L.swatch), double(L.swatch));
      cairo_fill(cr);
      set_rgb(cr, ink);
      cairo_move_to(cr, double(L.legend_x + L.swatch + 6), ly + double(L.swatch) / 2 + mid);
      std::string name = class_name(k, text.class_names);
      cairo_show_text(cr, name.c_str());
    }
  }

  // The title across the whole width, smaller when it would not fit.
  double title_size = 15;
  set_picture_font(cr, title_size);
  double room = double(L.width) - 16, tw = advance(cr, text.title);
  if (tw > room) set_picture_font(cr, title_size * room / tw);
  cairo_font_extents(cr, &fe);
  cairo_move_to(cr, (double(L.width) - advance(cr, text.title)) / 2,
                double(L.title_band) / 2 + (fe.ascent - fe.descent) / 2);
  cairo_show_text(cr, text.title.c_str());
  check_cairo(cr, "a scatter plot");

  cairo_surface_flush(surface.get());
  const unsigned char* data = cairo_image_surface_get_data(surface.get());
  const int stride = cairo_image_surface_get_stride(surface.get());
  std::vector<uint8_t> rgb(size_t(L.width * L.height * 3));
  for (int64_t y = 0; y < L.height; ++y)
    for (int64_t x = 0; x < L.width; ++x) {
      uint32_t v;
      std::memcpy(&v, data + y * stride + x * 4, 4);  // native-endian xRGB
      uint8_t* o = &rgb[size_t((y * L.width + x) * 3)];
      o[0] = uint8_t(v >> 16), o[1] = uint8_t(v >> 8), o[2] = uint8_t(v);
    }
  return rgb;
}

void write_scatter_png(const std::string& path, const Tensor& values,
                       const std::vector<int32_t>& labels,
                       const std::vector<std::string>& class_names, const std::string& subject) {
  if (values.rank() < 1 || values.dim(0) == 0) throw Error(path + ": no values to plot");
  if (!labels.empty() && int64_t(labels.size()) != values.dim(0))
    throw Error(path + ": " + std::to_string(labels.size()) + " labels for " +
                std::to_string(values.dim(0)) + " points");
  int64_t n = values.dim(0), d = values.size() / n;
  ScatterText text;
  text.class_names = class_names;
  text.title = (subject.empty() ? "" : subject + ": ") + std::to_string(n) +
               (n == 1 ? " point of " : " points of ") + std::to_string(d) +
               (d == 1 ? " value" : " values");
  if (d > 2) {
    text.title += ", first two principal components";
    text.x_axis = "principal component 1";
    text.y_axis = "principal component 2";
  } else {
    text.x_axis = "value 1";
    text.y_axis = d == 2 ? "value 2" : "";
  }
  auto [w, h] = scatter_png_size();
  write_png_rgb(path, render_scatter(scatter_points(values), labels, text), w, h);
}

}  // namespace loom
