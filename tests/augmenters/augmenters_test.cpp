// Augmenters: golden values worked out by hand or by formula, invariants (identities, value range,
// channels alike, probability gate), determinism, statistics of the random ones, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loom/augmenter.hpp"
#include "loom/create.hpp"
#include "loom/error.hpp"
#include "support/harness.hpp"

namespace {

using loom::Augmenter;
using loom::Image;
using loom::Rng;

std::unique_ptr<Augmenter> make(const std::string& yaml) {
  return loom::create_from<Augmenter>(loom::test::registry(), loom::test::entry_from_yaml(yaml));
}

// An owned image.
struct Img {
  std::vector<float> v;
  Image im;
  Img(int64_t c, int64_t h, int64_t w, float lo = 0.f, float hi = 1.f)
      : v(size_t(c * h * w), 0.f), im{nullptr, c, h, w, lo, hi} {
    im.data = v.data();
  }
  Img(const Img& o) : v(o.v), im(o.im) { im.data = v.data(); }
  float at(int64_t ch, int64_t y, int64_t x) const { return im.at(ch, y, x); }
  void random(uint64_t key) {
    Rng r(key, "image", 0, 0);
    for (auto& x : v) x = r.uniform(im.lo, im.hi);
  }
};

// Applies `a` with a fresh stream.
void run(const Augmenter& a, Img& img, uint64_t key = 1) {
  Rng rng(key, "augment", 0, 0);
  a.apply(img.im, rng);
}

std::string error_of(const std::string& yaml) {
  try {
    make(yaml);
  } catch (const loom::Error& e) {
    return e.what();
  }
  return "";
}

// Every per-sample augmenter, with parameters that make it act visibly.
const std::vector<std::string>& all_per_sample() {
  static const std::vector<std::string> v = {
      "{type: horizontal_flip, p: 1}",
      "{type: vertical_flip, p: 1}",
      "{type: rotate, degrees: 30}",
      "{type: rotate, degrees: 30, interpolation: nearest, fill: 0.5}",
      "{type: translate, fraction: 0.3}",
      "{type: zoom, range: [0.5, 1.8]}",
      "{type: affine, rotation: 20, translation: 0.1, scale: [0.8, 1.2], shear: 15}",
      "{type: random_crop, padding: 3}",
      "{type: random_crop, padding: 3, padding_mode: reflect}",
      "{type: random_crop, padding: 3, padding_mode: edge}",
      "{type: elastic, alpha: 8, sigma: 3}",
      "{type: gaussian_noise, std: 0.3}",
      "{type: salt_and_pepper, amount: 0.2}",
      "{type: cutout, size: 4, count: 2}",
      "{type: random_erasing, p: 1}",
      "{type: brightness, delta: 0.5}",
      "{type: contrast, factor: [0.2, 3]}",
      "{type: gamma, gamma: [0.3, 3]}",
      "{type: gaussian_blur, sigma: [0.5, 2]}",
      "{type: invert, p: 1}",
      "{type: sequence, transforms: [horizontal_flip, {type: rotate, degrees: 45}]}",
      "{type: one_of, transforms: [invert, {type: brightness, delta: 0.4}], weights: [1, 2]}",
      "{type: some_of, n: [1, 2], transforms: [vertical_flip, {type: contrast}, "
      "{type: translate}]}",
  };
  return v;
}

// ---- golden values ----

TEST(Augmenters, HorizontalFlip2x3) {
  Img a(1, 2, 3);
  a.v = {1, 2, 3, 4, 5, 6};
  a.im.data = a.v.data();
  a.im.hi = 10;
  run(*make("{type: horizontal_flip, p: 1}"), a);
  EXPECT_EQ(a.v, (std::vector<float>{3, 2, 1, 6, 5, 4}));
}

TEST(Augmenters, VerticalFlip3x2) {
  Img a(1, 3, 2, 0, 10);
  a.v = {1, 2, 3, 4, 5, 6};
  run(*make("{type: vertical_flip, p: 1}"), a);
  EXPECT_EQ(a.v, (std::vector<float>{5, 6, 3, 4, 1, 2}));
}

// Counter-clockwise quarter turn of a 4x4 image: out[y][x] = in[x][3 - y].
TEST(Augmenters, RotateQuarterTurn) {
  for (const char* interp : {"bilinear", "nearest"}) {
    Img a(2, 4, 4, 0, 200);
    for (int64_t ch = 0; ch < 2; ++ch)
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 4; ++x) a.im.at(ch, y, x) = float(100 * ch + 4 * y + x);
    run(*make(std::string("{type: rotate, degrees: [90, 90], interpolation: ") + interp + "}"), a);
    for (int64_t ch = 0; ch < 2; ++ch)
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 4; ++x)
          EXPECT_NEAR(a.at(ch, y, x), float(100 * ch + 4 * x + (3 - y)), 1e-4)
              << interp << " ch " << ch << " y " << y << " x " << x;
  }
}

