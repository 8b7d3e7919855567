// Every registered layer type, instantiated on tiny shapes, runs forward and backward, with
// finite-difference gradients (input and parameters) wherever it is differentiable. A layer type
// with no entry here fails the test: a new layer comes with its case.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "loom/kind.hpp"
#include "loom/layer.hpp"
#include "support/harness.hpp"

using loom::Tensor;
using loom::test::check_gradients;
using loom::test::GradCheck;
using loom::test::model_from_yaml;

namespace {

struct Case {
  std::string model;  // a `models:` entry named m
  GradCheck opts;
  bool finite_differences = true;  // false: the input is not differentiable (indices)
};

GradCheck kinked() {  // relu-like kinks: a small step does not straddle them
  GradCheck o;
  o.step = 1e-4;
  o.atol = 5e-3;
  return o;
}

GradCheck spread() {  // max pooling: windows' maxima must not swap under the step
  GradCheck o;
  o.input_lo = -10.f;
  o.input_hi = 10.f;
  return o;
}

std::string one(const std::string& input, const std::string& layer) {
  return "m: {input: " + input + ", layers: [" + layer + "]}";
}

std::map<std::string, Case> cases() {
  std::map<std::string, Case> c;
  const std::string img = "[2, 4, 5]";
  c["activation"] = {one("[7]", "{type: activation, activation: selu}"), {}};
  c["activity_regularization"] = {one("[6]", "{type: activity_regularization, l1: 0.01, l2: 0.1}"),
                                  {}};
  c["add"] = {
      "m: {input: [4], layers: [{type: dense, units: 3, name: a, inputs: [input]},"
      " {type: dense, units: 3, name: b, inputs: [input]}, {type: add, inputs: [a, b]}]}",
      {}};
  c["avg_pool2d"] = {one(img, "{type: avg_pool2d, pool_size: [3], strides: [2], padding: same}"),
                     {}};
  c["batch_norm"] = {one(img, "{type: batch_norm}"), {}};
  c["concat"] = {
      "m: {input: [2, 3], layers: [{type: dense, units: 2, name: a, inputs: [input]},"
      " {type: concat, axis: -1, inputs: [a, input]}]}",
      {}};
  c["conv2d"] = {one(img,
                     "{type: conv2d, filters: 2, kernel_size: [3], strides: [2], padding: "
                     "same, activation: silu}"),
                 {}};
  c["conv2d_transpose"] = {one(img,
                               "{type: conv2d_transpose, filters: 2, kernel_size: [2], "
                               "strides: [3], padding: same, activation: elu}"),
                           {}};
  c["broadcast_add"] = {
      "m: {input: [2, 3, 2], layers: [{type: flatten, inputs: [input]},"
      " {type: dense, units: 2, name: v}, {type: broadcast_add, inputs: [v, input]}]}",
      {}};
  c["cropping2d"] = {one(img, "{type: cropping2d, cropping: [1, 0, 1, 2]}"), {}};
  c["dense"] = {one("[5]", "{type: dense, units: 3, activation: selu}"), {}};
  c["dense_transpose"] = {
      "m: {input: [5], layers: [{type: dense, units: 3, name: e},"
      " {type: dense_transpose, tied_to: e, activation: softplus}]}",
      {}};
  c["dropout"] = {one("[8]", "{type: dropout, rate: 0.4}"), {}};
  c["elu"] = {one("[7]", "{type: elu}"), {}};
  c["embedding"] = {
      "m: {input: [2], layers: [{type: embedding, input_dim: 3, output_dim: 2}]}", {}, false};
  c["flatten"] = {one(img, "{type: flatten}"), {}};
  c["gaussian_noise"] = {one("[6]", "{type: gaussian_noise, stddev: 0.5}"), {}};
  c["gelu"] = {one("[7]", "{type: gelu}"), {}};
  c["global_avg_pool2d"] = {one(img, "{type: global_avg_pool2d}"), {}};
  c["leaky_relu"] = {one("[7]", "{type: leaky_relu, alpha: 0.2}"), kinked()};
  c["linear"] = {one("[7]", "{type: linear}"), {}};
  c["log_softmax"] = {one("[2, 4]", "{type: log_softmax}"), {}};
  c["lstm"] = {one("[3, 2]", "{type: lstm, units: 2, return_sequences: true}"), {}};
  c["max_pool2d"] = {one(img, "{type: max_pool2d, padding: same}"), spread()};
  c["relu"] = {one("[7]", "{type: relu}"), kinked()};
  c["repeat_vector"] = {one("[3]", "{type: repeat_vector, n: 2}"), {}};
  c["reshape"] = {one("[6]", "{type: reshape, shape: [2, -1]}"), {}};
  c["sampling"] = {
      "m: {input: [4], layers: [{type: dense, units: 2, name: mu, inputs: [input]},"
      " {type: dense, units: 2, name: lv, inputs: [input]},"
      " {type: sampling, inputs: [mu, lv], kl_weight: 0.5}]}",
      {}};
  c["selu"] = {one("[7]", "{type: selu}"), {}};
  c["separable_conv2d"] = {one(img,
                               "{type: separable_conv2d, filters: 3, kernel_size: [2], "
                               "depth_multiplier: 2, activation: swish}"),
                           {}};
  c["sigmoid"] = {one("[7]", "{type: sigmoid}"), {}};
  c["silu"] = {one("[7]", "{type: silu}"), {}};
  c["softmax"] = {one("[5]", "{type: softmax}"), {}};
  c["softplus"] = {one("[7]", "{type: softplus}"), {}};
  c["swish"] = {one("[7]", "{type: swish, alpha: 1.5}"), {}};
  c["tanh"] = {one("[7]", "{type: tanh}"), {}};
  GradCheck steps;  // time steps inside [0, T]
  steps.input_lo = 0.5f;
  steps.input_hi = 9.5f;
  c["time_encoding"] = {one("[1]", "{type: time_encoding, timesteps: 10, size: 4}"), steps};
  c["upsampling2d"] = {one(img, "{type: upsampling2d, interpolation: bilinear}"), {}};
  c["zero_padding2d"] = {one(img, "{type: zero_padding2d, padding: [1, 2]}"), {}};
  return c;
}

}  // namespace

