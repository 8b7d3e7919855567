// Activations shared by the layer libraries (header-only, so each library stands alone):
// names, parsing, and the oneDNN 2.6 algorithms for standalone eltwise primitives (the
// *_use_dst_for_bwd forms where they exist, so backward works from the output) and for fused
// post-ops.
#pragma once
#include <dnnl.hpp>
#include <map>
#include <string>
#include <vector>

#include "loom/dnn.hpp"
#include "loom/error.hpp"

namespace loom::layers {

enum class Act { Linear, Relu, LeakyRelu, Sigmoid, Tanh, Elu, Softplus, Swish, Gelu };

inline const std::vector<std::string>& act_names() {
  static const std::vector<std::string> n{"linear", "relu",     "leaky_relu", "sigmoid", "tanh",
                                          "elu",    "softplus", "swish",      "gelu"};
  return n;
}

inline Act parse_act(const std::string& s) {
  static const std::map<std::string, Act> m{
      {"linear", Act::Linear},     {"relu", Act::Relu},   {"leaky_relu", Act::LeakyRelu},
      {"sigmoid", Act::Sigmoid},   {"tanh", Act::Tanh},   {"elu", Act::Elu},
      {"softplus", Act::Softplus}, {"swish", Act::Swish}, {"gelu", Act::Gelu}};
  auto it = m.find(s);
  if (it == m.end()) throw Error("unknown activation '" + s + "'" + suggestion(s, act_names()));
  return it->second;
}

// Algorithm used both for the forward (standalone or post-op) and the backward.
inline dnnl::algorithm act_alg(Act a, bool* uses_dst) {
  using alg = dnnl::algorithm;
  *uses_dst =
      a == Act::Relu || a == Act::LeakyRelu || a == Act::Sigmoid || a == Act::Tanh || a == Act::Elu;
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
    case Act::Softplus:
      return alg::eltwise_soft_relu;
    case Act::Swish:
      return alg::eltwise_swish;
    case Act::Gelu:
      return alg::eltwise_gelu_erf;
    case Act::Linear:
      return alg::eltwise_linear;
  }
  return alg::eltwise_linear;
}

// The post-op form (the *_use_dst_for_bwd variants are not accepted as post-ops).
inline dnnl::algorithm act_post_op(Act a) {
  using alg = dnnl::algorithm;
  switch (a) {
    case Act::Relu:
    case Act::LeakyRelu:
      return alg::eltwise_relu;
    case Act::Sigmoid:
      return alg::eltwise_logistic;
    case Act::Tanh:
      return alg::eltwise_tanh;
    case Act::Elu:
      return alg::eltwise_elu;
    default: {
      bool d;
      return act_alg(a, &d);
    }
  }
}

// alpha as oneDNN wants it: the leaky slope, the elu scale, the swish factor; else 0.
inline float act_alpha(Act a, float alpha) {
  return (a == Act::LeakyRelu || a == Act::Elu || a == Act::Swish) ? alpha : 0.f;
}

inline dnnl::post_ops act_post_ops(Act a, float alpha) {
  dnnl::post_ops ops;
  if (a != Act::Linear) ops.append_eltwise(1.f, act_post_op(a), act_alpha(a, alpha), 0.f);
  return ops;
}

// Elementwise forward + backward of one activation on a flat buffer of n values (alpha as
// oneDNN takes it: see act_alpha). Backward works from the output where oneDNN allows.
class Eltwise {
 public:
  void init(Act act, float alpha, int64_t n) {
    auto& eng = dnn::engine();
    dnnl::memory::desc m({n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
    float beta = 0.f;
    dnnl::eltwise_forward::primitive_desc f(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, act_alg(act, &uses_dst_), m,
                                    alpha, beta),
        eng);
    fwd_ = dnnl::eltwise_forward(f);
    dnnl::algorithm b = act_alg(act, &uses_dst_);
    dnnl::eltwise_backward::primitive_desc bp(dnnl::eltwise_backward::desc(b, m, m, alpha, beta),
                                              eng, f);
    bwd_ = dnnl::eltwise_backward(bp);
    x_ = dnnl::memory(m, eng, nullptr);
    y_ = dnnl::memory(m, eng, nullptr);
    dy_ = dnnl::memory(m, eng, nullptr);
    dx_ = dnnl::memory(m, eng, nullptr);
  }
  bool ready() const { return bool(fwd_); }
  void forward(const float* x, float* y) {
    x_.set_data_handle(const_cast<float*>(x));
    y_.set_data_handle(y);
    fwd_.execute(dnn::stream(), {{DNNL_ARG_SRC, x_}, {DNNL_ARG_DST, y_}});
  }
  // x: forward input, y: forward output
  void backward(const float* x, const float* y, const float* dy, float* dx) {
    x_.set_data_handle(const_cast<float*>(uses_dst_ ? y : x));
    dy_.set_data_handle(const_cast<float*>(dy));
    dx_.set_data_handle(dx);
    bwd_.execute(dnn::stream(), {{uses_dst_ ? DNNL_ARG_DST : DNNL_ARG_SRC, x_},
                                 {DNNL_ARG_DIFF_DST, dy_},
                                 {DNNL_ARG_DIFF_SRC, dx_}});
  }

 private:
  dnnl::eltwise_forward fwd_;
  dnnl::eltwise_backward bwd_;
  dnnl::memory x_, y_, dy_, dx_;
  bool uses_dst_ = false;
};

}  // namespace loom::layers
