// Stochastic layers (sampling, dropout, gaussian_noise) draw from streams keyed by the
// RunContext: fresh noise per batch of a pass (rows numbered across batches), per call (salt) and
// per step; the same seed repeats it. Dropout's keep rate and its backward mask.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/model.hpp"
#include "support/harness.hpp"

using loom::RunContext;
using loom::Shape;
using loom::Tensor;
using loom::test::model_from_yaml;

namespace {

const char* kVae =
    "m: {input: [6], layers: [{type: dense, units: 3, name: mu, inputs: [input]},"
    " {type: dense, units: 3, name: lv, inputs: [input]},"
    " {type: sampling, inputs: [mu, lv], name: z}]}";

// A batch of `n` identical samples.
Tensor same_rows(int64_t n, int64_t per) {
  Tensor x({n, per});
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < per; ++i) x[b * per + i] = 0.1f * float(i + 1);
  return x;
}

bool rows_equal(const Tensor& t, int64_t a, int64_t b, int64_t per) {
  for (int64_t i = 0; i < per; ++i)
    if (t[a * per + i] != t[b * per + i]) return false;
  return true;
}

Tensor run(loom::Model& m, const Tensor& x, const RunContext& ctx) {
  m.forward(ctx, {&x});
  return m.output().clone();
}

}  // namespace

TEST(StochasticLayers, SamplingInferenceBatchesDrawFreshNoise) {
  auto m = model_from_yaml(kVae, "m");
  // predict() over 8 identical samples, 4 per batch: no two rows may share their noise (before
  // rows were keyed by their index within a batch, so row 4 repeated row 0).
  Tensor x = same_rows(8, 6);
  Tensor z = loom::predict(*m, x.data(), 8, 6, -1, 4, 42);
  for (int64_t a = 0; a < 8; ++a)
    for (int64_t b = a + 1; b < 8; ++b) EXPECT_FALSE(rows_equal(z, a, b, 3)) << a << " vs " << b;
  // The same seed repeats the whole pass, whatever the batch size; another seed does not.
  Tensor again = loom::predict(*m, x.data(), 8, 6, -1, 4, 42);
  Tensor one_batch = loom::predict(*m, x.data(), 8, 6, -1, 8, 42);
  Tensor other = loom::predict(*m, x.data(), 8, 6, -1, 4, 43);
  for (int64_t i = 0; i < z.size(); ++i) {
    EXPECT_EQ(z[i], again[i]);
    EXPECT_EQ(z[i], one_batch[i]);
  }
  EXPECT_FALSE(rows_equal(z, 0, 0, 3) && z[0] == other[0] && z[1] == other[1]);
}

TEST(StochasticLayers, SamplingCallsDifferBySaltAndStep) {
  auto m = model_from_yaml(kVae, "m");
  Tensor x = same_rows(2, 6);
  RunContext a;
  a.training = true;
  a.seed = 5;
  a.step = 3;
  RunContext salted = a, later = a;
  salted.salt = 1;
  later.step = 4;
  Tensor za = run(*m, x, a), zs = run(*m, x, salted), zl = run(*m, x, later), za2 = run(*m, x, a);
  for (int64_t i = 0; i < za.size(); ++i) {
    EXPECT_EQ(za[i], za2[i]);
    EXPECT_NE(za[i], zs[i]);
    EXPECT_NE(za[i], zl[i]);
  }
}

TEST(StochasticLayers, DropoutAndNoiseKeyedByRowSaltAndStep) {
  for (const char* layer : {"{type: dropout, rate: 0.5}", "{type: gaussian_noise, stddev: 1}"}) {
    SCOPED_TRACE(layer);
    auto m = model_from_yaml(std::string("m: {input: [64], layers: [") + layer + "]}", "m");
    Tensor x = same_rows(2, 64);
    RunContext ctx;
    ctx.training = true;
    ctx.seed = 1;
    ctx.step = 7;
    Tensor y = run(*m, x, ctx);
    EXPECT_FALSE(rows_equal(y, 0, 1, 64));  // rows of one batch
    RunContext next_batch = ctx, salted = ctx, later = ctx;
    next_batch.first = 2;
    salted.salt = 3;
    later.step = 8;
    Tensor yb = run(*m, x, next_batch), ys = run(*m, x, salted), yl = run(*m, x, later);
    EXPECT_FALSE(rows_equal(Tensor(y), 0, 0, 64) && std::equal(y.data(), y.data() + 64, yb.data()));
    for (const Tensor* t : {&yb, &ys, &yl}) {
      int same = 0;
      for (int64_t i = 0; i < 64; ++i) same += (*t)[i] == y[i];
      EXPECT_LT(same, 48);  // dropout: about half the values agree by chance; noise: none
    }
    Tensor again = run(*m, x, ctx);
    for (int64_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], again[i]);
    ctx.training = false;  // identity at inference
    Tensor id = run(*m, x, ctx);
    for (int64_t i = 0; i < y.size(); ++i) EXPECT_EQ(id[i], x[i]);
  }
}

TEST(StochasticLayers, DropoutKeepsRateAndScalesAndMasksBackward) {
  auto m = model_from_yaml("m: {input: [1000], layers: [{type: dropout, rate: 0.3}]}", "m");
  Tensor x({20, 1000});
  x.fill(1.f);
  RunContext ctx;
  ctx.training = true;
  ctx.seed = 11;
  m->forward(ctx, {&x});
  const Tensor& y = m->output();
  int64_t kept = 0;
  for (int64_t i = 0; i < y.size(); ++i) {
    ASSERT_TRUE(y[i] == 0.f || std::fabs(y[i] - 1.f / 0.7f) < 1e-6) << y[i];
    kept += y[i] != 0.f;
  }
  // 20000 draws: the kept fraction is 0.7 within 5 standard deviations (0.0032 each).
  EXPECT_NEAR(double(kept) / double(y.size()), 0.7, 0.016);
  Tensor y0 = y.clone();
  m->seed_grad(m->output_node()).fill(2.f);
  m->backward(ctx, true);
  const Tensor& dx = m->input_grad();
  for (int64_t i = 0; i < dx.size(); ++i) ASSERT_FLOAT_EQ(dx[i], 2.f * y0[i]);  // same mask
}
