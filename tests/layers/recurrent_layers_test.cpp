// Recurrent and probabilistic layers: finite-difference gradient checks, the LSTM against the
// LSTM equations, the orthogonal initializer, and the sampling layer's KL penalty.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/initializer.hpp"
#include "loom/rng.hpp"
#include "support/harness.hpp"

using loom::Shape;
using loom::Tensor;
using loom::test::check_gradients;
using loom::test::check_layer_gradients;
using loom::test::GradCheck;
using loom::test::model_from_yaml;

namespace {

loom::ParamPtr find_param(loom::Model& m, const std::string& suffix) {
  for (auto& p : m.params())
    if (p->name.size() >= suffix.size() &&
        p->name.compare(p->name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return p;
  ADD_FAILURE() << "no parameter *" << suffix;
  return nullptr;
}

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Reference LSTM (Keras equations, gates i, f, c, o) on one sample x (T, F); returns the hidden
// states (T, U).
std::vector<double> reference_lstm(const float* x, int64_t T, int64_t F, int64_t U,
                                   const Tensor& kernel, const Tensor& rec, const Tensor& bias) {
  std::vector<double> h(size_t(U), 0.0), c(size_t(U), 0.0), out;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> a(size_t(4 * U));
    for (int64_t j = 0; j < 4 * U; ++j) {
      double s = bias[j];
      for (int64_t f = 0; f < F; ++f) s += x[t * F + f] * kernel[f * 4 * U + j];
      for (int64_t u = 0; u < U; ++u) s += h[size_t(u)] * rec[u * 4 * U + j];
      a[size_t(j)] = s;
    }
    for (int64_t u = 0; u < U; ++u) {
      double i = sigmoid(a[size_t(u)]), f = sigmoid(a[size_t(U + u)]);
      double g = std::tanh(a[size_t(2 * U + u)]), o = sigmoid(a[size_t(3 * U + u)]);
      c[size_t(u)] = f * c[size_t(u)] + i * g;
      h[size_t(u)] = o * std::tanh(c[size_t(u)]);
    }
    out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

}  // namespace

TEST(RecurrentLayers, LstmShapesAndParams) {
  auto m = model_from_yaml("m: {input: [5, 3], layers: [{type: lstm, units: 4}]}", "m");
  EXPECT_EQ(m->output_shape(), Shape({4}));
  EXPECT_EQ(find_param(*m, ".kernel")->value.shape(), Shape({3, 16}));
  EXPECT_EQ(find_param(*m, ".recurrent_kernel")->value.shape(), Shape({4, 16}));
  const Tensor& b = find_param(*m, ".bias")->value;
  ASSERT_EQ(b.shape(), Shape({16}));
  for (int64_t j = 0; j < 16; ++j) EXPECT_EQ(b[j], j >= 4 && j < 8 ? 1.f : 0.f) << j;
  EXPECT_EQ(m->param_count(), 3 * 16 + 4 * 16 + 16);
  auto s = model_from_yaml(
      "m: {input: [5, 3], layers: [{type: lstm, units: 4, return_sequences: true}]}", "m");
  EXPECT_EQ(s->output_shape(), Shape({5, 4}));
}

// T = 2, F = 1, units = 1: values from the LSTM equations
//   i = σ(x·Wi + h·Ui + bi), f = σ(..), g = tanh(..), o = σ(..), c = f·c + i·g, h = o·tanh(c)
// with W = (0.5, -0.3, 0.8, 0.2), U = (0.1, 0.4, -0.6, 0.3), b = (0.05, 1, -0.1, 0.2), x = (1,
// -0.5):
//   step 1: a = (0.55, 0.7, 0.7, 0.4) -> c1 = 0.383251, h1 = 0.218837
//   step 2: h2 = 0.022949
TEST(RecurrentLayers, LstmHandComputed) {
  auto m = model_from_yaml(
      "m: {input: [2, 1], layers: [{type: lstm, units: 1, return_sequences: true}]}", "m");
  auto set = [&](const std::string& n, std::vector<float> v) {
    auto p = find_param(*m, n);
    for (size_t i = 0; i < v.size(); ++i) p->value[int64_t(i)] = v[i];
  };
  set(".kernel", {0.5f, -0.3f, 0.8f, 0.2f});
  set(".recurrent_kernel", {0.1f, 0.4f, -0.6f, 0.3f});
  set(".bias", {0.05f, 1.f, -0.1f, 0.2f});
  Tensor x({1, 2, 1});
  x[0] = 1.f;
  x[1] = -0.5f;
  m->forward({false, 1, 0}, {&x});
  EXPECT_NEAR(m->output()[0], 0.2188368296704452, 1e-5);
  EXPECT_NEAR(m->output()[1], 0.022949487780471033, 1e-5);
}

// Several units, features and samples against the reference equations: checks the gate order
// and the weight layout.
TEST(RecurrentLayers, LstmMatchesReference) {
  const int64_t T = 4, F = 3, U = 5, N = 3;
  for (bool seq : {true, false}) {
    auto m = model_from_yaml(
        "m: {input: [4, 3], layers: [{type: lstm, units: 5, "
        "return_sequences: " +
            std::string(seq ? "true" : "false") + "}]}",
        "m");
    loom::Rng rng(5, "lstm-ref", 0, 0);
    for (auto& p : m->params())
      for (int64_t i = 0; i < p->value.size(); ++i) p->value[i] = rng.uniform(-0.8f, 0.8f);
    Tensor x({N, T, F});
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.f, 1.f);
    m->forward({true, 1, 0}, {&x});
    const Tensor& y = m->output();
    for (int64_t n = 0; n < N; ++n) {
      auto h = reference_lstm(x.data() + n * T * F, T, F, U, find_param(*m, ".kernel")->value,
                              find_param(*m, ".recurrent_kernel")->value,
                              find_param(*m, ".bias")->value);
      if (seq) {
        for (int64_t i = 0; i < T * U; ++i) EXPECT_NEAR(y[n * T * U + i], h[size_t(i)], 1e-5);
      } else {
        for (int64_t u = 0; u < U; ++u) EXPECT_NEAR(y[n * U + u], h[size_t((T - 1) * U + u)], 1e-5);
      }
    }
  }
}

TEST(RecurrentLayerGradients, LstmLastState) {
  GradCheck o;
  o.max_checks = 40;
  check_layer_gradients("[3, 2]", "{type: lstm, units: 3}", 1, o);
  check_layer_gradients("[3, 2]", "{type: lstm, units: 3}", 3, o);
}

TEST(RecurrentLayerGradients, LstmSequences) {
  GradCheck o;
  o.max_checks = 40;
  check_layer_gradients("[4, 3]", "{type: lstm, units: 2, return_sequences: true}", 1, o);
  check_layer_gradients("[4, 3]", "{type: lstm, units: 2, return_sequences: true}", 3, o);
}

TEST(RecurrentLayerGradients, StackedLstmAndBatchSizes) {
  // Sequence-to-sequence stack: lstm -> repeat_vector -> lstm -> dense per step; then the same
  // model at another batch size (a second set of cached primitives).
  auto m = model_from_yaml(
      "m: {input: [3, 2], layers: [{type: lstm, units: 3}, {type: repeat_vector, n: 2},"
      " {type: lstm, units: 2, return_sequences: true}, {type: dense, units: 2}]}",
      "m");
  EXPECT_EQ(m->output_shape(), Shape({2, 2}));
  GradCheck o;
  o.max_checks = 30;
  check_gradients(*m, 2, o);
  check_gradients(*m, 1, o);
}

TEST(RecurrentLayerGradients, RepeatVector) {
  auto m = model_from_yaml("m: {input: [3], layers: [{type: repeat_vector, n: 4}]}", "m");
  EXPECT_EQ(m->output_shape(), Shape({4, 3}));
  check_gradients(*m, 2);
}

TEST(RecurrentLayers, OrthogonalInitializer) {
  auto& reg = loom::test::registry();
  auto init = reg.create<loom::Initializer>("orthogonal", loom::Params());
  for (Shape s : {Shape{4, 16}, Shape{6, 3}, Shape{5, 5}}) {
    Tensor t(s);
    loom::Rng rng(3, "init", 0, 0);
    init->fill(t, s[0], s[1], rng);
    int64_t r = s[0], c = s[1];
    // Orthonormal rows when r <= c, orthonormal columns otherwise.
    bool by_rows = r <= c;
    int64_t k = by_rows ? r : c, len = by_rows ? c : r;
    for (int64_t a = 0; a < k; ++a)
      for (int64_t b = 0; b < k; ++b) {
        double d = 0;
        for (int64_t i = 0; i < len; ++i)
          d += by_rows ? double(t[a * c + i]) * t[b * c + i] : double(t[i * c + a]) * t[i * c + b];
        EXPECT_NEAR(d, a == b ? 1.0 : 0.0, 1e-5) << loom::to_string(s) << " " << a << "," << b;
      }
  }
}

namespace {
const char* kVae =
    "m: {input: [8], layers: [{type: dense, units: 4, name: mu, inputs: [input]},"
    " {type: dense, units: 4, name: lv, inputs: [input]},"
    " {type: sampling, inputs: [mu, lv], kl_weight: KL, name: z}]}";
std::string vae(const std::string& kl, const std::string& extra = "") {
  std::string s = kVae;
  s.replace(s.find("KL"), 2, kl + extra);
  return s;
}
}  // namespace

TEST(ProbabilisticLayerGradients, SamplingWithKl) {
  auto m = model_from_yaml(vae("0.7"), "m");
  EXPECT_EQ(m->output_shape(), Shape({4}));
  check_gradients(*m, 3);
}

TEST(ProbabilisticLayerGradients, SamplingKlOnly) {
  // A zero output gradient would make the check trivial; kl_weight large so the penalty's
  // gradient dominates.
  auto m = model_from_yaml(vae("5.0"), "m");
  check_gradients(*m, 1);
}

TEST(ProbabilisticLayerGradients, SamplingDeterministicInference) {
  auto m = model_from_yaml(vae("0.5", ", deterministic_inference: true"), "m");
  GradCheck o;
  o.training = false;
  check_gradients(*m, 2, o);
}

TEST(ProbabilisticLayers, SamplingValuesAndPenalty) {
  auto m = model_from_yaml(
      "m: {input: [2], layers: [{type: dense, units: 2, name: mu, inputs: [input]},"
      " {type: dense, units: 2, name: lv, inputs: [input]},"
      " {type: sampling, inputs: [mu, lv], kl_weight: 0.5}]}",
      "m");
  // mean = x·Wm, log_var = x·Wv with identity-like kernels and zero biases.
  auto km = find_param(*m, "mu.kernel"), kv = find_param(*m, "lv.kernel");
  float wm[] = {1, 0, 0, 1}, wv[] = {0.5f, 0, 0, -1};
  for (int i = 0; i < 4; ++i) {
    km->value[i] = wm[i];
    kv->value[i] = wv[i];
  }
  Tensor x({2, 2});
  float xv[] = {0.3f, -0.2f, 1.0f, 0.5f};
  for (int i = 0; i < 4; ++i) x[i] = xv[i];
  // KL = 0.5 · mean_batch(-0.5 Σ (1 + v - e^v - m²))
  double kl = 0;
  for (int b = 0; b < 2; ++b)
    for (int u = 0; u < 2; ++u) {
      double mean = xv[b * 2 + u], v = xv[b * 2 + u] * (u == 0 ? 0.5 : -1.0);
      kl += -0.5 * (1 + v - std::exp(v) - mean * mean);
    }
  kl = 0.5 * kl / 2;
  m->forward({true, 9, 4}, {&x});
  EXPECT_NEAR(m->penalty(), kl, 1e-6);
  Tensor first = m->output().clone();
  m->forward({true, 9, 4}, {&x});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(m->output()[i], first[i]);  // same step, same ε
  m->forward({true, 9, 5}, {&x});
  EXPECT_NE(m->output()[0], first[0]);  // another step, another ε
  m->forward({false, 9, 5}, {&x});
  EXPECT_NE(m->output()[0], xv[0]);  // samples at inference by default
}

TEST(ProbabilisticLayers, SamplingStatistics) {
  // z = mean + exp(log_var/2)·ε: with mean 0 and log_var = log 4, z has variance 4.
  auto m = model_from_yaml(
      "m: {input: [1], layers: [{type: dense, units: 64, name: mu, inputs: [input]},"
      " {type: dense, units: 64, name: lv, inputs: [input]},"
      " {type: sampling, inputs: [mu, lv], kl_weight: 0}]}",
      "m");
  find_param(*m, "mu.kernel")->value.zero();
  find_param(*m, "lv.kernel")->value.zero();
  find_param(*m, "lv.bias")->value.fill(float(std::log(4.0)));
  Tensor x({100, 1});
  m->forward({true, 1, 0}, {&x});
  double s = 0, s2 = 0;
  const Tensor& z = m->output();
  for (int64_t i = 0; i < z.size(); ++i) {
    s += z[i];
    s2 += double(z[i]) * z[i];
  }
  double mean = s / double(z.size()), var = s2 / double(z.size()) - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(var, 4.0, 0.3);
  EXPECT_DOUBLE_EQ(m->penalty(), 0.0);
}

TEST(ProbabilisticLayers, Softmax) {
  auto m = model_from_yaml("m: {input: [2, 3], layers: [{type: softmax}]}", "m");
  Tensor x({1, 2, 3});
  float xv[] = {1, 2, 3, 1000, 1000, 1000};
  for (int i = 0; i < 6; ++i) x[i] = xv[i];
  m->forward({false, 1, 0}, {&x});
  double e = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(m->output()[i], std::exp(xv[i]) / e, 1e-6);
  for (int i = 3; i < 6; ++i) EXPECT_NEAR(m->output()[i], 1.0 / 3, 1e-6);
  auto l = model_from_yaml("m: {input: [3], layers: [{type: log_softmax}]}", "m");
  Tensor x1 = x.slice(0, 1).reshaped({2, 3});
  l->forward({false, 1, 0}, {&x1});
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(l->output()[i], xv[i] - std::log(e), 1e-5);
  for (int i = 3; i < 6; ++i) EXPECT_NEAR(l->output()[i], -std::log(3.0), 1e-5);
}

TEST(ProbabilisticLayerGradients, Softmax) {
  check_layer_gradients("[5]", "{type: softmax}", 3);
  check_layer_gradients("[2, 4]", "{type: softmax}", 2);
  check_layer_gradients("[5]", "{type: log_softmax}", 3);
}

TEST(RecurrentLayerGradients, SharedLstmAppliedTwice) {
  // One lstm layer object at two places of a graph: backward of the first application must not
  // use the workspace of the second.
  auto set = model_from_yaml(
      "enc: {input: [3, 2], layers: [{type: lstm, units: 2, return_sequences: true}]}\n"
      "m: {input: [3, 2], layers: [{model: enc, name: a}, {model: enc, name: b}]}",
      "m");
  EXPECT_EQ(set->params().size(), 3u);
  GradCheck o;
  o.max_checks = 30;
  check_gradients(*set, 2, o);
}
