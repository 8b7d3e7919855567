// Photometric augmenters: brightness, contrast, gamma, gaussian_blur, invert. Results are clipped
// to the image's value range.
#include "common.hpp"

namespace loom::augment {
namespace {

// Adds delta · (hi - lo) to every value.
class Brightness : public Gated {
 public:
  explicit Brightness(const Params& p) : Gated(p), delta_(read_range(p, "delta", true, -1, 1)) {}
  void run(Image& im, Rng& rng) const override {
    const float d = delta_.draw(rng) * (im.hi - im.lo);
    const float lo = im.lo, hi = im.hi;
    float* v = im.data;
    const int64_t n = im.size();
    for (int64_t i = 0; i < n; ++i) v[i] = clampf(v[i] + d, lo, hi);
  }

 private:
  Range delta_;
};

// v -> mean + factor · (v - mean), the mean taken over the whole image.
class Contrast : public Gated {
 public:
  explicit Contrast(const Params& p) : Gated(p), factor_(read_range(p, "factor", false, 0, 1e3)) {}
  void run(Image& im, Rng& rng) const override {
    const float k = factor_.draw(rng);
    float* v = im.data;
    const int64_t n = im.size();
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += v[i];
    const float mean = n ? float(s / double(n)) : 0.f;
    const float lo = im.lo, hi = im.hi, b = mean * (1.f - k);
    for (int64_t i = 0; i < n; ++i) v[i] = clampf(k * v[i] + b, lo, hi);
  }

 private:
  Range factor_;
};

// v -> lo + (hi - lo) · ((v - lo) / (hi - lo))^gamma.
class Gamma : public Gated {
 public:
  explicit Gamma(const Params& p) : Gated(p), gamma_(read_range(p, "gamma", false, 1e-3, 1e3)) {}
  void run(Image& im, Rng& rng) const override {
    const float g = gamma_.draw(rng);
    if (g == 1.f) return;
    const float lo = im.lo, span = im.hi - im.lo;
    if (span <= 0) return;
    const float inv = 1.f / span;
    float* v = im.data;
    const int64_t n = im.size();
    for (int64_t i = 0; i < n; ++i) {
      const float t = clampf((v[i] - lo) * inv, 0.f, 1.f);
      v[i] = lo + span * std::pow(t, g);
    }
  }

 private:
  Range gamma_;
};

class GaussianBlur : public Gated {
 public:
  explicit GaussianBlur(const Params& p)
      : Gated(p), sigma_(read_range(p, "sigma", false, 0, 100)), ksize_(int(p.i("kernel_size"))) {
    if (ksize_ > 0 && ksize_ % 2 == 0)
      p.fail("kernel_size",
             "must be odd (or 0 for 2 * ceil(3 * sigma) + 1), got " + std::to_string(ksize_));
  }
  void run(Image& im, Rng& rng) const override {
    const float sigma = sigma_.draw(rng);
    if (sigma <= 0) return;
    const int r = kernel_radius(sigma, ksize_, 3.f);
    float* k = scratch(1, size_t(2 * r + 1));
    gaussian_kernel(sigma, r, k);
    const int64_t HW = im.h * im.w;
    float* tmp = scratch(2, size_t(HW));
    for (int64_t ch = 0; ch < im.c; ++ch)
      convolve_plane(im.data + ch * HW, im.h, im.w, k, r, true, tmp);
  }

 private:
  Range sigma_;
  int ksize_;
};

class Invert : public Gated {
 public:
  using Gated::Gated;
  void run(Image& im, Rng&) const override {
    const float s = im.lo + im.hi;
    float* v = im.data;
    const int64_t n = im.size();
    for (int64_t i = 0; i < n; ++i) v[i] = s - v[i];
  }
};

}  // namespace

void register_photometric(Registry& r) {
  {
    Spec s("Adds a brightness offset drawn uniformly, as a fraction of the value range.");
    add_probability(s, 1.0);
    add_range(s, "delta", "0.2")
        .doc("offset as a fraction of (hi - lo): x means [-x, x], or [min, max]");
    r.add<Augmenter>("brightness", s,
                     [](const Params& p) { return std::make_unique<Brightness>(p); });
  }
  {
    Spec s("Scales deviations from the image mean by a factor drawn uniformly.");
    add_probability(s, 1.0);
    add_range(s, "factor", "[0.8, 1.2]").doc("[min, max] contrast factor, or one fixed factor");
    r.add<Augmenter>("contrast", s, [](const Params& p) { return std::make_unique<Contrast>(p); });
  }
  {
    Spec s("Gamma correction on values normalised from [lo, hi] to [0, 1].");
    add_probability(s, 1.0);
    add_range(s, "gamma", "[0.7, 1.5]").doc("[min, max] exponent, or one fixed exponent");
    r.add<Augmenter>("gamma", s, [](const Params& p) { return std::make_unique<Gamma>(p); });
  }
  {
    Spec s("Gaussian blur of every channel (mirrored borders).");
    add_probability(s, 1.0);
    add_range(s, "sigma", "[0.1, 2.0]")
        .doc("[min, max] standard deviation in pixels, or one value");
    s.add("kernel_size", Type::Int)
        .def(0)
        .range(0, 101)
        .doc("odd kernel width; 0 means 2 * ceil(3 * sigma) + 1");
    r.add<Augmenter>("gaussian_blur", s,
                     [](const Params& p) { return std::make_unique<GaussianBlur>(p); });
  }
  {
    Spec s("Inverts values within the range: v -> lo + hi - v.");
    add_probability(s, 0.5);
    r.add<Augmenter>("invert", s, [](const Params& p) { return std::make_unique<Invert>(p); });
  }
}

}  // namespace loom::augment
