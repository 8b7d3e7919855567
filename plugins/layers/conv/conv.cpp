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
// The primitives (dnn::Convolution, dnn::DeconvForwardGemm) live in the oneDNN adapter
// (plugins/layers/dnn/); they are made once per batch size. Activations with a "use dst" backward
// (relu, leaky_relu, sigmoid, tanh, elu) are fused into the last primitive as post-ops; the
// others (selu, softplus, swish, gelu) run as a separate eltwise and the pre-activation is
// recomputed in backward.
//
// Output sizes follow Keras. conv2d / separable_conv2d: valid floor((in - k_eff) / s) + 1, same
// ceil(in / s). conv2d_transpose: same in·s; valid in·s + max(k_eff - s, 0); when k_eff < s the
// last s - k_eff rows and columns of each stride cell are reached by no input and hold the bias.
#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include "common.hpp"
#include "loom/layer.hpp"
#include "spectral_norm.hpp"

namespace loom::conv {
namespace {

using dnn::Act;
using dnn::Activation;
using Geom = dnn::ConvGeom;

// Sets the input (C, H, W), the output channels and the dilation rates of g, then the output
// size and padding of each spatial axis from axis(in, dilated kernel, stride).
template <class AxisFn>
void place(Geom& g, const Shape& in, int64_t out_channels, int64_t rh, int64_t rw, AxisFn axis) {
  g.ic = in[0];
  g.ih = in[1];
  g.iw = in[2];
  g.oc = out_channels;
  g.dh = rh - 1;
  g.dw = rw - 1;
  Axis h = axis(g.ih, (g.kh - 1) * rh + 1, g.sh), w = axis(g.iw, (g.kw - 1) * rw + 1, g.sw);
  if (h.out <= 0 || w.out <= 0)
    throw Error("input " + to_string(in) + " is smaller than the (dilated) kernel");
  g.oh = h.out;
  g.ow = w.out;
  g.pt = h.before;
  g.pb = h.after;
  g.pl = w.before;
  g.pr = w.after;
}

// Shared by the three layers: the activation stage around a linear map computed by compute().
class ActivatedLayer : public Layer {
 public:
  ValueRange range(const std::vector<ValueRange>&) const override {
    return dnn::range_of(act_, ValueRange{});
  }
  explicit ActivatedLayer(const Params& p)
      : act_(dnn::activation_param(p)), fused_(dnn::fusable(act_.act)) {}

  // Reads and writes channel-blocked maps as they come (the primitives' ports convert).
  LayoutRole layout_role() const override { return LayoutRole::Any; }

  void forward(const RunContext& ctx, const std::vector<const Tensor*>& in, Tensor& out) override {
    int64_t n = in[0]->dim(0);
    take(ctx, *in[0], out);
    before_forward(ctx);
    if (act_.act == Act::Linear || fused_) {
      compute(n, in[0]->data(), out.data());
    } else {
      pre_.resize({out.size()});
      compute(n, in[0]->data(), pre_.data());
      act(out.size()).forward(pre_.data(), out.data());
    }
  }