TEST(AllLayers, EveryRegisteredTypeRunsForwardAndBackward) {
  auto table = cases();
  auto names = loom::test::registry().names(loom::Kind::Layer);
  ASSERT_FALSE(names.empty());
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto it = table.find(name);
    if (it == table.end()) {
      ADD_FAILURE() << "layer type '" << name << "' has no case in all_layers_test.cpp";
      continue;
    }
    const Case& c = it->second;
    auto m = model_from_yaml(c.model, "m");
    bool found = false;
    for (auto& node : m->nodes())
      if (node.layer && node.type == name) found = true;
    EXPECT_TRUE(found) << "the case does not use the type";
    for (int64_t batch : {1, 3}) {
      SCOPED_TRACE("batch " + std::to_string(batch));
      if (c.finite_differences) {
        check_gradients(*m, batch, c.opts);
        continue;
      }
      // Indices in, values out: forward, backward into the parameters, all finite.
      loom::Shape s = m->input_shape();
      s.insert(s.begin(), batch);
      Tensor x(s);
      for (int64_t i = 0; i < x.size(); ++i) x[i] = float(i % 3);
      loom::RunContext ctx;
      ctx.training = true;
      m->zero_grads();
      m->forward(ctx, {&x});
      m->seed_grad(m->output_node()).fill(1.f);
      m->backward(ctx);
      double total = 0;
      for (auto& p : m->params())
        for (int64_t i = 0; i < p->grad.size(); ++i) total += p->grad[i];
      EXPECT_NEAR(total, double(m->output().size()), 1e-3);  // every output adds 1 to one row
    }
  }
}
