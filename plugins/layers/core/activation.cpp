// Standalone activation layers (relu, leaky_relu, sigmoid, tanh, linear, elu, softplus, swish,
// gelu) on oneDNN eltwise primitives; the helpers are shared with layers that fuse activations.
#include <cstring>
#include <map>

#include "loom/error.hpp"
#include "loom/layer.hpp"
#include "primitives.hpp"

namespace loom::core {

namespace {

class ActivationLayer : public Layer {
 public:
  ActivationLayer(Act act, float alpha) : act_(act), alpha_(alpha) {}
  Shape infer(const std::vector<Shape>& in) override { return in[0]; }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    if (act_ == Act::Linear) {
      out.copy_from(*in[0]);
      return;
    }
    prepare(in[0]->size()).forward(in[0]->data(), out.data());
  }
  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    if (act_ == Act::Linear) {
      din[0]->copy_from(dout);
      return;
    }
    prepare(in[0]->size()).backward(in[0]->data(), out.data(), dout.data(), din[0]->data());
  }

 private:
  Eltwise& prepare(int64_t n) {
    Eltwise& e = cache_[n];
    if (!e.ready())
      e.init(act_,
             act_ == Act::LeakyRelu                     ? alpha_
             : (act_ == Act::Elu || act_ == Act::Swish) ? alpha_
                                                        : 0.f,
             n);
    return e;
  }
  Act act_;
  float alpha_;
  std::map<int64_t, Eltwise> cache_;
};

}  // namespace

void register_activations(Registry& r) {
  auto add = [&](const std::string& name, const std::string& doc, Act act, float alpha_default,
                 bool has_alpha) {
    Spec s(doc);
    if (has_alpha) s.add("alpha", Type::Float).def(alpha_default).doc("slope / scale parameter");
    r.add<Layer>(name, s, [act, has_alpha, alpha_default](const Params& p) {
      return std::make_unique<ActivationLayer>(act,
                                               has_alpha ? float(p.f("alpha")) : alpha_default);
    });
  };
  add("relu", "Rectified linear unit: max(x, 0).", Act::Relu, 0.f, false);
  add("leaky_relu", "Leaky ReLU: x if x > 0 else alpha * x (Keras default alpha 0.3).",
      Act::LeakyRelu, 0.3f, true);
  add("sigmoid", "Logistic sigmoid 1 / (1 + exp(-x)).", Act::Sigmoid, 0.f, false);
  add("tanh", "Hyperbolic tangent.", Act::Tanh, 0.f, false);
  add("linear", "Identity.", Act::Linear, 0.f, false);
  add("elu", "Exponential linear unit.", Act::Elu, 1.f, true);
  add("softplus", "log(1 + exp(x)).", Act::Softplus, 0.f, false);
  add("swish", "x * sigmoid(alpha * x) (SiLU for alpha = 1).", Act::Swish, 1.f, true);
  add("gelu", "Gaussian error linear unit (erf form).", Act::Gelu, 0.f, false);
}

}  // namespace loom::core