TEST(Augmenters, RotateHalfTurn) {
  Img a(1, 3, 5, 0, 20);
  for (int64_t i = 0; i < 15; ++i) a.v[size_t(i)] = float(i);
  run(*make("{type: rotate, degrees: [180, 180]}"), a);
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 5; ++x) EXPECT_NEAR(a.at(0, y, x), float(5 * (2 - y) + (4 - x)), 1e-4);
}

// A shift of 1 pixel right (0.25 of 4) and 2 pixels down (0.5 of 4); uncovered pixels read fill.
TEST(Augmenters, TranslateWholePixels) {
  for (const char* interp : {"bilinear", "nearest"}) {
    Img a(1, 4, 4, 0, 20);
    for (int64_t i = 0; i < 16; ++i) a.v[size_t(i)] = float(i + 1);
    Img orig = a;
    run(*make(std::string("{type: translate, x: [0.25, 0.25], y: [0.5, 0.5], fill: 0.5, "
                          "interpolation: ") +
              interp + "}"),
        a);
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 4; ++x) {
        float want = (y >= 2 && x >= 1) ? orig.at(0, y - 2, x - 1) : 0.5f;
        EXPECT_FLOAT_EQ(a.at(0, y, x), want) << interp << " y " << y << " x " << x;
      }
  }
}

// Zoom by 2 about the centre 1.5 of a horizontal ramp: out(x) = 1.5 + (x - 1.5) / 2.
TEST(Augmenters, ZoomTwiceOnRamp) {
  Img a(1, 4, 4, 0, 3);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 4; ++x) a.im.at(0, y, x) = float(x);
  run(*make("{type: zoom, range: 2}"), a);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 4; ++x) EXPECT_NEAR(a.at(0, y, x), 1.5f + (float(x) - 1.5f) / 2, 1e-5);
}

// Horizontal shear of 45 degrees about the centre row 2: x' = x + (y - 2), so row y moves right
// by y - 2 pixels.
TEST(Augmenters, AffineShear45) {
  Img a(1, 5, 5, 0, 100);
  for (int64_t i = 0; i < 25; ++i) a.v[size_t(i)] = float(i + 1);
  Img orig = a;
  run(*make("{type: affine, shear: [45, 45], interpolation: nearest}"), a);
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t x = 0; x < 5; ++x) {
      const int64_t sx = x - (y - 2);
      const float want = sx >= 0 && sx < 5 ? orig.at(0, y, sx) : 0.f;
      EXPECT_FLOAT_EQ(a.at(0, y, x), want) << "y " << y << " x " << x;
    }
}

TEST(Augmenters, AffineTranslationMatchesTranslate) {
  Img a(1, 8, 8), b(1, 8, 8);
  a.random(3);
  b.random(3);
  run(*make("{type: affine, translation: [0.25, 0.25]}"), a);
  run(*make("{type: translate, x: [0.25, 0.25], y: [0.25, 0.25]}"), b);
  EXPECT_EQ(a.v, b.v);
  // Two pixels right and down.
  Img c(1, 8, 8);
  c.random(3);
  EXPECT_FLOAT_EQ(a.at(0, 5, 6), c.at(0, 3, 4));
  EXPECT_FLOAT_EQ(a.at(0, 1, 1), 0.f);
}

