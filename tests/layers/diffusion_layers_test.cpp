// The diffusion layers: time_encoding against the chapter's table formula (integer steps) and the
// same formula at fractional steps, its derivative in t and broadcast_add's gradients against
// finite differences, broadcast_add against a naive loop in both input orders, and the messages
// for a bad step or mismatched shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/rng.hpp"
#include "support/harness.hpp"

using loom::RunContext;
using loom::Shape;
using loom::Tensor;
using loom::test::check_gradients;
using loom::test::GradCheck;
using loom::test::model_from_yaml;

TEST(TimeEncodingLayer, ForwardMatchesTheChaptersTable) {
  const int64_t T = 4000, size = 64;
  auto m = model_from_yaml(
      "m: {input: [1], layers: [{type: time_encoding, timesteps: 4000, size: 64}]}", "m");
  EXPECT_EQ(m->output_shape(), Shape({size}));
  EXPECT_TRUE(m->params().empty());
  std::vector<float> steps{0, 1, 2, 17, 999, 2500, 3999, 4000, 0.5f, 1234.25f};
  Tensor x({int64_t(steps.size()), 1});
  for (size_t i = 0; i < steps.size(); ++i) x[int64_t(i)] = steps[i];
  m->forward({}, {&x});
  for (size_t b = 0; b < steps.size(); ++b)
    for (int64_t j = 0; j < size; ++j) {
      // p = t / 10000^(i / size) with i = 2 * (j / 2); even columns sin, odd columns cos.
      double i = double(2 * (j / 2));
      double p = double(steps[b]) / std::pow(10000.0, i / double(size));
      float want = float(j % 2 == 0 ? std::sin(p) : std::cos(p));
      ASSERT_EQ(m->output()[int64_t(b) * size + j], want) << "t=" << steps[b] << " column " << j;
    }
  // Hand-computed entries: t = 0 is (0, 1, 0, 1, ...); t = 1 starts (sin 1, cos 1, ...).
  EXPECT_EQ(m->output()[0], 0.f);
  EXPECT_EQ(m->output()[1], 1.f);
  EXPECT_NEAR(m->output()[size + 0], 0.8414709848, 1e-7);
  EXPECT_NEAR(m->output()[size + 1], 0.5403023059, 1e-7);
  EXPECT_NEAR(m->output()[size + 2], std::sin(std::pow(10000.0, -2.0 / 64)), 1e-7);
  (void)T;
}

TEST(TimeEncodingLayer, GradientInTheStepMatchesFiniteDifferences) {
  auto m = model_from_yaml(
      "m: {input: [1], layers: [{type: time_encoding, timesteps: 50, size: 8},"
      " {type: dense, units: 3, activation: tanh}]}",
      "m");
  GradCheck o;
  o.input_lo = 0.5f;
  o.input_hi = 49.5f;
  for (int64_t batch : {1, 4}) check_gradients(*m, batch, o);
}

TEST(TimeEncodingLayer, BadStepOrSizeIsAClearError) {
  auto m = model_from_yaml(
      "m: {input: [1], layers: [{type: time_encoding, timesteps: 10, size: 4, name: te}]}", "m");
  for (float bad : {-1.f, 10.5f, NAN}) {
    Tensor x({1, 1});
    x[0] = bad;
    try {
      m->forward({}, {&x});
      ADD_FAILURE() << "step " << bad << " accepted";
    } catch (const loom::Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("te"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[0, 10]"), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(model_from_yaml(
                   "m: {input: [1], layers: [{type: time_encoding, timesteps: 10, size: 5}]}", "m"),
               loom::Error);
  EXPECT_THROW(model_from_yaml(
                   "m: {input: [2], layers: [{type: time_encoding, timesteps: 10, size: 4}]}", "m"),
               loom::Error);
}

namespace {

// x (C, H, W) and v = dense(flatten(x)) (C), added in the given order.
std::string broadcast_model(bool vector_first) {
  return std::string(
             "m: {input: [3, 2, 5], layers: [{type: flatten, inputs: [input]},"
             " {type: dense, units: 3, activation: tanh, name: v},"
             " {type: broadcast_add, inputs: ") +
         (vector_first ? "[v, input]" : "[input, v]") + "}]}";
}

}  // namespace

TEST(BroadcastAddLayer, ForwardAddsTheVectorToEveryPositionOfItsChannel) {
  for (bool vector_first : {false, true}) {
    SCOPED_TRACE(vector_first ? "vector first" : "maps first");
    auto m = model_from_yaml(broadcast_model(vector_first), "m");
    EXPECT_EQ(m->output_shape(), Shape({3, 2, 5}));
    Tensor x({2, 3, 2, 5});
    loom::Rng rng(5, "x", 0, 0);
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.f, 1.f);
    m->forward({}, {&x});
    const Tensor& v = m->value(m->find("v"));
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t p = 0; p < 10; ++p) {
          int64_t i = (b * 3 + c) * 10 + p;
          ASSERT_EQ(m->output()[i], x[i] + v[b * 3 + c]) << b << "," << c << "," << p;
        }
  }
}

TEST(BroadcastAddLayer, GradientsMatchFiniteDifferences) {
  for (bool vector_first : {false, true}) {
    SCOPED_TRACE(vector_first ? "vector first" : "maps first");
    auto m = model_from_yaml(broadcast_model(vector_first), "m");
    for (int64_t batch : {1, 3}) check_gradients(*m, batch);
  }
}

TEST(BroadcastAddLayer, MismatchedShapesAreAClearError) {
  try {
    model_from_yaml(
        "m: {input: [3, 2, 5], layers: [{type: flatten, inputs: [input]},"
        " {type: dense, units: 4, name: v}, {type: broadcast_add, inputs: [input, v]}]}",
        "m");
    ADD_FAILURE() << "accepted (4) with (3, 2, 5)";
  } catch (const loom::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("(4,)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(3, 2, 5)"), std::string::npos) << msg;
  }
}
