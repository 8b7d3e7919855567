// Finite-difference gradient checks and shape checks of the convolutional layers (samples are
// channels first: (C, H, W)).
#include <gtest/gtest.h>

#include <cmath>

#include "loom/rng.hpp"
#include "support/harness.hpp"

using loom::Shape;
using loom::Tensor;
using loom::test::check_layer_gradients;
using loom::test::GradCheck;
using loom::test::model_from_yaml;

namespace {

// Checks a layer for batch 1 and 3.
void check_batches(const std::string& input, const std::string& layer, const GradCheck& o = {}) {
  for (int64_t batch : {1, 3}) {
    SCOPED_TRACE(layer + " batch " + std::to_string(batch));
    check_layer_gradients(input, layer, batch, o);
  }
}

Tensor random_input(const Shape& sample, int64_t batch, uint64_t seed = 5) {
  return loom::test::random_batch(sample, batch, seed);
}

// Two backward passes must add up: parameter gradients double.
void expect_gradients_accumulate(const std::string& layer, const std::string& input) {
  auto m = model_from_yaml("m: {input: " + input + ", layers: [" + layer + "]}", "m");
  loom::RunContext ctx{true, 1, 1};
  Tensor x = random_input(m->input_shape(), 2);
  auto pass = [&] {
    m->forward(ctx, {&x});
    m->seed_grad(m->output_node()).fill(0.5f);
    m->backward(ctx);
  };
  m->zero_grads();
  pass();
  std::vector<Tensor> once;
  for (auto& p : m->params()) once.push_back(p->grad.clone());
  pass();
  for (size_t k = 0; k < m->params().size(); ++k) {
    auto& p = m->params()[k];
    if (!p->trainable) continue;
    for (int64_t i = 0; i < p->grad.size(); ++i)
      ASSERT_NEAR(p->grad[i], 2 * once[k][i], 1e-4 + 1e-4 * std::fabs(once[k][i]))
          << layer << " " << p->name << "[" << i << "]";
  }
}

}  // namespace

// ---- conv2d ----

TEST(ConvLayerGradients, Conv2DValidAndSame) {
  for (const char* pad : {"valid", "same"})
    for (const char* s : {"[1]", "[2]"})
      check_batches("[2, 5, 7]", std::string("{type: conv2d, filters: 3, kernel_size: [3], ") +
                                     "strides: " + s + ", padding: " + pad + "}");
}
TEST(ConvLayerGradients, Conv2DRectKernelMixedStrides) {
  check_batches("[3, 6, 7]",
                "{type: conv2d, filters: 2, kernel_size: [2, 3], strides: [2, 1], padding: same}");
  check_batches("[1, 5, 5]", "{type: conv2d, filters: 4, kernel_size: [1], use_bias: false}");
}
TEST(ConvLayerGradients, Conv2DDilation) {
  for (const char* pad : {"valid", "same"})
    check_batches("[2, 7, 9]", std::string("{type: conv2d, filters: 2, kernel_size: [3], "
                                           "dilation_rate: [2], padding: ") +
                                   pad + "}");
  check_batches("[2, 7, 9]",
                "{type: conv2d, filters: 2, kernel_size: [3, 2], dilation_rate: [1, 3], "
                "padding: same, activation: tanh}");
}
TEST(ConvLayerGradients, Conv2DActivations) {
  // relu-like kinks: a small step keeps finite differences from straddling them.
  GradCheck kink;
  kink.step = 1e-4;
  kink.atol = 5e-3;
  for (const char* a : {"relu", "tanh", "sigmoid", "elu", "swish", "gelu", "softplus"}) {
    SCOPED_TRACE(a);
    check_layer_gradients("[2, 5, 7]",
                          std::string("{type: conv2d, filters: 3, kernel_size: [3], "
                                      "padding: same, activation: ") +
                              a + "}",
                          2, std::string(a) == "relu" ? kink : GradCheck{});
  }
  check_layer_gradients(
      "[2, 5, 7]",
      "{type: conv2d, filters: 3, kernel_size: [3], activation: leaky_relu, alpha: 0.2}", 3, kink);
}
TEST(ConvLayerShapes, Conv2D) {
  auto m = model_from_yaml(
      "m: {input: [3, 5, 7], layers: [{type: conv2d, filters: 4, kernel_size: [3], strides: [2], "
      "padding: same, name: a}, {type: conv2d, filters: 2, kernel_size: [2, 3], name: b, "
      "inputs: [input]}]}",
      "m");
  EXPECT_EQ(m->nodes()[size_t(m->find("a"))].shape, Shape({4, 3, 4}));
  EXPECT_EQ(m->nodes()[size_t(m->find("b"))].shape, Shape({2, 4, 5}));
  EXPECT_EQ(m->params()[0]->value.shape(), Shape({4, 3, 3, 3}));  // (out, in, kh, kw)
}

