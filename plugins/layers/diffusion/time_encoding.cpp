// time_encoding: the sinusoidal encoding of a diffusion time step (Vaswani et al.'s positional
// encoding, as the chapter's TimeEncoding builds it). For a step t and an even `size`:
//   y[2k]     = sin(t / 10000^(2k / size))
//   y[2k + 1] = cos(t / 10000^(2k / size))      k = 0 .. size/2 - 1
// Input (1): the time step, a float as batches hold it; output (size). The T + 1 rows of integer
// steps 0..T are tabulated once (computed in double, stored as float, like the chapter's table);
// a fractional step in [0, T] (continuous-time samplers) takes the same formula directly, so the
// layer is differentiable in t: backward gives dy[2k]/dt = w_k cos(t w_k),
// dy[2k+1]/dt = -w_k sin(t w_k) with w_k = 10000^(-2k/size). It has no parameters.
#include <cmath>

#include "loom/layer.hpp"

namespace loom::diffusion {

class TimeEncodingLayer : public Layer {
 public:
  explicit TimeEncodingLayer(const Params& p) : T_(p.i("timesteps")), size_(p.i("size")) {
    if (size_ % 2) p.fail("size", "the encoding size must be even, got " + std::to_string(size_));
    freq_.resize(size_t(size_ / 2));
    for (int64_t k = 0; k < size_ / 2; ++k)
      freq_[size_t(k)] = std::pow(10000.0, -double(2 * k) / double(size_));
    table_.resize(size_t((T_ + 1) * size_));
    for (int64_t t = 0; t <= T_; ++t) encode(double(t), table_.data() + t * size_);
  }

  Shape infer(const std::vector<Shape>& in) override {
    if (in[0] != Shape{1})
      throw Error("time_encoding takes one time step per sample, shape (1), got " +
                  to_string(in[0]));
    return {size_};
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    const Tensor& x = *in[0];
    for (int64_t b = 0; b < x.size(); ++b) {
      double t = step(x[b]);
      float* y = out.data() + b * size_;
      if (t == std::floor(t))
        std::copy(table_.data() + int64_t(t) * size_, table_.data() + (int64_t(t) + 1) * size_, y);
      else
        encode(t, y);
    }
  }

  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    const Tensor& x = *in[0];
    for (int64_t b = 0; b < x.size(); ++b) {
      double t = step(x[b]), g = 0;
      const float* d = dout.data() + b * size_;
      for (int64_t k = 0; k < size_ / 2; ++k) {
        double w = freq_[size_t(k)];
        g += d[2 * k] * w * std::cos(t * w) - d[2 * k + 1] * w * std::sin(t * w);
      }
      (*din[0])[b] = float(g);
    }
  }

 private:
  void encode(double t, float* y) const {
    for (int64_t k = 0; k < size_ / 2; ++k) {
      y[2 * k] = float(std::sin(t * freq_[size_t(k)]));
      y[2 * k + 1] = float(std::cos(t * freq_[size_t(k)]));
    }
  }
  double step(float v) const {
    if (!(v >= 0.f) || v > float(T_))
      throw Error("layer '" + name() + "': time step " + std::to_string(v) + " is not in [0, " +
                  std::to_string(T_) + "] (timesteps: the diffusion's T)");
    return double(v);
  }

  int64_t T_, size_;
  std::vector<double> freq_;
  std::vector<float> table_;
};

void register_time_encoding(Registry& r) {
  Spec s(
      "Sinusoidal encoding of a diffusion time step: input (1) -> (size), "
      "y[2k] = sin(t / 10000^(2k/size)), y[2k+1] = cos(t / 10000^(2k/size)); the steps 0..T are "
      "tabulated, fractional steps computed. No parameters.");
  s.add("timesteps", Type::Int)
      .required()
      .min(1)
      .doc("T: the largest time step (table rows T + 1)");
  s.add("size", Type::Int).def(64).min(2).doc("encoding size (even)");
  r.add<Layer>("time_encoding", s,
               [](const Params& p) { return std::make_unique<TimeEncodingLayer>(p); });
}

}  // namespace loom::diffusion
