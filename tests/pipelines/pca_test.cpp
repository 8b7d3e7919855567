// linear_ae_pca: a linear autoencoder trained with MSE finds the principal subspace. After the
// full run (500 epochs, under a second) the 2-D codings must be an affine image of the data's
// projection on its top two principal components: the least-squares fit explains ~all variance.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/create.hpp"
#include "loom/io.hpp"
#include "loom/source.hpp"
#include "support/cli.hpp"
#include "support/harness.hpp"

using namespace loom::test;

namespace {

// Eigenvectors of a symmetric 3x3 matrix by Jacobi rotations; columns of v, sorted by eigenvalue.
void eigen3(double a[3][3], double v[3][3], double w[3]) {
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) v[i][j] = i == j;
  for (int sweep = 0; sweep < 50; ++sweep)
    for (int p = 0; p < 3; ++p)
      for (int q = p + 1; q < 3; ++q) {
        if (std::fabs(a[p][q]) < 1e-15) continue;
        double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        double t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 3; ++k) {
          double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; ++k) {
          double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; ++k) {
          double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  for (int i = 0; i < 3; ++i) w[i] = a[i][i];
}

TEST(LinearAePca, CodingsSpanThePrincipalSubspace) {
  std::string out = temp_dir("pca");
  CliResult r =
      run_loom({"run", source_path("pipelines/linear_ae_pca.yaml"), "--out", out, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  loom::Tensor codings = loom::read_npy(out + "/codings.npy");
  auto src =
      loom::create_from<loom::Source>(registry(), entry_from_yaml("{type: oval, count: 60}"));
  loom::Dataset d = src->load();
  ASSERT_EQ(codings.dim(0), d.count);
  int64_t n = d.count;
  double cov[3][3] = {};
  for (int64_t i = 0; i < n; ++i)
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) cov[a][b] += double(d.x[i * 3 + a]) * d.x[i * 3 + b] / double(n);
  double v[3][3], w[3];
  eigen3(cov, v, w);
  int order[3] = {0, 1, 2};
  std::sort(order, order + 3, [&](int a, int b) { return w[a] > w[b]; });
  // For each principal coordinate, regress it on [codings, 1]; R² must be ~1 for the top two.
  auto r2 = [&](int comp) {
    std::vector<double> y(n);
    for (int64_t i = 0; i < n; ++i)
      y[i] = d.x[i * 3] * v[0][comp] + d.x[i * 3 + 1] * v[1][comp] + d.x[i * 3 + 2] * v[2][comp];
    // Normal equations for 3 unknowns.
    double A[3][3] = {}, B[3] = {};
    for (int64_t i = 0; i < n; ++i) {
      double f[3] = {codings[i * 2], codings[i * 2 + 1], 1.0};
      for (int a = 0; a < 3; ++a) {
        B[a] += f[a] * y[i];
        for (int b = 0; b < 3; ++b) A[a][b] += f[a] * f[b];
      }
    }
    // Solve by Cramer's rule.
    auto det = [](double m[3][3]) {
      return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
             m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
             m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    };
    double D = det(A), coef[3];
    for (int k = 0; k < 3; ++k) {
      double M[3][3];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) M[a][b] = b == k ? B[a] : A[a][b];
      coef[k] = det(M) / D;
    }
    double mean = 0, ss = 0, res = 0;
    for (double t : y) mean += t / double(n);
    for (int64_t i = 0; i < n; ++i) {
      double fit = coef[0] * codings[i * 2] + coef[1] * codings[i * 2 + 1] + coef[2];
      ss += (y[i] - mean) * (y[i] - mean);
      res += (y[i] - fit) * (y[i] - fit);
    }
    return 1 - res / ss;
  };
  EXPECT_GT(r2(order[0]), 0.99);
  EXPECT_GT(r2(order[1]), 0.99);
  EXPECT_LT(r2(order[2]), 0.5);  // the smallest component is what the codings drop
}

}  // namespace
