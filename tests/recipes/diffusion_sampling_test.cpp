// Diffusion sampling, driven by closed-form denoisers: the targets (eps, v, x0) and their
// inversion, the Min-SNR-γ weights, one exact reverse step with the true noise recovering x0,
// every sampler recovering x0 from an oracle, DDIM with eta 0 giving the same bytes twice and for
// any batch split, and DDIM / DPM-Solver++ / DDPM on Gaussian data, whose exact noise predictor
// is known, against the exact probability-flow map and the data distribution.
#include "../../plugins/recipes/diffusion_sampling.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

using namespace loom;
using namespace loom::recipes;

namespace {

const DiffusionTarget kTargets[] = {DiffusionTarget::Epsilon, DiffusionTarget::V,
                                    DiffusionTarget::X0};

SamplerSettings settings(const std::string& kind, int64_t steps = 20, double eta = 0,
                         const std::string& spacing = "trailing") {
  SamplerSettings s;
  s.kind = kind;
  s.steps = steps;
  s.eta = eta;
  s.spacing = spacing;
  return s;
}

// A denoiser that knows x0 (one image, `per` values, the same for every row): it predicts the
// target exactly for any x_t.
Denoiser oracle(const NoiseSchedule& sc, DiffusionTarget k, const std::vector<double>& x0) {
  return [&sc, k, x0](const Tensor& x, int64_t t, Tensor& pred) {
    double a = sc.signal(t), s = sc.noise(t);
    int64_t per = int64_t(x0.size());
    for (int64_t i = 0; i < x.size(); ++i) {
      double c = x0[size_t(i % per)], eps = (x[i] - a * c) / s;
      pred[i] = float(target_value(k, c, eps, a, s));
    }
  };
}

// Data ~ N(mu, sd²) per value: x_t ~ N(a mu, a² sd² + s²) and E[eps | x_t] = s (x_t - a mu) / v.
Denoiser gaussian_eps(const NoiseSchedule& sc, double mu, double sd) {
  return [&sc, mu, sd](const Tensor& x, int64_t t, Tensor& pred) {
    double a = sc.signal(t), s = sc.noise(t), v = a * a * sd * sd + s * s;
    for (int64_t i = 0; i < x.size(); ++i) pred[i] = float(s * (x[i] - a * mu) / v);
  };
}

// Some smooth nonlinear denoiser, for determinism tests.
Denoiser wiggly() {
  return [](const Tensor& x, int64_t t, Tensor& pred) {
    int64_t per = x.size() / x.dim(0);
    for (int64_t i = 0; i < x.size(); ++i)
      pred[i] = std::tanh(x[i]) * 0.8f + 0.1f * std::sin(0.01f * float(t) + float(i % per));
  };
}

Tensor draw(const DiffusionSampler& s, const Denoiser& d, int64_t n, int64_t per, uint64_t seed,
            int64_t first = 0) {
  Tensor x({n, per});
  s.sample(d, x, seed, first);
  return x;
}

}  // namespace

TEST(DiffusionTargets, PredictionsInvertToCleanImageAndNoise) {
  auto sc = cosine_schedule(1000);
  for (DiffusionTarget k : kTargets)
    for (int64_t t : {1, 10, 500, 999}) {
      double a = sc.signal(t), s = sc.noise(t), x0 = 0.37, eps = -1.3, x = a * x0 + s * eps;
      double gx0, geps;
      split_prediction(k, x, target_value(k, x0, eps, a, s), a, s, gx0, geps);
      EXPECT_NEAR(gx0, x0, 1e-9) << int(k) << " t=" << t;
      EXPECT_NEAR(geps, eps, 1e-9) << int(k) << " t=" << t;
    }
  // v = a eps - s x0 by hand at a = 0.6, s = 0.8.
  EXPECT_NEAR(target_value(DiffusionTarget::V, 0.5, 2.0, 0.6, 0.8), 1.2 - 0.4, 1e-15);
  EXPECT_THROW(diffusion_target("score"), Error);
}

TEST(DiffusionTargets, MinSnrWeightsArePinned) {
  const double gamma = 5;
  // SNR 10 > gamma: eps 5/10, v 5/11, x0 5.
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::Epsilon, 10, gamma), 0.5, 1e-15);
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::V, 10, gamma), 5.0 / 11.0, 1e-15);
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::X0, 10, gamma), 5.0, 1e-15);
  // SNR 2 < gamma: eps 1 (no change), v 2/3, x0 2.
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::Epsilon, 2, gamma), 1.0, 1e-15);
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::V, 2, gamma), 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::X0, 2, gamma), 2.0, 1e-15);
  // On the chapter's schedule at t = 2000 (SNR 0.9757): eps weight 1, v weight snr / (snr + 1).
  auto sc = cosine_schedule(4000);
  double snr = sc.snr(2000);
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::Epsilon, snr, gamma), 1.0, 1e-15);
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::V, snr, gamma),
              0.9756738848186329 / 1.9756738848186329, 1e-10);
  EXPECT_NEAR(min_snr_weight(DiffusionTarget::Epsilon, sc.snr(10), gamma), 5.0 / sc.snr(10), 1e-15);
}