// ---- conv2d_transpose ----

TEST(ConvLayerGradients, Conv2DTranspose) {
  for (const char* pad : {"valid", "same"})
    for (const char* s : {"[1]", "[2]"})
      check_batches("[2, 5, 7]",
                    std::string("{type: conv2d_transpose, filters: 3, kernel_size: [3], ") +
                        "strides: " + s + ", padding: " + pad + "}");
  check_batches("[3, 4, 5]",
                "{type: conv2d_transpose, filters: 2, kernel_size: [2, 3], strides: [2, 1], "
                "padding: same, activation: sigmoid}");
  check_batches("[2, 4, 5]",
                "{type: conv2d_transpose, filters: 2, kernel_size: [3], dilation_rate: [2], "
                "activation: swish}");
}
TEST(ConvLayerShapes, Conv2DTranspose) {
  auto m = model_from_yaml(
      "m: {input: [2, 5, 7], layers: ["
      "{type: conv2d_transpose, filters: 3, kernel_size: [3], strides: [2], name: v},"
      "{type: conv2d_transpose, filters: 3, kernel_size: [3], strides: [2], padding: same, "
      "name: s, inputs: [input]},"
      "{type: conv2d_transpose, filters: 3, kernel_size: [4], strides: [2], padding: same, "
      "name: s4, inputs: [input]},"
      "{type: conv2d_transpose, filters: 3, kernel_size: [3], padding: same, name: s1, "
      "inputs: [input]}]}",
      "m");
  EXPECT_EQ(m->nodes()[size_t(m->find("v"))].shape, Shape({3, 11, 15}));
  EXPECT_EQ(m->nodes()[size_t(m->find("s"))].shape, Shape({3, 10, 14}));
  EXPECT_EQ(m->nodes()[size_t(m->find("s4"))].shape, Shape({3, 10, 14}));
  EXPECT_EQ(m->nodes()[size_t(m->find("s1"))].shape, Shape({3, 5, 7}));
  EXPECT_EQ(m->params()[0]->value.shape(), Shape({3, 2, 3, 3}));  // (out, in, kh, kw)
}

// ---- separable_conv2d ----

TEST(ConvLayerGradients, SeparableConv2D) {
  for (const char* pad : {"valid", "same"})
    for (const char* s : {"[1]", "[2]"})
      check_batches("[2, 5, 7]",
                    std::string("{type: separable_conv2d, filters: 3, kernel_size: [3], ") +
                        "strides: " + s + ", padding: " + pad + "}");
  check_batches("[3, 5, 7]",
                "{type: separable_conv2d, filters: 4, kernel_size: [3, 2], depth_multiplier: 2, "
                "padding: same, activation: tanh}");
  check_batches("[2, 7, 7]",
                "{type: separable_conv2d, filters: 2, kernel_size: [3], dilation_rate: [2], "
                "use_bias: false, activation: gelu}");
}
TEST(ConvLayerShapes, SeparableConv2D) {
  auto m = model_from_yaml(
      "m: {input: [3, 5, 7], layers: [{type: separable_conv2d, filters: 4, kernel_size: [3], "
      "depth_multiplier: 2, strides: [2], padding: same}]}",
      "m");
  EXPECT_EQ(m->output_shape(), Shape({4, 3, 4}));
  ASSERT_EQ(m->params().size(), 3u);
  EXPECT_EQ(m->params()[0]->value.shape(), Shape({6, 1, 3, 3}));
  EXPECT_EQ(m->params()[1]->value.shape(), Shape({4, 6, 1, 1}));
}

// ---- pooling ----