TEST(Augmenters, Invert) {
  Img a(1, 1, 4, 0, 1);
  a.v = {0.f, 0.25f, 0.5f, 1.f};
  run(*make("{type: invert, p: 1}"), a);
  EXPECT_EQ(a.v, (std::vector<float>{1.f, 0.75f, 0.5f, 0.f}));
  Img b(1, 1, 3, -1, 1);
  b.v = {-1.f, 0.5f, 1.f};
  run(*make("{type: invert, p: 1}"), b);
  EXPECT_EQ(b.v, (std::vector<float>{1.f, -0.5f, -1.f}));
  Img c(1, 1, 2, 0, 255);
  c.v = {0.f, 55.f};
  run(*make("{type: invert, p: 1}"), c);
  EXPECT_EQ(c.v, (std::vector<float>{255.f, 200.f}));
}

// Delta is a fraction of (hi - lo); the result is clipped.
TEST(Augmenters, Brightness) {
  Img a(1, 1, 3, 0, 1);
  a.v = {0.f, 0.5f, 0.95f};
  run(*make("{type: brightness, delta: [0.1, 0.1]}"), a);
  EXPECT_NEAR(a.v[0], 0.1f, 1e-6);
  EXPECT_NEAR(a.v[1], 0.6f, 1e-6);
  EXPECT_EQ(a.v[2], 1.f);
  Img b(1, 1, 2, 0, 255);
  b.v = {100.f, 10.f};
  run(*make("{type: brightness, delta: [-0.1, -0.1]}"), b);
  EXPECT_NEAR(b.v[0], 74.5f, 1e-4);
  EXPECT_EQ(b.v[1], 0.f);
}

// Mean 0.5, factor 2: 0.5 + 2 (v - 0.5), clipped.
TEST(Augmenters, Contrast) {
  Img a(1, 2, 2, 0, 1);
  a.v = {0.2f, 0.4f, 0.6f, 0.8f};
  run(*make("{type: contrast, factor: 2}"), a);
  EXPECT_NEAR(a.v[0], 0.f, 1e-6);
  EXPECT_NEAR(a.v[1], 0.3f, 1e-6);
  EXPECT_NEAR(a.v[2], 0.7f, 1e-6);
  EXPECT_NEAR(a.v[3], 1.f, 1e-6);
}

// Range [0, 2], gamma 2: 2 · (v / 2)^2.
TEST(Augmenters, Gamma) {
  Img a(1, 1, 4, 0, 2);
  a.v = {0.f, 0.5f, 1.f, 2.f};
  run(*make("{type: gamma, gamma: [2, 2]}"), a);
  EXPECT_NEAR(a.v[0], 0.f, 1e-6);
  EXPECT_NEAR(a.v[1], 0.125f, 1e-6);
  EXPECT_NEAR(a.v[2], 0.5f, 1e-6);
  EXPECT_NEAR(a.v[3], 2.f, 1e-6);
}

// A unit impulse blurred with a 3-tap kernel k = (e^-1/2, 1, e^-1/2) / (1 + 2 e^-1/2) gives the
// outer product k kᵀ.
TEST(Augmenters, GaussianBlurImpulse) {
  Img a(1, 5, 5, 0, 1);
  a.im.at(0, 2, 2) = 1.f;
  run(*make("{type: gaussian_blur, sigma: 1, kernel_size: 3}"), a);
  const double e = std::exp(-0.5), s = 1 + 2 * e, k0 = 1 / s, k1 = e / s;
  EXPECT_NEAR(a.at(0, 2, 2), k0 * k0, 1e-6);
  EXPECT_NEAR(a.at(0, 2, 3), k0 * k1, 1e-6);
  EXPECT_NEAR(a.at(0, 1, 1), k1 * k1, 1e-6);
  EXPECT_NEAR(a.at(0, 0, 0), 0.0, 1e-7);
  // A constant image stays constant (mirrored borders).
  Img b(1, 6, 7, 0, 1);
  for (auto& v : b.v) v = 0.3f;
  run(*make("{type: gaussian_blur, sigma: 1.5}"), b);
  for (float v : b.v) EXPECT_NEAR(v, 0.3f, 1e-6);
}

