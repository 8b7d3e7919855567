// The activation table: every activation a layer can apply, its name(s), what its `alpha`
// parameter means and defaults to, and how it maps onto oneDNN 2.6 eltwise algorithms. The dense
// and convolutional layers and the standalone activation layers all read this one table.
//
//   linear      x
//   relu        max(x, 0)
//   leaky_relu  x if x > 0 else alpha·x                      alpha: slope, default 0.3 (Keras)
//   sigmoid     1 / (1 + exp(-x))
//   tanh        tanh(x)
//   elu         x if x > 0 else alpha·(exp(x) - 1)           alpha: scale, default 1
//   selu        λ·elu_α(x), λ = 1.0507009873554805, α = 1.6732632423543772
//   softplus    log(1 + exp(x))
//   swish       x · sigmoid(alpha·x)                         alpha: default 1 (= silu)
//   silu        x · sigmoid(x)                               (swish with alpha 1)
//   gelu        x · Φ(x) = x/2 · (1 + erf(x/√2))
#pragma once
#include <string>
#include <vector>

#include "dnn/dnn.hpp"
#include "loom/layer.hpp"
#include "loom/params.hpp"

namespace loom::dnn {

enum class Act { Linear, Relu, LeakyRelu, Sigmoid, Tanh, Elu, Selu, Softplus, Swish, Gelu };

struct Activation {
  Act act = Act::Linear;
  float alpha = 0.f;  // as the table defines it (see above); 0 when the activation has none
};

// Every accepted name (aliases included), for Spec::choices.
const std::vector<std::string>& activation_names();
// The activation called `name` with its default alpha; throws with a suggestion when unknown.
Activation activation(const std::string& name);
// Whether `alpha` means something for this activation (leaky_relu, elu, swish).
bool takes_alpha(Act a);
// The activation of a layer from its `activation` and (optional) `alpha` parameters: alpha
// defaults per activation and is refused, located, for an activation that has none.
Activation activation_param(const Params& p, const std::string& key = "activation",
                            const std::string& alpha_key = "alpha");
// The interval `a` maps values of `in` into (a monotonic activation maps the ends; the others
// give their overall range).
ValueRange range_of(const Activation& a, const ValueRange& in);
// The doc line of an `alpha` parameter that follows the table.
const char* alpha_doc();

// Activations whose backward works from the output (oneDNN's *_use_dst_for_bwd) can be fused
// into the producing primitive as a post-op; the others need the pre-activation in backward.
bool fusable(Act a);
// The post-op that applies `a` (empty for linear); only for fusable activations.
dnnl::post_ops post_ops(const Activation& a);

// Forward and backward of one activation over a flat buffer of n values, with primitives made
// once. Backward takes the forward input x and output y and uses whichever oneDNN needs.
class Eltwise {
 public:
  void init(const Activation& a, int64_t n, Scratchpad& sp);
  bool ready() const { return bool(fwd_); }
  void forward(const float* x, float* y);
  void backward(const float* x, const float* y, const float* dy, float* dx);

 private:
  dnnl::eltwise_forward fwd_, scale_;  // scale_: selu's λ, applied in place
  dnnl::eltwise_backward bwd_;
  dnnl::memory x_, y_, dy_, dx_;
  bool uses_dst_ = false;
  Scratchpad* sp_ = nullptr;
};

}  // namespace loom::dnn
