// Optimizers. The framework owns the per-parameter state ("slots", zero-initialised tensors of
// the parameter's shape, saved in checkpoints) and calls update() once per step for every
// trainable parameter, with the scheduled learning rate and the 1-based step count t.
#pragma once
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/layer.hpp"
#include "loom/registry.hpp"

namespace loom {

class LOOM_API Optimizer {
 public:
  static constexpr Kind kind = Kind::Optimizer;
  virtual ~Optimizer();
  virtual std::vector<std::string> slot_names() const { return {}; }
  virtual double learning_rate() const = 0;  // the configured (base) learning rate
  virtual void update(Param& p, std::vector<Tensor>& slots, float lr, int64_t t) = 0;
};

}  // namespace loom
