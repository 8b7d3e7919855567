// Denoising diffusion, apart from the recipe around it (so that tests drive it directly): what the
// network is trained to predict, the Min-SNR-γ loss weight, the single reverse steps, and
// DiffusionSampler, which runs a whole reverse process over a batch through any denoiser.
//
// Notation: a noisy image at step t is x_t = a_t x_0 + s_t eps with a_t = sqrt(alpha_bar_t),
// s_t = sqrt(1 - alpha_bar_t) (NoiseSchedule::signal / noise), eps ~ N(0, I).
//
// Why not a `sampler` plugin: that kind fills a tensor of codings once (sample(codings)); a
// reverse-diffusion sampler drives a model tens to thousands of times, needs the schedule and what
// the model predicts, and keeps state across steps (DPM-Solver++'s previous prediction). The
// model is reached through a plain function (Denoiser), so the same sampler runs a trained UNet,
// a classifier-free-guided pair of passes, or a closed-form predictor in tests; the recipes
// library owns it and no ABI changes.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "diffusion_schedule.hpp"
#include "loom/error.hpp"
#include "loom/rng.hpp"
#include "loom/tensor.hpp"

namespace loom::recipes {

// What the network outputs for x_t:
//   epsilon  the noise eps (the chapter's target);
//   v        a_t eps - s_t x_0 (Salimans & Ho 2022);
//   x0       the clean image x_0.
enum class DiffusionTarget { Epsilon, V, X0 };

inline DiffusionTarget diffusion_target(const std::string& name) {
  if (name == "epsilon") return DiffusionTarget::Epsilon;
  if (name == "v") return DiffusionTarget::V;
  if (name == "x0") return DiffusionTarget::X0;
  throw Error("unknown diffusion target '" + name + "' (known: epsilon, v, x0)");
}

// The training target for one value of x_0 and of its noise at step t.
inline double target_value(DiffusionTarget k, double x0, double eps, double a, double s) {
  switch (k) {
    case DiffusionTarget::Epsilon:
      return eps;
    case DiffusionTarget::V:
      return a * eps - s * x0;
    case DiffusionTarget::X0:
      return x0;
  }
  return eps;
}

// The (x_0, eps) implied by a prediction `p` of the target at x = x_t (a_t > 0).
inline void split_prediction(DiffusionTarget k, double x, double p, double a, double s, double& x0,
                             double& eps) {
  x0 = p;
  eps = 0;
  switch (k) {
    case DiffusionTarget::Epsilon:
      eps = p;
      x0 = (x - s * p) / a;
      return;
    case DiffusionTarget::V:  // a² + s² = 1
      x0 = a * x - s * p;
      eps = s * x + a * p;
      return;
    case DiffusionTarget::X0:
      x0 = p;
      eps = s > 0 ? (x - a * p) / s : 0.0;
      return;
  }
}

// Min-SNR-γ weighting (Hang et al. 2023): the loss of a sample at signal-to-noise ratio `snr`
// is weighted so that, measured on x_0, it counts min(snr, γ): min(snr, γ)/snr for an eps
// target, min(snr, γ)/(snr + 1) for v, min(snr, γ) for x0.
inline double min_snr_weight(DiffusionTarget k, double snr, double gamma) {
  double m = std::min(snr, gamma);
  switch (k) {
    case DiffusionTarget::Epsilon:
      return m / snr;
    case DiffusionTarget::V:
      return m / (snr + 1.0);
    case DiffusionTarget::X0:
      return m;
  }
  return 1.0;
}

// One ancestral step of the chapter's generate(), from x_t to x_{t-1} (t >= 1):
//   x_{t-1} = (x_t - beta_t / s_t * eps) / sqrt(alpha_t) + sqrt(beta_t) z
inline double ddpm_step(const NoiseSchedule& sc, int64_t t, double x, double eps, double z) {
  size_t i = size_t(t);
  return (x - sc.beta[i] / sc.noise(t) * eps) / std::sqrt(sc.alpha[i]) + std::sqrt(sc.beta[i]) * z;
}

// One DDIM step from x_t to x_s (s < t; s = 0 gives x0) given the predicted x_0 and eps:
//   x_s = a_s x0 + sqrt(1 - alpha_bar_s - sigma²) eps + sigma z,
//   sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s).
inline double ddim_sigma(const NoiseSchedule& sc, int64_t t, int64_t s, double eta) {
  double at = sc.alpha_bar[size_t(t)], as = sc.alpha_bar[size_t(s)];
  double v = (1 - as) / (1 - at) * (1 - at / as);
  return eta * std::sqrt(std::max(v, 0.0));
}
inline double ddim_step(const NoiseSchedule& sc, int64_t s, double x0, double eps, double sigma,
                        double z) {
  double as = sc.alpha_bar[size_t(s)];
  return std::sqrt(as) * x0 + std::sqrt(std::max(1 - as - sigma * sigma, 0.0)) * eps + sigma * z;
}

// How a sample is drawn.
struct SamplerSettings {
  std::string kind = "ddpm";  // ddpm | ddim | dpm_solver_pp
  // Model evaluations for ddim and dpm_solver_pp (1..T); ddpm always visits T-1 .. 1.
  int64_t steps = 20;
  double eta = 0;  // ddim: 0 deterministic, 1 DDPM-like noise
  // leading: 1, 1+k, ...; trailing: T, T-T/S, ...; linspace: T to 1 evenly; karras: noise
  // levels from min(sigma(T), 80) to sigma(1) evenly in sigma^(1/7); logsnr: leading's first
  // step to 1, evenly in log(a_t / s_t).
  std::string spacing = "trailing";
  // ddim and dpm_solver_pp: clip each predicted x_0 to [lo, hi] (the data's range).
  bool clip = false;
  double lo = -1, hi = 1;
};

// The denoiser: writes into `pred` (shaped like x) the network's prediction of the target for
// the batch x = x_t, every row at time step t.
using Denoiser = std::function<void(const Tensor& x, int64_t t, Tensor& pred)>;

class DiffusionSampler {
 public:
  DiffusionSampler(NoiseSchedule schedule, DiffusionTarget target, SamplerSettings settings)
      : sc_(std::move(schedule)), target_(target), set_(std::move(settings)) {
    const std::string& k = set_.kind;
    int64_t T = sc_.T;
    if (k == "ddpm") {
      for (int64_t t = T - 1; t >= 1; --t) times_.push_back(t);
      if (times_.empty()) throw Error("ddpm sampling needs at least 2 time steps (T >= 2)");
      return;
    }
    if (k != "ddim" && k != "dpm_solver_pp")
      throw Error("unknown diffusion sampler '" + k + "' (known: ddpm, ddim, dpm_solver_pp)");
    int64_t S = set_.steps;
    if (S < 1 || S > T)
      throw Error(k + " takes between 1 and T = " + std::to_string(T) + " steps, got " +
                  std::to_string(S));
    if (set_.spacing == "leading") {
      int64_t stride = T / S;
      for (int64_t i = S - 1; i >= 0; --i) times_.push_back(1 + i * stride);
    } else if (set_.spacing == "trailing") {
      for (int64_t i = 0; i < S; ++i)
        times_.push_back(std::max<int64_t>(
            1, int64_t(std::llround(double(T) - double(i) * double(T) / double(S)))));
    } else if (set_.spacing == "linspace") {
      // T down to 1 evenly (diffusers' "linspace"): trailing's start, and a last evaluation at
      // t = 1, where the clean-image estimate is nearly exact, instead of at T/S.
      for (int64_t i = 0; i < S; ++i)
        times_.push_back(
            S == 1 ? T
                   : int64_t(std::llround(double(T) - double(i) * double(T - 1) / double(S - 1))));
    } else if (set_.spacing == "karras") {
      // Karras et al. (2022, "EDM"): noise levels sigma = s_t / a_t from sigma_max =
      // min(sigma(T), 80) down to sigma(1), evenly in sigma^(1/7), each rounded to the time step
      // nearest it in log sigma. All S evaluations fall where the image is still forming: with
      // the chapter's schedule (T = 4000, beta up to 0.02) sigma passes 80 near t = 1,850 and
      // reaches 1e8 well before T, so trailing's and linspace's upper half draws from noise
      // alone. Sampling starts from noise at the first step (signal weight a_t <= 1/80).
      auto sigma = [&](int64_t t) { return sc_.noise(t) / sc_.signal(t); };
      const double rho = 7, hi = std::pow(std::min(sigma(T), 80.0), 1 / rho),
                   lo = std::pow(sigma(1), 1 / rho);
      for (int64_t i = 0; i < S; ++i) {
        double root = S == 1 ? hi : hi + (lo - hi) * double(i) / double(S - 1);
        push_nearest(-rho * std::log(root), T, i, S);  // lambda = -log sigma
      }
    } else if (set_.spacing == "logsnr") {
      // From leading's first step down to t = 1, evenly in lambda = log(a_t / s_t) (Lu et al.'s
      // "logSNR" steps): more steps where little noise is left, fewer where the image is mostly
      // noise. Each lambda is rounded to the time step nearest it; the last step is t = 1.
      int64_t first = 1 + (S - 1) * (T / S);
      double lo = lambda(first), hi = lambda(1);
      for (int64_t i = 0; i < S; ++i)
        push_nearest(S == 1 ? lo : lo + (hi - lo) * double(i) / double(S - 1), first, i, S);
    } else {
      throw Error("unknown time-step spacing '" + set_.spacing +
                  "' (known: leading, trailing, linspace, karras, logsnr)");
    }
  }

