#include "eval/linalg.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "loom/error.hpp"

namespace loom::eval {

SymmetricEigen symmetric_eigen(const std::vector<double>& input, int n) {
  if (int64_t(input.size()) != int64_t(n) * n)
    throw Error("eigendecomposition: expected a " + std::to_string(n) + "x" + std::to_string(n) +
                " matrix, got " + std::to_string(input.size()) + " values");
  auto at = [n](std::vector<double>& m, int i, int j) -> double& { return m[size_t(i) * n + j]; };
  std::vector<double> a(input.size()), v(input.size(), 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      at(a, i, j) = i <= j ? input[size_t(i) * n + j] : input[size_t(j) * n + i];
  for (int i = 0; i < n; ++i) at(v, i, i) = 1.0;

  // Cyclic Jacobi: rotate away every off-diagonal element in turn until the off-diagonal mass is
  // negligible against the diagonal (quadratic convergence; ~6-10 sweeps).
  double scale = 0;
  for (int i = 0; i < n; ++i) scale += at(a, i, i) * at(a, i, i);
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; ++i) {
      diag += at(a, i, i) * at(a, i, i);
      for (int j = i + 1; j < n; ++j) off += at(a, i, j) * at(a, i, j);
    }
    if (off == 0 || off <= 1e-32 * (diag + scale)) break;
    for (int p = 0; p < n - 1; ++p)
      for (int q = p + 1; q < n; ++q) {
        double apq = at(a, p, q);
        if (apq == 0) continue;
        double app = at(a, p, p), aqq = at(a, q, q);
        // Skip elements already below the rounding of both diagonal entries.
        if (sweep > 3 && std::abs(apq) < 1e-18 * (std::abs(app) + std::abs(aqq))) {
          at(a, p, q) = at(a, q, p) = 0;
          continue;
        }
        double theta = (aqq - app) / (2 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {
          double akp = at(a, k, p), akq = at(a, k, q);
          at(a, k, p) = c * akp - s * akq;
          at(a, k, q) = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {
          double apk = at(a, p, k), aqk = at(a, q, k);
          at(a, p, k) = c * apk - s * aqk;
          at(a, q, k) = s * apk + c * aqk;
        }
        at(a, p, q) = at(a, q, p) = 0;
        for (int k = 0; k < n; ++k) {
          double vkp = at(v, k, p), vkq = at(v, k, q);
          at(v, k, p) = c * vkp - s * vkq;
          at(v, k, q) = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return at(a, x, x) < at(a, y, y); });
  SymmetricEigen e;
  e.values.resize(size_t(n));
  e.vectors.resize(input.size());
  for (int j = 0; j < n; ++j) {
    e.values[size_t(j)] = at(a, order[size_t(j)], order[size_t(j)]);
    for (int i = 0; i < n; ++i) e.vectors[size_t(i) * n + j] = at(v, i, order[size_t(j)]);
  }
  return e;
}

namespace {

// Eigenvalues of a PSD matrix within rounding of zero (the Jacobi method is accurate to about
// n * eps * the largest one) are zero: taking the square root of such noise would add
// sqrt(eps * largest) per null direction.
double null_threshold(const std::vector<double>& values, int n) {
  double largest = 0;
  for (double v : values) largest = std::max(largest, std::abs(v));
  return 4.0 * n * std::numeric_limits<double>::epsilon() * largest;
}

}  // namespace

std::vector<double> sqrt_psd(const std::vector<double>& a, int n) {
  SymmetricEigen e = symmetric_eigen(a, n);
  double zero = null_threshold(e.values, n);
  std::vector<double> r(a.size(), 0.0);
  for (int k = 0; k < n; ++k) {
    double s = e.values[size_t(k)] > zero ? std::sqrt(e.values[size_t(k)]) : 0.0;
    if (s == 0) continue;
    for (int i = 0; i < n; ++i) {
      double vik = s * e.vectors[size_t(i) * n + k];
      for (int j = 0; j < n; ++j) r[size_t(i) * n + j] += vik * e.vectors[size_t(j) * n + k];
    }
  }
  return r;
}

std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int n) {
  std::vector<double> c(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      double aik = a[size_t(i) * n + k];
      for (int j = 0; j < n; ++j) c[size_t(i) * n + j] += aik * b[size_t(k) * n + j];
    }
  return c;
}

double trace_sqrt_product(const std::vector<double>& a, const std::vector<double>& b, int n) {
  std::vector<double> ra = sqrt_psd(a, n);
  std::vector<double> m = matmul(matmul(ra, b, n), ra, n);
  // m is symmetric PSD in exact arithmetic; symmetrise away the rounding.
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      double s = 0.5 * (m[size_t(i) * n + j] + m[size_t(j) * n + i]);
      m[size_t(i) * n + j] = m[size_t(j) * n + i] = s;
    }
  std::vector<double> values = symmetric_eigen(m, n).values;
  double zero = null_threshold(values, n), tr = 0;
  for (double ev : values)
    if (ev > zero) tr += std::sqrt(ev);
  return tr;
}

double frechet_distance(const std::vector<double>& mu1, const std::vector<double>& c1,
                        const std::vector<double>& mu2, const std::vector<double>& c2) {
  int n = int(mu1.size());
  if (mu2.size() != mu1.size() || c1.size() != size_t(n) * n || c2.size() != c1.size())
    throw Error("Fréchet distance: the two Gaussians have different dimensions (" +
                std::to_string(mu1.size()) + " and " + std::to_string(mu2.size()) + ")");
  double d = 0;
  for (int i = 0; i < n; ++i)
    d += (mu1[size_t(i)] - mu2[size_t(i)]) * (mu1[size_t(i)] - mu2[size_t(i)]);
  for (int i = 0; i < n; ++i) d += c1[size_t(i) * n + i] + c2[size_t(i) * n + i];
  return d - 2 * trace_sqrt_product(c1, c2, n);
}

}  // namespace loom::eval
