#include "dnn/gemm.hpp"

#include <algorithm>
#include <dnnl.hpp>
#include <string>

#include "loom/error.hpp"

namespace loom::dnn {

void gemm_abt(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(c, c + m * n, 0.f);
    return;
  }
  // dnnl_sgemm is row-major: C = alpha * op(A) * op(B) + beta * C.
  auto s = dnnl::sgemm('N', 'T', m, n, k, 1.f, a, k, b, k, 0.f, c, n);
  if (s != dnnl::status::success)
    throw Error("matrix product of " + std::to_string(m) + "x" + std::to_string(k) + " by " +
                std::to_string(k) + "x" + std::to_string(n) + " failed in oneDNN");
}

}  // namespace loom::dnn
