// Internal: the dot products of every row of one feature matrix with every row of another, the
// inner loop of KID's kernel matrices and of the k-NN distances. Plain C++ (the core library does
// not link oneDNN): vectorised over columns, rows shared among OpenMP threads; each value is
// summed in the same order whatever the thread count.
#pragma once
#include <cstdint>

#include "loom/export.hpp"

namespace loom::eval {

// c (m x n) = a (m x d) * b (n x d)^T, all row-major and contiguous.
LOOM_API void gram(const float* a, const float* b, float* c, int64_t m, int64_t n, int d);

}  // namespace loom::eval