TEST(Augmenters, CutoutInsideFillsExactSquare) {
  for (uint64_t key = 1; key <= 20; ++key) {
    Img a(2, 10, 10, 0, 10);
    a.random(key);  // values in [0, 10), never exactly 7 in practice
    run(*make("{type: cutout, size: 3, count: 1, inside: true, fill: 7}"), a, key);
    for (int64_t ch = 0; ch < 2; ++ch) {
      int n = 0, y0 = 99, x0 = 99, y1 = -1, x1 = -1;
      for (int y = 0; y < 10; ++y)
        for (int x = 0; x < 10; ++x)
          if (a.at(ch, y, x) == 7.f) {
            ++n;
            y0 = std::min(y0, y), x0 = std::min(x0, x), y1 = std::max(y1, y), x1 = std::max(x1, x);
          }
      EXPECT_EQ(n, 9);
      EXPECT_EQ(y1 - y0, 2);
      EXPECT_EQ(x1 - x0, 2);
    }
  }
}

TEST(Augmenters, CutoutCountAndBorder) {
  for (uint64_t key = 1; key <= 20; ++key) {
    Img a(1, 12, 12, 0, 10);
    a.random(key);
    run(*make("{type: cutout, size: 4, count: 2, fill: 7}"), a, key);
    int n = 0;
    for (float v : a.v) n += v == 7.f;
    EXPECT_GE(n, 4);  // a centre in a corner keeps at least a 2 x 2 quarter
    EXPECT_LE(n, 32);
  }
  // fraction 0.25 of 28 is a 7 x 7 square.
  Img b(1, 28, 28, 0, 10);
  b.random(9);
  run(*make("{type: cutout, fraction: 0.25, inside: true, fill: 7}"), b);
  int n = 0;
  for (float v : b.v) n += v == 7.f;
  EXPECT_EQ(n, 49);
}

TEST(Augmenters, RandomErasingArea) {
  for (uint64_t key = 1; key <= 50; ++key) {
    Img a(1, 28, 28, 0, 10);
    a.random(key);
    run(*make("{type: random_erasing, p: 1, scale: [0.05, 0.2], ratio: [0.5, 2], fill: 7}"), a,
        key);
    int n = 0;
    for (float v : a.v) n += v == 7.f;
    // Rounding of each side moves the area a little beyond the drawn fraction.
    EXPECT_GE(n, int(0.05 * 784 * 0.7));
    EXPECT_LE(n, int(0.2 * 784 * 1.3));
  }
}

TEST(Augmenters, SaltAndPepperFraction) {
  Img a(1, 100, 100, 0, 1);
  for (auto& v : a.v) v = 0.5f;
  run(*make("{type: salt_and_pepper, amount: 0.1, salt_vs_pepper: 0.3}"), a);
  int salt = 0, pepper = 0, other = 0;
  for (float v : a.v) (v == 1.f ? salt : v == 0.f ? pepper : other)++;
  EXPECT_EQ(salt + pepper + other, 10000);
  EXPECT_NEAR((salt + pepper) / 10000.0, 0.1, 0.015);  // σ = 0.003
  EXPECT_NEAR(salt / double(salt + pepper), 0.3, 0.05);
}

TEST(Augmenters, GaussianNoiseMoments) {
  Img a(1, 300, 300, -100, 100);
  for (auto& v : a.v) v = 2.f;
  run(*make("{type: gaussian_noise, std: 0.5, mean: 0.25}"), a);
  double s = 0, s2 = 0, s4 = 0;
  int beyond2 = 0;
  const double n = double(a.v.size());
  for (float v : a.v) s += v;
  const double mean = s / n;
  for (float v : a.v) {
    double d = v - mean;
    s2 += d * d;
    s4 += d * d * d * d;
    beyond2 += std::fabs(v - 2.25) > 1.0;
  }
  const double var = s2 / n;
  EXPECT_NEAR(mean, 2.25, 0.005);               // σ of the mean: 0.5 / 300
  EXPECT_NEAR(std::sqrt(var), 0.5, 0.01);       // relative σ about 0.25%
  EXPECT_NEAR(s4 / n / (var * var), 3.0, 0.1);  // normal kurtosis
  EXPECT_NEAR(beyond2 / n, 0.0455, 0.004);      // P(|z| > 2)
}

