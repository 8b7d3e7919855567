// Batch-level augmenters: mixup (Zhang et al. 2018) and cutmix (Yun et al. 2019). Each pairs
// sample i with sample perm[i] (a random permutation of the batch) and mixes images and one-hot
// (or soft) labels alike. Labels may be absent (an empty y) for unlabelled data.
#include <cstring>
#include <sstream>

#include "common.hpp"

namespace loom::augment {
namespace {

// Gamma(a, 1) by Marsaglia & Tsang (2000); for a < 1, Gamma(a + 1) · U^(1/a).
float gamma_draw(Rng& rng, double a) {
  double boost = 1.0;
  if (a < 1.0) {
    double u = std::max(double(rng.uniform()), 1e-12);
    boost = std::pow(u, 1.0 / a);
    a += 1.0;
  }
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = std::max(double(rng.uniform()), 1e-12);
    if (u < 1.0 - 0.0331 * x * x * x * x) return float(d * v * boost);
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return float(d * v * boost);
  }
}

// Beta(a, a) through two Gamma draws.
float beta_draw(Rng& rng, double a) {
  const float x = gamma_draw(rng, a), y = gamma_draw(rng, a);
  return x + y > 0 ? x / (x + y) : 0.5f;
}

class BatchMixer : public Augmenter {
 public:
  explicit BatchMixer(const Params& p) : p_(float(p.f("p"))), alpha_(p.f("alpha")) {}
  void apply(Image&, Rng&) const override {}
  bool batch_level() const override { return true; }
  void apply_batch(Tensor& x, Tensor& y, Rng& rng) const override {
    if (!rng.bernoulli(p_)) return;
    if (x.rank() < 2 || x.dim(0) < 1) return;
    const int64_t n = x.dim(0);
    if (!y.empty() && (y.rank() < 1 || y.dim(0) != n))
      throw Error(std::string(name()) + ": labels " + to_string(y.shape()) +
                  " do not match the batch " + to_string(x.shape()));
    const float lam = beta_draw(rng, alpha_);
    std::vector<int64_t>& perm = permutation();
    perm.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = i;
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(perm[size_t(i)], perm[size_t(rng.below(uint64_t(i + 1)))]);
    const float label_lam = mix_images(x, perm, lam, rng);
    if (!y.empty()) mix_rows(y, perm, label_lam);
  }

 protected:
  virtual const char* name() const = 0;
  // Mixes the images; returns the weight of the sample's own label.
  virtual float mix_images(Tensor& x, const std::vector<int64_t>& perm, float lam,
                           Rng& rng) const = 0;
  // t[i] <- w · t[i] + (1 - w) · t[perm[i]] for every row.
  static void mix_rows(Tensor& t, const std::vector<int64_t>& perm, float w) {
    const int64_t n = t.dim(0), row = t.size() / n;
    float* orig = copy_of(t);
    float* d = t.data();
    for (int64_t i = 0; i < n; ++i) {
      const float* a = orig + i * row;
      const float* b = orig + perm[size_t(i)] * row;
      float* o = d + i * row;
      for (int64_t j = 0; j < row; ++j) o[j] = w * a[j] + (1.f - w) * b[j];
    }
  }
  static float* copy_of(const Tensor& t) {
    float* c = scratch(0, size_t(t.size()));
    std::memcpy(c, t.data(), sizeof(float) * size_t(t.size()));
    return c;
  }
  static std::vector<int64_t>& permutation() {
    thread_local std::vector<int64_t> perm;
    return perm;
  }

 private:
  float p_;
  double alpha_;
};

class Mixup : public BatchMixer {
 public:
  using BatchMixer::BatchMixer;

 protected:
  const char* name() const override { return "mixup"; }
  float mix_images(Tensor& x, const std::vector<int64_t>& perm, float lam, Rng&) const override {
    mix_rows(x, perm, lam);
    return lam;
  }
};

class Cutmix : public BatchMixer {
 public:
  using BatchMixer::BatchMixer;

 protected:
  const char* name() const override { return "cutmix"; }
  float mix_images(Tensor& x, const std::vector<int64_t>& perm, float lam,
                   Rng& rng) const override {
    const int64_t n = x.dim(0), per = x.size() / n;
    int64_t H, W;
    if (x.rank() >= 4) {
      H = x.dim(2);
      W = x.dim(3);
    } else if (x.rank() == 3) {
      H = x.dim(1);
      W = x.dim(2);
    } else {
      H = W = int64_t(std::lround(std::sqrt(double(per))));
      if (H * W != per)
        throw Error("cutmix: cannot tell the height and width of flat samples " +
                    to_string(x.shape()) + "; give images as (N, C, H, W) or (N, H, W)");
    }
    const int64_t C = per / (H * W), HW = H * W;
    // The box covers a fraction 1 - lam of the area (clipped by the border), as in the reference.
    const float cut = std::sqrt(1.f - lam);
    const int64_t cw = int64_t(float(W) * cut), chh = int64_t(float(H) * cut);
    const int64_t cx = int64_t(rng.below(uint64_t(W))), cy = int64_t(rng.below(uint64_t(H)));
    const int64_t x0 = std::clamp<int64_t>(cx - cw / 2, 0, W),
                  x1 = std::clamp<int64_t>(cx + cw / 2, 0, W);
    const int64_t y0 = std::clamp<int64_t>(cy - chh / 2, 0, H),
                  y1 = std::clamp<int64_t>(cy + chh / 2, 0, H);
    if (x1 <= x0 || y1 <= y0) return 1.f;
    float* orig = copy_of(x);
    float* d = x.data();
    for (int64_t i = 0; i < n; ++i) {
      const float* src = orig + perm[size_t(i)] * per;
      float* dst = d + i * per;
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t yy = y0; yy < y1; ++yy) {
          const int64_t off = ch * HW + yy * W;
          std::memcpy(dst + off + x0, src + off + x0, sizeof(float) * size_t(x1 - x0));
        }
    }
    return 1.f - float((x1 - x0) * (y1 - y0)) / float(HW);
  }
};

Spec mixer_spec(const std::string& description) {
  Spec s(description);
  add_probability(s, 1.0);
  s.add("alpha", Type::Float)
      .def(1.0)
      .range(1e-3, 1e3)
      .doc("the mixing weight is drawn from Beta(alpha, alpha)");
  return s;
}

}  // namespace

void register_batch(Registry& r) {
  r.add<Augmenter>("mixup",
                   mixer_spec("Mixup: convex combinations of pairs of images and of their labels, "
                              "one weight per batch."),
                   [](const Params& p) { return std::make_unique<Mixup>(p); });
  r.add<Augmenter>("cutmix",
                   mixer_spec("CutMix: pastes a box of a paired image; labels mixed by the "
                              "pasted area."),
                   [](const Params& p) { return std::make_unique<Cutmix>(p); });
}

}  // namespace loom::augment
