// Dense float32 tensors in plain row-major layout (batch first). Buffers are 64-byte aligned and
// shared between views; resize() reuses capacity so per-step activations do not reallocate.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/export.hpp"

namespace loom {

using Shape = std::vector<int64_t>;

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

 private:
  Shape shape_;
  int64_t size_ = 0;
  int64_t capacity_ = 0;
  std::shared_ptr<float> buffer_;
  float* data_ = nullptr;
};

}  // namespace loom