  const NoiseSchedule& schedule() const { return sc_; }
  // lambda = log(a_t / s_t), falling as t grows.
  double lambda(int64_t t) const { return std::log(sc_.signal(t) / sc_.noise(t)); }
  // The time steps at which the model is evaluated, in the order visited (decreasing).
  const std::vector<int64_t>& timesteps() const { return times_; }

  // Replaces x (N, ...) by samples first_index .. first_index + N - 1 of the run `seed`: every
  // row's starting noise and step noise come from its own stream Rng(seed, "diffusion_sample",
  // first_index + row), so a sample is the same whatever batch it is drawn in.
  void sample(const Denoiser& model, Tensor& x, uint64_t seed, int64_t first_index) const {
    int64_t n = x.rank() ? x.dim(0) : 0;
    if (n == 0) return;
    int64_t per = x.size() / n;
    std::vector<Rng> rngs;
    rngs.reserve(size_t(n));
    for (int64_t i = 0; i < n; ++i)
      rngs.emplace_back(seed, "diffusion_sample", uint64_t(first_index + i), 0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < per; ++k) x[i * per + k] = rngs[size_t(i)].normal();
    Tensor pred(x.shape());
    if (set_.kind == "ddpm")
      run_ddpm(model, x, pred, rngs, per);
    else if (set_.kind == "ddim")
      run_ddim(model, x, pred, rngs, per);
    else
      run_dpm_solver_pp(model, x, pred);
  }

