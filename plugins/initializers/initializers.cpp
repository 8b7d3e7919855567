// Weight initialisers with Keras semantics.
#include <cmath>

#include "loom/initializer.hpp"
#include "loom/plugin.hpp"

namespace loom::init {
namespace {

// Normal truncated at two standard deviations (redrawn), as Keras's variance-scaling does.
float truncated_normal(Rng& rng) {
  for (;;) {
    float v = rng.normal();
    if (std::fabs(v) <= 2.f) return v;
  }
}

class Fill : public Initializer {
 public:
  using Fn = float (*)(Rng&, int64_t, int64_t);
  explicit Fill(Fn fn) : fn_(fn) {}
  void fill(Tensor& t, int64_t fan_in, int64_t fan_out, Rng& rng) const override {
    for (int64_t i = 0; i < t.size(); ++i) t[i] = fn_(rng, fan_in, fan_out);
  }

 private:
  Fn fn_;
};

void register_types(Registry& r) {
  auto add = [&](const char* name, const char* doc, Fill::Fn fn) {
    r.add<Initializer>(name, Spec(doc), [fn](const Params&) { return std::make_unique<Fill>(fn); });
  };
  add("zeros", "All zeros.", [](Rng&, int64_t, int64_t) { return 0.f; });
  add("ones", "All ones.", [](Rng&, int64_t, int64_t) { return 1.f; });
  add("glorot_uniform", "Uniform in ±sqrt(6 / (fan_in + fan_out)).",
      [](Rng& g, int64_t i, int64_t o) {
        float l = std::sqrt(6.f / float(i + o));
        return g.uniform(-l, l);
      });
  add("glorot_normal", "Truncated normal, stddev sqrt(2 / (fan_in + fan_out)).",
      [](Rng& g, int64_t i, int64_t o) {
        return truncated_normal(g) * std::sqrt(2.f / float(i + o)) / 0.87962566f;
      });
  add("he_normal", "Truncated normal, stddev sqrt(2 / fan_in).", [](Rng& g, int64_t i, int64_t) {
    return truncated_normal(g) * std::sqrt(2.f / float(i)) / 0.87962566f;
  });
  add("he_uniform", "Uniform in ±sqrt(6 / fan_in).", [](Rng& g, int64_t i, int64_t) {
    float l = std::sqrt(6.f / float(i));
    return g.uniform(-l, l);
  });
  add("lecun_normal", "Truncated normal, stddev sqrt(1 / fan_in).", [](Rng& g, int64_t i, int64_t) {
    return truncated_normal(g) * std::sqrt(1.f / float(i)) / 0.87962566f;
  });
}

}  // namespace
}  // namespace loom::init

LOOM_PLUGIN("loom_initializers", "0.1.0", "Keras-compatible weight initialisers",
            loom::init::register_types)
