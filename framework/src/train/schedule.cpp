#include "train/schedule.hpp"

#include <cmath>

#include "config/yaml_util.hpp"

namespace loom {

Schedule::Schedule(double base_lr, const Params& p) : base_(base_lr) {
  if (!p.impl().node.IsDefined() || p.impl().node.IsNull()) return;
  Spec s;
  s.add("type", Type::String)
      .def("constant")
      .choices({"constant", "step", "exponential", "cosine"})
      .doc("shape");
  s.add("warmup_steps", Type::Int).def(0).min(0).doc("linear warm-up from 0");
  s.add("step_size", Type::Int).min(1).doc("step: multiply by gamma every step_size steps");
  s.add("gamma", Type::Float).min(0).doc("step: factor");
  s.add("decay_steps", Type::Int).min(1).doc("exponential: steps per decay_rate; cosine: length");
  s.add("decay_rate", Type::Float).min(0).doc("exponential: factor per decay_steps");
  s.add("min_lr", Type::Float).min(0).doc("cosine: final learning rate");
  Problems problems;
  check_params(p.impl().node, s, p.impl().file, p.path(), {}, problems);
  problems.raise_if_any();
  Params v = make_params(p.impl().node, s, p.impl().file, p.path());
  std::string t = v.s("type");
  kind_ = t == "step"          ? Kind::Step
          : t == "exponential" ? Kind::Exponential
          : t == "cosine"      ? Kind::Cosine
                               : Kind::Constant;
  warmup_ = v.i("warmup_steps");
  if (kind_ == Kind::Step) {
    if (!v.given("step_size")) v.fail("a step schedule needs 'step_size'");
    step_size_ = v.i("step_size");
    gamma_ = v.given("gamma") ? v.f("gamma") : 0.1;
  }
  if (kind_ == Kind::Exponential || kind_ == Kind::Cosine) {
    if (!v.given("decay_steps")) v.fail("a " + t + " schedule needs 'decay_steps'");
    decay_steps_ = v.i("decay_steps");
    gamma_ = v.given("decay_rate") ? v.f("decay_rate") : 0.96;
    min_lr_ = v.given("min_lr") ? v.f("min_lr") : 0.0;
  }
}

double Schedule::at(int64_t step) const {
  if (warmup_ > 0 && step < warmup_) return base_ * double(step + 1) / double(warmup_);
  int64_t s = step - warmup_;
  switch (kind_) {
    case Kind::Constant:
      return base_;
    case Kind::Step:
      return base_ * std::pow(gamma_, double(s / step_size_));
    case Kind::Exponential:
      return base_ * std::pow(gamma_, double(s) / double(decay_steps_));
    case Kind::Cosine: {
      double f = std::min(1.0, double(s) / double(decay_steps_));
      return min_lr_ + (base_ - min_lr_) * 0.5 * (1 + std::cos(M_PI * f));
    }
  }
  return base_;
}

}  // namespace loom
