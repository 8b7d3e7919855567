#include "eval/gram.hpp"

#include <algorithm>
#include <vector>

namespace loom::eval {

namespace {

constexpr int64_t kRows = 4, kCols = 256;  // one accumulator tile: 4 KB, stays in L1

// acc[r][j] = sum_k a[r][k] * bt[k][j] for a tile of `rows` rows and `cols` columns.
__attribute__((target_clones("avx512f", "avx2", "default"))) void tile(const float* a, int64_t rows,
                                                                       const float* bt, int64_t ldb,
                                                                       int64_t cols, int d,
                                                                       float* c, int64_t ldc) {
  float acc[kRows][kCols] = {};
  for (int k = 0; k < d; ++k) {
    const float* brow = bt + int64_t(k) * ldb;
    for (int64_t r = 0; r < rows; ++r) {
      const float av = a[r * d + k];
      float* out = acc[r];
      for (int64_t j = 0; j < cols; ++j) out[j] += av * brow[j];
    }
  }
  for (int64_t r = 0; r < rows; ++r) std::copy(acc[r], acc[r] + cols, c + r * ldc);
}

}  // namespace

void gram(const float* a, const float* b, float* c, int64_t m, int64_t n, int d) {
  if (m == 0 || n == 0) return;
  std::vector<float> bt(size_t(n) * size_t(d));  // b transposed: d x n
  for (int64_t j = 0; j < n; ++j)
    for (int k = 0; k < d; ++k) bt[size_t(k) * size_t(n) + size_t(j)] = b[j * d + k];
  const int64_t row_tiles = (m + kRows - 1) / kRows;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < row_tiles; ++t) {
    int64_t i0 = t * kRows, rows = std::min(kRows, m - i0);
    for (int64_t j0 = 0; j0 < n; j0 += kCols)
      tile(a + i0 * d, rows, bt.data() + j0, n, std::min(kCols, n - j0), d, c + i0 * n + j0, n);
  }
}

}  // namespace loom::eval