TEST(Augmenters, GaussianNoiseClipped) {
  Img a(1, 50, 50, 0, 1);
  for (auto& v : a.v) v = 0.99f;
  run(*make("{type: gaussian_noise, std: 0.2}"), a);
  int at_hi = 0;
  for (float v : a.v) {
    EXPECT_GE(v, 0.f);
    EXPECT_LE(v, 1.f);
    at_hi += v == 1.f;
  }
  EXPECT_GT(at_hi, 1000);  // about half the values were pushed above 1
}

TEST(Augmenters, RandomCropIsAShift) {
  for (uint64_t key = 1; key <= 10; ++key) {
    Img a(1, 6, 6, 0, 100);
    for (int64_t i = 0; i < 36; ++i) a.v[size_t(i)] = float(i + 1);
    run(*make("{type: random_crop, padding: 2}"), a, key);
    // Find the shift from the first original value and check every pixel against it.
    bool found = false;
    for (int dy = -2; dy <= 2 && !found; ++dy)
      for (int dx = -2; dx <= 2 && !found; ++dx) {
        bool ok = true;
        for (int y = 0; y < 6; ++y)
          for (int x = 0; x < 6; ++x) {
            int sy = y + dy, sx = x + dx;
            float want = (sy >= 0 && sy < 6 && sx >= 0 && sx < 6) ? float(sy * 6 + sx + 1) : 0.f;
            ok = ok && a.at(0, y, x) == want;
          }
        found = ok;
      }
    EXPECT_TRUE(found) << "key " << key;
  }
  Img b(1, 5, 5);
  b.random(4);
  Img orig = b;
  run(*make("{type: random_crop, padding: 0}"), b);
  EXPECT_EQ(b.v, orig.v);
}

TEST(Augmenters, RandomCropReflectReadsImage) {
  Img a(1, 5, 5, 0, 100);
  for (int64_t i = 0; i < 25; ++i) a.v[size_t(i)] = float(i + 1);
  for (uint64_t key = 1; key <= 10; ++key) {
    Img b = a;
    run(*make("{type: random_crop, padding: 3, padding_mode: reflect}"), b, key);
    for (float v : b.v) EXPECT_TRUE(v >= 1 && v <= 25 && v == std::floor(v));
  }
}

// ---- invariants ----

TEST(Augmenters, FlipTwiceIsIdentity) {
  for (const char* f : {"horizontal_flip", "vertical_flip"}) {
    Img a(3, 5, 7);
    a.random(5);
    Img orig = a;
    auto aug = make(std::string("{type: ") + f + ", p: 1}");
    run(*aug, a, 1);
    EXPECT_NE(a.v, orig.v);
    run(*aug, a, 2);
    EXPECT_EQ(a.v, orig.v) << f;
  }
}

TEST(Augmenters, ZeroTransformsAreIdentity) {
  for (const char* y :
       {"{type: rotate, degrees: 0}", "{type: rotate, degrees: [0, 0], interpolation: nearest}",
        "{type: translate, fraction: 0}", "{type: zoom, range: 1}", "{type: affine}",
        "{type: elastic, alpha: 0}", "{type: brightness, delta: 0}", "{type: contrast, factor: 1}",
        "{type: gamma, gamma: 1}", "{type: gaussian_noise, std: 0}",
        "{type: salt_and_pepper, amount: 0}", "{type: cutout, count: 0}"}) {
    Img a(2, 9, 8);
    a.random(6);
    Img orig = a;
    run(*make(y), a);
    EXPECT_EQ(a.v, orig.v) << y;
  }
}

