// Losses and penalty terms. A loss returns the mean value over the batch (for element-wise
// losses, also over elements, as Keras reports it) and, when grad is given, overwrites it with
// weight * d(value)/d(pred). A penalty (needs_target() == false) is computed from pred alone,
// e.g. a sparsity penalty on a layer's activations.
#pragma once
#include "loom/export.hpp"
#include "loom/registry.hpp"
#include "loom/tensor.hpp"

namespace loom {

class LOOM_API Loss {
 public:
  static constexpr Kind kind = Kind::Loss;
  virtual ~Loss();
  virtual bool needs_target() const { return true; }
  // Whether the target is a class label per sample (index, or one-hot row) rather than values
  // shaped like the prediction; recipes check at validation that their loss fits.
  virtual bool takes_class_labels() const { return false; }
  virtual double compute(const Tensor& pred, const Tensor* target, Tensor* grad,
                         float weight) const = 0;
};

}  // namespace loom