TEST(ConvLayerGradients, MaxPool2D) {
  GradCheck o;
  o.input_lo = -10.f;  // spread values: finite differences must not swap a window's maximum
  o.input_hi = 10.f;
  for (const char* pad : {"valid", "same"}) {
    check_batches("[2, 5, 7]", std::string("{type: max_pool2d, padding: ") + pad + "}", o);
    check_batches(
        "[2, 5, 7]",
        std::string("{type: max_pool2d, pool_size: [3], strides: [1], padding: ") + pad + "}", o);
    check_batches("[2, 5, 7]",
                  std::string("{type: max_pool2d, pool_size: [3, 2], strides: [2, 1], "
                              "padding: ") +
                      pad + "}",
                  o);
  }
}
TEST(ConvLayerGradients, AvgPool2D) {
  for (const char* pad : {"valid", "same"}) {
    check_batches("[2, 5, 7]", std::string("{type: avg_pool2d, padding: ") + pad + "}");
    check_batches(
        "[2, 5, 7]",
        std::string("{type: avg_pool2d, pool_size: [3], strides: [1], padding: ") + pad + "}");
    check_batches(
        "[2, 5, 7]",
        std::string("{type: avg_pool2d, pool_size: [3, 2], strides: [2], padding: ") + pad + "}");
  }
  check_batches("[3, 5, 7]", "{type: global_avg_pool2d}");
}
TEST(ConvLayerShapes, Pooling) {
  auto m = model_from_yaml(
      "m: {input: [2, 5, 7], layers: [{type: max_pool2d, name: v},"
      "{type: max_pool2d, padding: same, name: s, inputs: [input]},"
      "{type: avg_pool2d, pool_size: [3], strides: [1], padding: same, name: a, inputs: [input]},"
      "{type: global_avg_pool2d, name: g, inputs: [input]}]}",
      "m");
  EXPECT_EQ(m->nodes()[size_t(m->find("v"))].shape, Shape({2, 2, 3}));
  EXPECT_EQ(m->nodes()[size_t(m->find("s"))].shape, Shape({2, 3, 4}));
  EXPECT_EQ(m->nodes()[size_t(m->find("a"))].shape, Shape({2, 5, 7}));
  EXPECT_EQ(m->nodes()[size_t(m->find("g"))].shape, Shape({2}));
}
TEST(ConvLayerValues, AvgPoolExcludesPadding) {
  auto m = model_from_yaml(
      "m: {input: [1, 2, 2], layers: [{type: avg_pool2d, pool_size: [3], strides: [1], "
      "padding: same}]}",
      "m");
  Tensor x({1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) x[i] = float(i + 1);
  m->forward({}, {&x});
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(m->output()[i], 2.5f);  // every window sees all 4
}

// ---- batch_norm ----

TEST(ConvLayerGradients, BatchNorm) {
  check_batches("[3, 5, 7]", "{type: batch_norm}");
  check_layer_gradients("[6]", "{type: batch_norm}", 3);
  check_layer_gradients("[6]", "{type: batch_norm, center: false}", 4);
  check_layer_gradients("[2, 3, 3]", "{type: batch_norm, scale: false}", 2);
  GradCheck infer;
  infer.training = false;
  check_batches("[3, 5, 7]", "{type: batch_norm}", infer);
  check_layer_gradients("[6]", "{type: batch_norm}", 3, infer);
}
TEST(ConvLayerValues, BatchNormTrainInferConsistency) {
  auto m = model_from_yaml("m: {input: [3, 4, 5], layers: [{type: batch_norm, momentum: 0}]}", "m");
  ASSERT_EQ(m->params().size(), 4u);
  int non_trainable = 0;
  for (auto& p : m->params()) {
    bool moving = p->name.find("moving_") != std::string::npos;
    EXPECT_EQ(p->trainable, !moving) << p->name;
    non_trainable += moving;
  }
  EXPECT_EQ(non_trainable, 2);
  EXPECT_EQ(m->param_count(true), 6);
  Tensor x = random_input(m->input_shape(), 3);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = 2.f * x[i] + 0.5f;  // mean and scale not 0 / 1
  loom::RunContext train{true, 1, 1}, infer{false, 1, 1};
  for (int k = 0; k < 5; ++k) m->forward(train, {&x});
  Tensor y_train = m->output().clone();
  m->forward(infer, {&x});
  for (int64_t i = 0; i < y_train.size(); ++i) ASSERT_NEAR(m->output()[i], y_train[i], 1e-5);
  // The normalised output has zero mean and unit (biased) variance per channel.
  double mean = 0, var = 0;
  int64_t count = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t j = 0; j < 20; ++j, ++count) mean += y_train[b * 60 + j];
  mean /= double(count);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t j = 0; j < 20; ++j) var += std::pow(y_train[b * 60 + j] - mean, 2);
  var /= double(count);
  EXPECT_NEAR(mean, 0, 1e-4);
  EXPECT_NEAR(var, 1, 1e-2);  // epsilon 1e-3 shrinks it a little
}
TEST(ConvLayerValues, BatchNormMovingAverage) {
  auto m = model_from_yaml("m: {input: [2], layers: [{type: batch_norm, momentum: 0.9}]}", "m");
  Tensor x({2, 2});
  x[0] = 1, x[1] = 4, x[2] = 3, x[3] = 8;  // channel 0: mean 2 var 1; channel 1: mean 6 var 4
  m->forward({true, 1, 1}, {&x});
  const Tensor* mm = nullptr;
  const Tensor* mv = nullptr;
  for (auto& p : m->params()) {
    if (p->name.find("moving_mean") != std::string::npos) mm = &p->value;
    if (p->name.find("moving_variance") != std::string::npos) mv = &p->value;
  }
  ASSERT_TRUE(mm && mv);
  EXPECT_NEAR((*mm)[0], 0.1 * 2, 1e-6);
  EXPECT_NEAR((*mm)[1], 0.1 * 6, 1e-6);
  EXPECT_NEAR((*mv)[0], 0.9 + 0.1 * 1, 1e-6);
  EXPECT_NEAR((*mv)[1], 0.9 + 0.1 * 4, 1e-6);
  m->forward({false, 1, 1}, {&x});  // inference leaves them alone
  EXPECT_NEAR((*mm)[0], 0.2, 1e-6);
}

