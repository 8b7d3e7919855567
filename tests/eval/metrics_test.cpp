// The sample-quality metrics of `loom eval` against closed forms and naive references: the
// symmetric eigendecomposition and matrix square root, the Fréchet distance between Gaussians
// (commuting and non-commuting covariances), KID, and k-NN precision/recall.
#include "eval/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "eval/gram.hpp"
#include "eval/linalg.hpp"
#include "loom/error.hpp"
#include "loom/rng.hpp"

using namespace loom::eval;

namespace {

using Matrix = std::vector<double>;

Matrix random_matrix(int n, uint64_t seed) {
  loom::Rng r(seed, "matrix");
  Matrix m(size_t(n) * n);
  for (auto& v : m) v = r.normal();
  return m;
}

Matrix transpose(const Matrix& a, int n) {
  Matrix t(a.size());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) t[size_t(j) * n + i] = a[size_t(i) * n + j];
  return t;
}

// B B^T + eps I: symmetric positive (semi-)definite; rank `rank` when eps = 0.
Matrix random_spd(int n, uint64_t seed, double eps = 1.0, int rank = -1) {
  if (rank < 0) rank = n;
  loom::Rng r(seed, "spd");
  std::vector<double> b(static_cast<size_t>(n) * rank);
  for (auto& v : b) v = r.normal();
  Matrix a(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < rank; ++k) s += b[size_t(i) * rank + k] * b[size_t(j) * rank + k];
      a[size_t(i) * n + j] = s / rank + (i == j ? eps : 0.0);
    }
  return a;
}

double max_abs_diff(const Matrix& a, const Matrix& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double trace(const Matrix& a, int n) {
  double t = 0;
  for (int i = 0; i < n; ++i) t += a[size_t(i) * n + i];
  return t;
}

Matrix identity(int n) {
  Matrix m(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) m[size_t(i) * n + i] = 1;
  return m;
}

}  // namespace

TEST(EvalLinalg, EigendecompositionReconstructsAndIsOrthogonal) {
  for (int n : {1, 2, 7, 64}) {
    Matrix a = random_matrix(n, 3), s(a.size());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        s[size_t(i) * n + j] = a[size_t(i) * n + j] + a[size_t(j) * n + i];
    SymmetricEigen e = symmetric_eigen(s, n);
    EXPECT_TRUE(std::is_sorted(e.values.begin(), e.values.end()));
    Matrix vd(s.size());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        vd[size_t(i) * n + j] = e.vectors[size_t(i) * n + j] * e.values[size_t(j)];
    Matrix back = matmul(vd, transpose(e.vectors, n), n);
    EXPECT_LT(max_abs_diff(back, s), 1e-12 * n * 10) << "n = " << n;
    EXPECT_LT(max_abs_diff(matmul(transpose(e.vectors, n), e.vectors, n), identity(n)), 1e-13 * n)
        << "n = " << n;
  }
}

TEST(EvalLinalg, EigenvaluesOfARotatedDiagonal) {
  // Q diag(1..n) Q^T with Q a Householder reflection: eigenvalues exactly 1..n.
  int n = 20;
  loom::Rng r(5, "householder");
  std::vector<double> v(static_cast<size_t>(n));
  double norm = 0;
  for (auto& x : v) {
    x = r.normal();
    norm += x * x;
  }
  Matrix q = identity(n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) q[size_t(i) * n + j] -= 2 * v[size_t(i)] * v[size_t(j)] / norm;
  Matrix d(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) d[size_t(i) * n + i] = i + 1;
  SymmetricEigen e = symmetric_eigen(matmul(matmul(q, d, n), transpose(q, n), n), n);
  for (int i = 0; i < n; ++i) EXPECT_NEAR(e.values[size_t(i)], i + 1, 1e-12);
}

TEST(EvalLinalg, SquareRootSquaresBack) {
  for (auto [n, rank] : {std::pair{2, 2}, {16, 16}, {128, 128}, {128, 40}}) {
    Matrix a = random_spd(n, 11, rank == n ? 0.1 : 0.0, rank);
    Matrix s = sqrt_psd(a, n);
    EXPECT_LT(max_abs_diff(s, transpose(s, n)), 1e-14 * n);
    double scale = trace(a, n) / n;
    EXPECT_LT(max_abs_diff(matmul(s, s, n), a), 1e-12 * scale) << n << " rank " << rank;
    // Positive semi-definite: every eigenvalue of the root >= 0 (to rounding).
    for (double ev : symmetric_eigen(s, n).values) EXPECT_GT(ev, -1e-7);
  }
}

