// Counter-based random streams. A stream is keyed by (seed, purpose, a, b) — for example
// (pipeline seed, "shuffle", epoch, 0) or (seed, "augment", epoch, sample index) — so a result
// never depends on which thread drew it or in which order.
#pragma once
#include <cmath>
#include <cstdint>
#include <string_view>

#include "loom/export.hpp"

namespace loom {

LOOM_API uint64_t hash_string(std::string_view s);  // FNV-1a, stable across platforms
LOOM_API uint64_t mix64(uint64_t x);                // SplitMix64 finaliser

class Rng {
 public:
  Rng(uint64_t seed, std::string_view purpose, uint64_t a = 0, uint64_t b = 0)
      : Rng(seed, hash_string(purpose), a, b) {}
  Rng(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b) {
    uint64_t k = mix64(seed ^ mix64(purpose ^ mix64(a ^ mix64(b + 0x9e3779b97f4a7c15ULL))));
    s0_ = mix64(k + 1);
    s1_ = mix64(k + 2);
    if ((s0_ | s1_) == 0) s1_ = 1;
  }
  // xoroshiro128+
  uint64_t next_u64() {
    uint64_t a = s0_, b = s1_, r = a + b;
    b ^= a;
    s0_ = ((a << 24) | (a >> 40)) ^ b ^ (b << 16);
    s1_ = (b << 37) | (b >> 27);
    return r;
  }
  // Uniform in [0, 1).
  float uniform() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n ? next_u64() % n : 0; }
  bool bernoulli(float p) { return uniform() < p; }
  // Standard normal (Box–Muller, both values used).
  float normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    float u1 = uniform(), u2 = uniform();
    if (u1 < 1e-12f) u1 = 1e-12f;
    float r = std::sqrt(-2.f * std::log(u1)), t = 6.2831853071795864f * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  float normal(float mean, float stddev) { return mean + stddev * normal(); }

 private:
  uint64_t s0_, s1_;
  float spare_ = 0.f;
  bool has_spare_ = false;
};

}  // namespace loom
