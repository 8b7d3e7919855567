// Adversarial losses on discriminator logits l (one per sample), each the mean over the batch,
// with the gradient d(loss)/d(l) written into `grad` (scaled by `scale`) when given.
//
//   bce            D: softplus(-l_real)·(1-s) + s·softplus(l_real) on real (one-sided smoothing:
//                     target 1 - s), softplus(l_fake) on fake — binary cross-entropy computed
//                     from logits, stable for any l.  G (non-saturating): softplus(-l_fake).
//   hinge          D: relu(1 - l_real), relu(1 + l_fake).   G: -l_fake.
//   least_squares  D: ½(l_real - (1 - s))², ½ l_fake².       G: ½(l_fake - 1)².
//
// The discriminator's loss is the mean of its real and fake halves (as Keras's loss over the
// concatenated batch of the chapter's loop).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

namespace loom::recipes {

enum class GanLoss { Bce, Hinge, LeastSquares };

inline double softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
inline double sigmoid(double x) {
  return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}

// Loss of logits `l` (n values) that should look real (target true) or fake, for the
// discriminator (`for_generator` false) or the generator's view of fakes.
inline double gan_loss(GanLoss kind, const float* l, int64_t n, bool real, bool for_generator,
                       double smoothing, float* grad, double scale) {
  double sum = 0;
  double t = real ? 1.0 - smoothing : 0.0;  // target probability (bce, least squares)
  for (int64_t i = 0; i < n; ++i) {
    double x = l[i], v = 0, d = 0;
    switch (kind) {
      case GanLoss::Bce:
        if (for_generator) {
          v = softplus(-x);
          d = sigmoid(x) - 1;
        } else {
          // -t·log σ(x) - (1-t)·log(1-σ(x)) = softplus(x) - t·x
          v = softplus(x) - t * x;
          d = sigmoid(x) - t;
        }
        break;
      case GanLoss::Hinge:
        if (for_generator) {
          v = -x;
          d = -1;
        } else if (real) {
          v = std::max(0.0, 1 - x);
          d = x < 1 ? -1 : 0;
        } else {
          v = std::max(0.0, 1 + x);
          d = x > -1 ? 1 : 0;
        }
        break;
      case GanLoss::LeastSquares: {
        double target = for_generator ? 1.0 : t;
        v = 0.5 * (x - target) * (x - target);
        d = x - target;
        break;
      }
    }
    sum += v;
    if (grad) grad[i] = float(d * scale / double(n));
  }
  return n ? sum / double(n) : 0.0;
}

inline GanLoss gan_loss_kind(const std::string& name) {
  if (name == "hinge") return GanLoss::Hinge;
  if (name == "least_squares") return GanLoss::LeastSquares;
  return GanLoss::Bce;
}

}  // namespace loom::recipes
