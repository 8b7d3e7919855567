// Dense float32 tensors, batch first. Buffers are 64-byte aligned and shared between views;
// resize() reuses capacity so per-step activations do not reallocate.
//
// Layout: plain row-major, except a batch of feature maps (N, C, H, W) that the model keeps
// channel-blocked between layers that can take it (blocked(): oneDNN's nChw16c, C a multiple of
// kChannelBlock, element (n, c, h, w) at ((n·C/16 + c/16)·H·W + h·W + w)·16 + c%16). The shape is
// the logical (N, C, H, W) either way, and each sample still occupies C·H·W consecutive values.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/export.hpp"

namespace loom {

using Shape = std::vector<int64_t>;

// The channel block of the blocked layout (16 floats: one AVX-512 register).
inline constexpr int64_t kChannelBlock = 16;

LOOM_API int64_t numel(const Shape& s);
LOOM_API std::string to_string(const Shape& s);  // "(28, 28)"

class LOOM_API Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape);  // zero-filled

  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_[i]; }
  size_t rank() const { return shape_.size(); }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  float* data() { return data_; }
  const float* data() const { return data_; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

  // Changes the shape; reallocates only if the new size exceeds the capacity. Contents are
  // unspecified afterwards unless the size is unchanged.
  void resize(const Shape& shape);
  // Same data, another shape of equal size (shares the buffer).
  Tensor reshaped(const Shape& shape) const;
  // Rows [begin, end) of the first dimension, sharing the buffer.
  Tensor slice(int64_t begin, int64_t end) const;
  Tensor clone() const;
  void fill(float v);
  void zero() { fill(0.f); }
  void copy_from(const Tensor& other);  // same size required
  // Channel-blocked (see above). Set by the model graph; layers read it. Views share it.
  bool blocked() const { return blocked_; }
  void set_blocked(bool b) { blocked_ = b; }

 private:
  Shape shape_;
  int64_t size_ = 0;
  int64_t capacity_ = 0;
  std::shared_ptr<float> buffer_;
  float* data_ = nullptr;
  bool blocked_ = false;
};

// Layout conversions of n feature maps of c channels (a multiple of kChannelBlock) and hw pixels.
LOOM_API void to_blocked(const float* plain, float* blocked, int64_t n, int64_t c, int64_t hw);
LOOM_API void to_plain(const float* blocked, float* plain, int64_t n, int64_t c, int64_t hw);

}  // namespace loom
