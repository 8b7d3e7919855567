// Finite-difference gradient checks of the core layers.
#include <gtest/gtest.h>

#include "support/harness.hpp"

using loom::test::check_layer_gradients;
using loom::test::GradCheck;

TEST(CoreLayerGradients, DenseLinear) {
  check_layer_gradients("[5]", "{type: dense, units: 3}", 4);
}
TEST(CoreLayerGradients, DenseBatchOne) {
  check_layer_gradients("[7]", "{type: dense, units: 2}", 1);
}
TEST(CoreLayerGradients, DenseRelu) {
  check_layer_gradients("[6]", "{type: dense, units: 4, activation: relu}", 3);
}
TEST(CoreLayerGradients, DenseSigmoid) {
  check_layer_gradients("[6]", "{type: dense, units: 4, activation: sigmoid}", 3);
}
TEST(CoreLayerGradients, DenseTanhNoBias) {
  check_layer_gradients("[6]", "{type: dense, units: 4, activation: tanh, use_bias: false}", 2);
}
TEST(CoreLayerGradients, DenseLeakyRelu) {
  check_layer_gradients("[6]", "{type: dense, units: 5, activation: leaky_relu, alpha: 0.2}", 3);
}
TEST(CoreLayerGradients, DensePerTimeStep) {
  check_layer_gradients("[3, 4]", "{type: dense, units: 2, activation: tanh}", 2);
}
TEST(CoreLayerGradients, DenseTransposeTied) {
  auto m = loom::test::model_from_yaml(
      "m: {input: [6], layers: [{type: dense, units: 3, activation: sigmoid, name: enc},"
      " {type: dense_transpose, tied_to: enc, activation: tanh}]}",
      "m");
  EXPECT_EQ(m->output_shape(), loom::Shape({6}));
  EXPECT_EQ(m->params().size(), 3u);  // shared kernel counted once
  loom::test::check_gradients(*m, 3);
}
TEST(CoreLayerGradients, Activations) {
  for (const char* a : {"relu", "sigmoid", "tanh", "linear", "elu", "softplus", "swish", "gelu"})
    check_layer_gradients("[10]", std::string("{type: ") + a + "}", 3);
  check_layer_gradients("[10]", "{type: leaky_relu, alpha: 0.1}", 3);
}
TEST(CoreLayerGradients, ShapeOps) {
  check_layer_gradients("[2, 3]", "{type: flatten}", 2);
  check_layer_gradients("[6]", "{type: reshape, shape: [3, -1]}", 2);
}
TEST(CoreLayerGradients, AddAndConcat) {
  auto m = loom::test::model_from_yaml(
      "m: {input: [4], layers: [{type: dense, units: 3, name: a, inputs: [input]},"
      " {type: dense, units: 3, name: b, inputs: [input]}, {type: add, inputs: [a, b], name: s},"
      " {type: concat, inputs: [s, a, input]}]}",
      "m");
  EXPECT_EQ(m->output_shape(), loom::Shape({10}));
  loom::test::check_gradients(*m, 3);
}
TEST(CoreLayerGradients, RegularizationLayers) {
  check_layer_gradients("[8]", "{type: dropout, rate: 0.5}", 3);
  check_layer_gradients("[8]", "{type: gaussian_noise, stddev: 0.3}", 3);
  GradCheck o;
  o.step = 1e-3;
  check_layer_gradients("[8]", "{type: activity_regularization, l1: 0.01, l2: 0.02}", 3, o);
}
TEST(CoreLayerGradients, DenseUnfusedActivations) {
  for (const char* a : {"swish", "gelu", "softplus"})
    check_layer_gradients("[6]", std::string("{type: dense, units: 4, activation: ") + a + "}", 3);
}
