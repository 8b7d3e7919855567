// Weight initialisers: fill a tensor given the fan-in and fan-out of its layer.
#pragma once
#include "loom/export.hpp"
#include "loom/registry.hpp"
#include "loom/rng.hpp"
#include "loom/tensor.hpp"

namespace loom {

class LOOM_API Initializer {
 public:
  static constexpr Kind kind = Kind::Initializer;
  virtual ~Initializer();
  virtual void fill(Tensor& t, int64_t fan_in, int64_t fan_out, Rng& rng) const = 0;
};

}  // namespace loom