// p = 0 leaves the image untouched and still draws exactly one value (streams stay aligned).
TEST(Augmenters, ProbabilityZero) {
  for (const std::string& y : all_per_sample()) {
    std::string y0 = y.substr(0, y.size() - 1) + ", p: 0}";
    if (y.find(", p: 1}") != std::string::npos) y0 = y.substr(0, y.size() - 7) + ", p: 0}";
    Img a(2, 9, 8);
    a.random(7);
    Img orig = a;
    Rng rng(3, "augment", 0, 0), ref(3, "augment", 0, 0);
    make(y0)->apply(a.im, rng);
    ref.uniform();
    EXPECT_EQ(a.v, orig.v) << y0;
    EXPECT_EQ(rng.next_u64(), ref.next_u64()) << y0;
  }
}

TEST(Augmenters, ProbabilityHalf) {
  auto aug = make("{type: invert, p: 0.3}");
  int changed = 0;
  for (uint64_t key = 0; key < 2000; ++key) {
    Img a(1, 2, 2);
    a.v = {0.f, 0.f, 0.f, 0.f};
    run(*aug, a, key);
    changed += a.v[0] == 1.f;
  }
  EXPECT_NEAR(changed / 2000.0, 0.3, 0.04);
}

TEST(Augmenters, ValuesStayInRange) {
  for (const std::string& y : all_per_sample()) {
    auto aug = make(y);
    for (uint64_t key = 0; key < 30; ++key) {
      for (auto [lo, hi] : {std::pair{0.f, 1.f}, std::pair{-1.f, 1.f}, std::pair{0.f, 255.f}}) {
        Img a(2, 12, 10, lo, hi);
        a.random(key);
        run(*aug, a, key);
        for (float v : a.v) {
          ASSERT_GE(v, lo) << y;
          ASSERT_LE(v, hi) << y;
        }
      }
    }
  }
}

// Every channel is transformed alike: identical channels stay identical.
TEST(Augmenters, ChannelsTransformedAlike) {
  for (const std::string& y : all_per_sample()) {
    auto aug = make(y);
    for (uint64_t key = 0; key < 5; ++key) {
      Img a(3, 11, 9);
      Img one(1, 11, 9);
      one.random(key + 50);
      for (int64_t ch = 0; ch < 3; ++ch)
        std::copy(one.v.begin(), one.v.end(), a.v.begin() + ch * 99);
      run(*aug, a, key);
      for (int64_t ch = 1; ch < 3; ++ch)
        for (int64_t i = 0; i < 99; ++i) ASSERT_EQ(a.v[size_t(ch * 99 + i)], a.v[size_t(i)]) << y;
    }
  }
}

TEST(Augmenters, SameKeySameResult) {
  for (const std::string& y : all_per_sample()) {
    auto aug = make(y);
    Img a(2, 14, 13), b(2, 14, 13);
    a.random(8);
    b.random(8);
    run(*aug, a, 42);
    run(*make(y), b, 42);  // a second instance behaves the same
    EXPECT_EQ(a.v, b.v) << y;
  }
  // Different keys give different results for a random transform.
  auto aug = make("{type: rotate, degrees: 30}");
  Img a(1, 10, 10), b(1, 10, 10);
  a.random(1);
  b.random(1);
  run(*aug, a, 1);
  run(*aug, b, 2);
  EXPECT_NE(a.v, b.v);
}

// ---- composition ----

TEST(Augmenters, SequenceAppliesInOrder) {
  Img a(1, 1, 3, 0, 1);
  a.v = {0.1f, 0.2f, 0.9f};
  // Brighten by 0.1, then invert: 1 - (v + 0.1), clipped first.
  run(*make("{type: sequence, transforms: [{type: brightness, delta: [0.1, 0.1]}, "
            "{type: invert, p: 1}]}"),
      a);
  EXPECT_NEAR(a.v[0], 0.8f, 1e-6);
  EXPECT_NEAR(a.v[1], 0.7f, 1e-6);
  EXPECT_NEAR(a.v[2], 0.f, 1e-6);
}

