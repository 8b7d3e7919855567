// Losses: mse, mae, huber, binary_crossentropy, and the kl_sparsity penalty. Each returns the
// mean as Keras reports it and writes weight * d(mean)/d(pred).
#include <algorithm>
#include <cmath>

#include "loom/error.hpp"
#include "loom/loss.hpp"
#include "loom/plugin.hpp"

namespace loom::losses {
namespace {

void check_same(const Tensor& a, const Tensor* b) {
  if (!b) throw Error("this loss needs a target");
  if (a.size() != b->size())
    throw Error("prediction " + to_string(a.shape()) + " and target " + to_string(b->shape()) +
                " differ in size");
}

class Mse : public Loss {
 public:
  double compute(const Tensor& p, const Tensor* t, Tensor* g, float w) const override {
    check_same(p, t);
    const float* a = p.data();
    const float* b = t->data();
    int64_t n = p.size();
    double s = 0;
    float k = 2.f * w / float(n);
    float* gd = g ? g->data() : nullptr;
    // Vectorised in float over blocks, summed in double across blocks.
    for (int64_t b0 = 0; b0 < n; b0 += 4096) {
      int64_t b1 = std::min(n, b0 + 4096);
      float part = 0.f;
      if (gd) {
#pragma omp simd reduction(+ : part)
        for (int64_t i = b0; i < b1; ++i) {
          float d = a[i] - b[i];
          part += d * d;
          gd[i] = k * d;
        }
      } else {
#pragma omp simd reduction(+ : part)
        for (int64_t i = b0; i < b1; ++i) {
          float d = a[i] - b[i];
          part += d * d;
        }
      }
      s += part;
    }
    return s / double(n);
  }
};

class Mae : public Loss {
 public:
  double compute(const Tensor& p, const Tensor* t, Tensor* g, float w) const override {
    check_same(p, t);
    int64_t n = p.size();
    double s = 0;
    float k = w / float(n);
    for (int64_t i = 0; i < n; ++i) {
      float d = p[i] - (*t)[i];
      s += std::fabs(d);
      if (g) (*g)[i] = d > 0 ? k : (d < 0 ? -k : 0.f);
    }
    return s / double(n);
  }
};

class Huber : public Loss {
 public:
  explicit Huber(const Params& p) : delta_(float(p.f("delta"))) {}
  double compute(const Tensor& p, const Tensor* t, Tensor* g, float w) const override {
    check_same(p, t);
    int64_t n = p.size();
    double s = 0;
    float k = w / float(n);
    for (int64_t i = 0; i < n; ++i) {
      float d = p[i] - (*t)[i], a = std::fabs(d);
      if (a <= delta_) {
        s += 0.5 * d * d;
        if (g) (*g)[i] = k * d;
      } else {
        s += delta_ * (a - 0.5 * delta_);
        if (g) (*g)[i] = k * (d > 0 ? delta_ : -delta_);
      }
    }
    return s / double(n);
  }

 private:
  float delta_;
};

// Binary cross-entropy. With from_logits, computed stably as max(z,0) - z·t + log(1 + e^-|z|).
// On probabilities, p is clipped to [eps, 1 - eps] as Keras does.
class BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(const Params& p)
      : logits_(p.b("from_logits")), eps_(float(p.f("epsilon"))) {}
  double compute(const Tensor& p, const Tensor* t, Tensor* g, float w) const override {
    check_same(p, t);
    int64_t n = p.size();
    double s = 0;
    float k = w / float(n);
    for (int64_t i = 0; i < n; ++i) {
      float y = (*t)[i];
      if (logits_) {
        float z = p[i];
        s += std::max(z, 0.f) - z * y + std::log1p(std::exp(-std::fabs(z)));
        if (g) (*g)[i] = k * (1.f / (1.f + std::exp(-z)) - y);
      } else {
        float q = p[i];
        bool clipped = q < eps_ || q > 1.f - eps_;
        q = std::min(std::max(q, eps_), 1.f - eps_);
        s += -(y * std::log(q) + (1.f - y) * std::log(1.f - q));
        if (g) (*g)[i] = clipped ? 0.f : k * (q - y) / (q * (1.f - q));
      }
    }
    return s / double(n);
  }

 private:
  bool logits_;
  float eps_;
};

// Sparsity penalty on a layer's mean activation over the batch (activations in (0, 1)):
// Σ_units KL(ρ || ρ̂) + KL(1-ρ || 1-ρ̂).
class KlSparsity : public Loss {
 public:
  explicit KlSparsity(const Params& p) : rho_(float(p.f("target"))) {}
  bool needs_target() const override { return false; }
  double compute(const Tensor& p, const Tensor*, Tensor* g, float w) const override {
    int64_t batch = p.dim(0), units = p.size() / batch;
    const float eps = 1e-7f;
    double s = 0;
    for (int64_t u = 0; u < units; ++u) {
      double m = 0;
      for (int64_t b = 0; b < batch; ++b) m += p[b * units + u];
      m /= double(batch);
      double q = std::min(std::max(m, double(eps)), 1.0 - eps);
      s += rho_ * std::log(rho_ / q) + (1 - rho_) * std::log((1 - rho_) / (1 - q));
      if (g) {
        bool inside = m > eps && m < 1.0 - eps;
        float d = inside ? float(w * (-rho_ / q + (1 - rho_) / (1 - q)) / double(batch)) : 0.f;
        for (int64_t b = 0; b < batch; ++b) (*g)[b * units + u] = d;
      }
    }
    return s;
  }

 private:
  float rho_;
};

void register_types(Registry& r) {
  r.add<Loss>("mse", Spec("Mean squared error."),
              [](const Params&) { return std::make_unique<Mse>(); });
  r.add<Loss>("mae", Spec("Mean absolute error."),
              [](const Params&) { return std::make_unique<Mae>(); });
  Spec h("Huber loss: quadratic within delta, linear beyond.");
  h.add("delta", Type::Float).def(1.0).min(0).doc("threshold between quadratic and linear");
  r.add<Loss>("huber", h, [](const Params& p) { return std::make_unique<Huber>(p); });
  Spec b("Binary cross-entropy (targets in [0, 1]).");
  b.add("from_logits", Type::Bool)
      .def("false")
      .doc("predictions are logits (numerically stable form)");
  b.add("epsilon", Type::Float).def(1e-7).range(0, 0.1).doc("clipping of probabilities");
  r.add<Loss>("binary_crossentropy", b,
              [](const Params& p) { return std::make_unique<BinaryCrossentropy>(p); });
  Spec k(
      "KL-divergence sparsity penalty on the mean activation (over the batch) of a layer "
      "whose values lie in (0, 1): Σ KL(target || mean) + KL(1 - target || 1 - mean).");
  k.add("target", Type::Float).def(0.1).range(0.0001, 0.9999).doc("target mean activation");
  r.add<Loss>("kl_sparsity", k, [](const Params& p) { return std::make_unique<KlSparsity>(p); });
}

}  // namespace
}  // namespace loom::losses

LOOM_PLUGIN("loom_losses", "0.1.0", "Regression, classification and penalty losses",
            loom::losses::register_types)
