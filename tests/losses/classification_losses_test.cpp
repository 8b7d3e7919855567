// Classification losses: values against hand computation, gradients against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/create.hpp"
#include "loom/loss.hpp"
#include "support/harness.hpp"

using loom::Tensor;

namespace {

std::unique_ptr<loom::Loss> make(const std::string& yaml) {
  return loom::create_from<loom::Loss>(loom::test::registry(), loom::test::entry_from_yaml(yaml));
}

Tensor tensor(loom::Shape s, std::vector<float> v) {
  Tensor t(std::move(s));
  for (size_t i = 0; i < v.size(); ++i) t[int64_t(i)] = v[i];
  return t;
}

// Central differences of compute() against its gradient (weight w).
void check_grad(const loom::Loss& loss, Tensor pred, const Tensor& target, float w = 1.f) {
  Tensor g(pred.shape());
  loss.compute(pred, &target, &g, w);
  const double h = 1e-3;
  for (int64_t i = 0; i < pred.size(); ++i) {
    float saved = pred[i];
    pred[i] = float(saved + h);
    double plus = loss.compute(pred, &target, nullptr, w);
    pred[i] = float(saved - h);
    double minus = loss.compute(pred, &target, nullptr, w);
    pred[i] = saved;
    double num = w * (plus - minus) / (2 * h);
    EXPECT_NEAR(g[i], num, 2e-3 + 2e-2 * std::fabs(num)) << "element " << i;
  }
}

}  // namespace

TEST(ClassificationLosses, SoftmaxCrossentropyValue) {
  auto loss = make("{type: softmax_crossentropy}");
  // Row 0: logits (1, 2, 3), label 2; row 1: logits (0, 0, 0), label 0.
  Tensor z = tensor({2, 3}, {1, 2, 3, 0, 0, 0});
  Tensor y = tensor({2}, {2, 0});
  double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  double expect = ((lse - 3.0) + std::log(3.0)) / 2;
  Tensor g(z.shape());
  EXPECT_NEAR(loss->compute(z, &y, &g, 1.f), expect, 1e-6);
  // Gradient: (softmax - onehot) / batch.
  EXPECT_NEAR(g[0], std::exp(1.0 - lse) / 2, 1e-6);
  EXPECT_NEAR(g[2], (std::exp(3.0 - lse) - 1) / 2, 1e-6);
  EXPECT_NEAR(g[3], (1.0 / 3 - 1) / 2, 1e-6);
  // (N, 1) labels are accepted too, and large logits stay finite.
  Tensor big = tensor({1, 3}, {1000, 0, -1000});
  Tensor y1 = tensor({1, 1}, {1});
  EXPECT_NEAR(loss->compute(big, &y1, nullptr, 1.f), 1000.0, 1e-3);
}

TEST(ClassificationLosses, SoftmaxCrossentropyGradients) {
  auto loss = make("{type: softmax_crossentropy}");
  Tensor z = tensor({3, 4}, {0.1f, -0.5f, 1.2f, 0.3f, 2.f, 1.f, 0.f, -1.f, 0.5f, 0.5f, 0.5f, 0.4f});
  check_grad(*loss, z, tensor({3}, {2, 0, 3}), 0.5f);
  Tensor bad = tensor({3}, {2, 4, 1});
  EXPECT_THROW(loss->compute(z, &bad, nullptr, 1.f), loom::Error);
}

TEST(ClassificationLosses, ProbabilityInputs) {
  auto sparse = make("{type: softmax_crossentropy, from_logits: false}");
  Tensor p = tensor({2, 3}, {0.2f, 0.3f, 0.5f, 0.7f, 0.2f, 0.1f});
  Tensor y = tensor({2}, {1, 0});
  EXPECT_NEAR(sparse->compute(p, &y, nullptr, 1.f), -(std::log(0.3) + std::log(0.7)) / 2, 1e-6);
  check_grad(*sparse, p, y);
  auto keras = make("{type: sparse_categorical_crossentropy}");  // probabilities by default
  EXPECT_NEAR(keras->compute(p, &y, nullptr, 1.f), -(std::log(0.3) + std::log(0.7)) / 2, 1e-6);
  // A zero probability is clipped to 1e-7.
  Tensor z = tensor({1, 2}, {1.f, 0.f});
  Tensor y1 = tensor({1}, {1});
  EXPECT_NEAR(keras->compute(z, &y1, nullptr, 1.f), -std::log(1e-7), 1e-3);
}

TEST(ClassificationLosses, CategoricalCrossentropy) {
  // Soft (mixup) targets against probabilities and against logits.
  auto probs = make("{type: categorical_crossentropy}");
  Tensor p = tensor({2, 3}, {0.2f, 0.3f, 0.5f, 0.6f, 0.3f, 0.1f});
  Tensor t = tensor({2, 3}, {0.f, 0.4f, 0.6f, 1.f, 0.f, 0.f});
  double expect = (-(0.4 * std::log(0.3) + 0.6 * std::log(0.5)) - std::log(0.6)) / 2;
  EXPECT_NEAR(probs->compute(p, &t, nullptr, 1.f), expect, 1e-6);
  check_grad(*probs, p, t, 2.f);

  auto logits = make("{type: categorical_crossentropy, from_logits: true}");
  Tensor z = tensor({2, 3}, {0.5f, -1.f, 2.f, 0.f, 1.f, 0.f});
  double l0 = std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0));
  double l1 = std::log(2 + std::exp(1.0));
  expect = ((0.4 * (l0 + 1.0) + 0.6 * (l0 - 2.0)) + (l1 - 0.0)) / 2;
  EXPECT_NEAR(logits->compute(z, &t, nullptr, 1.f), expect, 1e-6);
  check_grad(*logits, z, t);
  // Same as the sparse loss for one-hot targets.
  auto sparse = make("{type: softmax_crossentropy}");
  Tensor onehot = tensor({2, 3}, {0, 0, 1, 1, 0, 0});
  Tensor labels = tensor({2}, {2, 0});
  EXPECT_NEAR(logits->compute(z, &onehot, nullptr, 1.f), sparse->compute(z, &labels, nullptr, 1.f),
              1e-6);
}

TEST(ClassificationLosses, EntryReusable) {
  // Creating twice from one entry (a bare name, then a mapping) leaves the entry intact.
  for (const char* yaml : {"softmax_crossentropy", "{type: categorical_crossentropy}"}) {
    loom::Params entry = loom::test::entry_from_yaml(yaml);
    auto a = loom::create_from<loom::Loss>(loom::test::registry(), entry);
    auto b = loom::create_from<loom::Loss>(loom::test::registry(), entry);
    EXPECT_TRUE(a && b) << yaml;
  }
}
