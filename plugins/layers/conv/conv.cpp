// conv2d, conv2d_transpose and separable_conv2d on oneDNN convolution / deconvolution
// primitives. Samples are (C, H, W), batches plain NCHW.
//
// Parameter layouts (plain row-major):
//   conv2d            kernel           (filters, in_channels, kh, kw)  OIHW, the PyTorch layout
//                     bias             (filters)
//   conv2d_transpose  kernel           (filters, in_channels, kh, kw)  oneDNN deconvolution
//                                      weights: O = output channels, I = input channels
//                     bias             (filters)
//   separable_conv2d  depthwise_kernel (in_channels * depth_multiplier, 1, kh, kw): output
//                                      channel c * depth_multiplier + m reads input channel c
//                     pointwise_kernel (filters, in_channels * depth_multiplier, 1, 1)
//                     bias             (filters)
// Keras stores the same values as (kh, kw, in, out) etc.; only the axis order differs.
//
// oneDNN chooses the layouts of activations and weights (format_tag::any); ports reorder from
// and to the plain tensors at the layer edges with reorder primitives and buffers created once
// per batch size. Parameter gradients are added through reorders with a sum post-op.
// Activations with a "use dst" backward (relu, leaky_relu, sigmoid, tanh, elu) are fused into
// the last primitive as post-ops; the others (softplus, swish, gelu) run as a separate eltwise
// and the pre-activation is recomputed in backward.
#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include "common.hpp"
#include "loom/layer.hpp"

namespace loom::conv {
namespace {

struct Geom {
  int64_t n = 0, ic = 0, ih = 0, iw = 0, oc = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t dh = 0, dw = 0;  // oneDNN dilation (rate - 1)
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  int64_t groups = 1;

  // Sets the input (C, H, W), the output channels and the dilation rates, then the output size
  // and padding of each spatial axis from axis(in, dilated kernel, stride).
  template <class AxisFn>
  void place(const Shape& in, int64_t out_channels, int64_t rh, int64_t rw, AxisFn axis) {
    ic = in[0];
    ih = in[1];
    iw = in[2];
    oc = out_channels;
    dh = rh - 1;
    dw = rw - 1;
    Axis h = axis(ih, (kh - 1) * rh + 1, sh), w = axis(iw, (kw - 1) * rw + 1, sw);
    if (h.out <= 0 || w.out <= 0)
      throw Error("input " + to_string(in) + " is smaller than the (dilated) kernel");
    oh = h.out;
    ow = w.out;
    pt = h.before;
    pb = h.after;
    pl = w.before;
    pr = w.after;
  }
};

// One convolution (Deconv = false) or deconvolution with its backward primitives.
template <bool Deconv>
class ConvCore {
  using Fwd = std::conditional_t<Deconv, dnnl::deconvolution_forward, dnnl::convolution_forward>;
  using BwdD = std::conditional_t<Deconv, dnnl::deconvolution_backward_data,
                                  dnnl::convolution_backward_data>;
  using BwdW = std::conditional_t<Deconv, dnnl::deconvolution_backward_weights,
                                  dnnl::convolution_backward_weights>;

 public:
  bool ready() const { return bool(fwd_); }