TEST(DiffusionSteps, OneExactReverseStepWithTheTrueNoiseRecoversX0) {
  auto sc = linear_schedule(1000);
  Rng rng(3, "x", 0, 0);
  for (DiffusionTarget k : kTargets)
    for (int64_t t : {1, 2, 50, 700, 1000})
      for (int r = 0; r < 20; ++r) {
        double x0 = rng.uniform(-1, 1), eps = rng.normal();
        double a = sc.signal(t), s = sc.noise(t), xt = a * x0 + s * eps;
        double gx0, geps;
        split_prediction(k, xt, target_value(k, x0, eps, a, s), a, s, gx0, geps);
        // DDIM from t straight to 0 (sigma 0): x0 itself.
        EXPECT_NEAR(ddim_step(sc, 0, gx0, geps, 0.0, 0.0), x0, 1e-9);
      }
  // The chapter's ancestral step at t = 1 (no noise) with the true noise: x0 exactly.
  for (int r = 0; r < 20; ++r) {
    double x0 = rng.uniform(-1, 1), eps = rng.normal();
    double xt = sc.signal(1) * x0 + sc.noise(1) * eps;
    EXPECT_NEAR(ddpm_step(sc, 1, xt, eps, 0.0), x0, 1e-12);
  }
  // At t > 1 the step's mean is the posterior mean of x_{t-1}: a_{t-1} x0 + c eps with
  // c = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / s_t.
  double x0 = 0.4, eps = 0.9;
  int64_t t = 300;
  double xt = sc.signal(t) * x0 + sc.noise(t) * eps;
  double c = std::sqrt(sc.alpha[300]) * (1 - sc.alpha_bar[299]) / sc.noise(t);
  EXPECT_NEAR(ddpm_step(sc, t, xt, eps, 0.0), sc.signal(299) * x0 + c * eps, 1e-12);
}

TEST(DiffusionSampler, EverySamplerRecoversX0FromAnOracle) {
  auto sc = cosine_schedule(200);
  std::vector<double> x0{-0.9, -0.2, 0.0, 0.35, 0.8};
  for (DiffusionTarget k : kTargets)
    for (auto s : {settings("ddpm"), settings("ddim", 10), settings("ddim", 7, 0.5, "leading"),
                   settings("dpm_solver_pp", 15), settings("dpm_solver_pp", 1)}) {
      SCOPED_TRACE(s.kind + " " + std::to_string(s.steps) + " target " + std::to_string(int(k)));
      DiffusionSampler sampler(sc, k, s);
      Tensor x = draw(sampler, oracle(sc, k, x0), 3, 5, 9);
      for (int64_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], x0[size_t(i % 5)], 2e-4) << i;
    }
}

TEST(DiffusionSampler, TimeStepSpacing) {
  auto sc = linear_schedule(1000);
  EXPECT_EQ(
      DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddim", 4, 0, "leading")).timesteps(),
      (std::vector<int64_t>{751, 501, 251, 1}));
  EXPECT_EQ(DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddim", 4)).timesteps(),
            (std::vector<int64_t>{1000, 750, 500, 250}));
  EXPECT_EQ(DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddim", 3)).timesteps(),
            (std::vector<int64_t>{1000, 667, 333}));
  EXPECT_EQ(DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddim", 4, 0, "linspace"))
                .timesteps(),
            (std::vector<int64_t>{1000, 667, 334, 1}));
  EXPECT_EQ(
      DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("dpm_solver_pp", 1, 0, "linspace"))
          .timesteps(),
      (std::vector<int64_t>{1000}));
  auto all = DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddim", 1000)).timesteps();
  ASSERT_EQ(all.size(), 1000u);
  EXPECT_EQ(all.front(), 1000);
  EXPECT_EQ(all.back(), 1);
  auto ddpm = DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddpm")).timesteps();
  ASSERT_EQ(ddpm.size(), 999u);  // the chapter's loop: T-1 down to 1
  EXPECT_EQ(ddpm.front(), 999);
  EXPECT_EQ(ddpm.back(), 1);
  EXPECT_THROW(DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddim", 1001)), Error);
  EXPECT_THROW(DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("euler")), Error);
  EXPECT_THROW(DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("ddim", 5, 0, "middle")),
               Error);
}

