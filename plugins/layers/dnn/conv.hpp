// Convolution and deconvolution (transposed convolution) primitive sets: forward, backward-data
// and backward-weights descriptors made together (the backward ones hinted by the forward), on
// layouts oneDNN chooses, with ports to and from plain NCHW / OIHW tensors.
#pragma once
#include "dnn/activation.hpp"
#include "dnn/matmul.hpp"
#include "dnn/ports.hpp"

namespace loom::dnn {

// The geometry of one (de)convolution over a batch of n NCHW samples. For a deconvolution, "in"
// is its input and "out" its output; the paddings are those of the equivalent convolution from
// out to in, and may be negative on the right (output cells no input reaches).
struct ConvGeom {
  int64_t n = 0, ic = 0, ih = 0, iw = 0, oc = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t dh = 0, dw = 0;  // oneDNN dilation (rate - 1)
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  int64_t groups = 1;
  // How the caller stores the input (and its gradient) and the output (and its gradient):
  // channel-blocked (Tensor::blocked()) or plain NCHW.
  bool in_blocked = false, out_blocked = false;
};

// One convolution (Deconv = false) or deconvolution with its backward primitives, on the layouts
// oneDNN prefers; the ports reorder from and to the caller's (ConvGeom::in_blocked, out_blocked)
// only where they differ. The weights are
// plain (OC, IC, KH, KW) (or (G, OC/G, IC/G, KH, KW) when grouped). With bf16, the primitives
// take bf16 inputs and weights (the ports convert), and write fp32 outputs and gradients.
template <bool Deconv>
class Convolution {
 public:
  bool ready() const { return bool(fwd_); }
  // ops: post-ops of the forward (a fused activation).
  // bf16: compute on bf16 inputs and weights where oneDNN has the kernels (else fp32).
  void init(const ConvGeom& g, bool bias, const dnnl::post_ops& ops, Scratchpad& sp,
            bool bf16 = false);
  void forward(const float* x, const float* w, const float* b, float* y);
  // dz: gradient w.r.t. the (pre-activation) output. dx is overwritten; dw and db are added
  // to. Any of them may be null.
  void backward(const float* x, const float* dz, const float* w, float* dx, float* dw, float* db);

 private:
  using Fwd = std::conditional_t<Deconv, dnnl::deconvolution_forward, dnnl::convolution_forward>;
  using BwdD = std::conditional_t<Deconv, dnnl::deconvolution_backward_data,
                                  dnnl::convolution_backward_data>;
  using BwdW = std::conditional_t<Deconv, dnnl::deconvolution_backward_weights,
                                  dnnl::convolution_backward_weights>;
  Fwd fwd_;
  BwdD bwd_data_;
  BwdW bwd_wei_;
  void make(const ConvGeom& g, bool bias, const dnnl::post_ops& ops, Scratchpad& sp, dt c);
  bool bias_ = false;
  InPort f_src_, f_wei_, d_ddst_, d_wei_, w_src_, w_ddst_;
  OutPort f_dst_, d_dsrc_, w_dwei_, w_dbias_;
  dnnl::memory bias_mem_;
  Scratchpad* sp_ = nullptr;
};

extern template class Convolution<false>;
extern template class Convolution<true>;

// The forward pass of a transposed convolution as one matmul and a col2im scatter:
//   cols ((n, iy, ix) × (oc, ky, kx)) = x in NHWC (N·IH·IW × IC) · Wr (IC × OC·KH·KW)
//   y[n, oc, iy·sh − pt + ky·rh, ix·sw − pl + kx·rw] += cols[(n, iy, ix), (oc, ky, kx)]
// oneDNN 2.6 runs a strided deconvolution as a convolution's backward-data pass, which measured
// about 5 GFLOP/s here (5 of the 8.7 ms of a conv_ae step); the matmul path is several times
// faster. Output cells no input reaches hold the bias. The activation, when given, must be
// fusable (its backward runs from the output).
class DeconvForwardGemm {
 public:
  bool ready() const { return bool(mm_); }
  void init(const ConvGeom& g, const Activation& act, Scratchpad& sp, bool bf16 = false);
  // The kernel is (OC, IC, KH, KW); y is overwritten.
  void run(const float* x, const float* w, const float* b, float* y);

 private:
  ConvGeom g_;
  int64_t k_ = 0, m_ = 0, hw_ = 0;
  dnnl::matmul mm_;
  dnnl::eltwise_forward act_;
  dnnl::memory xm_, cm_, ym_;
  InPort w_in_, x_in_;  // to the matmul's operand types and x to NHWC
  Tensor wr_, cols_;
  Scratchpad* sp_ = nullptr;
};

}  // namespace loom::dnn
