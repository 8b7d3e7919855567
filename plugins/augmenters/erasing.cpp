// Erasing augmenters: cutout (DeVries & Taylor 2017) and random_erasing (Zhong et al. 2017, as in
// torchvision's RandomErasing).
#include "common.hpp"

namespace loom::augment {
namespace {

// Fills rows [y0, y1) and columns [x0, x1) of every channel.
void fill_box(Image& im, int64_t y0, int64_t y1, int64_t x0, int64_t x1, float v) {
  y0 = std::max<int64_t>(y0, 0);
  x0 = std::max<int64_t>(x0, 0);
  y1 = std::min(y1, im.h);
  x1 = std::min(x1, im.w);
  if (y0 >= y1 || x0 >= x1) return;
  for (int64_t ch = 0; ch < im.c; ++ch)
    for (int64_t y = y0; y < y1; ++y) {
      float* row = im.data + (ch * im.h + y) * im.w;
      std::fill(row + x0, row + x1, v);
    }
}

class Cutout : public Gated {
 public:
  explicit Cutout(const Params& p)
      : Gated(p),
        size_(p.given("size") ? p.i("size") : 0),
        fraction_(float(p.f("fraction"))),
        count_(p.i("count")),
        inside_(p.b("inside")),
        fill_(p) {}
  void run(Image& im, Rng& rng) const override {
    const int64_t sh =
        std::min(im.h, size_ ? size_ : std::max<int64_t>(1, std::lround(fraction_ * float(im.h))));
    const int64_t sw =
        std::min(im.w, size_ ? size_ : std::max<int64_t>(1, std::lround(fraction_ * float(im.w))));
    const float fill = fill_.of(im);
    for (int64_t k = 0; k < count_; ++k) {
      int64_t y0, x0;
      if (inside_) {
        y0 = int64_t(rng.below(uint64_t(im.h - sh + 1)));
        x0 = int64_t(rng.below(uint64_t(im.w - sw + 1)));
      } else {
        // Centre anywhere in the image; the square may be cut by the border.
        y0 = int64_t(rng.below(uint64_t(im.h))) - sh / 2;
        x0 = int64_t(rng.below(uint64_t(im.w))) - sw / 2;
      }
      fill_box(im, y0, y0 + sh, x0, x0 + sw, fill);
    }
  }

 private:
  int64_t size_;
  float fraction_;
  int64_t count_;
  bool inside_;
  Fill fill_;
};

class RandomErasing : public Gated {
 public:
  explicit RandomErasing(const Params& p)
      : Gated(p),
        scale_(read_range(p, "scale", false, 0, 1)),
        ratio_(read_range(p, "ratio", false, 1e-3, 1e3)),
        attempts_(int(p.i("attempts"))),
        fill_(p) {
    log_r0_ = std::log(ratio_.lo);
    log_r1_ = std::log(ratio_.hi);
  }
  void run(Image& im, Rng& rng) const override {
    const float area = float(im.h * im.w);
    for (int a = 0; a < attempts_; ++a) {
      const float target = area * scale_.draw(rng);
      const float aspect = std::exp(rng.uniform(log_r0_, log_r1_));
      const int64_t h = std::lround(std::sqrt(target * aspect));
      const int64_t w = std::lround(std::sqrt(target / aspect));
      if (!(h < im.h && w < im.w) || h < 1 || w < 1) continue;
      const int64_t y0 = int64_t(rng.below(uint64_t(im.h - h + 1)));
      const int64_t x0 = int64_t(rng.below(uint64_t(im.w - w + 1)));
      fill_box(im, y0, y0 + h, x0, x0 + w, fill_.of(im));
      return;
    }
  }

 private:
  Range scale_, ratio_;
  int attempts_;
  Fill fill_;
  float log_r0_, log_r1_;
};

}  // namespace

void register_erasing(Registry& r) {
  {
    Spec s(
        "Cutout: fills `count` squares of side `size` (or `fraction` of the height / width) "
        "centred at random pixels.");
    add_probability(s, 1.0);
    s.add("size", Type::Int).min(1).doc("side in pixels (overrides fraction)");
    s.add("fraction", Type::Float)
        .def(0.25)
        .range(0, 1)
        .doc("side as a fraction of the height and width");
    s.add("count", Type::Int).def(1).range(0, 1000).doc("number of squares");
    s.add("inside", Type::Bool)
        .def("false")
        .doc(
            "keep every square wholly inside the image (default: centres anywhere, squares cut "
            "by the border)");
    add_fill(s);
    r.add<Augmenter>("cutout", s, [](const Params& p) { return std::make_unique<Cutout>(p); });
  }
  {
    Spec s(
        "Random erasing as torchvision's RandomErasing: one rectangle of random area and "
        "aspect ratio.");
    add_probability(s, 0.5);
    add_range(s, "scale", "[0.02, 0.33]").doc("[min, max] erased fraction of the image area");
    add_range(s, "ratio", "[0.3, 3.3]").doc("[min, max] aspect ratio (height / width)");
    s.add("attempts", Type::Int)
        .def(10)
        .range(1, 100)
        .doc("tries to fit a rectangle before giving up");
    add_fill(s);
    r.add<Augmenter>("random_erasing", s,
                     [](const Params& p) { return std::make_unique<RandomErasing>(p); });
  }
}

}  // namespace loom::augment