// ---- upsampling, padding, cropping ----

TEST(ConvLayerGradients, UpSampling2D) {
  for (const char* interp : {"nearest", "bilinear"}) {
    check_batches("[2, 5, 7]", std::string("{type: upsampling2d, interpolation: ") + interp + "}");
    check_batches("[2, 3, 4]",
                  std::string("{type: upsampling2d, size: [3, 2], interpolation: ") + interp + "}");
  }
}
TEST(ConvLayerValues, UpSampling2D) {
  auto m = model_from_yaml("m: {input: [1, 1, 2], layers: [{type: upsampling2d}]}", "m");
  Tensor x({1, 1, 1, 2});
  x[0] = 1, x[1] = 3;
  m->forward({}, {&x});
  EXPECT_EQ(m->output_shape(), Shape({1, 2, 4}));
  const float nearest[] = {1, 1, 3, 3, 1, 1, 3, 3};
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(m->output()[i], nearest[i]);
  auto b = model_from_yaml(
      "m: {input: [1, 1, 2], layers: [{type: upsampling2d, interpolation: bilinear}]}", "m");
  b->forward({}, {&x});
  const float bilinear[] = {1, 1.5, 2.5, 3};  // half-pixel centres, clamped edges
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(b->output()[i], bilinear[i]);
}
TEST(ConvLayerGradients, PaddingAndCropping) {
  check_batches("[2, 5, 7]", "{type: zero_padding2d}");
  check_batches("[2, 5, 7]", "{type: zero_padding2d, padding: [2, 1]}");
  check_batches("[2, 5, 7]", "{type: zero_padding2d, padding: [0, 1, 2, 3]}");
  check_batches("[2, 5, 7]", "{type: cropping2d, cropping: [1]}");
  check_batches("[2, 5, 7]", "{type: cropping2d, cropping: [1, 2]}");
  check_batches("[2, 5, 7]", "{type: cropping2d, cropping: [0, 2, 3, 1]}");
}
TEST(ConvLayerShapes, PaddingAndCropping) {
  auto m = model_from_yaml(
      "m: {input: [2, 5, 7], layers: [{type: zero_padding2d, padding: [0, 1, 2, 3], name: p},"
      "{type: cropping2d, cropping: [0, 1, 2, 3], name: c}]}",
      "m");
  EXPECT_EQ(m->nodes()[size_t(m->find("p"))].shape, Shape({2, 6, 12}));
  EXPECT_EQ(m->output_shape(), Shape({2, 5, 7}));
  Tensor x = random_input(m->input_shape(), 2);
  m->forward({}, {&x});
  for (int64_t i = 0; i < x.size(); ++i) ASSERT_EQ(m->output()[i], x[i]);  // crop undoes pad
}

