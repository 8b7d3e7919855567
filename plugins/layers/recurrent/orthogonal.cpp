// orthogonal initializer with Keras semantics: the tensor is viewed as a matrix (product of all
// leading dimensions) x (last dimension); a normal matrix of shape (max, min) is orthogonalised
// (QR with the signs of R's diagonal made positive, i.e. Gram–Schmidt) and transposed when the
// matrix has fewer rows than columns. A recurrent kernel (units, 4·units) thus gets orthonormal
// rows.
#include <cmath>
#include <vector>

#include "loom/error.hpp"
#include "loom/initializer.hpp"

namespace loom::recurrent {
namespace {

class Orthogonal : public Initializer {
 public:
  void fill(Tensor& t, int64_t, int64_t, Rng& rng) const override {
    if (t.empty()) return;
    int64_t cols = t.shape().back();
    int64_t rows = t.size() / cols;
    int64_t m = std::max(rows, cols), n = std::min(rows, cols);
    // Columns of an m x n normal matrix, stored column by column.
    std::vector<double> q(size_t(m * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) q[size_t(j * m + i)] = rng.normal();
    for (int64_t j = 0; j < n; ++j) {
      double* v = &q[size_t(j * m)];
      for (int pass = 0; pass < 2; ++pass) {  // twice: re-orthogonalisation for stability
        for (int64_t k = 0; k < j; ++k) {
          const double* u = &q[size_t(k * m)];
          double d = 0;
          for (int64_t i = 0; i < m; ++i) d += u[i] * v[i];
          for (int64_t i = 0; i < m; ++i) v[i] -= d * u[i];
        }
      }
      double norm = 0;
      for (int64_t i = 0; i < m; ++i) norm += v[i] * v[i];
      norm = std::sqrt(norm);
      if (norm < 1e-12) throw Error("orthogonal initializer: degenerate random matrix");
      for (int64_t i = 0; i < m; ++i) v[i] /= norm;
    }
    // q is m x n (column j at q[j*m]); the result is q (rows >= cols) or its transpose.
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        t[r * cols + c] = float(rows >= cols ? q[size_t(c * m + r)] : q[size_t(r * m + c)]);
  }
};

}  // namespace

void register_orthogonal(Registry& r) {
  r.add<Initializer>("orthogonal",
                     Spec("Orthogonal matrix (Keras): QR of a normal matrix, sign-corrected; the "
                          "tensor is viewed as (product of leading dimensions, last dimension)."),
                     [](const Params&) { return std::make_unique<Orthogonal>(); });
}

}  // namespace loom::recurrent
