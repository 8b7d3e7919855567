// Standalone activation layers, one per entry of the activation table (plugins/layers/dnn/
// activation.hpp): relu, leaky_relu, sigmoid, tanh, linear, elu, selu, softplus, swish, silu,
// gelu, plus `activation` that names one ({type: activation, activation: elu}). They run the same
// oneDNN eltwise primitives as the activations fused into dense and convolutional layers.
#include "dnn/activation.hpp"

#include <map>

#include "loom/error.hpp"
#include "loom/layer.hpp"

namespace loom::core {

namespace {

using dnn::Act;
using dnn::Activation;

class ActivationLayer : public Layer {
 public:
  ValueRange range(const std::vector<ValueRange>& in) const override {
    return dnn::range_of(act_, in[0]);
  }
  explicit ActivationLayer(const Activation& act) : act_(act) {}
  // Element-wise: any layout.
  LayoutRole layout_role() const override { return LayoutRole::Follows; }
  Shape infer(const std::vector<Shape>& in) override { return in[0]; }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    if (act_.act == Act::Linear) {
      out.copy_from(*in[0]);
      return;
    }
    prepare(in[0]->size()).forward(in[0]->data(), out.data());
  }
  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    if (act_.act == Act::Linear) {
      din[0]->copy_from(dout);
      return;
    }
    prepare(in[0]->size()).backward(in[0]->data(), out.data(), dout.data(), din[0]->data());
  }

 private:
  dnn::Eltwise& prepare(int64_t n) {
    dnn::Eltwise& e = cache_[n];
    if (!e.ready()) e.init(act_, n, scratch_);
    return e;
  }
  Activation act_;
  dnn::Scratchpad scratch_;
  std::map<int64_t, dnn::Eltwise> cache_;
};

const char* formula(const std::string& name) {
  static const std::map<std::string, const char*> docs{
      {"linear", "Identity."},
      {"relu", "Rectified linear unit: max(x, 0)."},
      {"leaky_relu", "Leaky ReLU: x if x > 0 else alpha·x (Keras default alpha 0.3)."},
      {"sigmoid", "Logistic sigmoid 1 / (1 + exp(-x))."},
      {"tanh", "Hyperbolic tangent."},
      {"elu", "Exponential linear unit: x if x > 0 else alpha·(exp(x) - 1), alpha 1 by default."},
      {"selu", "Scaled ELU: λ·elu_α(x), λ = 1.0507, α = 1.6733 (self-normalising networks)."},
      {"softplus", "log(1 + exp(x))."},
      {"swish", "x·sigmoid(alpha·x); alpha 1 (the default) is SiLU."},
      {"silu", "Sigmoid linear unit x·sigmoid(x) (swish with alpha 1)."},
      {"gelu", "Gaussian error linear unit x·Φ(x), erf form."}};
  auto it = docs.find(name);
  return it == docs.end() ? "Activation." : it->second;
}

}  // namespace

void register_activations(Registry& r) {
  for (const std::string& name : dnn::activation_names()) {
    Activation def = dnn::activation(name);
    Spec s(formula(name));
    if (dnn::takes_alpha(def.act))
      s.add("alpha", Type::Float).def(double(def.alpha)).doc(dnn::alpha_doc());
    r.add<Layer>(name, s, [name](const Params& p) {
      Activation a = dnn::activation(name);
      if (dnn::takes_alpha(a.act)) {
        a.alpha = float(p.f("alpha"));
        if (a.act != Act::Swish && a.alpha < 0.f) p.fail("alpha", "must be >= 0 for " + name);
      }
      return std::make_unique<ActivationLayer>(a);
    });
  }
  Spec g("Applies the named activation (any of the activation layers above).");
  g.add("activation", Type::String)
      .required()
      .choices(dnn::activation_names())
      .doc("the activation");
  g.add("alpha", Type::Float).doc(dnn::alpha_doc());
  r.add<Layer>("activation", g, [](const Params& p) {
    return std::make_unique<ActivationLayer>(dnn::activation_param(p));
  });
}

}  // namespace loom::core
