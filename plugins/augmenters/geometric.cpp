// Geometric augmenters: flips, rotate, translate, zoom, affine (one inverse-mapping warp about the
// image centre), random_crop and elastic deformation.
#include <cstring>

#include "common.hpp"

namespace loom::augment {
namespace {

class HorizontalFlip : public Gated {
 public:
  using Gated::Gated;
  void run(Image& im, Rng&) const override {
    const int64_t rows = im.c * im.h, W = im.w;
    for (int64_t r = 0; r < rows; ++r) std::reverse(im.data + r * W, im.data + (r + 1) * W);
  }
};

class VerticalFlip : public Gated {
 public:
  using Gated::Gated;
  void run(Image& im, Rng&) const override {
    const int64_t H = im.h, W = im.w;
    for (int64_t ch = 0; ch < im.c; ++ch) {
      float* p = im.data + ch * H * W;
      for (int64_t y = 0; y < H / 2; ++y)
        std::swap_ranges(p + y * W, p + (y + 1) * W, p + (H - 1 - y) * W);
    }
  }
};

// rotate, translate, zoom and affine: each draws its parameters, then warps once.
class AffineAug : public Gated {
 public:
  struct Ranges {
    Range angle, tx, ty, scale{1.f, 1.f}, shear;
  };
  AffineAug(const Params& p, Ranges r) : Gated(p), r_(r), fill_(p), interp_(read_interp(p)) {}
  void run(Image& im, Rng& rng) const override {
    const float angle = r_.angle.draw(rng);
    const float tx = r_.tx.draw(rng) * float(im.w), ty = r_.ty.draw(rng) * float(im.h);
    const float scale = r_.scale.draw(rng);
    const float shear = r_.shear.draw(rng);
    if (angle == 0.f && tx == 0.f && ty == 0.f && scale == 1.f && shear == 0.f) return;
    warp(im, inverse_affine(im.h, im.w, angle, tx, ty, scale, shear), interp_, fill_.of(im));
  }

 private:
  Ranges r_;
  Fill fill_;
  Interp interp_;
};

enum class PadMode { Constant, Edge, Reflect };

// Pads by `padding` on every side, then crops a random window of the original size.
class RandomCrop : public Gated {
 public:
  explicit RandomCrop(const Params& p) : Gated(p), pad_(p.i("padding")), fill_(p) {
    std::string m = p.s("padding_mode");
    mode_ = m == "edge" ? PadMode::Edge : (m == "reflect" ? PadMode::Reflect : PadMode::Constant);
  }
  void run(Image& im, Rng& rng) const override {
    const int64_t dy = int64_t(rng.below(uint64_t(2 * pad_ + 1))) - pad_;
    const int64_t dx = int64_t(rng.below(uint64_t(2 * pad_ + 1))) - pad_;
    if (dx == 0 && dy == 0) return;
    const int64_t C = im.c, H = im.h, W = im.w, HW = H * W;
    thread_local std::vector<int64_t> idx;
    idx.resize(size_t(H + W));
    int64_t* ys = idx.data();
    int64_t* xs = idx.data() + H;
    for (int64_t y = 0; y < H; ++y) ys[y] = source(y + dy, H);
    for (int64_t x = 0; x < W; ++x) xs[x] = source(x + dx, W);
    const float fill = fill_.of(im);
    float* out = scratch(0, size_t(C * HW));
    for (int64_t ch = 0; ch < C; ++ch) {
      const float* s = im.data + ch * HW;
      float* o = out + ch * HW;
      for (int64_t y = 0; y < H; ++y) {
        float* orow = o + y * W;
        if (ys[y] < 0) {
          std::fill(orow, orow + W, fill);
          continue;
        }
        const float* srow = s + ys[y] * W;
        for (int64_t x = 0; x < W; ++x) orow[x] = xs[x] < 0 ? fill : srow[xs[x]];
      }
    }
    store_clipped(im, out);
  }

 private:
  // Source index of padded position i (or -1 for the constant fill).
  int64_t source(int64_t i, int64_t n) const {
    if (i >= 0 && i < n) return i;
    switch (mode_) {
      case PadMode::Constant:
        return -1;
      case PadMode::Edge:
        return i < 0 ? 0 : n - 1;
      case PadMode::Reflect:
        if (n == 1) return 0;
        while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
        return i;
    }
    return -1;
  }
  int64_t pad_;
  Fill fill_;
  PadMode mode_;
};

// Elastic deformation (Simard, Steinkraus & Platt 2003): uniform random displacement fields in
// [-1, 1], smoothed by a Gaussian of width sigma (zero outside the image), scaled by alpha.
class Elastic : public Gated {
 public:
  explicit Elastic(const Params& p)
      : Gated(p),
        alpha_(float(p.f("alpha"))),
        sigma_(float(p.f("sigma"))),
        fill_(p),
        interp_(read_interp(p)) {
    radius_ = kernel_radius(sigma_, 0, 3.f);
    kernel_.resize(size_t(2 * radius_ + 1));
    gaussian_kernel(sigma_, radius_, kernel_.data());
  }
  void run(Image& im, Rng& rng) const override {
    const int64_t C = im.c, H = im.h, W = im.w, HW = H * W;
    float* dx = scratch(1, size_t(HW));
    float* dy = scratch(2, size_t(HW));
    float* tmp = scratch(3, size_t(HW));
    for (int64_t i = 0; i < HW; ++i) dx[i] = rng.uniform(-1.f, 1.f);
    for (int64_t i = 0; i < HW; ++i) dy[i] = rng.uniform(-1.f, 1.f);
    convolve_plane(dx, H, W, kernel_.data(), radius_, false, tmp);
    convolve_plane(dy, H, W, kernel_.data(), radius_, false, tmp);
    const float fill = fill_.of(im);
    float* out = scratch(0, size_t(C * HW));
    const float* src = im.data;
    const float alpha = alpha_;
    dispatch_sampler(interp_, C, [&]<Interp I, bool ONE>() {
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const int64_t i = y * W + x;
          sample_point<I, ONE>(src, C, H, W, float(x) + alpha * dx[i], float(y) + alpha * dy[i],
                               fill, out + i);
        }
    });
    store_clipped(im, out);
  }