  void backward(const RunContext& ctx, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    int64_t n = in[0]->dim(0);
    take(ctx, *in[0], out);
    const float* dz = dout.data();
    if (act_.act != Act::Linear) {
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
  // Called once per forward before compute() (spectral normalisation of the kernel).
  virtual void before_forward(const RunContext&) {}
  // y = the layer's linear map of x (with the activation when fused_).
  virtual void compute(int64_t n, const float* x, float* y) = 0;
  virtual void compute_backward(int64_t n, const float* x, const float* dz, float* dx) = 0;
  dnnl::post_ops last_ops() const { return fused_ ? dnn::post_ops(act_) : dnnl::post_ops(); }
  // Where backward adds p's gradient: nowhere for a frozen layer (ctx.frozen: a discriminator
  // while its generator trains) or a parameter that does not train.
  float* grad_of(const ParamPtr& p) const {
    return p && p->trainable && !frozen_ ? p->grad.data() : nullptr;
  }

  // The primitives of a batch size, precision (RunContext::bf16) and layouts of the current call.
  int64_t key(int64_t n) const {
    return ((2 * n + (bf16_ ? 1 : 0)) * 2 + (in_blocked_ ? 1 : 0)) * 2 + (out_blocked_ ? 1 : 0);
  }
  // The geometry g for a batch of n in the current call's layouts.
  static Geom at(Geom g, int64_t n, bool in_blocked, bool out_blocked) {
    g.n = n;
    g.in_blocked = in_blocked;
    g.out_blocked = out_blocked;
    return g;
  }
  Activation act_;
  bool fused_ = false;
  // What the current call is: its precision, layouts, and whether the stage freezes the layer.
  void take(const RunContext& ctx, const Tensor& x, const Tensor& y) {
    bf16_ = ctx.bf16;
    frozen_ = ctx.frozen;
    in_blocked_ = x.blocked();
    out_blocked_ = y.blocked();
  }
  bool bf16_ = false, in_blocked_ = false, out_blocked_ = false, frozen_ = false;
  dnn::Scratchpad scratch_;  // declared before the primitives that use it

 private:
  dnn::Eltwise& act(int64_t size) {
    dnn::Eltwise& a = acts_[size];
    if (!a.ready()) a.init(act_, size, scratch_);
    return a;
  }
  std::map<int64_t, dnn::Eltwise> acts_;
  Tensor pre_, dz_;
};

class Conv2DLayer : public ActivatedLayer {
 public:
  double flops(const std::vector<Shape>&, const Shape&) const override {
    return 2.0 * double(g_.oc * g_.oh * g_.ow) * double(g_.ic / g_.groups * g_.kh * g_.kw);
  }
  explicit Conv2DLayer(const Params& p)
      : ActivatedLayer(p),
        filters_(p.i("filters")),
        use_bias_(p.b("use_bias")),
        same_(p.s("padding") == "same"),
        kernel_init_(p.s("kernel_initializer")),
        bias_init_(p.s("bias_initializer")) {
    if (p.b("spectral_norm")) sn_ = std::make_unique<layers::SpectralKernel>();
    std::tie(g_.kh, g_.kw) = pair_param(p, "kernel_size");
    std::tie(g_.sh, g_.sw) = pair_param(p, "strides");
    std::tie(rh_, rw_) = pair_param(p, "dilation_rate");
    if ((g_.sh > 1 || g_.sw > 1) && (rh_ > 1 || rw_ > 1))
      p.fail("dilation_rate", "strides > 1 cannot be combined with dilation_rate > 1");
  }

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    place(g_, in[0], filters_, rh_, rw_,
          [this](int64_t n, int64_t k, int64_t st) { return conv_axis(n, k, st, same_); });
    return {g_.oc, g_.oh, g_.ow};
  }

  void build(LayerBuilder& b) override {
    int64_t rf = g_.kh * g_.kw;
    kernel_ = b.param("kernel", {g_.oc, g_.ic, g_.kh, g_.kw}, kernel_init_, g_.ic * rf, g_.oc * rf);
    if (use_bias_) bias_ = b.param("bias", {g_.oc}, bias_init_, g_.ic * rf, g_.oc * rf);
    if (sn_) sn_->build(b, g_.oc, g_.ic * rf);
  }

 protected:
  void before_forward(const RunContext& ctx) override {
    if (sn_) sn_->weights(ctx, *kernel_);
  }
  const float* kernel() const { return sn_ ? sn_->current() : kernel_->value.data(); }
  void compute(int64_t n, const float* x, float* y) override {
    core(n).forward(x, kernel(), use_bias_ ? bias_->value.data() : nullptr, y);
  }
  void compute_backward(int64_t n, const float* x, const float* dz, float* dx) override {
    float* gw = grad_of(kernel_);
    if (gw && sn_) gw = sn_->grad_target(*kernel_);
    core(n).backward(x, dz, kernel(), dx, gw, grad_of(bias_));
    if (gw && sn_) sn_->finish_grad(*kernel_);
  }

 private:
  dnn::Convolution<false>& core(int64_t n) {
    auto& c = cache_[key(n)];
    if (!c) c = std::make_unique<dnn::Convolution<false>>();
    if (!c->ready())
      c->init(at(g_, n, in_blocked_, out_blocked_), use_bias_, last_ops(), scratch_, bf16_);
    return *c;
  }
  int64_t filters_;
  bool use_bias_, same_;
  std::string kernel_init_, bias_init_;
  int64_t rh_ = 1, rw_ = 1;
  Geom g_;
  ParamPtr kernel_, bias_;
  std::unique_ptr<layers::SpectralKernel> sn_;  // spectral_norm: true
  std::map<int64_t, std::unique_ptr<dnn::Convolution<false>>> cache_;
};

class Conv2DTransposeLayer : public ActivatedLayer {
 public:
  double flops(const std::vector<Shape>&, const Shape&) const override {
    return 2.0 * double(g_.ic * g_.ih * g_.iw) * double(g_.oc * g_.kh * g_.kw);
  }
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

  // Keras's output size: same in·s; valid in·s + max(k_eff - s, 0). The padding is that of the
  // convolution mapping the output back to the input: before = max(k_eff - s, 0) / 2 with 'same'
  // (TensorFlow), 0 with 'valid'; after = (in - 1)·s + k_eff - out - before, negative when
  // k_eff < s (output cells no input reaches).
  static Axis axis(int64_t in, int64_t k_eff, int64_t s, bool same) {
    int64_t over = std::max<int64_t>(k_eff - s, 0);
    int64_t out = same ? in * s : in * s + over;
    int64_t before = same ? over / 2 : 0;
    return {out, before, (in - 1) * s + k_eff - out - before};
  }

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    place(g_, in[0], filters_, rh_, rw_,
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
    dnn::DeconvForwardGemm& f = gemm_[key(n)];
    if (!f.ready())
      f.init(at(g_, n, in_blocked_, out_blocked_), fused_ ? act_ : Activation{}, scratch_, bf16_);
    f.run(x, kernel_->value.data(), use_bias_ ? bias_->value.data() : nullptr, y);
  }
  void compute_backward(int64_t n, const float* x, const float* dz, float* dx) override {
    core(n).backward(x, dz, kernel_->value.data(), dx, grad_of(kernel_), grad_of(bias_));
  }

