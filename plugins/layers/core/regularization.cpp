// dropout, gaussian_noise, activity_regularization: layers that act only while training (the
// first two) or add a penalty to the loss (the third). Random values come from counter-based
// streams keyed by (seed, RunContext::stream(layer), step, RunContext::row(sample)), so every
// call, step and batch draws its own noise, a result never depends on threads, and the same seed
// repeats it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "loom/error.hpp"
#include "loom/layer.hpp"
#include "loom/rng.hpp"

namespace loom::core {
namespace {

// A 32-bit integer hash (the "lowbias32" finaliser): full avalanche, a few multiplies and
// shifts, so a loop over elements vectorises.
inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Dropout draws one 64-bit key per row from the row's stream and hashes (key, element index)
// into a uniform 32-bit value per element: no generator state, no branch, vectorisable. The keep
// mask of the last forward is kept as bytes for backward.
// The keep mask of one row of `per` values: position (k, p, j) — block k, pixel p, channel j of
// a block of B channels — holds plain element (k·B + j)·hw + p, so a channel-blocked map drops
// what its plain layout drops; a plain row is B = 1, hw = per.
template <int64_t B>
void draw_mask(uint8_t* __restrict m, int64_t per, int64_t hw, uint32_t lo, uint32_t hi,
               uint32_t threshold) {
  if (hw <= 0) return;
  for (int64_t k = 0; k < per / (hw * B); ++k)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t j = 0; j < B; ++j) {
        uint32_t i = uint32_t((k * B + j) * hw + p);
        m[(k * hw + p) * B + j] = hash32(hash32(i + lo) ^ hi) >= threshold;
      }
}

class DropoutLayer : public Layer {
 public:
  // Inference passes values through; training scales the kept ones by 1 / (1 - rate).
  ValueRange range(const std::vector<ValueRange>& in) const override {
    double s = rate_ < 1 ? 1.0 / (1.0 - rate_) : 1.0;
    return {std::min(in[0].lo, in[0].lo * s), std::max(in[0].hi, in[0].hi * s)};
  }
  explicit DropoutLayer(const Params& p)
      : rate_(float(p.f("rate"))),
        threshold_(uint32_t(std::min(double(rate_) * 4294967296.0, 4294967295.0))) {}
  Shape infer(const std::vector<Shape>& in) override { return in[0]; }
  // Any layout: a channel-blocked map draws each element's mask from its plain index.
  LayoutRole layout_role() const override { return LayoutRole::Follows; }

  void forward(const RunContext& ctx, const std::vector<const Tensor*>& in, Tensor& out) override {
    const Tensor& x = *in[0];
    if (!ctx.training || rate_ == 0.f) {
      out.copy_from(x);
      return;
    }
    int64_t batch = x.dim(0), per = x.size() / batch;
    const int64_t hw = x.blocked() ? x.dim(2) * x.dim(3) : per;
    mask_.resize(size_t(x.size()));
    const uint64_t stream = ctx.stream(hash_string(name()));
    const float keep = 1.f / (1.f - rate_);
    const uint32_t threshold = threshold_;
#pragma omp parallel for schedule(static) if (batch * per >= (1 << 16))
    for (int64_t b = 0; b < batch; ++b) {
      uint64_t key = Rng(ctx.seed, stream, uint64_t(ctx.step), ctx.row(b)).next_u64();
      const uint32_t lo = uint32_t(key), hi = uint32_t(key >> 32);
      const float* __restrict xb = x.data() + b * per;
      float* __restrict yb = out.data() + b * per;
      uint8_t* __restrict mb = mask_.data() + b * per;
      const uint32_t n = uint32_t(per);
      if (x.blocked())
        draw_mask<kChannelBlock>(mb, per, hw, lo, hi, threshold);
      else
        draw_mask<1>(mb, per, hw, lo, hi, threshold);
      for (uint32_t i = 0; i < n; ++i) yb[i] = xb[i] * (float(mb[i]) * keep);
    }
  }

