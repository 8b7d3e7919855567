// Multi-class cross-entropy losses over the last axis (K classes; leading axes are rows):
//   softmax_crossentropy             sparse integer labels, logits by default
//   sparse_categorical_crossentropy  sparse integer labels, probabilities by default (Keras)
//   categorical_crossentropy         one-hot or soft targets (mixup), probabilities by default
// Each returns the mean over rows and writes weight · d(mean)/d(pred).
//
// From logits: -Σ t·log_softmax(z), computed with log-sum-exp; gradient softmax(z)·Σt - t.
// From probabilities (as Keras): p is normalised to sum 1 over the row, clipped to
// [eps, 1 - eps], and -Σ t·log(p) is taken; clipped entries pass no gradient.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "loom/error.hpp"
#include "loom/loss.hpp"
#include "loom/plugin.hpp"

namespace loom::losses {
namespace {

class CrossEntropy : public Loss {
 public:
  CrossEntropy(const Params& p, bool sparse)
      : sparse_(sparse), logits_(p.b("from_logits")), eps_(float(p.f("epsilon"))) {}
  bool takes_class_labels() const override { return true; }

  double compute(const Tensor& pred, const Tensor* target, Tensor* grad,
                 float weight) const override {
    if (!target) throw Error("this loss needs a target");
    if (pred.rank() < 2)
      throw Error("cross-entropy expects predictions (batch, classes), got " +
                  to_string(pred.shape()));
    int64_t k = pred.shape().back(), rows = pred.size() / k;
    if (sparse_) {
      if (target->size() != rows)
        throw Error("sparse labels " + to_string(target->shape()) + " do not match predictions " +
                    to_string(pred.shape()) + ": one integer class per row expected");
    } else if (target->size() != pred.size()) {
      throw Error("prediction " + to_string(pred.shape()) + " and target " +
                  to_string(target->shape()) + " differ in size");
    }
    std::vector<double> t(static_cast<size_t>(k)), q(static_cast<size_t>(k));
    double total = 0;
    float scale = weight / float(rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float* z = pred.data() + r * k;
      // The row's target distribution.
      if (sparse_) {
        float label = (*target)[r];
        auto c = int64_t(std::lround(label));
        if (c < 0 || c >= k || std::fabs(label - float(c)) > 1e-3f)
          throw Error("label " + std::to_string(label) + " is not a class index in [0, " +
                      std::to_string(k) + ")");
        std::fill(t.begin(), t.end(), 0.0);
        t[size_t(c)] = 1.0;
      } else {
        for (int64_t j = 0; j < k; ++j) t[size_t(j)] = (*target)[r * k + j];
      }
      double tsum = 0;
      for (double v : t) tsum += v;
      float* g = grad ? grad->data() + r * k : nullptr;
      if (logits_) {
        double mx = z[0];
        for (int64_t j = 1; j < k; ++j) mx = std::max(mx, double(z[j]));
        double se = 0;
        for (int64_t j = 0; j < k; ++j) se += std::exp(double(z[j]) - mx);
        double lse = mx + std::log(se);
        for (int64_t j = 0; j < k; ++j) {
          total -= t[size_t(j)] * (double(z[j]) - lse);
          if (g) g[j] = float(scale * (std::exp(double(z[j]) - lse) * tsum - t[size_t(j)]));
        }
      } else {
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += z[j];
        if (s <= 0) s = 1e-12;
        // dL/dq_j for the clipped, normalised q; then through q = p / s.
        double gq_dot_q = 0;
        for (int64_t j = 0; j < k; ++j) {
          double qj = z[j] / s;
          double c = std::min(std::max(qj, double(eps_)), 1.0 - eps_);
          total -= t[size_t(j)] * std::log(c);
          bool clipped = qj < eps_ || qj > 1.0 - eps_;
          q[size_t(j)] = clipped ? 0.0 : -t[size_t(j)] / c;  // dL/dq_j
          gq_dot_q += q[size_t(j)] * qj;
        }
        if (g)
          for (int64_t j = 0; j < k; ++j) g[j] = float(scale * (q[size_t(j)] - gq_dot_q) / s);
      }
    }
    return total / double(rows);
  }

 private:
  bool sparse_, logits_;
  float eps_;
};

Spec spec(const std::string& doc, bool logits) {
  Spec s(doc);
  s.add("from_logits", Type::Bool)
      .def(logits ? "true" : "false")
      .doc(
          "predictions are logits (softmax applied inside, log-sum-exp); otherwise "
          "probabilities");
  s.add("epsilon", Type::Float)
      .def(1e-7)
      .range(0, 0.1)
      .doc("clipping of probabilities (from_logits: false)");
  return s;
}

void register_types(Registry& r) {
  r.add<Loss>("softmax_crossentropy",
              spec("Cross-entropy of softmax(logits) (batch, classes) against integer labels "
                   "(batch) or (batch, 1), mean over the batch.",
                   true),
              [](const Params& p) { return std::make_unique<CrossEntropy>(p, true); });
  r.add<Loss>("sparse_categorical_crossentropy",
              spec("Keras's sparse categorical cross-entropy: integer labels (batch) or "
                   "(batch, 1) against class probabilities (or logits with from_logits).",
                   false),
              [](const Params& p) { return std::make_unique<CrossEntropy>(p, true); });
  r.add<Loss>("categorical_crossentropy",
              spec("Cross-entropy against one-hot or soft targets (batch, classes), e.g. mixup "
                   "labels: -Σ t·log p, mean over the batch. Probabilities by default, as Keras.",
                   false),
              [](const Params& p) { return std::make_unique<CrossEntropy>(p, false); });
}

}  // namespace
}  // namespace loom::losses

LOOM_PLUGIN("loom_losses_classification", "0.1.0", "Multi-class cross-entropy losses",
            loom::losses::register_types)
