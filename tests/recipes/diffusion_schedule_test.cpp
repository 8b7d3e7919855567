// Noise schedules of the diffusion recipe against values computed by hand (the linear betas and
// their products; the cosine schedule's telescoping ratio f(t)/f(0) before clipping, the clipped
// last beta, and the chapter's T = 4000 schedule at a few steps).
#include "../../plugins/recipes/diffusion_schedule.hpp"

#include <gtest/gtest.h>

#include <cmath>

using loom::recipes::cosine_schedule;
using loom::recipes::linear_schedule;
using loom::recipes::make_schedule;

TEST(DiffusionSchedule, LinearMatchesHandComputedValues) {
  auto s = linear_schedule(5);
  ASSERT_EQ(s.T, 5);
  ASSERT_EQ(s.beta.size(), 6u);
  // beta_0 = 0 (alpha_0 = 1 prepended), then linspace(1e-4, 0.02, 5).
  const double beta[] = {0.0, 1e-4, 0.005075, 0.01005, 0.015025, 0.02};
  for (int t = 0; t <= 5; ++t) {
    EXPECT_NEAR(s.beta[size_t(t)], beta[t], 1e-15) << t;
    EXPECT_NEAR(s.alpha[size_t(t)], 1 - beta[t], 1e-15) << t;
  }
  EXPECT_EQ(s.alpha_bar[0], 1.0);
  EXPECT_NEAR(s.alpha_bar[1], 0.9999, 1e-15);
  EXPECT_NEAR(s.alpha_bar[2], 0.9999 * 0.994925, 1e-15);  // 0.9948255075
  EXPECT_NEAR(s.alpha_bar[2], 0.9948255075, 1e-12);
  EXPECT_NEAR(s.alpha_bar[5], 0.9999 * 0.994925 * 0.98995 * 0.984975 * 0.98, 1e-15);
  // The usual T = 1000 schedule: beta_1000 = 0.02 and alpha_bar_1000 ~ 4.04e-5 (Ho et al.).
  auto big = linear_schedule(1000);
  EXPECT_NEAR(big.beta[1000], 0.02, 1e-15);
  EXPECT_NEAR(big.beta[500], 1e-4 + (0.02 - 1e-4) * 499.0 / 999.0, 1e-15);
  EXPECT_NEAR(big.alpha_bar[1000], 4.0358e-5, 1e-8);
}

TEST(DiffusionSchedule, CosineMatchesHandComputedValues) {
  auto s = cosine_schedule(4);
  auto f = [](double t) {
    double c = std::cos((t / 4 + 0.008) / 1.008 * M_PI / 2);
    return c * c;
  };
  EXPECT_EQ(s.alpha[0], 1.0);
  EXPECT_EQ(s.beta[0], 0.0);
  EXPECT_EQ(s.alpha_bar[0], 1.0);
  // Unclipped steps telescope: alpha_bar_t = f(t) / f(0).
  for (int t = 1; t <= 3; ++t) {
    EXPECT_NEAR(s.alpha[size_t(t)], f(t) / f(t - 1), 1e-14) << t;
    EXPECT_NEAR(s.alpha_bar[size_t(t)], f(t) / f(0), 1e-14) << t;
  }
  EXPECT_NEAR(s.alpha[1], 0.8470121613269047, 1e-14);
  EXPECT_NEAR(s.alpha_bar[2], 0.4938435904406378, 1e-14);
  EXPECT_NEAR(s.beta[3], 0.7078587123971634, 1e-14);
  // f(4) = cos²(π/2) ~ 0: beta_4 would be ~1 and is clipped to 0.999.
  EXPECT_NEAR(s.beta[4], 0.999, 1e-15);
  EXPECT_NEAR(s.alpha_bar[4], 0.14427210238573582 * 0.001, 1e-15);
}

TEST(DiffusionSchedule, ChapterCosineScheduleOverFourThousandSteps) {
  auto s = make_schedule("cosine", 4000);
  ASSERT_EQ(s.alpha.size(), 4001u);
  EXPECT_NEAR(s.beta[1], 9.865818813681315e-06, 1e-15);
  EXPECT_NEAR(s.alpha_bar[1000], 0.8470121613269034, 1e-12);  // = alpha_bar_1 of T = 4
  EXPECT_NEAR(s.alpha_bar[2000], 0.49384359044063586, 1e-12);
  EXPECT_NEAR(s.snr(2000), 0.9756738848186329, 1e-10);
  EXPECT_NEAR(s.beta[3999], 0.749999962056056, 1e-10);
  EXPECT_NEAR(s.beta[4000], 0.999, 1e-15);  // clipped
  EXPECT_NEAR(s.alpha_bar[4000], 1.5179804688514522e-10, 1e-20);
  // alpha_bar decreases strictly from 1 towards 0.
  for (int t = 1; t <= 4000; ++t) ASSERT_LT(s.alpha_bar[size_t(t)], s.alpha_bar[size_t(t - 1)]);
  EXPECT_THROW(make_schedule("sigmoid", 10), loom::Error);
  EXPECT_THROW(make_schedule("linear", 0), loom::Error);
}