  void init(const Geom& g, bool bias, const dnnl::post_ops& ops) {
    auto& eng = dnn::engine();
    const auto alg =
        Deconv ? dnnl::algorithm::deconvolution_direct : dnnl::algorithm::convolution_direct;
    md src_plain = plain4(g.n, g.ic, g.ih, g.iw), dst_plain = plain4(g.n, g.oc, g.oh, g.ow);
    md src_any = any4(g.n, g.ic, g.ih, g.iw), dst_any = any4(g.n, g.oc, g.oh, g.ow);
    dims wd = g.groups > 1 ? dims{g.groups, g.oc / g.groups, g.ic / g.groups, g.kh, g.kw}
                           : dims{g.oc, g.ic, g.kh, g.kw};
    md wei_plain(wd, dt::f32, g.groups > 1 ? tag::goihw : tag::oihw);
    md wei_any(wd, dt::f32, tag::any);
    md bias_md = bias ? md({g.oc}, dt::f32, tag::x) : md();
    dims strides{g.sh, g.sw}, dil{g.dh, g.dw}, pl{g.pt, g.pl}, pr{g.pb, g.pr};

    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    typename Fwd::primitive_desc fpd(
        typename Fwd::desc(dnnl::prop_kind::forward_training, alg, src_any, wei_any, bias_md,
                           dst_any, strides, dil, pl, pr),
        attr, eng);
    typename BwdD::primitive_desc dpd(
        typename BwdD::desc(alg, src_any, wei_any, dst_any, strides, dil, pl, pr), eng, fpd);
    typename BwdW::primitive_desc wpd(
        typename BwdW::desc(alg, src_any, wei_any, bias_md, dst_any, strides, dil, pl, pr), eng,
        fpd);
    fwd_ = Fwd(fpd);
    bwd_data_ = BwdD(dpd);
    bwd_wei_ = BwdW(wpd);
    bias_ = bias;

    f_src_.init(src_plain, fpd.src_desc());
    f_wei_.init(wei_plain, fpd.weights_desc());
    f_dst_.init(dst_plain, fpd.dst_desc());
    if (bias) bias_mem_ = dnnl::memory(bias_md, eng, nullptr);
    d_ddst_.init(dst_plain, dpd.diff_dst_desc());
    d_wei_.init(wei_plain, dpd.weights_desc());
    d_dsrc_.init(src_plain, dpd.diff_src_desc());
    w_src_.init(src_plain, wpd.src_desc());
    w_ddst_.init(dst_plain, wpd.diff_dst_desc());
    w_dwei_.init(wei_plain, wpd.diff_weights_desc(), true);
    if (bias) w_dbias_.init(bias_md, wpd.diff_bias_desc(), true);
  }

  void forward(const float* x, const float* w, const float* b, float* y) {
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, f_src_(x)}, {DNNL_ARG_WEIGHTS, f_wei_(w)}, {DNNL_ARG_DST, f_dst_.mem(y)}};
    if (bias_) {
      bias_mem_.set_data_handle(const_cast<float*>(b));
      args[DNNL_ARG_BIAS] = bias_mem_;
    }
    fwd_.execute(dnn::stream(), args);
    f_dst_.finish();
  }

  // dz: gradient w.r.t. the (pre-activation) output. dx is overwritten; dw and db are added
  // to. Any of them may be null.
  void backward(const float* x, const float* dz, const float* w, float* dx, float* dw, float* db) {
    if (dx) {
      bwd_data_.execute(dnn::stream(), {{DNNL_ARG_DIFF_DST, d_ddst_(dz)},
                                        {DNNL_ARG_WEIGHTS, d_wei_(w)},
                                        {DNNL_ARG_DIFF_SRC, d_dsrc_.mem(dx)}});
      d_dsrc_.finish();
    }
    if (dw || (bias_ && db)) {
      std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, w_src_(x)},
                                                 {DNNL_ARG_DIFF_DST, w_ddst_(dz)},
                                                 {DNNL_ARG_DIFF_WEIGHTS, w_dwei_.mem(dw)}};
      if (bias_) args[DNNL_ARG_DIFF_BIAS] = w_dbias_.mem(db);
      bwd_wei_.execute(dnn::stream(), args);
      if (dw) w_dwei_.finish();
      if (bias_ && db) w_dbias_.finish();
    }
  }

 private:
  Fwd fwd_;
  BwdD bwd_data_;
  BwdW bwd_wei_;
  bool bias_ = false;
  InPort f_src_, f_wei_, d_ddst_, d_wei_, w_src_, w_ddst_;
  OutPort f_dst_, d_dsrc_, w_dwei_, w_dbias_;
  dnnl::memory bias_mem_;
};

// Shared by the three layers: the activation stage around a linear map computed by compute().
class ActivatedLayer : public Layer {
 public:
  explicit ActivatedLayer(const Params& p)
      : act_(parse_act(p.s("activation"))), alpha_(float(p.f("alpha"))) {
    bool uses_dst;
    act_alg(act_, &uses_dst);
    fused_ = act_ != Act::Linear && uses_dst;
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    int64_t n = in[0]->dim(0);
    if (act_ == Act::Linear || fused_) {
      compute(n, in[0]->data(), out.data());
    } else {
      pre_.resize({out.size()});
      compute(n, in[0]->data(), pre_.data());
      act(out.size()).forward(pre_.data(), out.data());
    }
  }

  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    int64_t n = in[0]->dim(0);
    const float* dz = dout.data();
    if (act_ != Act::Linear) {
      dz_.resize({out.size()});
      if (fused_) {
        act(out.size()).backward(out.data(), out.data(), dout.data(), dz_.data());
      } else {
        pre_.resize({out.size()});
        compute(n, in[0]->data(), pre_.data());
        act(out.size()).backward(pre_.data(), out.data(), dout.data(), dz_.data());
      }
      dz = dz_.data();
    }
    compute_backward(n, in[0]->data(), dz, din[0] ? din[0]->data() : nullptr);
  }

 protected:
  // y = the layer's linear map of x (with the activation when fused_).
  virtual void compute(int64_t n, const float* x, float* y) = 0;
  virtual void compute_backward(int64_t n, const float* x, const float* dz, float* dx) = 0;
  dnnl::post_ops last_ops() const { return fused_ ? act_post_ops(act_, alpha_) : dnnl::post_ops(); }
  static float* grad_of(const ParamPtr& p) { return p && p->trainable ? p->grad.data() : nullptr; }

  Act act_;
  float alpha_;
  bool fused_ = false;

 private:
  Eltwise& act(int64_t size) {
    Eltwise& a = acts_[size];
    if (!a.ready()) a.init(act_, act_alpha(act_, alpha_), size);
    return a;
  }
  std::map<int64_t, Eltwise> acts_;
  Tensor pre_, dz_;
};

