// Noise augmenters: gaussian_noise and salt_and_pepper. Results are clipped to [lo, hi].
#include <array>
#include <cstdlib>

#include "common.hpp"

namespace loom::augment {
namespace {

// Standard normal deviates by the ziggurat method (Marsaglia & Tsang 2000, 128 layers), drawn
// from the sample's stream: about one 64-bit draw per value, no transcendental functions on the
// fast path (over 98% of draws). The layer comes from the low 7 bits and the signed magnitude
// from the high 32 bits of one draw, so the two are independent.
struct Ziggurat {
  std::array<uint32_t, 128> kn;
  std::array<float, 128> wn, fn;
  Ziggurat() {
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = 3.442619855899, tn = dn;
    const double q = vn / std::exp(-0.5 * dn * dn);
    kn[0] = uint32_t((dn / q) * m1);
    kn[1] = 0;
    wn[0] = float(q / m1);
    wn[127] = float(dn / m1);
    fn[0] = 1.f;
    fn[127] = float(std::exp(-0.5 * dn * dn));
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(vn / dn + std::exp(-0.5 * dn * dn)));
      kn[i + 1] = uint32_t((dn / tn) * m1);
      tn = dn;
      fn[i] = float(std::exp(-0.5 * dn * dn));
      wn[i] = float(dn / m1);
    }
  }
  float operator()(Rng& rng) const {
    for (;;) {
      const uint64_t u = rng.next_u64();
      const int32_t hz = int32_t(uint32_t(u >> 32));
      const int iz = int(u & 127);
      const uint32_t mag = hz < 0 ? uint32_t(-int64_t(hz)) : uint32_t(hz);
      if (mag < kn[iz]) return float(hz) * wn[iz];
      const float r = 3.442620f;
      float x = float(hz) * wn[iz];
      if (iz == 0) {
        float y;
        do {
          x = -std::log(std::max(rng.uniform(), 1e-12f)) * (1.f / r);
          y = -std::log(std::max(rng.uniform(), 1e-12f));
        } while (y + y < x * x);
        return hz > 0 ? r + x : -r - x;
      }
      if (fn[iz] + rng.uniform() * (fn[iz - 1] - fn[iz]) < std::exp(-0.5f * x * x)) return x;
    }
  }
};

const Ziggurat& ziggurat() {
  static const Ziggurat z;
  return z;
}

class GaussianNoise : public Gated {
 public:
  explicit GaussianNoise(const Params& p)
      : Gated(p),
        std_(read_range(p, "std", false, 0, 1e6)),
        mean_(float(p.f("mean"))),
        per_channel_(p.b("per_channel")) {}
  void run(Image& im, Rng& rng) const override {
    const float sd = std_.draw(rng);
    const Ziggurat& z = ziggurat();
    const float lo = im.lo, hi = im.hi, m = mean_;
    float* v = im.data;
    if (per_channel_ || im.c == 1) {
      const int64_t n = im.size();
      for (int64_t i = 0; i < n; ++i) v[i] = clampf(v[i] + m + sd * z(rng), lo, hi);
      return;
    }
    // The same noise value for every channel of a pixel.
    const int64_t HW = im.h * im.w, C = im.c;
    for (int64_t i = 0; i < HW; ++i) {
      const float d = m + sd * z(rng);
      for (int64_t ch = 0; ch < C; ++ch) v[ch * HW + i] = clampf(v[ch * HW + i] + d, lo, hi);
    }
  }

 private:
  Range std_;
  float mean_;
  bool per_channel_;
};

// Each pixel (all its channels) becomes hi ("salt") or lo ("pepper") with probability `amount`.
class SaltAndPepper : public Gated {
 public:
  explicit SaltAndPepper(const Params& p)
      : Gated(p),
        amount_(read_range(p, "amount", false, 0, 1)),
        salt_(float(p.f("salt_vs_pepper"))) {}
  void run(Image& im, Rng& rng) const override {
    const float amount = amount_.draw(rng);
    // One draw per pixel: the high 24 bits decide whether it is hit, the low 24 bits which way.
    const uint64_t hit = uint64_t(double(amount) * 16777216.0);
    const uint64_t salt = uint64_t(double(salt_) * 16777216.0);
    const int64_t HW = im.h * im.w, C = im.c;
    float* v = im.data;
    for (int64_t i = 0; i < HW; ++i) {
      const uint64_t u = rng.next_u64();
      if ((u >> 40) >= hit) continue;
      const float val = (u & 0xffffff) < salt ? im.hi : im.lo;
      for (int64_t ch = 0; ch < C; ++ch) v[ch * HW + i] = val;
    }
  }

 private:
  Range amount_;
  float salt_;
};

}  // namespace

void register_noise(Registry& r) {
  {
    Spec s("Adds Gaussian noise; the result is clipped to the value range.");
    add_probability(s, 1.0);
    add_range(s, "std", "0.05")
        .doc("standard deviation (in image units), or a [min, max] range drawn per image");
    s.add("mean", Type::Float).def(0.0).doc("mean of the noise");
    s.add("per_channel", Type::Bool)
        .def("false")
        .doc("independent noise per channel (default: one value per pixel for all channels)");
    r.add<Augmenter>("gaussian_noise", s,
                     [](const Params& p) { return std::make_unique<GaussianNoise>(p); });
  }
  {
    Spec s("Sets a random fraction of pixels to the highest (salt) or lowest (pepper) value.");
    add_probability(s, 1.0);
    add_range(s, "amount", "0.05").doc("fraction of pixels replaced, or a [min, max] range");
    s.add("salt_vs_pepper", Type::Float)
        .def(0.5)
        .range(0, 1)
        .doc("share of replaced pixels set to the highest value");
    r.add<Augmenter>("salt_and_pepper", s,
                     [](const Params& p) { return std::make_unique<SaltAndPepper>(p); });
  }
}

}  // namespace loom::augment
