// Internal: sample-quality metrics on feature vectors (rows of a row-major float matrix, n x d):
// Gaussian statistics and their Fréchet distance, the kernel inception distance (KID), and
// k-NN precision and recall.
#pragma once
#include <cstdint>
#include <vector>

#include "loom/export.hpp"

namespace loom::eval {

// Mean and covariance (unbiased, divided by n - 1) of n feature rows of width d, in float64.
struct GaussianStats {
  int dim = 0;
  int64_t count = 0;
  std::vector<double> mean;  // d
  std::vector<double> cov;   // d x d
};
LOOM_API GaussianStats gaussian_stats(const float* x, int64_t n, int d);

// The Fréchet distance between the Gaussians fitted to two feature sets.
LOOM_API double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// KID (Bińkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic polynomial
// kernel k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random subsets of `subset_size` rows
// drawn (without replacement within a subset) from each set; std is over the subsets.
struct KernelDistance {
  double mean = 0, std = 0;
  int subsets = 0;
  int64_t subset_size = 0;
};
LOOM_API KernelDistance kernel_distance(const float* x, int64_t nx, const float* y, int64_t ny,
                                        int d, int subsets = 100, int64_t subset_size = 1000,
                                        uint64_t seed = 0);

// Improved precision and recall (Kynkäänniemi et al. 2019). Each real row covers the ball
// around it whose radius is the distance to its k-th nearest other real row; precision is the
// share of generated rows inside at least one real ball. Recall is the same with the two sets'
// roles exchanged: the share of real rows inside at least one generated row's ball.
struct PrecisionRecall {
  double precision = 0, recall = 0;
  int k = 0;
};
LOOM_API PrecisionRecall precision_recall(const float* real, int64_t nr, const float* fake,
                                          int64_t nf, int d, int k = 3);

// The squared distance from each row of `x` to its k-th nearest other row of `x` (n values).
LOOM_API std::vector<float> kth_neighbour_radii(const float* x, int64_t n, int d, int k);

}  // namespace loom::eval
