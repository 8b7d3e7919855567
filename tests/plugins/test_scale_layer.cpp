// A third-party-style plugin used by the plugin-loading tests: registers the layer `scale_by`
// (y = factor * x). With `fail_at: N` its forward throws at the N-th training call, as a buggy
// plugin would.
#include <stdexcept>

#include "loom/layer.hpp"
#include "loom/plugin.hpp"

namespace {

class ScaleBy : public loom::Layer {
 public:
  explicit ScaleBy(const loom::Params& p)
      : factor_(float(p.f("factor"))), fail_at_(p.i("fail_at")) {}
  loom::Shape infer(const std::vector<loom::Shape>& in) override { return in[0]; }
  void forward(const loom::RunContext& ctx, const std::vector<const loom::Tensor*>& in,
               loom::Tensor& out) override {
    if (ctx.training && fail_at_ > 0 && ++calls_ == fail_at_)
      throw std::runtime_error("scale_by: failing as asked");
    for (int64_t i = 0; i < out.size(); ++i) out[i] = factor_ * (*in[0])[i];
  }
  void backward(const loom::RunContext&, const std::vector<const loom::Tensor*>&,
                const loom::Tensor&, const loom::Tensor& dout,
                const std::vector<loom::Tensor*>& din) override {
    if (din[0])
      for (int64_t i = 0; i < dout.size(); ++i) (*din[0])[i] = factor_ * dout[i];
  }

 private:
  float factor_;
  int64_t fail_at_, calls_ = 0;
};

void register_types(loom::Registry& r) {
  loom::Spec s("Multiplies its input by a constant.");
  s.add("factor", loom::Type::Float).def(2.0).doc("the constant");
  s.add("fail_at", loom::Type::Int).def(0).min(0).doc("throw at this training call (0: never)");
  r.add<loom::Layer>("scale_by", s,
                     [](const loom::Params& p) { return std::make_unique<ScaleBy>(p); });
}

}  // namespace

LOOM_PLUGIN("test_scale_layer", "1.0", "Test plugin: the scale_by layer", register_types)