TEST(EvalFrechet, CommutingCovariancesMatchTheClosedForm) {
  // Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
  int n = 5;
  std::vector<double> mu1{0, 1, 2, 3, 4}, mu2{1, 1, 0, 3, -1}, a{1, 2, 3, 0.5, 9},
      b{4, 2, 1, 0.1, 1};
  Matrix c1(25, 0.0), c2(25, 0.0);
  double expected = 0;
  for (int i = 0; i < n; ++i) {
    c1[size_t(i) * n + i] = a[size_t(i)];
    c2[size_t(i) * n + i] = b[size_t(i)];
    expected += (mu1[size_t(i)] - mu2[size_t(i)]) * (mu1[size_t(i)] - mu2[size_t(i)]);
    expected += std::pow(std::sqrt(a[size_t(i)]) - std::sqrt(b[size_t(i)]), 2);
  }
  EXPECT_NEAR(frechet_distance(mu1, c1, mu2, c2), expected, 1e-12);
}

TEST(EvalFrechet, NonCommutingTwoByTwoMatchesTheClosedForm) {
  // For 2x2 PSD matrices, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)), with M = sqrt(S1) S2 sqrt(S1),
  // tr M = tr(S1 S2), det M = det S1 det S2.
  Matrix s1{2.0, 0.9, 0.9, 1.0}, s2{0.5, -0.3, -0.3, 3.0};
  ASSERT_GT(max_abs_diff(matmul(s1, s2, 2), matmul(s2, s1, 2)), 0.1);  // they do not commute
  std::vector<double> mu1{1, -2}, mu2{0.5, 1};
  double tr12 = trace(matmul(s1, s2, 2), 2);
  double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
  double cross = std::sqrt(tr12 + 2 * std::sqrt(det1 * det2));
  double expected = 0.25 + 9 + trace(s1, 2) + trace(s2, 2) - 2 * cross;
  EXPECT_NEAR(frechet_distance(mu1, s1, mu2, s2), expected, 1e-12);
}

TEST(EvalFrechet, NonCommutingHighDimensionalMatchesTheClosedForm) {
  // S2 = T S1 T with T symmetric positive definite: the optimal transport map is T, so
  // tr sqrt(sqrt(S1) S2 sqrt(S1)) = tr(T S1) and FD = tr S1 + tr S2 - 2 tr(T S1).
  int n = 32;
  Matrix s1 = random_spd(n, 21), t = random_spd(n, 22);
  Matrix s2 = matmul(matmul(t, s1, n), t, n);
  ASSERT_GT(max_abs_diff(matmul(s1, s2, n), matmul(s2, s1, n)), 0.1);
  std::vector<double> mu(size_t(n), 0.0);
  double expected = trace(s1, n) + trace(s2, n) - 2 * trace(matmul(t, s1, n), n);
  EXPECT_NEAR(frechet_distance(mu, s1, mu, s2), expected, 1e-9 * trace(s2, n));
  EXPECT_GT(expected, 1.0);
}

TEST(EvalFrechet, IdenticalSingularGaussiansAreAtZero) {
  int n = 128;
  Matrix c = random_spd(n, 31, 0.0, 40);  // rank 40, like features with dead units
  std::vector<double> mu(size_t(n), 0.5);
  EXPECT_NEAR(frechet_distance(mu, c, mu, c), 0.0, 1e-9 * trace(c, n));
}