// karras: noise levels sigma = s_t / a_t from 80 (or sigma(T) if lower) down to sigma(1), evenly
// in sigma^(1/7), each the time step nearest in log sigma.
TEST(DiffusionSampler, KarrasSpacingIsEvenInSigmaToTheOneSeventh) {
  for (int64_t T : {4000, 50}) {
    auto sc = linear_schedule(T);
    auto sigma = [&](int64_t t) { return sc.noise(t) / sc.signal(t); };
    auto root = [&](int64_t t) { return std::pow(sigma(t), 1.0 / 7); };
    for (int64_t S : {2, 20}) {
      SCOPED_TRACE(std::to_string(T) + " " + std::to_string(S));
      auto ts =
          DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("dpm_solver_pp", S, 0, "karras"))
              .timesteps();
      ASSERT_EQ(int64_t(ts.size()), S);
      EXPECT_EQ(ts.back(), 1);
      for (size_t i = 1; i < ts.size(); ++i) ASSERT_LT(ts[i], ts[i - 1]);
      double hi = std::pow(std::min(sigma(T), 80.0), 1.0 / 7), lo = root(1);
      if (sigma(T) > 80) {  // the first step is the one nearest sigma = 80
        EXPECT_LE(std::abs(std::log(sigma(ts[0]) / 80)), std::abs(std::log(sigma(ts[0] + 1) / 80)));
        EXPECT_LE(std::abs(std::log(sigma(ts[0]) / 80)), std::abs(std::log(sigma(ts[0] - 1) / 80)));
      } else {
        EXPECT_EQ(ts[0], T);
      }
      for (size_t i = 1; i + 1 < ts.size(); ++i) {
        double want = hi + (lo - hi) * double(i) / double(S - 1);
        // Within a time step of the even value, unless the step before took that one (a short
        // schedule has fewer time steps near t = 1 than even steps): then the next below.
        bool near = root(ts[i] - 1) <= want + 1e-12 && root(ts[i] + 1) >= want - 1e-12;
        EXPECT_TRUE(near || ts[i] == ts[i - 1] - 1) << "step " << i << " at t = " << ts[i];
        if (T == 4000) {
          EXPECT_TRUE(near) << "step " << i;
        }
      }
    }
  }
}

// logsnr: from leading's first step down to 1, each step the same length in
// lambda = log(a_t / s_t), up to the rounding to whole time steps.
TEST(DiffusionSampler, LogSnrSpacingIsEvenInLambda) {
  auto sc = cosine_schedule(4000);
  auto lambda = [&](int64_t t) { return std::log(sc.signal(t) / sc.noise(t)); };
  for (int64_t S : {2, 5, 20, 100}) {
    SCOPED_TRACE(S);
    auto ts =
        DiffusionSampler(sc, DiffusionTarget::Epsilon, settings("dpm_solver_pp", S, 0, "logsnr"))
            .timesteps();
    ASSERT_EQ(int64_t(ts.size()), S);
    EXPECT_EQ(ts.front(), 1 + (S - 1) * (4000 / S));
    EXPECT_EQ(ts.back(), 1);
    for (size_t i = 1; i < ts.size(); ++i) ASSERT_LT(ts[i], ts[i - 1]);
    double step = (lambda(1) - lambda(ts.front())) / double(S - 1);
    for (size_t i = 1; i + 1 < ts.size(); ++i) {
      double want = lambda(ts.front()) + step * double(i);
      // Each step is the time step whose lambda is nearest the even one, unless the step before
      // took it (near t = 1 one time step spans more lambda than an even step): then the next.
      int64_t t = ts[i];
      double off = std::abs(lambda(t) - want);
      bool nearest = off <= std::abs(lambda(t - 1) - want) && off <= std::abs(lambda(t + 1) - want);
      EXPECT_TRUE(nearest || t == ts[i - 1] - 1)
          << "step " << i << " at t = " << t << ": lambda " << lambda(t) << ", wanted " << want;
      if (S <= 20) {
        EXPECT_TRUE(nearest) << "step " << i;
      }
    }
  }
  // Every step is used even when more are asked than the schedule has room for evenly.
  auto all = DiffusionSampler(cosine_schedule(50), DiffusionTarget::Epsilon,
                              settings("ddim", 50, 0, "logsnr"))
                 .timesteps();
  ASSERT_EQ(all.size(), 50u);
  for (size_t i = 1; i < all.size(); ++i) ASSERT_LT(all[i], all[i - 1]);
  EXPECT_EQ(all.back(), 1);
}

