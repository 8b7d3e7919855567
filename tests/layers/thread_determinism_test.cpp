// Results against oneDNN's thread count (what the README's "Threads and reproducibility" states).
// The same model, seed and thread count give the same bytes. With another thread count oneDNN may
// split a reduction differently, and which reductions it splits depends on the instruction set:
// on AVX2 the data gradient of a dense layer for some shapes, the pointwise weight gradient of
// separable_conv2d and the gradients of lstm; on AVX-512 also the gradients of conv2d and
// conv2d_transpose. Those differ by a few units in the last place (relative 1e-5 at most per
// step); normalisation, pooling, upsampling, softmax and dropout give the same bytes everywhere.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "loom/rng.hpp"
#include "support/harness.hpp"

using loom::RunContext;
using loom::Tensor;
using loom::test::model_from_yaml;

namespace {

// Restores the OpenMP thread count on scope exit.
struct Threads {
  explicit Threads(int n) : saved(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~Threads() { omp_set_num_threads(saved); }
  int saved;
};

// Everything one forward + backward step produces: output, input gradient, parameter gradients.
std::vector<Tensor> one_step(const std::string& model, int threads, int64_t batch) {
  Threads t(threads);
  auto m = model_from_yaml(model, "m");  // primitives made under this thread count
  loom::Shape s = m->input_shape();
  s.insert(s.begin(), batch);
  Tensor x(s);
  loom::Rng rng(4, "x", 0, 0);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.f, 1.f);
  RunContext ctx;
  ctx.training = true;
  ctx.seed = 1;
  m->zero_grads();
  m->forward(ctx, {&x});
  Tensor& g = m->seed_grad(m->output_node());
  for (int64_t i = 0; i < g.size(); ++i) g[i] = rng.uniform(-1.f, 1.f);
  m->backward(ctx, true);
  std::vector<Tensor> out{m->output().clone(), m->input_grad().clone()};
  for (auto& p : m->params()) out.push_back(p->grad.clone());
  return out;
}

// max |a - b| / max(max |a|, tiny) over every tensor.
double max_relative_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double worst = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    double d = 0, m = 1e-30;
    for (int64_t i = 0; i < a[k].size(); ++i) {
      d = std::max(d, double(std::fabs(a[k][i] - b[k][i])));
      m = std::max(m, double(std::fabs(a[k][i])));
    }
    worst = std::max(worst, d / m);
  }
  return worst;
}

bool same_bytes(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  for (size_t k = 0; k < a.size(); ++k)
    if (std::memcmp(a[k].data(), b[k].data(), sizeof(float) * size_t(a[k].size())) != 0)
      return false;
  return true;
}

std::string one(const std::string& input, const std::string& layer) {
  return "m: {input: " + input + ", layers: [" + layer + "]}";
}

}  // namespace