TEST(EvalFrechet, FromSamplesApproachesTheGaussiansDistance) {
  // Samples x = mu + A z have covariance A A^T; the statistics' FD tends to the closed form.
  int d = 3;
  int64_t n = 200000;
  Matrix a1{1.0, 0.0, 0.0, 0.5, 1.2, 0.0, -0.3, 0.4, 0.8},
      a2{0.7, 0.2, 0.0, 0.0, 0.9, 0.6, 0.5, 0.0, 1.1};
  std::vector<double> mu1{0, 1, 2}, mu2{0.5, 1, 1};
  auto draw = [&](const Matrix& a, const std::vector<double>& mu, uint64_t seed) {
    loom::Rng r(seed, "gauss");
    std::vector<float> x(size_t(n * d));
    for (int64_t i = 0; i < n; ++i) {
      double z[3] = {r.normal(), r.normal(), r.normal()};
      for (int j = 0; j < d; ++j) {
        double v = mu[size_t(j)];
        for (int k = 0; k < d; ++k) v += a[size_t(j) * d + k] * z[k];
        x[size_t(i * d + j)] = float(v);
      }
    }
    return x;
  };
  std::vector<float> x1 = draw(a1, mu1, 1), x2 = draw(a2, mu2, 2);
  GaussianStats g1 = gaussian_stats(x1.data(), n, d), g2 = gaussian_stats(x2.data(), n, d);
  Matrix c1 = matmul(a1, transpose(a1, d), d), c2 = matmul(a2, transpose(a2, d), d);
  EXPECT_LT(max_abs_diff(g1.cov, c1), 0.02);
  EXPECT_NEAR(g1.mean[1], 1.0, 0.01);
  double expected = frechet_distance(mu1, c1, mu2, c2);
  EXPECT_NEAR(frechet_distance(g1, g2), expected, 0.02 * expected);
}

TEST(EvalGram, MatchesNaiveDotProducts) {
  // Sizes that leave partial row and column tiles.
  for (auto [m, n, d] : {std::tuple{1, 1, 1}, {7, 300, 5}, {130, 513, 128}}) {
    std::vector<float> a(static_cast<size_t>(m) * d), b(static_cast<size_t>(n) * d);
    loom::Rng r(9, "gram");
    for (auto& v : a) v = r.normal();
    for (auto& v : b) v = r.normal();
    std::vector<float> c(static_cast<size_t>(m) * n, -1.f);
    gram(a.data(), b.data(), c.data(), m, n, d);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int k = 0; k < d; ++k) s += double(a[size_t(i * d + k)]) * b[size_t(j * d + k)];
        ASSERT_NEAR(c[size_t(i) * n + j], s, 1e-4 * std::sqrt(double(d)))
            << m << "x" << n << "x" << d;
      }
  }
}

namespace {

// The unbiased MMD^2 with the cubic kernel over whole sets, in double, by definition.
double naive_mmd(const std::vector<float>& x, const std::vector<float>& y, int64_t n, int d) {
  auto k = [&](const float* a, const float* b) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += double(a[j]) * b[j];
    return std::pow(s / d + 1, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i != j) xx += k(&x[size_t(i * d)], &x[size_t(j * d)]);
      if (i != j) yy += k(&y[size_t(i * d)], &y[size_t(j * d)]);
      xy += k(&x[size_t(i * d)], &y[size_t(j * d)]);
    }
  double m = double(n);
  return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m);
}

std::vector<float> gaussian_rows(int64_t n, int d, float shift, uint64_t seed) {
  loom::Rng r(seed, "rows");
  std::vector<float> x(size_t(n * d));
  for (auto& v : x) v = r.normal() + shift;
  return x;
}

}  // namespace

TEST(EvalKid, WholeSetsMatchTheNaiveUnbiasedEstimate) {
  int d = 8;
  int64_t n = 300;
  auto x = gaussian_rows(n, d, 0, 1), y = gaussian_rows(n, d, 0.3f, 2);
  // One subset of every row: a permutation of each set, which the estimate does not see.
  KernelDistance k = kernel_distance(x.data(), n, y.data(), n, d, 1, n, 7);
  double ref = naive_mmd(x, y, n, d);
  EXPECT_NEAR(k.mean, ref, 1e-4 * std::abs(ref) + 1e-6);
  EXPECT_GT(ref, 0.05);
}

TEST(EvalKid, SameDistributionIsNearZeroAndShiftsAreNot) {
  int d = 16;
  int64_t n = 3000;
  auto x = gaussian_rows(n, d, 0, 3), x2 = gaussian_rows(n, d, 0, 4),
       y = gaussian_rows(n, d, 0.5f, 5);
  KernelDistance same = kernel_distance(x.data(), n, x.data(), n, d, 100, 1000, 0);
  KernelDistance twin = kernel_distance(x.data(), n, x2.data(), n, d, 100, 1000, 0);
  KernelDistance shifted = kernel_distance(x.data(), n, y.data(), n, d, 100, 1000, 0);
  EXPECT_EQ(same.subsets, 100);
  EXPECT_EQ(same.subset_size, 1000);
  EXPECT_GT(shifted.mean, 0.5);
  EXPECT_GT(shifted.mean, 10 * shifted.std);
  // Two samples of one distribution: zero within the spread of the subsets.
  EXPECT_LT(std::abs(twin.mean), 2 * twin.std);
  EXPECT_LT(std::abs(twin.mean), 0.01 * shifted.mean);
  // One set against itself: subsets drawn independently from the same n rows share a row with
  // probability 1/n per pair, so the estimate sits at -2 (E k(x, x) - E k(x, x')) / n, about
  // -0.005 here (E k(x, x) ~ 9, E k(x, x') ~ 1.2): near zero against any real difference.
  EXPECT_LT(same.mean, 0.0);
  EXPECT_GT(same.mean, -0.01);
  EXPECT_LT(std::abs(same.mean), 0.01 * shifted.mean);
}

