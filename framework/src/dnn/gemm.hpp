// Internal: float matrix products on oneDNN's GEMM, for code outside the layers that needs many
// dot products at once (the sample-quality metrics' kernel and distance matrices).
#pragma once
#include <cstdint>

#include "loom/export.hpp"

namespace loom::dnn {

// C (m x n) = A (m x k) * B (n x k)^T: every dot product of a row of A with a row of B. All
// row-major and contiguous.
LOOM_API void gemm_abt(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k);

}  // namespace loom::dnn
