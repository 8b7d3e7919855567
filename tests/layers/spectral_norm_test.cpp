// Spectral normalisation's arithmetic: σ converges to the largest singular value, W/σ has
// spectral norm 1, u changes only when asked, and the gradient matches finite differences.
#include "../../plugins/layers/spectral_norm.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "support/harness.hpp"

using loom::Tensor;
using loom::layers::SpectralNorm;

namespace {

// W = Q1 · diag(3, 1, 0.5) · Q2^T with rotations Q1 (4x3 block) and Q2 (3x3): singular values
// 3, 1, 0.5.
std::vector<float> known_matrix() {
  const double a = 0.7, b = -0.4;
  double q1[4][3] = {
      {std::cos(a), -std::sin(a), 0}, {std::sin(a), std::cos(a), 0}, {0, 0, 1}, {0, 0, 0}};
  double q2[3][3] = {{1, 0, 0}, {0, std::cos(b), -std::sin(b)}, {0, std::sin(b), std::cos(b)}};
  double s[3] = {3, 1, 0.5};
  std::vector<float> w(12);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) {
      double v = 0;
      for (int k = 0; k < 3; ++k) v += q1[r][k] * s[k] * q2[c][k];
      w[size_t(r * 3 + c)] = float(v);
    }
  return w;
}

TEST(SpectralNorm, SigmaConvergesToTheLargestSingularValue) {
  std::vector<float> w = known_matrix(), sn(12), u{0.3f, -0.2f, 0.9f, 0.1f};
  SpectralNorm s;
  for (int step = 0; step < 30; ++step) s.normalise(w.data(), 4, 3, u.data(), true, sn.data());
  EXPECT_NEAR(s.sigma(), 3.0, 1e-5);
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(sn[size_t(i)], w[size_t(i)] / 3.0, 1e-5);
  // W/σ has spectral norm 1: another estimate on it gives 1.
  std::vector<float> u2 = u, sn2(12);
  SpectralNorm t;
  for (int step = 0; step < 30; ++step) t.normalise(sn.data(), 4, 3, u2.data(), true, sn2.data());
  EXPECT_NEAR(t.sigma(), 1.0, 1e-5);
}

TEST(SpectralNorm, UChangesOnlyWhenUpdating) {
  std::vector<float> w = known_matrix(), sn(12), u{0.3f, -0.2f, 0.9f, 0.1f};
  std::vector<float> keep = u;
  SpectralNorm s;
  s.normalise(w.data(), 4, 3, u.data(), false, sn.data());
  EXPECT_EQ(u, keep);
  s.normalise(w.data(), 4, 3, u.data(), true, sn.data());
  EXPECT_NE(u, keep);
  double n = 0;
  for (float x : u) n += double(x) * x;
  EXPECT_NEAR(n, 1.0, 1e-6);
}

TEST(SpectralNorm, GradientMatchesFiniteDifferences) {
  // L(W) = Σ K ∘ (W/σ(W)) with u fixed (no update): σ = |W^T u| exactly, so the gradient is exact.
  std::vector<float> w = known_matrix(), u{0.3f, -0.2f, 0.9f, 0.1f}, sn(12), k(12), g(12, 0.f);
  for (int i = 0; i < 12; ++i) {
    w[size_t(i)] += 0.1f * std::sin(float(i));
    k[size_t(i)] = std::cos(1.3f * float(i));
  }
  auto loss = [&](const std::vector<float>& wt) {
    std::vector<float> uu = u, out(12);
    SpectralNorm s;
    s.normalise(wt.data(), 4, 3, uu.data(), false, out.data());
    double l = 0;
    for (int i = 0; i < 12; ++i) l += double(k[size_t(i)]) * out[size_t(i)];
    return l;
  };
  SpectralNorm s;
  std::vector<float> uu = u;
  s.normalise(w.data(), 4, 3, uu.data(), false, sn.data());
  s.backward(k.data(), sn.data(), g.data());
  for (int i = 0; i < 12; ++i) {
    auto up = w, down = w;
    up[size_t(i)] += 1e-3f;
    down[size_t(i)] -= 1e-3f;
    double fd = (loss(up) - loss(down)) / double(up[size_t(i)] - down[size_t(i)]);
    EXPECT_NEAR(g[size_t(i)], fd, 2e-3) << "element " << i;
  }
}

// The layer option: gradients of dense and conv2d with spectral_norm (u held fixed: inference
// mode), a forward pass against a naive reference, and u moving only in a trained forward.
TEST(SpectralNormLayers, GradientsMatchFiniteDifferences) {
  loom::test::GradCheck o;
  o.training = false;
  for (const char* m :
       {"m: {input: [5], layers: [{type: dense, units: 3, spectral_norm: true}]}",
        "m: {input: [2, 5, 5], layers: [{type: conv2d, filters: 3, kernel_size: [3], strides: "
        "[2], padding: same, spectral_norm: true}]}"}) {
    SCOPED_TRACE(m);
    auto model = loom::test::model_from_yaml(m, "m");
    loom::test::check_gradients(*model, 2, o);
  }
}

TEST(SpectralNormLayers, DenseForwardMatchesNaiveReference) {
  auto model = loom::test::model_from_yaml(
      "m: {input: [4], layers: [{type: dense, units: 3, spectral_norm: true, bias_initializer: "
      "ones}]}",
      "m");
  loom::ParamPtr kernel, u;
  for (auto& p : model->params()) {
    if (p->name == "m.dense_1.kernel") kernel = p;
    if (p->name == "m.dense_1.sn_u") u = p;
  }
  ASSERT_TRUE(kernel && u);
  ASSERT_FALSE(u->trainable);
  std::vector<float> u0(u->value.data(), u->value.data() + 4);
  Tensor x({2, 4});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i) + 0.5f);
  loom::RunContext ctx;  // inference: u stays
  model->forward(ctx, {&x});
  // σ = |Wᵀu| / |u| for the stored u (W is 4 x 3, u has 4 values).
  double un = 0, sigma = 0;
  for (float a : u0) un += double(a) * a;
  un = std::sqrt(un);
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (int r = 0; r < 4; ++r) s += double(kernel->value[r * 3 + c]) * u0[size_t(r)] / un;
    sigma += s * s;
  }
  sigma = std::sqrt(sigma);
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 3; ++c) {
      double y = 1.0;
      for (int r = 0; r < 4; ++r) y += double(x[b * 4 + r]) * kernel->value[r * 3 + c] / sigma;
      EXPECT_NEAR(model->output()[b * 3 + c], y, 1e-5);
    }
  EXPECT_EQ(std::vector<float>(u->value.data(), u->value.data() + 4), u0);
  ctx.training = true;
  ctx.frozen = true;  // a frozen discriminator keeps its u
  model->forward(ctx, {&x});
  EXPECT_EQ(std::vector<float>(u->value.data(), u->value.data() + 4), u0);
  ctx.frozen = false;
  model->forward(ctx, {&x});
  EXPECT_NE(std::vector<float>(u->value.data(), u->value.data() + 4), u0);
}

}  // namespace