TEST(EvalPrecisionRecall, ConstructedGridGivesExactShares) {
  // Real: a 20 x 20 grid with unit spacing (3rd-neighbour radius 1, sqrt(2) in the corners).
  // Generated: copies of the left 10 columns, plus 200 points in a tight cluster far away.
  // Precision: only the 200 copies lie in a real ball -> 0.5. Recall: the copies' balls (radius
  // 1 inside the block, sqrt(2) at its corners) cover the left 10 columns and column 10 -> 0.55.
  int d = 2;
  std::vector<float> real, fake;
  for (int i = 0; i < 20; ++i)
    for (int j = 0; j < 20; ++j) real.insert(real.end(), {float(i), float(j)});
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 20; ++j) fake.insert(fake.end(), {float(i), float(j)});
  for (int i = 0; i < 200; ++i)
    fake.insert(fake.end(), {1000.f + float(i % 20), 1000.f + float(i / 20)});
  PrecisionRecall pr = precision_recall(real.data(), 400, fake.data(), 400, d, 3);
  EXPECT_EQ(pr.k, 3);
  EXPECT_DOUBLE_EQ(pr.precision, 0.5);
  EXPECT_DOUBLE_EQ(pr.recall, 0.55);
}

TEST(EvalPrecisionRecall, MatchesANaiveReference) {
  int d = 5, k = 3;
  int64_t nr = 1500, nf = 1300;  // more than one distance block
  auto real = gaussian_rows(nr, d, 0, 5), fake = gaussian_rows(nf, d, 0.5f, 6);
  auto dist2 = [&](const float* a, const float* b) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
    return s;
  };
  auto radii = [&](const std::vector<float>& x, int64_t n) {
    std::vector<double> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> ds;
      for (int64_t j = 0; j < n; ++j)
        if (j != i) ds.push_back(dist2(&x[size_t(i * d)], &x[size_t(j * d)]));
      std::nth_element(ds.begin(), ds.begin() + (k - 1), ds.end());
      r[size_t(i)] = ds[size_t(k - 1)];
    }
    return r;
  };
  auto rr = radii(real, nr), rf = radii(fake, nf);
  std::vector<float> fast_r = kth_neighbour_radii(real.data(), nr, d, k);
  for (int64_t i = 0; i < nr; ++i)
    EXPECT_NEAR(fast_r[size_t(i)], rr[size_t(i)], 1e-4 * rr[size_t(i)] + 1e-5);
  int64_t in_real = 0, in_fake = 0;
  for (int64_t i = 0; i < nf; ++i) {
    bool hit = false;
    for (int64_t j = 0; j < nr && !hit; ++j)
      hit = dist2(&fake[size_t(i * d)], &real[size_t(j * d)]) <= rr[size_t(j)];
    in_real += hit;
  }
  for (int64_t j = 0; j < nr; ++j) {
    bool hit = false;
    for (int64_t i = 0; i < nf && !hit; ++i)
      hit = dist2(&real[size_t(j * d)], &fake[size_t(i * d)]) <= rf[size_t(i)];
    in_fake += hit;
  }
  PrecisionRecall pr = precision_recall(real.data(), nr, fake.data(), nf, d, k);
  // Float distances may decide a point lying on a ball's edge differently: at most a few.
  EXPECT_NEAR(pr.precision, double(in_real) / nf, 3.0 / nf);
  EXPECT_NEAR(pr.recall, double(in_fake) / nr, 3.0 / nr);
  EXPECT_GT(pr.precision, 0.3);
  EXPECT_LT(pr.precision, 0.99);
}

TEST(EvalPrecisionRecall, RejectsTooFewSamples) {
  std::vector<float> x{0, 1, 2};
  EXPECT_THROW(kth_neighbour_radii(x.data(), 3, 1, 3), loom::Error);
}
