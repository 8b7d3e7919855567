// Shared pieces of the augmenters: the probability gate, "number or [min, max]" parameters,
// per-thread scratch buffers and the inverse-mapping affine warp.
#pragma once
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "loom/augmenter.hpp"
#include "loom/error.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"

namespace loom::augment {

void register_geometric(Registry& r);
void register_photometric(Registry& r);
void register_noise(Registry& r);
void register_erasing(Registry& r);
void register_compose(Registry& r);
void register_batch(Registry& r);

// A closed interval [lo, hi] drawn from uniformly.
struct Range {
  float lo = 0.f, hi = 0.f;
  float draw(Rng& rng) const { return lo == hi ? lo : rng.uniform(lo, hi); }
};

// Declares the probability `p` with its default.
inline void add_probability(Spec& s, double def) {
  s.add("p", Type::Float).def(def).range(0, 1).doc("probability of applying this augmenter");
}

// Declares a parameter that takes a number or a [min, max] list.
inline ParamSpec& add_range(Spec& s, const std::string& name, const std::string& def) {
  return s.add(name, Type::Any).def(def);
}

// Reads a "number or [min, max]" parameter. A single number x means [-x, x] when `symmetric`
// (angles, shifts, deltas) and the fixed value [x, x] otherwise (factors, sigmas). Both ends must
// lie in [bound_lo, bound_hi] and min <= max; errors are located at the key.
Range read_range(const Params& p, const std::string& key, bool symmetric, double bound_lo = -1e30,
                 double bound_hi = 1e30);

inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Declares the `fill` value and `interpolation` shared by the geometric augmenters.
void add_fill(Spec& s);
void add_interpolation(Spec& s);
// The fill value: the given `fill` (clipped to the range), or the image's lower bound.
struct Fill {
  bool given = false;
  float value = 0.f;
  explicit Fill(const Params& p)
      : given(p.given("fill")), value(given ? float(p.f("fill")) : 0.f) {}
  float of(const Image& im) const { return given ? clampf(value, im.lo, im.hi) : im.lo; }
};

// Per-sample augmenters: the Bernoulli draw comes first, always, so that the streams of samples
// that skip the transform stay aligned with those that apply it.
class Gated : public Augmenter {
 public:
  explicit Gated(const Params& p) : p_(float(p.f("p"))) {}
  void apply(Image& image, Rng& rng) const final {
    if (!rng.bernoulli(p_)) return;
    run(image, rng);
  }

 protected:
  virtual void run(Image& image, Rng& rng) const = 0;

