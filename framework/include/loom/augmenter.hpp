// Data augmenters. A per-sample augmenter transforms one image in place; the data stage calls
// it with the sample's own random stream, keyed by (seed, epoch, sample index), so the result
// does not depend on threads. Each augmenter declares and applies its probability `p` itself.
// Batch-level augmenters (mixup, cutmix) see a whole batch and its one-hot labels.
#pragma once
#include <cstdint>

#include "loom/export.hpp"
#include "loom/registry.hpp"
#include "loom/rng.hpp"
#include "loom/tensor.hpp"

namespace loom {

// One image, channels first (C, H, W), float values in [lo, hi] (e.g. [0, 1] or [0, 255]).
struct Image {
  float* data;
  int64_t c, h, w;
  float lo, hi;
  float& at(int64_t ch, int64_t y, int64_t x) { return data[(ch * h + y) * w + x]; }
  float at(int64_t ch, int64_t y, int64_t x) const { return data[(ch * h + y) * w + x]; }
  int64_t size() const { return c * h * w; }
};

class LOOM_API Augmenter {
 public:
  static constexpr Kind kind = Kind::Augmenter;
  virtual ~Augmenter();
  // Per-sample transform; `rng` is this sample's own stream.
  virtual void apply(Image& image, Rng& rng) const = 0;
  // Batch-level augmenters return true and implement apply_batch instead.
  virtual bool batch_level() const { return false; }
  // x: (N, ...) images; y: (N, classes) one-hot (or soft) labels, mixed in place.
  virtual void apply_batch(Tensor& x, Tensor& y, Rng& rng) const;
};

}  // namespace loom
