#include "dnn/activation.hpp"

#include <cmath>
#include <limits>
#include <map>

#include "loom/error.hpp"

namespace loom::dnn {
namespace {

using alg = dnnl::algorithm;

constexpr float kSeluLambda = 1.0507009873554805f;
constexpr float kSeluAlpha = 1.6732632423543772f;

struct Row {
  const char* name;
  Act act;
  float alpha;  // default
};
// Aliases after their main name.
const Row kTable[] = {
    {"linear", Act::Linear, 0.f},
    {"relu", Act::Relu, 0.f},
    {"leaky_relu", Act::LeakyRelu, 0.3f},
    {"sigmoid", Act::Sigmoid, 0.f},
    {"tanh", Act::Tanh, 0.f},
    {"elu", Act::Elu, 1.f},
    {"selu", Act::Selu, 0.f},
    {"softplus", Act::Softplus, 0.f},
    {"swish", Act::Swish, 1.f},
    {"silu", Act::Swish, 1.f},
    {"gelu", Act::Gelu, 0.f},
};

// The oneDNN algorithm of the forward pass (also the post-op) and its alpha.
alg forward_alg(Act a) {
  switch (a) {
    case Act::Relu:
    case Act::LeakyRelu:
      return alg::eltwise_relu;
    case Act::Sigmoid:
      return alg::eltwise_logistic;
    case Act::Tanh:
      return alg::eltwise_tanh;
    case Act::Elu:
    case Act::Selu:
      return alg::eltwise_elu;
    case Act::Softplus:
      return alg::eltwise_soft_relu;
    case Act::Swish:
      return alg::eltwise_swish;
    case Act::Gelu:
      return alg::eltwise_gelu_erf;
    case Act::Linear:
      break;
  }
  return alg::eltwise_linear;
}

// The backward algorithm: the *_use_dst_for_bwd form where one exists.
alg backward_alg(Act a) {
  switch (a) {
    case Act::Relu:
    case Act::LeakyRelu:
      return alg::eltwise_relu_use_dst_for_bwd;
    case Act::Sigmoid:
      return alg::eltwise_logistic_use_dst_for_bwd;
    case Act::Tanh:
      return alg::eltwise_tanh_use_dst_for_bwd;
    case Act::Elu:
      return alg::eltwise_elu_use_dst_for_bwd;
    default:
      return forward_alg(a);
  }
}

// alpha / beta as oneDNN takes them.
float dnnl_alpha(const Activation& a) {
  switch (a.act) {
    case Act::LeakyRelu:
    case Act::Elu:
    case Act::Swish:
      return a.alpha;
    case Act::Selu:
      return kSeluAlpha;
    case Act::Linear:
      return 1.f;  // eltwise_linear: alpha·x + beta
    default:
      return 0.f;
  }
}

}  // namespace

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Row& r : kTable) n.push_back(r.name);
    return n;
  }();
  return names;
}

Activation activation(const std::string& name) {
  for (const Row& r : kTable)
    if (name == r.name) return {r.act, r.alpha};
  throw Error("unknown activation '" + name + "'" + suggestion(name, activation_names()));
}

bool takes_alpha(Act a) { return a == Act::LeakyRelu || a == Act::Elu || a == Act::Swish; }

ValueRange range_of(const Activation& a, const ValueRange& in) {
  const double inf = std::numeric_limits<double>::infinity();
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  switch (a.act) {
    case Act::Linear:
      return in;
    case Act::Relu:
      return {std::max(0.0, in.lo), std::max(0.0, in.hi)};
    case Act::Sigmoid:
      return {sig(in.lo), sig(in.hi)};
    case Act::Tanh:
      return {std::tanh(in.lo), std::tanh(in.hi)};
    case Act::Softplus:
      return {std::isinf(in.lo) ? 0.0 : std::log1p(std::exp(in.lo)), inf};
    case Act::Elu:
      return {-double(a.alpha), inf};
    case Act::Selu:
      return {-1.0507009873554805 * 1.6732632423543772, inf};
    default:  // leaky_relu, swish, gelu: unbounded below or nearly so
      return {};
  }
}