 private:
  // Appends step i of S: the time step in [1, last] whose lambda is nearest `want`, kept below
  // the step before it and leaving room for the steps still to come.
  void push_nearest(double want, int64_t last, int64_t i, int64_t S) {
    // The first t whose lambda is <= want, or its neighbour above when that is nearer.
    int64_t a = 1, b = last;
    while (a < b) {
      int64_t m = (a + b) / 2;
      if (lambda(m) <= want)
        b = m;
      else
        a = m + 1;
    }
    int64_t t = a;
    if (t > 1 && std::abs(lambda(t - 1) - want) < std::abs(lambda(t) - want)) --t;
    if (!times_.empty()) t = std::min(t, times_.back() - 1);
    times_.push_back(std::max(t, S - i));
  }

  void split(int64_t t, double x, double p, double& x0, double& eps) const {
    double a = sc_.signal(t), s = sc_.noise(t);
    split_prediction(target_, x, p, a, s, x0, eps);
    if (set_.clip && set_.kind != "ddpm") {
      double c = std::clamp(x0, set_.lo, set_.hi);
      if (c != x0) {
        x0 = c;
        eps = (x - a * x0) / s;
      }
    }
  }

  // The chapter's loop: t = T-1 .. 1, no noise added at t = 1.
  void run_ddpm(const Denoiser& model, Tensor& x, Tensor& pred, std::vector<Rng>& rngs,
                int64_t per) const {
    for (int64_t t : times_) {
      model(x, t, pred);
      for (int64_t i = 0; i < x.size(); ++i) {
        double x0 = 0, eps = 0;
        split(t, x[i], pred[i], x0, eps);
        double z = t > 1 ? double(rngs[size_t(i / per)].normal()) : 0.0;
        x[i] = float(ddpm_step(sc_, t, x[i], eps, z));
      }
    }
  }