TEST(ThreadDeterminism, LayerStepAcrossThreadCounts) {
  struct Case {
    const char* name;
    std::string model;
    bool exact;  // the same bytes with 1 and 2 threads on every instruction set
  };
  // The shapes of the conv_ae pipeline and a few more. Not exact: every layer whose gradients
  // oneDNN reduces over the batch or a kernel window in threads (dense, conv2d,
  // conv2d_transpose, separable_conv2d, lstm): bit-identical on AVX2 for most shapes, not on
  // AVX-512.
  const Case cases[] = {
      {"dense 784-100", one("[784]", "{type: dense, units: 100, activation: relu}"), false},
      {"dense 300-200", one("[300]", "{type: dense, units: 200, activation: relu}"), false},
      {"dense 30-144", one("[30]", "{type: dense, units: 144}"), false},
      {"conv2d 1-16",
       one("[1, 28, 28]",
           "{type: conv2d, filters: 16, kernel_size: [3], padding: same, activation: relu}"),
       false},
      {"conv2d 16-32",
       one("[16, 14, 14]",
           "{type: conv2d, filters: 32, kernel_size: [3], padding: same, activation: relu}"),
       false},
      {"conv2d 32-64",
       one("[32, 7, 7]",
           "{type: conv2d, filters: 64, kernel_size: [3], padding: same, activation: relu}"),
       false},
      {"conv2d 64-30",
       one("[64, 3, 3]",
           "{type: conv2d, filters: 30, kernel_size: [3], padding: same, activation: relu}"),
       false},
      {"conv2d_transpose 16-32",
       one("[16, 3, 3]",
           "{type: conv2d_transpose, filters: 32, kernel_size: [3], strides: [2], activation: "
           "relu}"),
       false},
      {"conv2d_transpose 32-16",
       one("[32, 7, 7]",
           "{type: conv2d_transpose, filters: 16, kernel_size: [3], strides: [2], padding: same, "
           "activation: relu}"),
       false},
      {"conv2d_transpose 16-1",
       one("[16, 14, 14]",
           "{type: conv2d_transpose, filters: 1, kernel_size: [3], strides: [2], padding: same}"),
       false},
      {"separable_conv2d",
       one("[16, 14, 14]",
           "{type: separable_conv2d, filters: 32, kernel_size: [3], padding: same}"),
       false},
      {"batch_norm", one("[16, 14, 14]", "{type: batch_norm}"), true},
      {"max_pool2d", one("[16, 28, 28]", "{type: max_pool2d}"), true},
      {"avg_pool2d", one("[16, 14, 14]", "{type: avg_pool2d}"), true},
      {"global_avg_pool2d", one("[30, 3, 3]", "{type: global_avg_pool2d}"), true},
      {"upsampling2d", one("[16, 7, 7]", "{type: upsampling2d, interpolation: bilinear}"), true},
      {"lstm", one("[10, 16]", "{type: lstm, units: 32}"), false},
      {"softmax", one("[100]", "{type: softmax}"), true},
      {"dropout", one("[1000]", "{type: dropout, rate: 0.5}"), true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto one_a = one_step(c.model, 1, 32), one_b = one_step(c.model, 1, 32);
    auto two_a = one_step(c.model, 2, 32), two_b = one_step(c.model, 2, 32);
    EXPECT_TRUE(same_bytes(one_a, one_b)) << "1 thread, run twice";
    EXPECT_TRUE(same_bytes(two_a, two_b)) << "2 threads, run twice";
    double d = max_relative_diff(one_a, two_a);
    std::printf("%-24s 1 vs 2 threads: max relative difference %.3g\n", c.name, d);
    if (c.exact)
      EXPECT_TRUE(same_bytes(one_a, two_a));
    else
      EXPECT_LE(d, 1e-5);  // a few units in the last place of float
  }
}

namespace {

// The weights after `steps` plain SGD steps (lr 0.05, MSE to a fixed target) of a small
// convolutional autoencoder-like model, trained with `threads` oneDNN threads.
std::vector<Tensor> train(int threads, int steps) {
  Threads t(threads);
  auto m = model_from_yaml(
      "m: {input: [1, 8, 8], layers: ["
      "{type: conv2d, filters: 8, kernel_size: [3], padding: same, activation: relu},"
      "{type: max_pool2d}, {type: flatten}, {type: dense, units: 30, activation: tanh},"
      "{type: dense, units: 144}, {type: reshape, shape: [16, 3, 3]},"
      "{type: conv2d_transpose, filters: 1, kernel_size: [3], strides: [2]}]}",
      "m");
  loom::Rng rng(8, "data", 0, 0);
  Tensor x({32, 1, 8, 8}), target({32, 1, 7, 7});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(0.f, 1.f);
  for (int64_t i = 0; i < target.size(); ++i) target[i] = rng.uniform(0.f, 1.f);
  RunContext ctx;
  ctx.training = true;
  for (int s = 0; s < steps; ++s) {
    ctx.step = s + 1;
    m->zero_grads();
    m->forward(ctx, {&x});
    Tensor& g = m->seed_grad(m->output_node());
    for (int64_t i = 0; i < g.size(); ++i)
      g[i] = 2.f * (m->output()[i] - target[i]) / float(g.size());
    m->backward(ctx);
    for (auto& p : m->params())
      for (int64_t i = 0; i < p->value.size(); ++i) p->value[i] -= 0.05f * p->grad[i];
  }
  std::vector<Tensor> w;
  for (auto& p : m->params()) w.push_back(p->value.clone());
  return w;
}

}  // namespace

TEST(ThreadDeterminism, TrainingAcrossThreadCounts) {
  auto one_a = train(1, 50), one_b = train(1, 50), two_a = train(2, 50), two_b = train(2, 50);
  EXPECT_TRUE(same_bytes(one_a, one_b));
  EXPECT_TRUE(same_bytes(two_a, two_b));
  double worst = 0;
  for (size_t k = 0; k < one_a.size(); ++k)
    for (int64_t i = 0; i < one_a[k].size(); ++i)
      worst = std::max(worst, double(std::fabs(one_a[k][i] - two_a[k][i])));
  std::printf("50 SGD steps, 1 vs 2 threads: max |weight difference| %.3g\n", worst);
  EXPECT_LE(worst, 1e-6);
}