 private:
  float p_;
};

// Per-thread scratch memory, grown on demand and never shrunk: no allocation per call once warm.
// Slot k is an independent buffer (a transform may need several at once).
float* scratch(int slot, size_t n);

// Copies a resampled image back into `im`, clipped to [lo, hi] (bilinear weights may round a
// hair beyond the range).
inline void store_clipped(Image& im, const float* out) {
  const float lo = im.lo, hi = im.hi;
  const int64_t n = im.size();
  for (int64_t i = 0; i < n; ++i) im.data[i] = clampf(out[i], lo, hi);
}

enum class Interp { Bilinear, Nearest };
Interp read_interp(const Params& p);

// Inverse map from output pixel (x, y) to source coordinates:
//   sx = a * x + b * y + c,  sy = d * x + e * y + f.
struct Affine {
  float a = 1, b = 0, c = 0, d = 0, e = 1, f = 0;
};

// The inverse map of the forward transform "rotate by `degrees` (counter-clockwise as seen on
// screen), scale by `scale`, shear by `shear_x`/`shear_y` degrees, then translate by (tx, ty)
// pixels", all about the image centre.
Affine inverse_affine(int64_t h, int64_t w, float degrees, float tx, float ty, float scale,
                      float shear_x = 0.f, float shear_y = 0.f);

// floor() for the clamped coordinates used below (in [-2, 2^20]), without a library call.
inline int64_t floor_small(float v) { return int64_t(int32_t(v + 4.f)) - 4; }

// Writes the value at source point (sx, sy) of every channel to o[ch * HW]. Points outside the
// image (and, for bilinear, neighbours outside it) read `fill`. ONE: the image has one channel
// (C is ignored), which lets the compiler drop the channel loops.
template <Interp I, bool ONE>
inline void sample_point(const float* src, int64_t C, int64_t H, int64_t W, float sx, float sy,
                         float fill, float* o) {
  if (ONE) C = 1;
  const int64_t HW = H * W;
  // Anything beyond one pixel outside reads the fill value; clamping keeps that true and
  // bounds the coordinates for floor_small.
  sx = clampf(sx, -2.f, float(W) + 1.f);
  sy = clampf(sy, -2.f, float(H) + 1.f);
  if (I == Interp::Nearest) {
    const int64_t ix = floor_small(sx + 0.5f), iy = floor_small(sy + 0.5f);
    if (ix >= 0 && ix < W && iy >= 0 && iy < H) {
      const float* s = src + iy * W + ix;
      for (int64_t ch = 0; ch < C; ++ch) o[ch * HW] = s[ch * HW];
    } else {
      for (int64_t ch = 0; ch < C; ++ch) o[ch * HW] = fill;
    }
    return;
  }
  const int64_t x0 = floor_small(sx), y0 = floor_small(sy);
  const float fx = sx - float(x0), fy = sy - float(y0);
  const float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
  if (uint64_t(x0) < uint64_t(W - 1) && uint64_t(y0) < uint64_t(H - 1)) {
    const float* s = src + y0 * W + x0;
    for (int64_t ch = 0; ch < C; ++ch) {
      const float* q = s + ch * HW;
      o[ch * HW] = w00 * q[0] + w01 * q[1] + w10 * q[W] + w11 * q[W + 1];
    }
  } else if (x0 < -1 || x0 >= W || y0 < -1 || y0 >= H) {
    for (int64_t ch = 0; ch < C; ++ch) o[ch * HW] = fill;
  } else {
    const bool in_x0 = x0 >= 0, in_x1 = x0 + 1 < W, in_y0 = y0 >= 0, in_y1 = y0 + 1 < H;
    for (int64_t ch = 0; ch < C; ++ch) {
      const float* q = src + ch * HW;
      const float v00 = in_y0 && in_x0 ? q[y0 * W + x0] : fill;
      const float v01 = in_y0 && in_x1 ? q[y0 * W + x0 + 1] : fill;
      const float v10 = in_y1 && in_x0 ? q[(y0 + 1) * W + x0] : fill;
      const float v11 = in_y1 && in_x1 ? q[(y0 + 1) * W + x0 + 1] : fill;
      o[ch * HW] = w00 * v00 + w01 * v01 + w10 * v10 + w11 * v11;
    }
  }
}

// Calls f.template operator()<I, ONE>() with the interpolation and channel case as constants.
template <class F>
inline void dispatch_sampler(Interp interp, int64_t channels, F&& f) {
  if (interp == Interp::Nearest) {
    if (channels == 1)
      f.template operator()<Interp::Nearest, true>();
    else
      f.template operator()<Interp::Nearest, false>();
  } else {
    if (channels == 1)
      f.template operator()<Interp::Bilinear, true>();
    else
      f.template operator()<Interp::Bilinear, false>();
  }
}

// Normalised Gaussian weights k[0..2r] for `sigma`; the radius r is (ksize - 1) / 2 when ksize > 0,
// else ceil(truncate * sigma). Returns r. `k` must hold 2r + 1 values (see kernel_radius).
int kernel_radius(float sigma, int ksize, float truncate);
void gaussian_kernel(float sigma, int radius, float* k);

// Separable convolution of one H x W plane with the kernel k[0..2r], in place; `tmp` holds H * W
// values. Borders: reflected (d c b | a b c d | c b a) when `reflect`, else zero.
void convolve_plane(float* plane, int64_t H, int64_t W, const float* k, int r, bool reflect,
                    float* tmp);

// Resamples every channel of `im` through `m`; source points outside the image read `fill`.
void warp(Image& im, const Affine& m, Interp interp, float fill);

}  // namespace loom::augment