  void backward(const RunContext& ctx, const std::vector<const Tensor*>&, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    if (!ctx.training || rate_ == 0.f) {
      din[0]->copy_from(dout);
      return;
    }
    const float keep = 1.f / (1.f - rate_);
    const float* __restrict g = dout.data();
    const uint8_t* __restrict m = mask_.data();
    float* __restrict d = din[0]->data();
    int64_t n = dout.size();
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
    for (int64_t i = 0; i < n; ++i) d[i] = g[i] * (float(m[i]) * keep);
  }

 private:
  float rate_;
  uint32_t threshold_;  // an element is dropped when its hash is below rate·2³²
  std::vector<uint8_t> mask_;
};

class GaussianNoiseLayer : public Layer {
 public:
  explicit GaussianNoiseLayer(const Params& p) : stddev_(float(p.f("stddev"))) {}
  Shape infer(const std::vector<Shape>& in) override { return in[0]; }
  void forward(const RunContext& ctx, const std::vector<const Tensor*>& in, Tensor& out) override {
    out.copy_from(*in[0]);
    if (!ctx.training || stddev_ == 0.f) return;
    int64_t batch = out.dim(0), per = out.size() / batch;
    const uint64_t stream = ctx.stream(hash_string(name()));
    for (int64_t b = 0; b < batch; ++b) {
      Rng rng(ctx.seed, stream, uint64_t(ctx.step), ctx.row(b));
      float* y = out.data() + b * per;
      for (int64_t i = 0; i < per; ++i) y[i] += stddev_ * rng.normal();
    }
  }
  void backward(const RunContext&, const std::vector<const Tensor*>&, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (din[0]) din[0]->copy_from(dout);
  }

 private:
  float stddev_;
};

// Identity that adds l1·Σ|x| + l2·Σx² (averaged over the batch, as Keras does) to the loss.
class ActivityRegularizationLayer : public Layer {
 public:
  explicit ActivityRegularizationLayer(const Params& p)
      : l1_(float(p.f("l1"))), l2_(float(p.f("l2"))) {}
  Shape infer(const std::vector<Shape>& in) override { return in[0]; }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    out.copy_from(*in[0]);
    double s1 = 0, s2 = 0;
    const float* x = in[0]->data();
    for (int64_t i = 0; i < in[0]->size(); ++i) {
      s1 += std::fabs(x[i]);
      s2 += double(x[i]) * x[i];
    }
    penalty_ = (l1_ * s1 + l2_ * s2) / double(in[0]->dim(0));
  }
  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    float inv = 1.f / float(in[0]->dim(0));
    const float* x = in[0]->data();
    const float* g = dout.data();
    float* d = din[0]->data();
    for (int64_t i = 0; i < dout.size(); ++i) {
      float sign = x[i] > 0.f ? 1.f : (x[i] < 0.f ? -1.f : 0.f);
      d[i] = g[i] + inv * (l1_ * sign + 2.f * l2_ * x[i]);
    }
  }
  double penalty() const override { return penalty_; }

 private:
  float l1_, l2_;
  double penalty_ = 0;
};

}  // namespace

void register_regularization(Registry& r) {
  Spec d(
      "Dropout: while training, zeroes each value with probability `rate` and scales the rest "
      "by 1/(1-rate); identity at inference.");
  d.add("rate", Type::Float).required().range(0, 0.999).doc("probability of dropping a value");
  r.add<Layer>("dropout", d, [](const Params& p) { return std::make_unique<DropoutLayer>(p); });
  Spec g("Adds zero-mean Gaussian noise while training; identity at inference.");
  g.add("stddev", Type::Float).required().min(0).doc("standard deviation of the noise");
  r.add<Layer>("gaussian_noise", g,
               [](const Params& p) { return std::make_unique<GaussianNoiseLayer>(p); });
  Spec a(
      "Identity that adds an activity penalty l1·Σ|x| + l2·Σx² (mean over the batch) to the loss.");
  a.add("l1", Type::Float).def(0.0).min(0).doc("L1 factor");
  a.add("l2", Type::Float).def(0.0).min(0).doc("L2 factor");
  r.add<Layer>("activity_regularization", a,
               [](const Params& p) { return std::make_unique<ActivityRegularizationLayer>(p); });
}

}  // namespace loom::core