TEST(DiffusionSampler, SameBytesTwiceAndForAnyBatchSplit) {
  auto sc = cosine_schedule(300);
  for (auto s : {settings("ddim", 25), settings("ddim", 25, 0.7, "leading"),
                 settings("dpm_solver_pp", 12), settings("ddpm")}) {
    SCOPED_TRACE(s.kind + " eta " + std::to_string(s.eta));
    DiffusionSampler sampler(sc, DiffusionTarget::Epsilon, s);
    const int64_t n = 7, per = 6;
    Tensor a = draw(sampler, wiggly(), n, per, 42);
    Tensor b = draw(sampler, wiggly(), n, per, 42);
    ASSERT_EQ(std::memcmp(a.data(), b.data(), size_t(a.size()) * sizeof(float)), 0);
    for (int64_t split : {1, 3, 4}) {
      for (int64_t first = 0; first < n; first += split) {
        int64_t m = std::min(split, n - first);
        Tensor part = draw(sampler, wiggly(), m, per, 42, first);
        ASSERT_EQ(std::memcmp(part.data(), a.data() + first * per, size_t(m * per) * sizeof(float)),
                  0)
            << "rows " << first << ".." << first + m - 1 << " drawn in batches of " << split;
      }
    }
    Tensor other = draw(sampler, wiggly(), n, per, 43);
    EXPECT_NE(std::memcmp(other.data(), a.data(), size_t(a.size()) * sizeof(float)), 0);
  }
}

namespace {

// A deterministic sampler on Gaussian data is an affine map of its starting noise z (row i's
// first normal draw): out = A z + B. The exact probability-flow ODE maps x_T ~ N(a_T mu, v_T) to
// N(mu, sd²): A = sd / sqrt(v_T), B = mu - A a_T mu. Returns the sampler's |A - A*| + |B - B*|.
double flow_error(const NoiseSchedule& sc, const SamplerSettings& s, double mu, double sd) {
  DiffusionSampler sampler(sc, DiffusionTarget::Epsilon, s);
  Tensor x({2, 1});
  sampler.sample(gaussian_eps(sc, mu, sd), x, 5, 0);
  double z0 = Rng(5, "diffusion_sample", 0, 0).normal(),
         z1 = Rng(5, "diffusion_sample", 1, 0).normal();
  double A = (x[1] - x[0]) / (z1 - z0), B = x[0] - A * z0;
  int64_t T = sampler.timesteps().front();
  double aT = sc.signal(T), vT = aT * aT * sd * sd + sc.noise(T) * sc.noise(T);
  double A_exact = sd / std::sqrt(vT), B_exact = mu - A_exact * aT * mu;
  return std::fabs(A - A_exact) + std::fabs(B - B_exact);
}

}  // namespace

TEST(DiffusionSampler, DpmSolverPlusPlusMatchesTheExactFlowOnGaussianData) {
  auto sc = cosine_schedule(1000);
  const double mu = 0.3, sd = 0.5;
  double e10 = flow_error(sc, settings("dpm_solver_pp", 10), mu, sd);
  double e20 = flow_error(sc, settings("dpm_solver_pp", 20), mu, sd);
  double e25 = flow_error(sc, settings("dpm_solver_pp", 25), mu, sd);
  double ddim20 = flow_error(sc, settings("ddim", 20), mu, sd);
  std::printf("flow error: dpm++ 10 steps %.2e, 20 %.2e, 25 %.2e; ddim 20 %.2e\n", e10, e20, e25,
              ddim20);
  EXPECT_LT(e20, 5e-3);
  EXPECT_LT(e25, e10);
  EXPECT_LT(e20, ddim20);  // second order beats DDIM's first order at the same cost
  // DDIM (eta 0) converges to the same flow as its steps grow.
  double ddim200 = flow_error(sc, settings("ddim", 200), mu, sd);
  EXPECT_LT(ddim200, ddim20 / 4);
  EXPECT_LT(ddim200, 1e-2);

  // The distribution of many samples: mean mu, standard deviation sd.
  const int64_t n = 20000;
  for (auto s : {settings("dpm_solver_pp", 20), settings("ddim", 1000, 1.0), settings("ddpm")}) {
    SCOPED_TRACE(s.kind);
    auto small = cosine_schedule(s.kind == "ddpm" ? 400 : 1000);
    DiffusionSampler sampler(small, DiffusionTarget::Epsilon, s);
    Tensor x = draw(sampler, gaussian_eps(small, mu, sd), n, 1, 11);
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; ++i) m += x[i];
    m /= double(n);
    for (int64_t i = 0; i < n; ++i) v += (x[i] - m) * (x[i] - m);
    double stdev = std::sqrt(v / double(n - 1));
    std::printf("%s: mean %.4f (want %.2f), std %.4f (want %.2f)\n", s.kind.c_str(), m, mu, stdev,
                sd);
    EXPECT_NEAR(m, mu, 0.015);  // 4 standard errors of the mean
    EXPECT_NEAR(stdev, sd, 0.015);
  }
}