 private:
  std::map<int64_t, dnn::DeconvForwardGemm> gemm_;
  dnn::Convolution<true>& core(int64_t n) {
    auto& c = cache_[key(n)];
    if (!c) c = std::make_unique<dnn::Convolution<true>>();
    if (!c->ready())
      c->init(at(g_, n, in_blocked_, out_blocked_), use_bias_, last_ops(), scratch_, bf16_);
    return *c;
  }
  int64_t filters_;
  bool use_bias_, same_;
  std::string kernel_init_, bias_init_;
  int64_t rh_ = 1, rw_ = 1;
  Geom g_;
  ParamPtr kernel_, bias_;
  std::map<int64_t, std::unique_ptr<dnn::Convolution<true>>> cache_;
};

class SeparableConv2DLayer : public ActivatedLayer {
 public:
  double flops(const std::vector<Shape>&, const Shape&) const override {
    return 2.0 * double(dg_.oc * dg_.oh * dg_.ow * dg_.kh * dg_.kw) +
           2.0 * double(pg_.oc * pg_.oh * pg_.ow) * double(pg_.ic);
  }
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
    place(dg_, in[0], in[0][0] * mult_, rh_, rw_,
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
    mid_of_ = {x, key(n)};
    c.pointwise.forward(mid_.data(), pointwise_->value.data(),
                        use_bias_ ? bias_->value.data() : nullptr, y);
  }
  void compute_backward(int64_t n, const float* x, const float* dz, float* dx) override {
    Cores& c = cores(n);
    mid_.resize({n * pg_.ic * pg_.ih * pg_.iw});
    dmid_.resize(mid_.shape());
    // The depthwise output of the last forward serves when it was computed from this input
    // (the weights have not moved between a forward and its backward).
    if (mid_of_ != Mid{x, key(n)}) {
      c.depthwise.forward(x, depthwise_->value.data(), nullptr, mid_.data());
      mid_of_ = {x, key(n)};
    }
    c.pointwise.backward(mid_.data(), dz, pointwise_->value.data(), dmid_.data(),
                         grad_of(pointwise_), grad_of(bias_));
    c.depthwise.backward(x, dmid_.data(), depthwise_->value.data(), dx, grad_of(depthwise_),
                         nullptr);
  }

 private:
  struct Cores {
    dnn::Convolution<false> depthwise, pointwise;
  };
  Cores& cores(int64_t n) {
    auto& c = cache_[key(n)];
    if (!c) {
      c = std::make_unique<Cores>();
      // The depthwise output, between the two products, is the layer's own: blocked when its
      // channels allow.
      bool mid = pg_.ic % kChannelBlock == 0;
      c->depthwise.init(at(dg_, n, in_blocked_, mid), false, {}, scratch_, bf16_);
      c->pointwise.init(at(pg_, n, mid, out_blocked_), use_bias_, last_ops(), scratch_, bf16_);
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
  struct Mid {
    const float* x = nullptr;
    int64_t key = -1;  // batch, precision and layouts
    bool operator!=(const Mid& o) const { return x != o.x || key != o.key; }
  } mid_of_;  // what mid_ was computed from
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
      .choices(dnn::activation_names())
      .doc("activation applied to the output");
  s.add("alpha", Type::Float).doc(dnn::alpha_doc());
  s.add("use_bias", Type::Bool).def("true").doc("add a learned bias per output channel");
}

}  // namespace

void register_conv(Registry& r) {
  Spec c(
      "2-D convolution over (C, H, W) inputs: y = activation(conv(x, kernel) + bias). "
      "kernel is stored (filters, in_channels, kh, kw).");
  add_common(c);
  c.add("kernel_initializer", Type::String).def("glorot_uniform").doc("initializer of the kernel");
  c.add("spectral_norm", Type::Bool)
      .def("false")
      .doc(
          "divide the kernel by its largest singular value (one power iteration per training "
          "step; for GAN discriminators)");
  c.add("bias_initializer", Type::String).def("zeros").doc("initializer of the bias");
  r.add<Layer>("conv2d", c, [](const Params& p) { return std::make_unique<Conv2DLayer>(p); });

  Spec t(
      "Transposed 2-D convolution (deconvolution) over (C, H, W) inputs. Output size: valid "
      "in*s + max(k - s, 0); same in*s (Keras). kernel is stored (filters, in_channels, kh, kw).");
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
