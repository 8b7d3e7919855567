#include "eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "eval/gram.hpp"
#include "eval/linalg.hpp"
#include "loom/error.hpp"
#include "loom/rng.hpp"

namespace loom::eval {

namespace {

constexpr int64_t kBlock = 1024;  // rows of a distance block (kBlock x n floats at a time)

std::vector<float> squared_norms(const float* x, int64_t n, int d) {
  std::vector<float> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += double(x[i * d + j]) * x[i * d + j];
    r[size_t(i)] = float(s);
  }
  return r;
}

// Calls f(first_row, rows, block) with block[r * n + j] = |x_(first+r) - y_j|^2.
template <typename F>
void for_distance_blocks(const float* x, int64_t nx, const float* y, int64_t ny, int d, F f) {
  std::vector<float> xn = squared_norms(x, nx, d), yn = squared_norms(y, ny, d);
  std::vector<float> block(size_t(std::min(kBlock, nx) * ny));
  for (int64_t first = 0; first < nx; first += kBlock) {
    int64_t rows = std::min(kBlock, nx - first);
    gram(x + first * d, y, block.data(), rows, ny, d);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = block.data() + r * ny;
      float a = xn[size_t(first + r)];
      for (int64_t j = 0; j < ny; ++j) row[j] = std::max(0.f, a + yn[size_t(j)] - 2 * row[j]);
    }
    f(first, rows, block.data());
  }
}

}  // namespace

GaussianStats gaussian_stats(const float* x, int64_t n, int d) {
  if (n < 2) throw Error("a covariance needs at least 2 samples, got " + std::to_string(n));
  GaussianStats g;
  g.dim = d;
  g.count = n;
  g.mean.assign(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) g.mean[size_t(j)] += x[i * d + j];
  for (auto& m : g.mean) m /= double(n);
  g.cov.assign(size_t(d) * d, 0.0);
  std::vector<double> c(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) c[size_t(j)] = x[i * d + j] - g.mean[size_t(j)];
    for (int a = 0; a < d; ++a) {
      double ca = c[size_t(a)];
      double* row = g.cov.data() + size_t(a) * d;
      for (int b = a; b < d; ++b) row[b] += ca * c[size_t(b)];
    }
  }
  for (int a = 0; a < d; ++a)
    for (int b = a; b < d; ++b) {
      double v = g.cov[size_t(a) * d + b] / double(n - 1);
      g.cov[size_t(a) * d + b] = g.cov[size_t(b) * d + a] = v;
    }
  return g;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  return frechet_distance(a.mean, a.cov, b.mean, b.cov);
}

KernelDistance kernel_distance(const float* x, int64_t nx, const float* y, int64_t ny, int d,
                               int subsets, int64_t subset_size, uint64_t seed) {
  int64_t m = std::min({subset_size, nx, ny});
  if (m < 2) throw Error("KID needs at least 2 samples in each set");
  if (subsets < 1) throw Error("KID needs at least one subset");
  KernelDistance r;
  r.subsets = subsets;
  r.subset_size = m;
  std::vector<int64_t> ix(static_cast<size_t>(nx)), iy(static_cast<size_t>(ny));
  std::vector<float> xs(size_t(m * d)), ys(size_t(m * d)), g(size_t(m * m));
  auto pick = [&](std::vector<int64_t>& idx, const float* src, std::vector<float>& dst, Rng rng) {
    std::iota(idx.begin(), idx.end(), 0);
    for (int64_t i = 0; i < m; ++i) {
      int64_t j = i + int64_t(rng.below(uint64_t(idx.size()) - uint64_t(i)));
      std::swap(idx[size_t(i)], idx[size_t(j)]);
      std::copy(src + idx[size_t(i)] * d, src + (idx[size_t(i)] + 1) * d, dst.data() + i * d);
    }
  };
  // Sum of the kernel over a Gram matrix, with or without its diagonal.
  auto kernel_sum = [&](const std::vector<float>& a, const std::vector<float>& b, bool diagonal) {
    gram(a.data(), b.data(), g.data(), m, m, d);
    double s = 0, inv_d = 1.0 / d;
    for (int64_t i = 0; i < m; ++i) {
      double row = 0;
      for (int64_t j = 0; j < m; ++j) {
        double t = g[size_t(i * m + j)] * inv_d + 1;
        row += t * t * t;
      }
      if (!diagonal) {
        double t = g[size_t(i * m + i)] * inv_d + 1;
        row -= t * t * t;
      }
      s += row;
    }
    return s;
  };
  std::vector<double> values;
  for (int s = 0; s < subsets; ++s) {
    pick(ix, x, xs, Rng(seed, "kid.x", uint64_t(s)));
    pick(iy, y, ys, Rng(seed, "kid.y", uint64_t(s)));
    double kxx = kernel_sum(xs, xs, false), kyy = kernel_sum(ys, ys, false);
    double kxy = kernel_sum(xs, ys, true);
    double mm = double(m);
    values.push_back((kxx + kyy) / (mm * (mm - 1)) - 2 * kxy / (mm * mm));
  }
  for (double v : values) r.mean += v;
  r.mean /= double(values.size());
  for (double v : values) r.std += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(r.std / double(values.size()));
  return r;
}

std::vector<float> kth_neighbour_radii(const float* x, int64_t n, int d, int k) {
  if (k < 1 || k >= n)
    throw Error("k-nearest-neighbour radii need 1 <= k < number of samples (k = " +
                std::to_string(k) + ", " + std::to_string(n) + " samples)");
  std::vector<float> radii(static_cast<size_t>(n));
  for_distance_blocks(x, n, x, n, d, [&](int64_t first, int64_t rows, const float* block) {
    std::vector<float> best(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = block + r * n;
      int64_t self = first + r;
      std::fill(best.begin(), best.end(), INFINITY);  // ascending; best[k-1] is the k-th
      for (int64_t j = 0; j < n; ++j) {
        float v = row[j];
        if (v >= best[size_t(k - 1)] || j == self) continue;
        int p = k - 1;
        while (p > 0 && best[size_t(p - 1)] > v) {
          best[size_t(p)] = best[size_t(p - 1)];
          --p;
        }
        best[size_t(p)] = v;
      }
      radii[size_t(self)] = best[size_t(k - 1)];
    }
  });
  return radii;
}

PrecisionRecall precision_recall(const float* real, int64_t nr, const float* fake, int64_t nf,
                                 int d, int k) {
  std::vector<float> real_r = kth_neighbour_radii(real, nr, d, k);
  std::vector<float> fake_r = kth_neighbour_radii(fake, nf, d, k);
  std::vector<char> real_covered(size_t(nr), 0);
  int64_t fake_covered = 0;
  // One pass over the generated-by-real distances serves both directions.
  for_distance_blocks(fake, nf, real, nr, d, [&](int64_t first, int64_t rows, const float* block) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = block + r * nr;
      float own = fake_r[size_t(first + r)];
      bool inside = false;
      for (int64_t j = 0; j < nr; ++j) {
        inside |= row[j] <= real_r[size_t(j)];
        real_covered[size_t(j)] |= row[j] <= own;
      }
      fake_covered += inside;
    }
  });
  PrecisionRecall pr;
  pr.k = k;
  pr.precision = double(fake_covered) / double(nf);
  pr.recall = double(std::count(real_covered.begin(), real_covered.end(), 1)) / double(nr);
  return pr;
}

}  // namespace loom::eval
