// Shared helpers of the augmenters, and the plugin entry point.
#include "common.hpp"

#include <cstring>
#include <sstream>

#include "loom/plugin.hpp"

namespace loom::augment {

Range read_range(const Params& p, const std::string& key, bool symmetric, double bound_lo,
                 double bound_hi) {
  double a, b;
  if (p.is_list(key)) {
    std::vector<double> v = p.floats(key);
    if (v.size() != 2)
      p.fail(key, "expected a number or a [min, max] list of two numbers, got " +
                      std::to_string(v.size()) + " numbers");
    a = v[0];
    b = v[1];
    if (a > b) {
      std::ostringstream o;
      o << "min must not exceed max, got [" << a << ", " << b << "]";
      p.fail(key, o.str());
    }
  } else {
    double x = p.f(key);
    if (symmetric) {
      if (x < 0) {
        std::ostringstream o;
        o << "a single number x means [-x, x] and must be >= 0, got " << x;
        p.fail(key, o.str());
      }
      a = -x;
      b = x;
    } else {
      a = b = x;
    }
  }
  if (a < bound_lo || b > bound_hi) {
    std::ostringstream o;
    o << "values must lie between " << bound_lo << " and " << bound_hi << ", got [" << a << ", "
      << b << "]";
    p.fail(key, o.str());
  }
  return Range{float(a), float(b)};
}

void add_fill(Spec& s) {
  s.add("fill", Type::Float)
      .doc(
          "value of uncovered pixels, clipped to the image's value range "
          "(default: its lower end)");
}

void add_interpolation(Spec& s) {
  s.add("interpolation", Type::String)
      .def("bilinear")
      .choices({"bilinear", "nearest"})
      .doc("resampling of source pixels");
}

Interp read_interp(const Params& p) {
  return p.s("interpolation") == "nearest" ? Interp::Nearest : Interp::Bilinear;
}

float* scratch(int slot, size_t n) {
  thread_local std::vector<float> buffers[4];
  std::vector<float>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

namespace {
// Exact values for multiples of 90 degrees, so that quarter turns move pixels without blur.
double snap(double v) {
  for (double t : {-1.0, 0.0, 1.0})
    if (std::fabs(v - t) < 1e-12) return t;
  return v;
}
}  // namespace

Affine inverse_affine(int64_t h, int64_t w, float degrees, float tx, float ty, float scale,
                      float shear_x, float shear_y) {
  const double kDeg = 3.14159265358979323846 / 180.0;
  double t = double(degrees) * kDeg;
  double cs = snap(std::cos(t)), sn = snap(std::sin(t));
  // Forward linear part M = R · Shear · scale with y pointing down: a positive angle turns the
  // image counter-clockwise on screen.
  double r00 = cs, r01 = sn, r10 = -sn, r11 = cs;
  double k01 = snap(std::tan(double(shear_x) * kDeg)), k10 = snap(std::tan(double(shear_y) * kDeg));
  double m00 = (r00 + r01 * k10) * scale, m01 = (r00 * k01 + r01) * scale;
  double m10 = (r10 + r11 * k10) * scale, m11 = (r10 * k01 + r11) * scale;
  double det = m00 * m11 - m01 * m10;
  if (std::fabs(det) < 1e-12) det = det < 0 ? -1e-12 : 1e-12;
  double i00 = m11 / det, i01 = -m01 / det, i10 = -m10 / det, i11 = m00 / det;
  // Source = C + M^-1 (dest - C - T).
  double cx = 0.5 * double(w - 1), cy = 0.5 * double(h - 1);
  double ox = cx + double(tx), oy = cy + double(ty);
  Affine m;
  m.a = float(i00);
  m.b = float(i01);
  m.c = float(cx - (i00 * ox + i01 * oy));
  m.d = float(i10);
  m.e = float(i11);
  m.f = float(cy - (i10 * ox + i11 * oy));
  return m;
}

namespace {
// The output columns x in [0, n) whose source coordinate k * x + b0 lies in [lo, hi), shrunk by
// one pixel at each end as a margin against rounding: [*first, *last], empty when first > last.
void span(float k, float b0, float lo, float hi, int64_t n, int64_t* first, int64_t* last) {
  double f = 0, l = double(n - 1);
  if (k == 0.f) {
    if (!(b0 >= lo && b0 < hi)) f = 1, l = 0;
  } else {
    double u = (double(lo) - b0) / k, v = (double(hi) - b0) / k;
    if (k < 0) std::swap(u, v);
    f = std::max(f, std::ceil(u) + 1);
    l = std::min(l, std::floor(v) - 1);
  }
  *first = int64_t(std::max(f, 0.0));
  *last = int64_t(std::min(l, double(n - 1)));
  if (f > l) *first = 1, *last = 0;
}

// Bilinear samples of columns [x_first, x_last] of one output row, all of whose source
// neighbourhoods lie inside the image: no border tests. The clamps only guard against rounding.
template <bool ONE>
void bilinear_inside(const float* src, int64_t C, int64_t H, int64_t W, const Affine& m, float rx,
                     float ry, int64_t x_first, int64_t x_last, float* orow) {
  const int64_t HW = H * W;
  if (ONE) C = 1;
  for (int64_t x = x_first; x <= x_last; ++x) {
    const float sx = m.a * float(x) + rx, sy = m.d * float(x) + ry;
    const int64_t x0 = std::clamp<int64_t>(int64_t(sx), 0, W - 2);
    const int64_t y0 = std::clamp<int64_t>(int64_t(sy), 0, H - 2);
    const float fx = sx - float(x0), fy = sy - float(y0);
    const float* s = src + y0 * W + x0;
    for (int64_t ch = 0; ch < C; ++ch) {
      const float* q = s + ch * HW;
      const float top = q[0] + fx * (q[1] - q[0]), bottom = q[W] + fx * (q[W + 1] - q[W]);
      orow[x + ch * HW] = top + fy * (bottom - top);
    }
  }
}
}  // namespace

void warp(Image& im, const Affine& m, Interp interp, float fill) {
  const int64_t C = im.c, H = im.h, W = im.w, HW = H * W;
  const float* src = im.data;
  float* out = scratch(0, size_t(C * HW));
  dispatch_sampler(interp, C, [&]<Interp I, bool ONE>() {
    for (int64_t y = 0; y < H; ++y) {
      const float rx = m.b * float(y) + m.c, ry = m.e * float(y) + m.f;
      float* orow = out + y * W;
      int64_t first = 1, last = 0;
      if (I == Interp::Bilinear && W >= 2 && H >= 2) {
        int64_t f2, l2;
        span(m.a, rx, 0.f, float(W - 1), W, &first, &last);
        span(m.d, ry, 0.f, float(H - 1), W, &f2, &l2);
        first = std::max(first, f2);
        last = std::min(last, l2);
      }
      if (first > last) first = W, last = W - 1;
      for (int64_t x = 0; x < first; ++x)
        sample_point<I, ONE>(src, C, H, W, m.a * float(x) + rx, m.d * float(x) + ry, fill,
                             orow + x);
      if (I == Interp::Bilinear) bilinear_inside<ONE>(src, C, H, W, m, rx, ry, first, last, orow);
      for (int64_t x = last + 1; x < W; ++x)
        sample_point<I, ONE>(src, C, H, W, m.a * float(x) + rx, m.d * float(x) + ry, fill,
                             orow + x);
    }
  });
  store_clipped(im, out);
}

int kernel_radius(float sigma, int ksize, float truncate) {
  if (ksize > 0) return (ksize - 1) / 2;
  return std::max(1, int(std::ceil(truncate * sigma)));
}

void gaussian_kernel(float sigma, int r, float* k) {
  double s = 0;
  const double inv = sigma > 0 ? 1.0 / (2.0 * double(sigma) * sigma) : 0.0;
  for (int i = -r; i <= r; ++i) {
    double v = sigma > 0 ? std::exp(-double(i) * i * inv) : (i == 0 ? 1.0 : 0.0);
    k[i + r] = float(v);
    s += v;
  }
  for (int i = 0; i <= 2 * r; ++i) k[i] = float(k[i] / s);
}

namespace {
// Index of position i in [0, n) after reflection about the borders (no edge repeat).
inline int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}
}  // namespace

void convolve_plane(float* plane, int64_t H, int64_t W, const float* k, int r, bool reflect,
                    float* tmp) {
  // Rows: plane -> tmp.
  for (int64_t y = 0; y < H; ++y) {
    const float* in = plane + y * W;
    float* out = tmp + y * W;
    for (int64_t x = 0; x < W; ++x) {
      float s = 0;
      if (x - r >= 0 && x + r < W) {
        const float* q = in + x - r;
        for (int j = 0; j <= 2 * r; ++j) s += k[j] * q[j];
      } else {
        for (int j = -r; j <= r; ++j) {
          int64_t xx = x + j;
          if (xx < 0 || xx >= W) {
            if (!reflect) continue;
            xx = reflect_index(xx, W);
          }
          s += k[j + r] * in[xx];
        }
      }
      out[x] = s;
    }
  }
  // Columns: tmp -> plane, accumulated row by row (contiguous inner loops).
  for (int64_t y = 0; y < H; ++y) {
    float* out = plane + y * W;
    for (int64_t x = 0; x < W; ++x) out[x] = 0.f;
    for (int j = -r; j <= r; ++j) {
      int64_t yy = y + j;
      if (yy < 0 || yy >= H) {
        if (!reflect) continue;
        yy = reflect_index(yy, H);
      }
      const float kj = k[j + r];
      const float* in = tmp + yy * W;
      for (int64_t x = 0; x < W; ++x) out[x] += kj * in[x];
    }
  }
}

namespace {
void register_types(Registry& r) {
  register_geometric(r);
  register_photometric(r);
  register_noise(r);
  register_erasing(r);
  register_compose(r);
  register_batch(r);
}
}  // namespace

}  // namespace loom::augment

LOOM_PLUGIN("loom_augmenters", "1.0",
            "Data augmenters: geometric, photometric, noise, erasing, composition, mixup/cutmix",
            loom::augment::register_types)
