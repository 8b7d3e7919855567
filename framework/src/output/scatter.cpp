// 2-D views of codings: PCA by a cyclic Jacobi eigen-decomposition of the covariance (double
// precision), and a plain RGB scatter-plot renderer.
#include "output/scatter.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "loom/error.hpp"

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

constexpr int64_t kPlot = 512, kMargin = 24, kLegend = 72;
constexpr uint8_t kPalette[10][3] = {
    {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
// 3 x 5 digits, one row per 3 bits (most significant bit: left).
constexpr uint8_t kDigits[10][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

struct Raster {
  int64_t w, h;
  std::vector<uint8_t>& pix;
  void blend(int64_t x, int64_t y, const uint8_t* c, float alpha) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &pix[size_t((y * w + x) * 3)];
    for (int k = 0; k < 3; ++k) p[k] = uint8_t(std::lround(p[k] * (1 - alpha) + c[k] * alpha));
  }
  void rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, const uint8_t* c) {
    for (int64_t y = y0; y <= y1; ++y)
      for (int64_t x = x0; x <= x1; ++x) blend(x, y, c, 1.f);
  }
  void digit_string(int64_t x, int64_t y, int value, const uint8_t* c, int scale) {
    std::string s = std::to_string(value);
    for (char ch : s) {
      const uint8_t* g = kDigits[ch - '0'];
      for (int r = 0; r < 5; ++r)
        for (int b = 0; b < 3; ++b)
          if (g[r] & (4 >> b))
            rect(x + b * scale, y + r * scale, x + b * scale + scale - 1, y + r * scale + scale - 1,
                 c);
      x += 4 * scale;
    }
  }
};

}  // namespace

std::pair<int64_t, int64_t> scatter_png_size() {
  return {kMargin * 2 + kPlot + kLegend, kMargin * 2 + kPlot};
}

std::vector<uint8_t> render_scatter(const std::vector<double>& xy,
                                    const std::vector<int32_t>& labels, int64_t width,
                                    int64_t height) {
  std::vector<uint8_t> pix(size_t(width * height * 3), 255);
  Raster r{width, height, pix};
  int64_t n = int64_t(xy.size() / 2);
  int64_t plot = std::min(width - 2 * kMargin - kLegend, height - 2 * kMargin);
  if (plot < 16)
    throw Error("scatter plot: a " + std::to_string(width) + " x " + std::to_string(height) +
                " raster is too small");
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
  const uint8_t axis[3] = {60, 60, 60}, grid[3] = {225, 225, 225};
  int64_t x0 = kMargin, y0 = kMargin, x1 = kMargin + plot - 1, y1 = kMargin + plot - 1;
  // Zero lines when zero is inside the range, then the points, then the box.
  if (lo[0] < 0 && hi[0] > 0) {
    int64_t zx = x0 + int64_t(std::lround((0 - lo[0]) / (hi[0] - lo[0]) * double(plot - 1)));
    r.rect(zx, y0, zx, y1, grid);
  }
  if (lo[1] < 0 && hi[1] > 0) {
    int64_t zy = y1 - int64_t(std::lround((0 - lo[1]) / (hi[1] - lo[1]) * double(plot - 1)));
    r.rect(x0, zy, x1, zy, grid);
  }
  const int radius = 2;
  for (int64_t i = 0; i < n; ++i) {
    double vx = xy[size_t(i * 2)], vy = xy[size_t(i * 2 + 1)];
    if (!std::isfinite(vx) || !std::isfinite(vy)) continue;
    int64_t px = x0 + int64_t(std::lround((vx - lo[0]) / (hi[0] - lo[0]) * double(plot - 1)));
    int64_t py = y1 - int64_t(std::lround((vy - lo[1]) / (hi[1] - lo[1]) * double(plot - 1)));
    int32_t label = labels.empty() ? 0 : labels[size_t(i)];
    const uint8_t* c = kPalette[size_t(std::max(label, 0) % 10)];
    for (int dy = -radius; dy <= radius; ++dy)
      for (int dx = -radius; dx <= radius; ++dx)
        if (dx * dx + dy * dy <= radius * radius + 1) r.blend(px + dx, py + dy, c, 0.6f);
  }
  r.rect(x0 - 1, y0 - 1, x1 + 1, y0 - 1, axis);
  r.rect(x0 - 1, y1 + 1, x1 + 1, y1 + 1, axis);
  r.rect(x0 - 1, y0 - 1, x0 - 1, y1 + 1, axis);
  r.rect(x1 + 1, y0 - 1, x1 + 1, y1 + 1, axis);
  // Legend: a swatch and the class index per class.
  if (!labels.empty()) {
    int32_t classes = *std::max_element(labels.begin(), labels.end()) + 1;
    int64_t lx = x1 + 16;
    for (int32_t k = 0; k < classes && y0 + 18 * (k + 1) < height; ++k) {
      int64_t ly = y0 + 18 * k;
      r.rect(lx, ly, lx + 11, ly + 11, kPalette[size_t(k % 10)]);
      r.digit_string(lx + 18, ly + 1, k, axis, 2);
    }
  }
  return pix;
}

void write_scatter_png(const std::string& path, const Tensor& values,
                       const std::vector<int32_t>& labels) {
  if (values.rank() < 1 || values.dim(0) == 0) throw Error(path + ": no values to plot");
  if (!labels.empty() && int64_t(labels.size()) != values.dim(0))
    throw Error(path + ": " + std::to_string(labels.size()) + " labels for " +
                std::to_string(values.dim(0)) + " points");
  auto [w, h] = scatter_png_size();
  write_png_rgb(path, render_scatter(scatter_points(values), labels, w, h), w, h);
}

}  // namespace loom
