// Samplers of codings for generation: `gaussian` (optionally truncated) and `uniform`. Every
// sample has its own random stream, so sample i is the same however many are drawn.
#include <cmath>

#include "loom/plugin.hpp"
#include "loom/sampler.hpp"

namespace loom::samplers {
namespace {

class Gaussian : public Sampler {
 public:
  explicit Gaussian(const Params& p)
      : mean_(float(p.f("mean"))),
        stddev_(float(p.f("stddev"))),
        truncation_(float(p.f("truncation"))) {}
  void sample(Tensor& codings, uint64_t seed, int64_t first_index) const override {
    for_each_sample(codings, seed, first_index, [&](float* row, int64_t n, Rng& rng) {
      for (int64_t k = 0; k < n; ++k) {
        float z = rng.normal();
        // Truncation: values beyond `truncation` standard deviations are drawn again.
        if (truncation_ > 0)
          while (std::fabs(z) > truncation_) z = rng.normal();
        row[k] = mean_ + stddev_ * z;
      }
    });
  }

 private:
  float mean_, stddev_, truncation_;
};

class Uniform : public Sampler {
 public:
  explicit Uniform(const Params& p) : low_(float(p.f("low"))), high_(float(p.f("high"))) {
    if (!(high_ > low_)) p.fail("high", "must be greater than low (" + std::to_string(low_) + ")");
  }
  void sample(Tensor& codings, uint64_t seed, int64_t first_index) const override {
    for_each_sample(codings, seed, first_index, [&](float* row, int64_t n, Rng& rng) {
      for (int64_t k = 0; k < n; ++k) row[k] = rng.uniform(low_, high_);
    });
  }

 private:
  float low_, high_;
};

void register_types(Registry& r) {
  Spec g("Gaussian codings: mean + stddev·N(0, 1) per value, optionally truncated.");
  g.add("mean", Type::Float).def(0.0).doc("mean of every value");
  g.add("stddev", Type::Float).def(1.0).min(0).doc("standard deviation");
  g.add("truncation", Type::Float)
      .def(0.0)
      .min(0)
      .doc(
          "redraw values farther than this many standard deviations from the mean (0: no "
          "truncation)");
  r.add<Sampler>("gaussian", g, [](const Params& p) { return std::make_unique<Gaussian>(p); });

  Spec u("Uniform codings in [low, high).");
  u.add("low", Type::Float).def(-1.0).doc("lower bound");
  u.add("high", Type::Float).def(1.0).doc("upper bound (exclusive)");
  r.add<Sampler>("uniform", u, [](const Params& p) { return std::make_unique<Uniform>(p); });
}

}  // namespace
}  // namespace loom::samplers

LOOM_PLUGIN("loom_samplers", "0.1.0", "Samplers of codings for generation (gaussian, uniform)",
            loom::samplers::register_types)