TEST(Augmenters, OneOfWeights) {
  auto aug = make(
      "{type: one_of, transforms: [{type: invert, p: 1}, "
      "{type: brightness, delta: [0.5, 0.5]}], weights: [0, 1]}");
  for (uint64_t key = 0; key < 20; ++key) {
    Img a(1, 1, 1);
    a.v = {0.25f};
    run(*aug, a, key);
    EXPECT_FLOAT_EQ(a.v[0], 0.75f);
  }
  auto even = make(
      "{type: one_of, transforms: [{type: invert, p: 1}, "
      "{type: brightness, delta: [0.5, 0.5]}]}");
  int inverted = 0;
  for (uint64_t key = 0; key < 1000; ++key) {
    Img a(1, 1, 1);
    a.v = {0.f};
    run(*even, a, key);
    inverted += a.v[0] == 1.f;
  }
  EXPECT_NEAR(inverted / 1000.0, 0.5, 0.06);
}

TEST(Augmenters, SomeOfCount) {
  auto aug = make(
      "{type: some_of, n: [1, 2], transforms: [{type: brightness, delta: [0.1, 0.1]},"
      " {type: brightness, delta: [0.1, 0.1]}, {type: brightness, delta: [0.1, "
      "0.1]}]}");
  int ones = 0, twos = 0;
  for (uint64_t key = 0; key < 500; ++key) {
    Img a(1, 1, 1);
    a.v = {0.f};
    run(*aug, a, key);
    if (std::fabs(a.v[0] - 0.1f) < 1e-5)
      ++ones;
    else if (std::fabs(a.v[0] - 0.2f) < 1e-5)
      ++twos;
    else
      ADD_FAILURE() << a.v[0];
  }
  EXPECT_NEAR(ones / 500.0, 0.5, 0.08);
  EXPECT_EQ(ones + twos, 500);
}

// ---- batch level ----

// Image i is constant i and labelled class i; after mixing, image i's pixels equal Σ_k k·y[i][k].
void check_mix(const std::string& yaml, bool constant_pixels) {
  auto aug = make(yaml);
  EXPECT_TRUE(aug->batch_level());
  const int64_t n = 8;
  for (uint64_t key = 0; key < 20; ++key) {
    loom::Tensor x({n, 1, 6, 6}), y({n, n});
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < 36; ++j) x[i * 36 + j] = float(i);
      y[i * n + i] = 1.f;
    }
    Rng rng(key, "batch", 0, 0);
    aug->apply_batch(x, y, rng);
    std::vector<double> column(size_t(n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      double row = 0, expect = 0;
      for (int64_t k = 0; k < n; ++k) {
        row += y[i * n + k];
        expect += double(k) * y[i * n + k];
        column[size_t(k)] += y[i * n + k];
        EXPECT_GE(y[i * n + k], 0.f);
      }
      EXPECT_NEAR(row, 1.0, 1e-5) << yaml;
      double mean = 0;
      for (int64_t j = 0; j < 36; ++j) {
        mean += x[i * 36 + j];
        if (constant_pixels) {
          EXPECT_NEAR(x[i * 36 + j], expect, 1e-4) << yaml;
        }
      }
      EXPECT_NEAR(mean / 36, expect, 1e-4) << yaml;
    }
    // Each sample is paired exactly once (a permutation): columns also sum to 1.
    for (double c : column) EXPECT_NEAR(c, 1.0, 1e-5) << yaml;
  }
}

TEST(Augmenters, MixupWeightsSumToOne) { check_mix("{type: mixup, alpha: 0.4}", true); }
TEST(Augmenters, CutmixAreaMatchesLabels) { check_mix("{type: cutmix, alpha: 1.0}", false); }

// Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1)). With two samples x = (1, 0), a swap
// leaves x[0] = lam; the identity pairing leaves x unchanged and is skipped.
TEST(Augmenters, MixupBetaMoments) {
  for (double alpha : {0.2, 2.0}) {
    auto aug = make("{type: mixup, alpha: " + std::to_string(alpha) + "}");
    double s = 0, s2 = 0;
    int m = 0;
    for (int t = 0; t < 8000; ++t) {
      loom::Tensor x({2, 1}), y;
      x[0] = 1.f;
      Rng rng(uint64_t(t), "batch", 0, 0);
      aug->apply_batch(x, y, rng);
      if (x[0] == 1.f && x[1] == 0.f) continue;
      EXPECT_NEAR(x[0] + x[1], 1.f, 1e-6);
      s += x[0];
      s2 += double(x[0]) * x[0];
      ++m;
    }
    ASSERT_GT(m, 3000);
    const double mean = s / m, var = s2 / m - mean * mean, want = 1.0 / (4 * (2 * alpha + 1));
    EXPECT_NEAR(mean, 0.5, 0.03) << alpha;
    EXPECT_NEAR(var, want, 0.12 * want) << alpha;
  }
}

