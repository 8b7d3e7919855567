#include "loom/tensor.hpp"

#include <cstdlib>
#include <cstring>

#include "loom/error.hpp"

namespace loom {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string to_string(const Shape& s) {
  std::string o = "(";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) o += ",";
  return o + ")";
}

static std::shared_ptr<float> allocate(int64_t n) {
  size_t bytes = ((size_t(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, bytes);
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

Tensor::Tensor(Shape shape) { resize(shape); }

void Tensor::resize(const Shape& shape) {
  int64_t n = numel(shape);
  if (n > capacity_ || !buffer_) {
    buffer_ = allocate(n);
    data_ = buffer_.get();
    capacity_ = n;
  }
  shape_ = shape;
  size_ = n;
}

Tensor Tensor::reshaped(const Shape& shape) const {
  if (numel(shape) != size_)
    throw Error("cannot reshape " + to_string(shape_) + " to " + to_string(shape));
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  Tensor t = *this;
  int64_t row = shape_.empty() ? 1 : size_ / std::max<int64_t>(shape_[0], 1);
  t.shape_[0] = end - begin;
  t.data_ = data_ + begin * row;
  t.size_ = (end - begin) * row;
  t.capacity_ = t.size_;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(shape_);
  t.blocked_ = blocked_;
  if (size_) std::memcpy(t.data_, data_, size_ * sizeof(float));
  return t;
}

void Tensor::fill(float v) {
  if (v == 0.f) {
    if (size_) std::memset(data_, 0, size_t(size_) * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < size_; ++i) data_[i] = v;
}

void Tensor::copy_from(const Tensor& other) {
  if (other.size_ != size_)
    throw Error("tensor copy: size " + std::to_string(other.size_) + " into " +
                std::to_string(size_));
  if (size_ && data_ != other.data_) std::memcpy(data_, other.data_, size_ * sizeof(float));
}

namespace {
// Copies between the plain and the channel-blocked layout of n maps of c channels and hw pixels,
// one block of one map per task.
template <bool ToBlocked>
void reblock(const float* from, float* to, int64_t n, int64_t c, int64_t hw) {
  const int64_t B = kChannelBlock, cb = c / B;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < cb; ++k) {
      const int64_t plain = (i * c + k * B) * hw, blocked = (i * cb + k) * hw * B;
      for (int64_t j = 0; j < B; ++j)
        for (int64_t p = 0; p < hw; ++p) {
          if (ToBlocked)
            to[blocked + p * B + j] = from[plain + j * hw + p];
          else
            to[plain + j * hw + p] = from[blocked + p * B + j];
        }
    }
}
}  // namespace

void to_blocked(const float* plain, float* blocked, int64_t n, int64_t c, int64_t hw) {
  reblock<true>(plain, blocked, n, c, hw);
}

void to_plain(const float* blocked, float* plain, int64_t n, int64_t c, int64_t hw) {
  reblock<false>(blocked, plain, n, c, hw);
}

}  // namespace loom