// ---- parameter gradients accumulate ----

TEST(ConvLayerGradients, ParameterGradientsAccumulate) {
  expect_gradients_accumulate("{type: conv2d, filters: 3, kernel_size: [3], activation: relu}",
                              "[2, 5, 7]");
  expect_gradients_accumulate(
      "{type: conv2d_transpose, filters: 3, kernel_size: [3], strides: [2]}", "[2, 5, 7]");
  expect_gradients_accumulate("{type: separable_conv2d, filters: 3, kernel_size: [3]}",
                              "[2, 5, 7]");
  expect_gradients_accumulate("{type: batch_norm}", "[2, 5, 7]");
}

// ---- the Keras convolutional autoencoder stack ----

TEST(ConvLayerShapes, ConvAutoencoder) {
  auto m = model_from_yaml(
      "m: {input: [1, 28, 28], layers: ["
      "{type: conv2d, filters: 32, kernel_size: [3], activation: relu, padding: same},"
      "{type: max_pool2d, pool_size: [2], padding: same, name: p1},"
      "{type: conv2d, filters: 64, kernel_size: [3], activation: relu, padding: same},"
      "{type: max_pool2d, pool_size: [2], padding: same, name: p2},"
      "{type: conv2d, filters: 64, kernel_size: [3], activation: relu, padding: same},"
      "{type: max_pool2d, pool_size: [2], name: code},"
      "{type: conv2d_transpose, filters: 64, kernel_size: [3], strides: [2], activation: relu, "
      "name: d1},"
      "{type: conv2d_transpose, filters: 64, kernel_size: [3], strides: [2], activation: relu, "
      "padding: same, name: d2},"
      "{type: conv2d_transpose, filters: 32, kernel_size: [3], strides: [2], activation: relu, "
      "padding: same, name: d3},"
      "{type: conv2d, filters: 1, kernel_size: [3], activation: sigmoid, padding: same}]}",
      "m");
  auto shape = [&](const char* n) { return m->nodes()[size_t(m->find(n))].shape; };
  EXPECT_EQ(shape("p1"), Shape({32, 14, 14}));
  EXPECT_EQ(shape("p2"), Shape({64, 7, 7}));
  EXPECT_EQ(shape("code"), Shape({64, 3, 3}));
  EXPECT_EQ(shape("d1"), Shape({64, 7, 7}));
  EXPECT_EQ(shape("d2"), Shape({64, 14, 14}));
  EXPECT_EQ(shape("d3"), Shape({32, 28, 28}));
  EXPECT_EQ(m->output_shape(), Shape({1, 28, 28}));
  Tensor x = random_input(m->input_shape(), 2);
  m->forward({true, 1, 1}, {&x});
  EXPECT_EQ(m->output().shape(), Shape({2, 1, 28, 28}));
  for (int64_t i = 0; i < m->output().size(); ++i) ASSERT_TRUE(std::isfinite(m->output()[i]));
}
TEST(ConvLayerGradients, SmallConvStack) {
  GradCheck o;
  o.max_checks = 30;
  auto m = model_from_yaml(
      "m: {input: [1, 8, 8], layers: ["
      "{type: conv2d, filters: 3, kernel_size: [3], padding: same, activation: tanh},"
      "{type: batch_norm},"
      "{type: avg_pool2d, padding: same},"
      "{type: conv2d_transpose, filters: 2, kernel_size: [3], strides: [2], padding: same},"
      "{type: upsampling2d, interpolation: bilinear},"
      "{type: global_avg_pool2d}]}",
      "m");
  EXPECT_EQ(m->output_shape(), Shape({2}));
  loom::test::check_gradients(*m, 3, o);
}
