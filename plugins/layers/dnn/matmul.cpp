#include "dnn/matmul.hpp"

namespace loom::dnn {

dnnl::post_ops accumulate() {
  dnnl::post_ops p;
  p.append_sum(1.f);
  return p;
}

void Gemm::init(const md& src, const md& wei, const md& dst, bool bias, const dnnl::post_ops& ops,
                Scratchpad& sp) {
  sp_ = &sp;
  md bias_md = bias ? md({1, dst.dims()[1]}, dt::f32, dims{dst.dims()[1], 1}) : md();
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, bias_md, dst), Scratchpad::attr(ops),
                                  engine());
  sp.reserve(pd);
  prim_ = dnnl::matmul(pd);
  src_ = unbound(src);
  wei_ = unbound(wei);
  dst_ = unbound(dst);
  if (bias) bias_ = unbound(bias_md);
  has_bias_ = bias;
}

void Gemm::run(const float* src, const float* wei, float* dst, const float* bias) {
  src_.set_data_handle(const_cast<float*>(src));
  wei_.set_data_handle(const_cast<float*>(wei));
  dst_.set_data_handle(dst);
  Args args{{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, wei_}, {DNNL_ARG_DST, dst_}};
  if (has_bias_) {
    bias_.set_data_handle(const_cast<float*>(bias));
    args[DNNL_ARG_BIAS] = bias_;
  }
  sp_->run(prim_, std::move(args));
}

}  // namespace loom::dnn