class Conv2DLayer : public ActivatedLayer {
 public:
  explicit Conv2DLayer(const Params& p)
      : ActivatedLayer(p),
        filters_(p.i("filters")),
        use_bias_(p.b("use_bias")),
        same_(p.s("padding") == "same"),
        kernel_init_(p.s("kernel_initializer")),
        bias_init_(p.s("bias_initializer")) {
    std::tie(g_.kh, g_.kw) = pair_param(p, "kernel_size");
    std::tie(g_.sh, g_.sw) = pair_param(p, "strides");
    std::tie(rh_, rw_) = pair_param(p, "dilation_rate");
    if ((g_.sh > 1 || g_.sw > 1) && (rh_ > 1 || rw_ > 1))
      p.fail("dilation_rate", "strides > 1 cannot be combined with dilation_rate > 1");
  }

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    g_.place(in[0], filters_, rh_, rw_,
             [this](int64_t n, int64_t k, int64_t st) { return conv_axis(n, k, st, same_); });
    return {g_.oc, g_.oh, g_.ow};
  }

  void build(LayerBuilder& b) override {
    int64_t rf = g_.kh * g_.kw;
    kernel_ = b.param("kernel", {g_.oc, g_.ic, g_.kh, g_.kw}, kernel_init_, g_.ic * rf, g_.oc * rf);
    if (use_bias_) bias_ = b.param("bias", {g_.oc}, bias_init_, g_.ic * rf, g_.oc * rf);
  }

 protected:
  void compute(int64_t n, const float* x, float* y) override {
    core(n).forward(x, kernel_->value.data(), use_bias_ ? bias_->value.data() : nullptr, y);
  }
  void compute_backward(int64_t n, const float* x, const float* dz, float* dx) override {
    core(n).backward(x, dz, kernel_->value.data(), dx, grad_of(kernel_), grad_of(bias_));
  }

 private:
  ConvCore<false>& core(int64_t n) {
    auto& c = cache_[n];
    if (!c) c = std::make_unique<ConvCore<false>>();
    if (!c->ready()) {
      Geom g = g_;
      g.n = n;
      c->init(g, use_bias_, last_ops());
    }
    return *c;
  }
  int64_t filters_;
  bool use_bias_, same_;
  std::string kernel_init_, bias_init_;
  int64_t rh_ = 1, rw_ = 1;
  Geom g_;
  ParamPtr kernel_, bias_;
  std::map<int64_t, std::unique_ptr<ConvCore<false>>> cache_;
};