  void run_ddim(const Denoiser& model, Tensor& x, Tensor& pred, std::vector<Rng>& rngs,
                int64_t per) const {
    for (size_t k = 0; k < times_.size(); ++k) {
      int64_t t = times_[k], s = k + 1 < times_.size() ? times_[k + 1] : 0;
      double sigma = s > 0 ? ddim_sigma(sc_, t, s, set_.eta) : 0.0;
      model(x, t, pred);
      for (int64_t i = 0; i < x.size(); ++i) {
        double x0 = 0, eps = 0;
        split(t, x[i], pred[i], x0, eps);
        double z = sigma > 0 ? double(rngs[size_t(i / per)].normal()) : 0.0;
        x[i] = float(ddim_step(sc_, s, x0, eps, sigma, z));
      }
    }
  }

  // DPM-Solver++(2M) (Lu et al. 2022), data prediction, multistep, second order after the first
  // step. With lambda_t = log(a_t / s_t) and h = lambda_s - lambda_t, from t to s:
  //   x_s = (s_s / s_t) x_t - a_s (e^{-h} - 1) D,
  //   D = x0_t (first step), else (1 + 1/(2r)) x0_t - 1/(2r) x0_prev, r = h_prev / h.
  // The last step, to s = 0 (lambda infinite), gives x0 of the last evaluation.
  void run_dpm_solver_pp(const Denoiser& model, Tensor& x, Tensor& pred) const {
    std::vector<double> prev(size_t(x.size())), cur(size_t(x.size()));
    double h_prev = 0;
    for (size_t k = 0; k < times_.size(); ++k) {
      int64_t t = times_[k];
      model(x, t, pred);
      for (int64_t i = 0; i < x.size(); ++i) {
        double eps = 0;
        split(t, x[i], pred[i], cur[size_t(i)], eps);
      }
      if (k + 1 == times_.size()) {
        for (int64_t i = 0; i < x.size(); ++i) x[i] = float(cur[size_t(i)]);
        return;
      }
      int64_t s = times_[k + 1];
      double h = lambda(s) - lambda(t);
      double ratio = sc_.noise(s) / sc_.noise(t), phi = -sc_.signal(s) * std::expm1(-h);
      double c0 = 1, c1 = 0;
      if (k > 0) {
        double r = h_prev / h;
        c0 = 1 + 1 / (2 * r);
        c1 = -1 / (2 * r);
      }
      for (int64_t i = 0; i < x.size(); ++i) {
        double D = c0 * cur[size_t(i)] + c1 * prev[size_t(i)];
        x[i] = float(ratio * x[i] + phi * D);
      }
      std::swap(prev, cur);
      h_prev = h;
    }
  }

  NoiseSchedule sc_;
  DiffusionTarget target_;
  SamplerSettings set_;
  std::vector<int64_t> times_;
};

}  // namespace loom::recipes
