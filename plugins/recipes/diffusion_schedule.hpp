// Variance schedules of denoising diffusion (DDPM). A schedule over T steps holds, for t = 0..T
// (arrays of length T + 1, as the chapter's variance_schedule returns them):
//   beta[t]      the variance of the noise added at step t (beta[0] = 0),
//   alpha[t]     1 - beta[t] (alpha[0] = 1),
//   alpha_bar[t] alpha[0] * ... * alpha[t] (alpha_bar[0] = 1: x_0 is the clean image),
// so that a noisy image at step t is x_t = sqrt(alpha_bar[t]) x_0 + sqrt(1 - alpha_bar[t]) eps.
//
//   linear  (Ho et al. 2020): beta[t] from beta_1 = 1e-4 to beta_T = 0.02, evenly spaced over
//           t = 1..T (NumPy's linspace(1e-4, 0.02, T)).
//   cosine  (Nichol & Dhariwal 2021, the chapter's): f(t) = cos²((t/T + s)/(1 + s) · π/2),
//           alpha[t] = f(t)/f(t-1) clipped to [1 - max_beta, 1] (s = 0.008, max_beta = 0.999),
//           alpha[0] = 1 prepended.
// Values are computed in double precision (the chapter casts alpha to float32 before the
// cumulative product: alpha_bar differs from it by about 1e-7 relative).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "loom/error.hpp"

namespace loom::recipes {

struct NoiseSchedule {
  int64_t T = 0;
  std::vector<double> alpha, alpha_bar, beta;  // each T + 1 values, index = time step

  // Signal-to-noise ratio of x_t: alpha_bar / (1 - alpha_bar) (infinite at t = 0).
  double snr(int64_t t) const { return alpha_bar[size_t(t)] / (1.0 - alpha_bar[size_t(t)]); }
  // sqrt(alpha_bar[t]) and sqrt(1 - alpha_bar[t]): the weights of x_0 and of the noise in x_t.
  double signal(int64_t t) const { return std::sqrt(alpha_bar[size_t(t)]); }
  double noise(int64_t t) const { return std::sqrt(1.0 - alpha_bar[size_t(t)]); }
};

namespace detail {
inline NoiseSchedule from_alpha(std::vector<double> alpha) {
  NoiseSchedule s;
  s.T = int64_t(alpha.size()) - 1;
  s.alpha = std::move(alpha);
  s.beta.resize(s.alpha.size());
  s.alpha_bar.resize(s.alpha.size());
  double prod = 1.0;
  for (size_t t = 0; t < s.alpha.size(); ++t) {
    s.beta[t] = 1.0 - s.alpha[t];
    prod *= s.alpha[t];
    s.alpha_bar[t] = prod;
  }
  return s;
}
}  // namespace detail

inline NoiseSchedule linear_schedule(int64_t T, double beta_1 = 1e-4, double beta_T = 0.02) {
  if (T < 1) throw Error("a noise schedule needs at least one time step, got " + std::to_string(T));
  std::vector<double> alpha(size_t(T + 1), 1.0);
  for (int64_t t = 1; t <= T; ++t) {
    double frac = T == 1 ? 0.0 : double(t - 1) / double(T - 1);
    alpha[size_t(t)] = 1.0 - (beta_1 + (beta_T - beta_1) * frac);
  }
  return detail::from_alpha(std::move(alpha));
}

inline NoiseSchedule cosine_schedule(int64_t T, double s = 0.008, double max_beta = 0.999) {
  if (T < 1) throw Error("a noise schedule needs at least one time step, got " + std::to_string(T));
  const double half_pi = 1.5707963267948966;
  auto f = [&](int64_t t) {
    double c = std::cos((double(t) / double(T) + s) / (1.0 + s) * half_pi);
    return c * c;
  };
  std::vector<double> alpha(size_t(T + 1), 1.0);
  for (int64_t t = 1; t <= T; ++t)
    alpha[size_t(t)] = std::clamp(f(t) / f(t - 1), 1.0 - max_beta, 1.0);
  return detail::from_alpha(std::move(alpha));
}

// `kind` is "linear" or "cosine" (the names a pipeline uses).
inline NoiseSchedule make_schedule(const std::string& kind, int64_t T) {
  if (kind == "linear") return linear_schedule(T);
  if (kind == "cosine") return cosine_schedule(T);
  throw Error("unknown noise schedule '" + kind + "' (known: linear, cosine)");
}

}  // namespace loom::recipes