 private:
  float alpha_, sigma_;
  Fill fill_;
  Interp interp_;
  int radius_;
  std::vector<float> kernel_;
};

Spec warp_spec(const std::string& description) {
  Spec s(description);
  add_probability(s, 1.0);
  return s;
}

void add_warp_common(Spec& s) {
  add_fill(s);
  add_interpolation(s);
}

}  // namespace

void register_geometric(Registry& r) {
  {
    Spec s("Mirrors the image left to right.");
    add_probability(s, 0.5);
    r.add<Augmenter>("horizontal_flip", s,
                     [](const Params& p) { return std::make_unique<HorizontalFlip>(p); });
  }
  {
    Spec s("Mirrors the image top to bottom.");
    add_probability(s, 0.5);
    r.add<Augmenter>("vertical_flip", s,
                     [](const Params& p) { return std::make_unique<VerticalFlip>(p); });
  }
  {
    Spec s = warp_spec(
        "Rotates about the image centre by an angle drawn uniformly (positive: "
        "counter-clockwise).");
    add_range(s, "degrees", "15")
        .doc("maximum absolute angle in degrees (x means [-x, x]), or an explicit [min, max]");
    add_warp_common(s);
    r.add<Augmenter>("rotate", s, [](const Params& p) {
      AffineAug::Ranges rg;
      rg.angle = read_range(p, "degrees", true, -360, 360);
      return std::make_unique<AffineAug>(p, rg);
    });
  }
  {
    Spec s = warp_spec("Shifts the image by a fraction of its size drawn uniformly per axis.");
    s.add("fraction", Type::Float)
        .def(0.1)
        .range(0, 1)
        .doc("maximum shift on each axis, as a fraction of the width / height");
    add_range(s, "x", "")
        .doc(
            "horizontal shift as a fraction of the width (x means [-x, x], or [min, max]; "
            "positive: "
            "right); overrides fraction");
    add_range(s, "y", "")
        .doc("vertical shift as a fraction of the height (positive: down); overrides fraction");
    add_warp_common(s);
    r.add<Augmenter>("translate", s, [](const Params& p) {
      AffineAug::Ranges rg;
      float f = float(p.f("fraction"));
      rg.tx = p.given("x") ? read_range(p, "x", true, -1, 1) : Range{-f, f};
      rg.ty = p.given("y") ? read_range(p, "y", true, -1, 1) : Range{-f, f};
      return std::make_unique<AffineAug>(p, rg);
    });
  }
  {
    Spec s = warp_spec(
        "Scales the image about its centre by a factor drawn uniformly (> 1 "
        "magnifies).");
    add_range(s, "range", "[0.9, 1.1]").doc("[min, max] scale factor, or one fixed factor");
    add_warp_common(s);
    r.add<Augmenter>("zoom", s, [](const Params& p) {
      AffineAug::Ranges rg;
      rg.scale = read_range(p, "range", false, 1e-3, 1e3);
      if (rg.scale.lo <= 0) p.fail("range", "scale factors must be > 0");
      return std::make_unique<AffineAug>(p, rg);
    });
  }
  {
    Spec s = warp_spec(
        "Random affine transform about the image centre: rotation, translation, "
        "scale and horizontal shear, each drawn uniformly.");
    add_range(s, "rotation", "0").doc("degrees: x means [-x, x], or [min, max]");
    add_range(s, "translation", "0")
        .doc("shift per axis as a fraction of the size: x means [-x, x], or [min, max]");
    add_range(s, "scale", "1").doc("[min, max] scale factor, or one fixed factor");
    add_range(s, "shear", "0").doc("horizontal shear in degrees: x means [-x, x], or [min, max]");
    add_warp_common(s);
    r.add<Augmenter>("affine", s, [](const Params& p) {
      AffineAug::Ranges rg;
      rg.angle = read_range(p, "rotation", true, -360, 360);
      rg.tx = rg.ty = read_range(p, "translation", true, -1, 1);
      rg.scale = read_range(p, "scale", false, 1e-3, 1e3);
      rg.shear = read_range(p, "shear", true, -80, 80);
      return std::make_unique<AffineAug>(p, rg);
    });
  }
  {
    Spec s(
        "Pads every side by `padding` pixels, then crops a random window of the original "
        "size.");
    add_probability(s, 1.0);
    s.add("padding", Type::Int).def(4).min(0).doc("pixels added on each side");
    s.add("padding_mode", Type::String)
        .def("constant")
        .choices({"constant", "edge", "reflect"})
        .doc("padding with the fill value, the nearest edge pixel, or a mirror image");
    add_fill(s);
    r.add<Augmenter>("random_crop", s,
                     [](const Params& p) { return std::make_unique<RandomCrop>(p); });
  }
  {
    Spec s(
        "Elastic deformation (Simard et al. 2003): Gaussian-smoothed random displacement "
        "fields.");
    add_probability(s, 1.0);
    s.add("alpha", Type::Float).def(34).min(0).doc("displacement scale in pixels");
    s.add("sigma", Type::Float).def(4).range(0.1, 100).doc("smoothing width in pixels");
    add_warp_common(s);
    r.add<Augmenter>("elastic", s, [](const Params& p) { return std::make_unique<Elastic>(p); });
  }
}

}  // namespace loom::augment
