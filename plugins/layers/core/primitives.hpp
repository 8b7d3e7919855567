// oneDNN building blocks shared by the core layers (oneDNN 2.6 API). Primitives are created
// once per shape by their owner and executed many times; memory objects are reused with
// set_data_handle so a step allocates nothing.
#pragma once
#include <dnnl.hpp>
#include <optional>

#include "../activations.hpp"
#include "loom/dnn.hpp"

namespace loom::core {

using dt = dnnl::memory::data_type;
using md = dnnl::memory::desc;

// A 2-D matrix view of a buffer: rows x cols with an arbitrary row/col stride (so a transpose
// is free).
inline md matrix(int64_t rows, int64_t cols, bool transposed = false) {
  // transposed: logical (rows x cols) stored as (cols x rows) row-major.
  if (transposed) return md({rows, cols}, dt::f32, dnnl::memory::dims{1, rows});
  return md({rows, cols}, dt::f32, dnnl::memory::dims{cols, 1});
}

// dst (+)= post_ops(src · wei [+ bias])
class Gemm {
 public:
  void init(const md& src, const md& wei, const md& dst, bool bias, const dnnl::post_ops& ops) {
    auto& eng = dnn::engine();
    md bias_md =
        bias ? md({1, dst.dims()[1]}, dt::f32, dnnl::memory::dims{dst.dims()[1], 1}) : md();
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, bias_md, dst), attr, eng);
    prim_ = dnnl::matmul(pd);
    src_ = dnnl::memory(src, eng, nullptr);
    wei_ = dnnl::memory(wei, eng, nullptr);
    dst_ = dnnl::memory(dst, eng, nullptr);
    if (bias) bias_ = dnnl::memory(bias_md, eng, nullptr);
    has_bias_ = bias;
  }
  bool ready() const { return bool(prim_); }
  void run(const float* src, const float* wei, float* dst, const float* bias = nullptr) {
    src_.set_data_handle(const_cast<float*>(src));
    wei_.set_data_handle(const_cast<float*>(wei));
    dst_.set_data_handle(dst);
    if (has_bias_) {
      bias_.set_data_handle(const_cast<float*>(bias));
      prim_.execute(dnn::stream(), {{DNNL_ARG_SRC, src_},
                                    {DNNL_ARG_WEIGHTS, wei_},
                                    {DNNL_ARG_BIAS, bias_},
                                    {DNNL_ARG_DST, dst_}});
    } else {
      prim_.execute(dnn::stream(),
                    {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, wei_}, {DNNL_ARG_DST, dst_}});
    }
  }

 private:
  dnnl::matmul prim_;
  dnnl::memory src_, wei_, dst_, bias_;
  bool has_bias_ = false;
};

inline dnnl::post_ops accumulate() {
  dnnl::post_ops p;
  p.append_sum(1.f);
  return p;
}

using layers::Act;
using layers::act_names;
using layers::Eltwise;
using layers::parse_act;

}  // namespace loom::core