// The forward pass of a transposed convolution as one batched matmul and a col2im scatter:
//   cols[n] (OC·KH·KW × IH·IW) = Wr (OC·KH·KW × IC) · x[n] (IC × IH·IW)
//   y[n, oc, iy·sh − pt + ky·rh, ix·sw − pl + kx·rw] += cols[n][(oc, ky, kx), (iy, ix)]
// oneDNN 2.6 runs a strided deconvolution as a convolution's backward-data pass, which measured
// about 5 GFLOP/s here (5 of the 8.7 ms of a conv_ae step); the matmul path is several times
// faster. Backward keeps oneDNN's deconvolution primitives (the gradient tests compare the two).
class GemmDeconvForward {
 public:
  bool ready() const { return bool(mm_); }
  void init(const Geom& g, Act act, float alpha) {
    g_ = g;
    k_ = g.kh * g.kw;
    m_ = g.oc * k_;
    hw_ = g.ih * g.iw;
    auto& eng = dnn::engine();
    md w_md({1, m_, g.ic}, dt::f32, tag::abc), x_md({g.n, g.ic, hw_}, dt::f32, tag::abc),
        c_md({g.n, m_, hw_}, dt::f32, tag::abc);
    mm_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(w_md, x_md, c_md), eng));
    wm_ = dnnl::memory(w_md, eng, nullptr);
    xm_ = dnnl::memory(x_md, eng, nullptr);
    cm_ = dnnl::memory(c_md, eng, nullptr);
    wr_.resize({m_ * g.ic});
    cols_.resize({g.n * m_ * hw_});
    if (act != Act::Linear) {
      md y_md({g.n * g.oc * g.oh * g.ow}, dt::f32, tag::a);
      act_ = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, act_post_op(act), y_md,
                                      act_alpha(act, alpha), 0.f),
          eng));
      ym_ = dnnl::memory(y_md, eng, nullptr);
    }
  }
  // The kernel is (OC, IC, KH, KW); y is overwritten.
  void run(const float* x, const float* w, const float* b, float* y) {
    const Geom& g = g_;
    for (int64_t oc = 0; oc < g.oc; ++oc)
      for (int64_t ic = 0; ic < g.ic; ++ic)
        for (int64_t k = 0; k < k_; ++k)
          wr_[(oc * k_ + k) * g.ic + ic] = w[(oc * g.ic + ic) * k_ + k];
    wm_.set_data_handle(wr_.data());
    xm_.set_data_handle(const_cast<float*>(x));
    cm_.set_data_handle(cols_.data());
    mm_.execute(dnn::stream(), {{DNNL_ARG_SRC, wm_}, {DNNL_ARG_WEIGHTS, xm_}, {DNNL_ARG_DST, cm_}});
    int64_t ohw = g.oh * g.ow;
    const float* cols = cols_.data();
#pragma omp parallel for schedule(static)
    for (int64_t plane = 0; plane < g.n * g.oc; ++plane) {
      int64_t n = plane / g.oc, oc = plane % g.oc;
      float* yp = y + plane * ohw;
      float bias = b ? b[oc] : 0.f;
      for (int64_t i = 0; i < ohw; ++i) yp[i] = bias;
      for (int64_t ky = 0; ky < g.kh; ++ky)
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const float* c = cols + (n * m_ + oc * k_ + ky * g.kw + kx) * hw_;
          for (int64_t iy = 0; iy < g.ih; ++iy) {
            int64_t oy = iy * g.sh - g.pt + ky * (g.dh + 1);
            if (oy < 0 || oy >= g.oh) continue;
            float* row = yp + oy * g.ow;
            const float* crow = c + iy * g.iw;
            for (int64_t ix = 0; ix < g.iw; ++ix) {
              int64_t ox = ix * g.sw - g.pl + kx * (g.dw + 1);
              if (ox >= 0 && ox < g.ow) row[ox] += crow[ix];
            }
          }
        }
    }
    if (act_) {
      ym_.set_data_handle(y);
      act_.execute(dnn::stream(), {{DNNL_ARG_SRC, ym_}, {DNNL_ARG_DST, ym_}});
    }
  }

 private:
  Geom g_;
  int64_t k_ = 0, m_ = 0, hw_ = 0;
  dnnl::matmul mm_;
  dnnl::eltwise_forward act_;
  dnnl::memory wm_, xm_, cm_, ym_;
  Tensor wr_, cols_;
};

class Conv2DTransposeLayer : public ActivatedLayer {
 public:
  explicit Conv2DTransposeLayer(const Params& p)
      : ActivatedLayer(p),
        filters_(p.i("filters")),
        use_bias_(p.b("use_bias")),
        same_(p.s("padding") == "same"),
        kernel_init_(p.s("kernel_initializer")),
        bias_init_(p.s("bias_initializer")) {
    std::tie(g_.kh, g_.kw) = pair_param(p, "kernel_size");
    std::tie(g_.sh, g_.sw) = pair_param(p, "strides");
    std::tie(rh_, rw_) = pair_param(p, "dilation_rate");
  }

