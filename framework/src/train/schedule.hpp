// Internal: learning-rate schedules (constant, step, exponential, cosine), each with an optional
// linear warm-up, evaluated at a 0-based step.
#pragma once
#include "loom/export.hpp"
#include "loom/params.hpp"

namespace loom {

class LOOM_API Schedule {
 public:
  Schedule(double base_lr, const Params& p);
  double at(int64_t step) const;

 private:
  enum class Kind { Constant, Step, Exponential, Cosine } kind_ = Kind::Constant;
  double base_, gamma_ = 0.1, min_lr_ = 0;
  int64_t warmup_ = 0, step_size_ = 1000, decay_steps_ = 1000;
};

}  // namespace loom
