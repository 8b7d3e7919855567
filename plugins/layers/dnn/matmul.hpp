// Matrix products on oneDNN's matmul primitive: dst (+)= post_ops(src · wei [+ bias]).
#pragma once
#include "dnn/ports.hpp"

namespace loom::dnn {

// A rows x cols matrix view of a row-major buffer; transposed: the logical (rows x cols) matrix
// stored as (cols x rows), so a transpose is a stride and costs nothing.
inline md matrix(int64_t rows, int64_t cols, bool transposed = false) {
  if (transposed) return md({rows, cols}, dt::f32, dims{1, rows});
  return md({rows, cols}, dt::f32, dims{cols, 1});
}

// A post-op list that adds the product into dst.
dnnl::post_ops accumulate();

class Gemm {
 public:
  // bf16: the product on bf16 operands (converted by ports; strides kept), summed and written
  // in fp32; fp32 where oneDNN has no bf16 kernel.
  void init(const md& src, const md& wei, const md& dst, bool bias, const dnnl::post_ops& ops,
            Scratchpad& sp, bool bf16 = false);
  bool ready() const { return bool(prim_); }
  void run(const float* src, const float* wei, float* dst, const float* bias = nullptr);

 private:
  dnnl::matmul prim_;
  dnnl::memory dst_, bias_;
  InPort src_, wei_;
  bool has_bias_ = false;
  Scratchpad* sp_ = nullptr;
};

}  // namespace loom::dnn