  // Output size: valid (in-1)*s + k_eff; same in*s, with the padding of the forward
  // convolution that maps the output back to the input (TensorFlow): total = max(k_eff - s, 0),
  // half (rounded down) before. When k_eff < s, 'same' gives (in-1)*s + k_eff.
  static Axis axis(int64_t in, int64_t k_eff, int64_t s, bool same) {
    int64_t total = same ? std::max<int64_t>(k_eff - s, 0) : 0;
    return {(in - 1) * s + k_eff - total, total / 2, total - total / 2};
  }

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    g_.place(in[0], filters_, rh_, rw_,
             [this](int64_t n, int64_t k, int64_t st) { return axis(n, k, st, same_); });
    return {g_.oc, g_.oh, g_.ow};
  }

  void build(LayerBuilder& b) override {
    // Keras fans of a transposed convolution: fan_in = filters * kh * kw, fan_out = in * kh * kw.
    int64_t rf = g_.kh * g_.kw;
    kernel_ = b.param("kernel", {g_.oc, g_.ic, g_.kh, g_.kw}, kernel_init_, g_.oc * rf, g_.ic * rf);
    if (use_bias_) bias_ = b.param("bias", {g_.oc}, bias_init_, g_.oc * rf, g_.ic * rf);
  }

 protected:
  void compute(int64_t n, const float* x, float* y) override {
    GemmDeconvForward& f = gemm_[n];
    if (!f.ready()) {
      Geom g = g_;
      g.n = n;
      f.init(g, fused_ ? act_ : Act::Linear, alpha_);
    }
    f.run(x, kernel_->value.data(), use_bias_ ? bias_->value.data() : nullptr, y);
  }
  void compute_backward(int64_t n, const float* x, const float* dz, float* dx) override {
    core(n).backward(x, dz, kernel_->value.data(), dx, grad_of(kernel_), grad_of(bias_));
  }

 private:
  std::map<int64_t, GemmDeconvForward> gemm_;
  ConvCore<true>& core(int64_t n) {
    auto& c = cache_[n];
    if (!c) c = std::make_unique<ConvCore<true>>();
    if (!c->ready()) {
      Geom g = g_;
      g.n = n;
      c->init(g, use_bias_, last_ops());
    }
    return *c;
  }
  int64_t filters_;
  bool use_bias_, same_;
  std::string kernel_init_, bias_init_;
  int64_t rh_ = 1, rw_ = 1;
  Geom g_;
  ParamPtr kernel_, bias_;
  std::map<int64_t, std::unique_ptr<ConvCore<true>>> cache_;
};

class SeparableConv2DLayer : public ActivatedLayer {
 public:
  explicit SeparableConv2DLayer(const Params& p)
      : ActivatedLayer(p),
        filters_(p.i("filters")),
        mult_(p.i("depth_multiplier")),
        use_bias_(p.b("use_bias")),
        same_(p.s("padding") == "same"),
        dw_init_(p.s("depthwise_initializer")),
        pw_init_(p.s("pointwise_initializer")),
        bias_init_(p.s("bias_initializer")) {
    std::tie(dg_.kh, dg_.kw) = pair_param(p, "kernel_size");
    std::tie(dg_.sh, dg_.sw) = pair_param(p, "strides");
    std::tie(rh_, rw_) = pair_param(p, "dilation_rate");
    if ((dg_.sh > 1 || dg_.sw > 1) && (rh_ > 1 || rw_ > 1))
      p.fail("dilation_rate", "strides > 1 cannot be combined with dilation_rate > 1");
  }

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    dg_.place(in[0], in[0][0] * mult_, rh_, rw_,
              [this](int64_t n, int64_t k, int64_t st) { return conv_axis(n, k, st, same_); });
    dg_.groups = dg_.ic;
    pg_ = Geom();
    pg_.ic = dg_.oc;
    pg_.ih = pg_.oh = dg_.oh;
    pg_.iw = pg_.ow = dg_.ow;
    pg_.oc = filters_;
    return {filters_, dg_.oh, dg_.ow};
  }

  void build(LayerBuilder& b) override {
    int64_t rf = dg_.kh * dg_.kw;
    depthwise_ =
        b.param("depthwise_kernel", {dg_.oc, 1, dg_.kh, dg_.kw}, dw_init_, dg_.ic * rf, mult_ * rf);
    pointwise_ = b.param("pointwise_kernel", {filters_, dg_.oc, 1, 1}, pw_init_, dg_.oc, filters_);
    if (use_bias_) bias_ = b.param("bias", {filters_}, bias_init_, dg_.oc, filters_);
  }

 protected:
  void compute(int64_t n, const float* x, float* y) override {
    Cores& c = cores(n);
    mid_.resize({n * pg_.ic * pg_.ih * pg_.iw});
    c.depthwise.forward(x, depthwise_->value.data(), nullptr, mid_.data());
    c.pointwise.forward(mid_.data(), pointwise_->value.data(),
                        use_bias_ ? bias_->value.data() : nullptr, y);
  }
  void compute_backward(int64_t n, const float* x, const float* dz, float* dx) override {
    Cores& c = cores(n);
    mid_.resize({n * pg_.ic * pg_.ih * pg_.iw});
    dmid_.resize(mid_.shape());
    c.depthwise.forward(x, depthwise_->value.data(), nullptr, mid_.data());
    c.pointwise.backward(mid_.data(), dz, pointwise_->value.data(), dmid_.data(),
                         grad_of(pointwise_), grad_of(bias_));
    c.depthwise.backward(x, dmid_.data(), depthwise_->value.data(), dx, grad_of(depthwise_),
                         nullptr);
  }

 private:
  struct Cores {
    ConvCore<false> depthwise, pointwise;
  };
  Cores& cores(int64_t n) {
    auto& c = cache_[n];
    if (!c) {
      c = std::make_unique<Cores>();
      Geom d = dg_, q = pg_;
      d.n = q.n = n;
      c->depthwise.init(d, false, {});
      c->pointwise.init(q, use_bias_, last_ops());
    }
    return *c;
  }
  int64_t filters_, mult_;
  bool use_bias_, same_;
  std::string dw_init_, pw_init_, bias_init_;
  int64_t rh_ = 1, rw_ = 1;
  Geom dg_, pg_;
  ParamPtr depthwise_, pointwise_, bias_;
  Tensor mid_, dmid_;
  std::map<int64_t, std::unique_ptr<Cores>> cache_;
};

