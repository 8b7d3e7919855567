// sampling: the reparameterised Gaussian sample of a variational autoencoder,
//   z = mean + exp(log_var / 2) · ε,  ε ~ N(0, 1),
// with the latent KL loss kl_weight · mean_batch(-0.5 · Σ (1 + log_var - exp(log_var) - mean²))
// reported through penalty() and its gradient added in backward. ε comes from a counter-based
// stream keyed by (seed, RunContext::stream(layer), step, RunContext::row(sample)): each call,
// step and batch draws fresh noise (in inference too: the rows of a pass are numbered across its
// batches), the same seed repeats it, and backward regenerates it instead of storing it.
#include <cmath>

#include "loom/error.hpp"
#include "loom/layer.hpp"
#include "loom/rng.hpp"

namespace loom::probabilistic {
namespace {

class SamplingLayer : public Layer {
 public:
  explicit SamplingLayer(const Params& p)
      : kl_weight_(float(p.f("kl_weight"))), deterministic_(p.b("deterministic_inference")) {}

  int min_inputs() const override { return 2; }
  int max_inputs() const override { return 2; }
  Shape infer(const std::vector<Shape>& in) override {
    if (in[0] != in[1])
      throw Error("sampling needs mean and log_var of equal shape, got " + to_string(in[0]) +
                  " and " + to_string(in[1]));
    return in[0];
  }

  void forward(const RunContext& ctx, const std::vector<const Tensor*>& in, Tensor& out) override {
    const Tensor& mean = *in[0];
    const Tensor& log_var = *in[1];
    int64_t batch = mean.dim(0), per = mean.size() / batch;
    bool sample = samples(ctx);
    const uint64_t stream = ctx.stream(hash_string(name()));
    double kl = 0;
    for (int64_t b = 0; b < batch; ++b) {
      Rng rng(ctx.seed, stream, uint64_t(ctx.step), ctx.row(b));
      const float* m = mean.data() + b * per;
      const float* v = log_var.data() + b * per;
      float* z = out.data() + b * per;
      for (int64_t i = 0; i < per; ++i) {
        z[i] = sample ? m[i] + std::exp(0.5f * v[i]) * rng.normal() : m[i];
        kl += 1.0 + v[i] - std::exp(double(v[i])) - double(m[i]) * m[i];
      }
    }
    penalty_ = kl_weight_ * -0.5 * kl / double(batch);
  }

  void backward(const RunContext& ctx, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    const Tensor& mean = *in[0];
    const Tensor& log_var = *in[1];
    int64_t batch = mean.dim(0), per = mean.size() / batch;
    bool sample = samples(ctx);
    float k = kl_weight_ / float(batch);
    if (din[0]) {
      for (int64_t i = 0; i < mean.size(); ++i) (*din[0])[i] = dout[i] + k * mean[i];
    }
    if (din[1]) {
      const uint64_t stream = ctx.stream(hash_string(name()));
      for (int64_t b = 0; b < batch; ++b) {
        Rng rng(ctx.seed, stream, uint64_t(ctx.step), ctx.row(b));
        const float* v = log_var.data() + b * per;
        const float* g = dout.data() + b * per;
        float* d = din[1]->data() + b * per;
        for (int64_t i = 0; i < per; ++i) {
          // dz/dlog_var = 0.5 · exp(log_var / 2) · ε
          float e = std::exp(0.5f * v[i]);
          float dz = sample ? 0.5f * e * rng.normal() : 0.f;
          d[i] = g[i] * dz + 0.5f * k * (e * e - 1.f);
        }
      }
    }
  }

  double penalty() const override { return penalty_; }

 private:
  bool samples(const RunContext& ctx) const { return ctx.training || !deterministic_; }
  float kl_weight_;
  bool deterministic_;
  double penalty_ = 0;
};

}  // namespace

void register_sampling(Registry& r) {
  Spec s(
      "Reparameterised Gaussian sample z = mean + exp(log_var/2)·ε of a variational autoencoder; "
      "inputs: [mean, log_var] of equal shape. Adds the latent KL loss "
      "kl_weight · mean_batch(-0.5·Σ(1 + log_var - exp(log_var) - mean²)).");
  s.add("kl_weight", Type::Float).def(1.0).min(0).doc("factor of the KL loss (0 disables it)");
  s.add("deterministic_inference", Type::Bool)
      .def("false")
      .doc("output the mean instead of a sample when not training");
  r.add<Layer>("sampling", s, [](const Params& p) { return std::make_unique<SamplingLayer>(p); });
}

}  // namespace loom::probabilistic