const char* alpha_doc() {
  return "leaky_relu: negative slope (default 0.3); elu: scale (default 1); swish: factor of "
         "x in the sigmoid (default 1); not accepted by other activations";
}

Activation activation_param(const Params& p, const std::string& key, const std::string& alpha_key) {
  Activation a;
  try {
    a = activation(p.s(key));
  } catch (const Error& e) {
    p.fail(key, e.what());
  }
  if (p.given(alpha_key)) {
    if (!takes_alpha(a.act))
      p.fail(alpha_key, "activation '" + p.s(key) +
                            "' has no alpha (only leaky_relu, elu and swish take one)");
    a.alpha = float(p.f(alpha_key));
    // The backward of leaky_relu and elu works from the output, which needs alpha >= 0.
    if (a.act != Act::Swish && a.alpha < 0.f) p.fail(alpha_key, "must be >= 0 for " + p.s(key));
  }
  return a;
}

bool fusable(Act a) {
  return a == Act::Relu || a == Act::LeakyRelu || a == Act::Sigmoid || a == Act::Tanh ||
         a == Act::Elu;
}

dnnl::post_ops post_ops(const Activation& a) {
  dnnl::post_ops ops;
  if (a.act == Act::Linear) return ops;
  if (!fusable(a.act)) throw Error("internal: activation cannot be fused");
  ops.append_eltwise(1.f, forward_alg(a.act), dnnl_alpha(a), 0.f);
  return ops;
}

void Eltwise::init(const Activation& a, int64_t n, Scratchpad& sp) {
  sp_ = &sp;
  auto& eng = engine();
  md m = flat(n);
  uses_dst_ = fusable(a.act);
  float al = dnnl_alpha(a);
  dnnl::eltwise_forward::primitive_desc f(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, forward_alg(a.act), m, al,
                                  0.f),
      Scratchpad::attr(), eng);
  dnnl::eltwise_backward::primitive_desc b(
      dnnl::eltwise_backward::desc(backward_alg(a.act), m, m, al, 0.f), Scratchpad::attr(), eng, f);
  sp.reserve(f);
  sp.reserve(b);
  fwd_ = dnnl::eltwise_forward(f);
  bwd_ = dnnl::eltwise_backward(b);
  if (a.act == Act::Selu) {
    dnnl::eltwise_forward::primitive_desc s(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, alg::eltwise_linear, m,
                                    kSeluLambda, 0.f),
        Scratchpad::attr(), eng);
    sp.reserve(s);
    scale_ = dnnl::eltwise_forward(s);
  }
  x_ = unbound(m);
  y_ = unbound(m);
  dy_ = unbound(m);
  dx_ = unbound(m);
}

void Eltwise::forward(const float* x, float* y) {
  x_.set_data_handle(const_cast<float*>(x));
  y_.set_data_handle(y);
  sp_->run(fwd_, {{DNNL_ARG_SRC, x_}, {DNNL_ARG_DST, y_}});
  if (scale_) sp_->run(scale_, {{DNNL_ARG_SRC, y_}, {DNNL_ARG_DST, y_}});
}

void Eltwise::backward(const float* x, const float* y, const float* dy, float* dx) {
  x_.set_data_handle(const_cast<float*>(uses_dst_ ? y : x));
  dy_.set_data_handle(const_cast<float*>(dy));
  dx_.set_data_handle(dx);
  sp_->run(bwd_, {{uses_dst_ ? DNNL_ARG_DST : DNNL_ARG_SRC, x_},
                  {DNNL_ARG_DIFF_DST, dy_},
                  {DNNL_ARG_DIFF_SRC, dx_}});
  // selu: dx = λ · elu'(x) · dy, the elu backward being linear in dy.
  if (scale_) sp_->run(scale_, {{DNNL_ARG_SRC, dx_}, {DNNL_ARG_DST, dx_}});
}

}  // namespace loom::dnn