TEST(Augmenters, BatchMixersKeepUnlabelledData) {
  auto aug = make("{type: mixup}");
  loom::Tensor x({4, 3}), y;
  for (int64_t i = 0; i < 12; ++i) x[i] = float(i % 3);
  Rng rng(1, "batch", 0, 0);
  aug->apply_batch(x, y, rng);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) EXPECT_NEAR(x[i * 3 + j], float(j), 1e-5);
}

// ---- errors ----

TEST(Augmenters, ProbabilityOutOfRange) {
  std::string e = error_of("{type: rotate, p: 2}");
  EXPECT_NE(e.find("entry.p"), std::string::npos) << e;
  EXPECT_NE(e.find("between 0 and 1"), std::string::npos) << e;
  EXPECT_NE(e.find("got 2"), std::string::npos) << e;
}

TEST(Augmenters, MalformedParameters) {
  auto has = [](const std::string& yaml, const std::string& what) {
    std::string e = error_of(yaml);
    EXPECT_NE(e.find(what), std::string::npos) << yaml << " -> " << e;
  };
  has("{type: rotate, degrees: [10]}", "two numbers");
  has("{type: rotate, degrees: [30, 10]}", "min must not exceed max");
  has("{type: rotate, degrees: -5}", "must be >= 0");
  has("{type: rotate, degrees: abc}", "entry.degrees");
  has("{type: rotate, interpolation: cubic}", "not one of the accepted values");
  has("{type: zoom, range: [0, 2]}", "entry.range");
  has("{type: gaussian_blur, kernel_size: 4}", "must be odd");
  has("{type: one_of, transforms: [invert, invert], weights: [1]}", "one weight per transform");
  has("{type: some_of, n: 3, transforms: [invert, invert]}", "the number of transforms");
  has("{type: sequence, transforms: [invert, {type: rotat}]}", "entry.transforms[1]");
  has("{type: sequence, transforms: [invert, {type: rotat}]}", "did you mean 'rotate'");
  has("{type: sequence, transforms: [invert, {type: rotate, p: 3}]}", "transforms[1].p");
  has("{type: sequence, transforms: [mixup]}", "batch-level");
  has("{type: sequence, transforms: []}", "at least one");
  has("{type: cutout, sizes: 3}", "unknown key 'sizes'");
}

}  // namespace

namespace {

// One augmenter instance shared by threads gives the same results as a serial run (scratch
// memory is per thread; results depend only on each sample's key).
TEST(Augmenters, SharedAcrossThreads) {
  auto aug = make(
      "{type: sequence, transforms: [horizontal_flip, {type: rotate, degrees: 15}, "
      "{type: translate, fraction: 0.1}, {type: elastic, alpha: 4, sigma: 2}, "
      "{type: gaussian_noise, std: 0.05}, cutout]}");
  const int n = 64;
  std::vector<Img> serial, threaded;
  for (int i = 0; i < n; ++i) {
    serial.emplace_back(1, 28, 28);
    serial.back().random(uint64_t(i));
  }
  threaded = serial;
  for (auto& t : threaded) t.im.data = t.v.data();
  for (int i = 0; i < n; ++i) run(*aug, serial[size_t(i)], uint64_t(i));
  auto work = [&](int begin) {
    for (int i = begin; i < n; i += 2) run(*aug, threaded[size_t(i)], uint64_t(i));
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  for (int i = 0; i < n; ++i) EXPECT_EQ(serial[size_t(i)].v, threaded[size_t(i)].v) << i;
}

}  // namespace
