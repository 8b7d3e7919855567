// precision: bf16 — convolutions and matrix products on bfloat16 operands with fp32 sums. Each
// layer's forward output, input gradient and parameter gradients in bf16 are compared with the
// same layer in fp32 (itself tested against naive references and finite differences): close
// to bf16's 8-bit mantissa, and not identical (the bf16 kernels did run). On a CPU without
// AVX512-BF16 or AMX, `precision: bf16` is refused by validation (tests/cli/run_test.cpp), and
// these comparisons do not apply.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cpu.hpp"
#include "loom/rng.hpp"
#include "support/harness.hpp"

namespace loom {
namespace {

struct Pass {
  Tensor y, dx;
  std::vector<Tensor> dparams;
};

Pass run(Model& m, const Tensor& x, const Tensor& g, bool bf16) {
  RunContext ctx{true, 7, 3};
  ctx.bf16 = bf16;
  m.zero_grads();
  m.forward(ctx, {&x});
  Pass p;
  p.y = m.output().clone();
  m.seed_grad(m.output_node()).copy_from(g);
  m.backward(ctx, true);
  p.dx = m.input_grad().clone();
  for (auto& q : m.params()) p.dparams.push_back(q->grad.clone());
  return p;
}

// ||a - b|| / ||b||
double relative(const Tensor& a, const Tensor& b) {
  double d = 0, n = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    n += double(b[i]) * b[i];
  }
  return std::sqrt(d / std::max(n, 1e-30));
}

void check_bf16(const std::string& input_shape, const std::string& layer, int64_t batch) {
  std::string why;
  if (!bf16_available(why)) GTEST_SKIP() << why;
  SCOPED_TRACE(layer);
  auto m = test::model_from_yaml("m: {input: " + input_shape + ", layers: [" + layer + "]}", "m");
  Shape xs = m->input_shape();
  xs.insert(xs.begin(), batch);
  Tensor x(xs);
  Rng rng(5, "bf16", 0, 0);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.f, 1.f);
  m->forward(RunContext{true, 7, 3}, {&x});
  Tensor g(m->output().shape());
  for (int64_t i = 0; i < g.size(); ++i) g[i] = rng.uniform(-1.f, 1.f);

  Pass f = run(*m, x, g, false), b = run(*m, x, g, true);
  // Activations are smooth here: where relu's gate sits within bf16's rounding of zero it flips,
  // and each flip moves a whole gradient value (a few percent of the norm; expected, not tested).
  // bf16 rounds each operand to 8 significant bits (relative 2^-9 on average); sums of many
  // products keep the error near that. 1e-2 allows for cancellation; 1e-5 below which the
  // arithmetic cannot have been bf16.
  auto near = [](const std::string& what, double r) {
    EXPECT_LT(r, 1e-2) << what;
    EXPECT_GT(r, 1e-5) << what << ": identical to fp32, so bf16 did not run";
  };
  near("output", relative(b.y, f.y));
  near("input gradient", relative(b.dx, f.dx));
  for (size_t k = 0; k < f.dparams.size(); ++k) {
    const std::string& name = m->params()[k]->name;
    if (name.find("bias") != std::string::npos) {
      // A bias gradient sums the output gradient over the batch: fp32 in both.
      EXPECT_LT(relative(b.dparams[k], f.dparams[k]), 1e-2) << name;
      continue;
    }
    near(name, relative(b.dparams[k], f.dparams[k]));
  }
  // fp32 again after bf16: each precision keeps its own primitives.
  Pass again = run(*m, x, g, false);
  EXPECT_EQ(relative(again.y, f.y), 0.0);
}

TEST(Bf16Layers, Conv2D) {
  check_bf16("[16, 12, 12]", "{type: conv2d, filters: 32, kernel_size: [3], padding: same}", 4);
  check_bf16("[16, 12, 12]",
             "{type: conv2d, filters: 32, kernel_size: [5], strides: [2], padding: same, "
             "activation: tanh}",
             4);
  check_bf16("[1, 28, 28]", "{type: conv2d, filters: 16, kernel_size: [5], strides: [2]}", 3);
}

TEST(Bf16Layers, Conv2DTranspose) {
  check_bf16("[32, 7, 7]",
             "{type: conv2d_transpose, filters: 16, kernel_size: [5], strides: [2], padding: "
             "same}",
             4);
  check_bf16("[16, 6, 6]",
             "{type: conv2d_transpose, filters: 8, kernel_size: [3], activation: tanh}", 3);
}

TEST(Bf16Layers, SeparableConv2D) {
  check_bf16("[16, 10, 10]",
             "{type: separable_conv2d, filters: 32, kernel_size: [3], padding: same}", 4);
}

TEST(Bf16Layers, Dense) {
  check_bf16("[64]", "{type: dense, units: 48}", 8);
  check_bf16("[100]", "{type: dense, units: 784, activation: sigmoid}", 5);
}

}  // namespace
}  // namespace loom
