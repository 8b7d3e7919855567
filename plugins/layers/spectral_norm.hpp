// Spectral normalisation of a kernel (Miyato et al. 2018): the layer computes with W / σ(W), σ the
// largest singular value, estimated by one power iteration per training step from a persistent
// vector u (a non-trainable parameter, so it is checkpointed and restored by --resume).
//
// The kernel is seen as an R x C matrix (row-major; a dense kernel (in, out) has R = in, a
// convolution kernel (out, in, kh, kw) has R = out); σ is the same for a matrix and its transpose.
//
//   training step:  v = W^T u / |W^T u|,  u = W v / |W v|  (u stored),  σ = u^T W v
//   otherwise:      v = W^T u / |W^T u|,  σ = u^T W v      (u left as it is)
//
// The gradient treats u and v as constants and differentiates σ = u^T W v (as PyTorch does):
//   dL/dW = (G - <G, W/σ> u v^T) / σ,  G = dL/d(W/σ).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "loom/layer.hpp"

namespace loom::layers {

class SpectralNorm {
 public:
  // Writes W/σ into w_sn; with `update`, refines u (R values, unit length) by one iteration.
  void normalise(const float* w, int64_t R, int64_t C, float* u, bool update, float* w_sn) {
    R_ = R;
    C_ = C;
    std::vector<double> uu(u, u + R), wv(size_t(R), 0.0);
    normalise_vector(uu);
    v_.assign(size_t(C), 0.0);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) v_[size_t(c)] += double(w[r * C + c]) * uu[size_t(r)];
    normalise_vector(v_);
    for (int64_t r = 0; r < R; ++r) {
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += double(w[r * C + c]) * v_[size_t(c)];
      wv[size_t(r)] = s;
    }
    if (update) {
      uu = wv;
      normalise_vector(uu);
      for (int64_t r = 0; r < R; ++r) u[r] = float(uu[size_t(r)]);
    }
    u_ = uu;
    double sigma = 0;
    for (int64_t r = 0; r < R; ++r) sigma += uu[size_t(r)] * wv[size_t(r)];
    sigma_ = sigma > 1e-12 ? sigma : 1e-12;
    for (int64_t i = 0; i < R * C; ++i) w_sn[i] = float(double(w[i]) / sigma_);
  }

  // Adds dL/dW into g_w, given G = dL/d(W/σ) and the W/σ of the last normalise().
  void backward(const float* g_sn, const float* w_sn, float* g_w) const {
    double dot = 0;
    for (int64_t i = 0; i < R_ * C_; ++i) dot += double(g_sn[i]) * double(w_sn[i]);
    for (int64_t r = 0; r < R_; ++r)
      for (int64_t c = 0; c < C_; ++c) {
        int64_t i = r * C_ + c;
        g_w[i] += float((double(g_sn[i]) - dot * u_[size_t(r)] * v_[size_t(c)]) / sigma_);
      }
  }

  double sigma() const { return sigma_; }

 private:
  static void normalise_vector(std::vector<double>& x) {
    double n = 0;
    for (double a : x) n += a * a;
    n = std::sqrt(n);
    if (n < 1e-12) {  // a zero vector: restart from e_0
      for (auto& a : x) a = 0;
      if (!x.empty()) x[0] = 1;
      return;
    }
    for (auto& a : x) a /= n;
  }
  int64_t R_ = 0, C_ = 0;
  std::vector<double> u_, v_;
  double sigma_ = 1;
};

// A layer's kernel under spectral normalisation (the `spectral_norm: true` option): the vector u
// as a non-trainable parameter "sn_u" beside the kernel, the normalised kernel the layer computes
// with, and the gradient passed back to the kernel.
class SpectralKernel {
 public:
  // The kernel is a rows x cols matrix (row-major).
  void build(LayerBuilder& b, int64_t rows, int64_t cols) {
    rows_ = rows;
    cols_ = cols;
    u_ = b.param("sn_u", {rows}, "glorot_normal", 1, 1, /*trainable=*/false);
  }
  // W/σ for this call; u moves one power iteration per training step, never when frozen.
  const float* weights(const RunContext& ctx, const Param& kernel) {
    w_.resize({rows_ * cols_});
    sn_.normalise(kernel.value.data(), rows_, cols_, u_->value.data(), ctx.training && !ctx.frozen,
                  w_.data());
    return w_.data();
  }
  // Where the layer adds dL/d(W/σ) (zeroed), or null when the kernel takes no gradient.
  float* grad_target(const Param& kernel) {
    if (!kernel.trainable) return nullptr;
    g_.resize({rows_ * cols_});
    g_.fill(0.f);
    return g_.data();
  }
  // Adds dL/dW into the kernel's gradient.
  void finish_grad(Param& kernel) {
    if (kernel.trainable) sn_.backward(g_.data(), w_.data(), kernel.grad.data());
  }
  const float* current() const { return w_.data(); }

 private:
  SpectralNorm sn_;
  ParamPtr u_;
  Tensor w_, g_;
  int64_t rows_ = 0, cols_ = 0;
};

}  // namespace loom::layers