void add_common(Spec& s, bool dilation = true) {
  s.add("filters", Type::Int).required().min(1).doc("number of output channels");
  s.add("kernel_size", Type::Ints).required().doc("[k] (square) or [kh, kw]");
  s.add("strides", Type::Ints).def("[1]").doc("[s] or [sh, sw]");
  s.add("padding", Type::String)
      .def("valid")
      .choices({"valid", "same"})
      .doc("valid (no padding) or same (TensorFlow 'same')");
  if (dilation) s.add("dilation_rate", Type::Ints).def("[1]").doc("[d] or [dh, dw]");
  s.add("activation", Type::String)
      .def("linear")
      .choices(act_names())
      .doc("activation applied to the output");
  s.add("alpha", Type::Float).def(0.3).doc("slope for leaky_relu, scale for elu, swish factor");
  s.add("use_bias", Type::Bool).def("true").doc("add a learned bias per output channel");
}

}  // namespace

void register_conv(Registry& r) {
  Spec c(
      "2-D convolution over (C, H, W) inputs: y = activation(conv(x, kernel) + bias). "
      "kernel is stored (filters, in_channels, kh, kw).");
  add_common(c);
  c.add("kernel_initializer", Type::String).def("glorot_uniform").doc("initializer of the kernel");
  c.add("bias_initializer", Type::String).def("zeros").doc("initializer of the bias");
  r.add<Layer>("conv2d", c, [](const Params& p) { return std::make_unique<Conv2DLayer>(p); });

  Spec t(
      "Transposed 2-D convolution (deconvolution) over (C, H, W) inputs. Output size: valid "
      "(in-1)*s + k; same in*s. kernel is stored (filters, in_channels, kh, kw).");
  add_common(t);
  t.add("kernel_initializer", Type::String).def("glorot_uniform").doc("initializer of the kernel");
  t.add("bias_initializer", Type::String).def("zeros").doc("initializer of the bias");
  r.add<Layer>("conv2d_transpose", t,
               [](const Params& p) { return std::make_unique<Conv2DTransposeLayer>(p); });

  Spec s(
      "Depthwise-separable 2-D convolution: a depthwise convolution (depth_multiplier "
      "outputs per input channel) followed by a 1x1 convolution to `filters` channels.");
  add_common(s);
  s.add("depth_multiplier", Type::Int).def(1).min(1).doc("depthwise outputs per input channel");
  s.add("depthwise_initializer", Type::String)
      .def("glorot_uniform")
      .doc("initializer of the depthwise kernel");
  s.add("pointwise_initializer", Type::String)
      .def("glorot_uniform")
      .doc("initializer of the pointwise kernel");
  s.add("bias_initializer", Type::String).def("zeros").doc("initializer of the bias");
  r.add<Layer>("separable_conv2d", s,
               [](const Params& p) { return std::make_unique<SeparableConv2DLayer>(p); });
}

}  // namespace loom::conv
