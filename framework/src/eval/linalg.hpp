// Internal: the dense linear algebra of the sample-quality metrics, in float64. Matrices are
// square, row-major, n x n, held in a std::vector<double>.
#pragma once
#include <cstdint>
#include <vector>

#include "loom/export.hpp"

namespace loom::eval {

struct SymmetricEigen {
  std::vector<double> values;   // n eigenvalues, ascending
  std::vector<double> vectors;  // n x n, column j is the unit eigenvector of values[j]
};

// Eigendecomposition of a symmetric matrix (only its upper triangle is read) by the cyclic Jacobi
// method: A = V diag(values) V^T, V orthogonal, accurate to a few ulps of the largest eigenvalue.
LOOM_API SymmetricEigen symmetric_eigen(const std::vector<double>& a, int n);

// The symmetric positive semi-definite square root of a symmetric PSD matrix: V sqrt(D) V^T.
// Eigenvalues within rounding of zero (a singular covariance) are taken as zero.
LOOM_API std::vector<double> sqrt_psd(const std::vector<double>& a, int n);

// tr sqrt(sqrt(A) B sqrt(A)) for symmetric PSD A and B: the cross term of the Fréchet distance,
// equal to tr sqrt(A B) but computed from symmetric matrices only (real, no complex parts).
LOOM_API double trace_sqrt_product(const std::vector<double>& a, const std::vector<double>& b,
                                   int n);

// The Fréchet (2-Wasserstein) distance between N(mu1, c1) and N(mu2, c2), squared:
// |mu1 - mu2|^2 + tr(c1) + tr(c2) - 2 tr sqrt(sqrt(c1) c2 sqrt(c1)).
LOOM_API double frechet_distance(const std::vector<double>& mu1, const std::vector<double>& c1,
                                 const std::vector<double>& mu2, const std::vector<double>& c2);

// c = a * b for n x n matrices.
LOOM_API std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b,
                                    int n);

}  // namespace loom::eval
