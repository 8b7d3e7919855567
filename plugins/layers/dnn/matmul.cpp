#include "dnn/matmul.hpp"

namespace loom::dnn {

dnnl::post_ops accumulate() {
  dnnl::post_ops p;
  p.append_sum(1.f);
  return p;
}

void Gemm::init(const md& src, const md& wei, const md& dst, bool bias, const dnnl::post_ops& ops,
                Scratchpad& sp, bool bf16) {
  sp_ = &sp;
  md bias_md = bias ? md({1, dst.dims()[1]}, dt::f32, dims{dst.dims()[1], 1}) : md();
  auto low = [](const md& d) {
    return md(d.dims(), dt::bf16,
              dims(d.data.format_desc.blocking.strides,
                   d.data.format_desc.blocking.strides + d.data.ndims));
  };
  md s = src, w = wei;
  dnnl::matmul::primitive_desc pd;
  with_compute_type(bf16, [&](dt c) {
    if (c == dt::bf16)
      s = low(src), w = low(wei);
    else
      s = src, w = wei;
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(s, w, bias_md, dst), Scratchpad::attr(ops),
                                      engine());
  });
  sp.reserve(pd);
  prim_ = dnnl::matmul(pd);
  src_.init(src, s, sp);
  wei_.init(wei, w, sp);
  dst_ = unbound(dst);
  if (bias) bias_ = unbound(bias_md);
  has_bias_ = bias;
}

void Gemm::run(const float* src, const float* wei, float* dst, const float* bias) {
  dst_.set_data_handle(dst);
  Args args{{DNNL_ARG_SRC, src_(src)}, {DNNL_ARG_WEIGHTS, wei_(wei)}, {DNNL_ARG_DST, dst_}};
  if (has_bias_) {
    bias_.set_data_handle(const_cast<float*>(bias));
    args[DNNL_ARG_BIAS] = bias_;
  }
  sp_->run(prim_, std::move(args));
}

}  // namespace loom::dnn
