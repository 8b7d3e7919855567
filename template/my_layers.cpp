// An example Loom plugin: one layer, `clip`, that limits values to [low, high].
// Everything a plugin needs comes from the SDK headers under loom/.
#include <algorithm>
#include <loom/layer.hpp>
#include <loom/plugin.hpp>

namespace {

class ClipLayer : public loom::Layer {
 public:
  explicit ClipLayer(const loom::Params& p) : low_(float(p.f("low"))), high_(float(p.f("high"))) {
    if (low_ > high_) p.fail("low", "must not exceed high");
  }
  // Output shape from input shapes (the batch dimension is not included).
  loom::Shape infer(const std::vector<loom::Shape>& in) override { return in[0]; }
  void forward(const loom::RunContext&, const std::vector<const loom::Tensor*>& in,
               loom::Tensor& out) override {
    const float* x = in[0]->data();
    for (int64_t i = 0; i < out.size(); ++i) out[i] = std::clamp(x[i], low_, high_);
  }
  // Gradient passes where the value was not clipped.
  void backward(const loom::RunContext&, const std::vector<const loom::Tensor*>& in,
                const loom::Tensor&, const loom::Tensor& dout,
                const std::vector<loom::Tensor*>& din) override {
    if (!din[0]) return;
    const float* x = in[0]->data();
    for (int64_t i = 0; i < dout.size(); ++i)
      (*din[0])[i] = (x[i] > low_ && x[i] < high_) ? dout[i] : 0.f;
  }

 private:
  float low_, high_;
};

void register_types(loom::Registry& r) {
  loom::Spec s("Clips values to [low, high].");
  s.add("low", loom::Type::Float).def(0.0).doc("lower bound");
  s.add("high", loom::Type::Float).def(1.0).doc("upper bound");
  r.add<loom::Layer>("clip", s,
                     [](const loom::Params& p) { return std::make_unique<ClipLayer>(p); });
}

}  // namespace

LOOM_PLUGIN("my_layers", "1.0.0", "Example plugin: the clip layer", register_types)
