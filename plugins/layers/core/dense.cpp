// dense: y = activation(x · W + b) over the last axis (so a 3-D input (T, F) gets the same dense
// applied at every time step, as in Keras). W is stored (in, units), as Keras stores it.
// dense_transpose: the tied-weights decoder layer y = activation(x · Wᵀ + b), using the kernel
// of another dense layer (`tied_to`) and a bias of its own.
// Forward, backward-data and backward-weights are oneDNN matmuls (transposes are free strides),
// with bias and activation fused into the forward as oneDNN post-ops.
#include <algorithm>
#include <map>

#include "dnn/activation.hpp"
#include "dnn/matmul.hpp"
#include "loom/error.hpp"
#include "loom/layer.hpp"
#include "spectral_norm.hpp"

namespace loom::core {
namespace {

using dnn::accumulate;
using dnn::Act;
using dnn::Gemm;
using dnn::matrix;

class DenseBase : public Layer {
 public:
  double flops(const std::vector<Shape>& in, const Shape& out) const override {
    return 2.0 * double(numel(out)) * double(in[0].back());
  }
  ValueRange range(const std::vector<ValueRange>&) const override {
    return dnn::range_of(act_, ValueRange{});
  }
  explicit DenseBase(const Params& p)
      : act_(dnn::activation_param(p)),
        use_bias_(p.b("use_bias")),
        bias_init_(p.s("bias_initializer")) {}

  void forward(const RunContext& ctx, const std::vector<const Tensor*>& in, Tensor& out) override {
    int64_t m = rows(*in[0]);
    Prims& k = prims(m, ctx.bf16);
    const float* w = sn_ ? sn_->weights(ctx, *kernel_) : kernel_->value.data();
    if (!fused()) {
      // The activation's backward needs its input: keep the pre-activation values.
      pre_.resize({m * units_});
      k.fwd.run(in[0]->data(), w, pre_.data(), use_bias_ ? bias_->value.data() : nullptr);
      k.act.forward(pre_.data(), out.data());
      return;
    }
    k.fwd.run(in[0]->data(), w, out.data(), use_bias_ ? bias_->value.data() : nullptr);
  }

  void backward(const RunContext& ctx, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    int64_t m = rows(*in[0]);
    Prims& k = prims(m, ctx.bf16);
    const float* dz = dout.data();
    if (act_.act != Act::Linear) {
      dz_.resize({m * units_});
      k.act.backward(fused() ? out.data() : pre_.data(), out.data(), dout.data(), dz_.data());
      dz = dz_.data();
    }
    // A frozen layer (ctx.frozen: a discriminator while its generator trains) adds no
    // parameter gradients: they would be discarded.
    const bool train = !ctx.frozen;
    if (train && kernel_->trainable) {
      float* gw = sn_ ? sn_->grad_target(*kernel_) : kernel_->grad.data();
      k.dw.run(weights_grad_src(in[0]->data(), dz), weights_grad_wei(in[0]->data(), dz), gw);
      if (sn_) sn_->finish_grad(*kernel_);
    }
    if (train && use_bias_ && bias_->trainable) {
      if (ones_.size() < m) {
        ones_.resize({m});
        ones_.fill(1.f);
      }
      k.db.run(ones_.data(), dz, bias_->grad.data());
    }
    if (din[0]) k.dx.run(dz, sn_ ? sn_->current() : kernel_->value.data(), din[0]->data());
  }

 protected:
  struct Prims {
    Gemm fwd, dw, db, dx;
    dnn::Eltwise act;
  };
  int64_t rows(const Tensor& x) const { return x.size() / in_; }
  // Which operands form the weight gradient product (differs for the transposed layer).
  virtual const float* weights_grad_src(const float* x, const float* dz) const = 0;
  virtual const float* weights_grad_wei(const float* x, const float* dz) const = 0;
  // bf16: the forward, weight-gradient and input-gradient products on bf16 operands.
  virtual void init_prims(Prims& k, int64_t m, bool bf16) = 0;

  Prims& prims(int64_t m, bool bf16) {
    Prims& k = cache_[2 * m + (bf16 ? 1 : 0)];
    if (!k.fwd.ready()) {
      init_prims(k, m, bf16);
      int64_t m_ = m;
      k.db.init(matrix(1, m_), matrix(m_, units_), matrix(1, units_), false, accumulate(),
                scratch_);
      if (act_.act != Act::Linear) k.act.init(act_, m * units_, scratch_);
    }
    return k;
  }
  // Activations whose backward works from the output are fused into the matmul as a post-op.
  bool fused() const { return act_.act == Act::Linear || dnn::fusable(act_.act); }
  dnnl::post_ops forward_ops() const { return fused() ? dnn::post_ops(act_) : dnnl::post_ops(); }
  Shape out_shape(const Shape& in) const {
    Shape s = in;
    s.back() = units_;
    return s;
  }

  dnn::Activation act_;
  bool use_bias_;
  std::string bias_init_;
  int64_t in_ = 0, units_ = 0;
  ParamPtr kernel_, bias_;
  std::unique_ptr<layers::SpectralKernel> sn_;  // spectral_norm: true
  Tensor dz_, ones_, pre_;
  dnn::Scratchpad scratch_;
  std::map<int64_t, Prims> cache_;
};

class DenseLayer : public DenseBase {
 public:
  explicit DenseLayer(const Params& p) : DenseBase(p), kernel_init_(p.s("kernel_initializer")) {
    units_ = p.i("units");
    if (p.b("spectral_norm")) sn_ = std::make_unique<layers::SpectralKernel>();
  }
  Shape infer(const std::vector<Shape>& in) override {
    in_ = in[0].back();
    return out_shape(in[0]);
  }
  void build(LayerBuilder& b) override {
    kernel_ = b.param("kernel", {in_, units_}, kernel_init_, in_, units_);
    if (use_bias_) bias_ = b.param("bias", {units_}, bias_init_, in_, units_);
    if (sn_) sn_->build(b, in_, units_);
  }

 private:
  void init_prims(Prims& k, int64_t m, bool bf16) override {
    k.fwd.init(matrix(m, in_), matrix(in_, units_), matrix(m, units_), use_bias_, forward_ops(),
               scratch_, bf16);
    // dW (in x units) += xᵀ (in x m) · dz (m x units)
    k.dw.init(matrix(in_, m, true), matrix(m, units_), matrix(in_, units_), false, accumulate(),
              scratch_, bf16);
    // dx (m x in) = dz (m x units) · Wᵀ (units x in)
    k.dx.init(matrix(m, units_), matrix(units_, in_, true), matrix(m, in_), false, {}, scratch_,
              bf16);
  }
  const float* weights_grad_src(const float* x, const float*) const override { return x; }
  const float* weights_grad_wei(const float*, const float* dz) const override { return dz; }
  std::string kernel_init_;
};

class DenseTransposeLayer : public DenseBase {
 public:
  explicit DenseTransposeLayer(const Params& p) : DenseBase(p), tied_to_(p.s("tied_to")) {}
  Shape infer(const std::vector<Shape>& in) override {
    in_ = in[0].back();
    return kernel_ ? out_shape(in[0]) : in[0];  // final once the tied kernel is known
  }
  void build(LayerBuilder& b) override {
    std::string ref = tied_to_;
    if (std::count(ref.begin(), ref.end(), '.') < 2 && ref.find(".kernel") == std::string::npos)
      ref += ".kernel";
    kernel_ = b.shared(ref, "tied_to");
    if (kernel_->value.rank() != 2) throw Error("tied_to '" + tied_to_ + "' is not a dense kernel");
    // The tied kernel is (units_enc, in_enc)... stored (in, units) of the encoder layer.
    if (kernel_->value.dim(1) != in_)
      throw Error("tied kernel '" + kernel_->name + "' has shape " +
                  to_string(kernel_->value.shape()) + ": its " +
                  std::to_string(kernel_->value.dim(1)) +
                  " units do not match this layer's input size " + std::to_string(in_));
    units_ = kernel_->value.dim(0);
    if (use_bias_) bias_ = b.param("bias", {units_}, bias_init_, in_, units_);
  }
  Shape output_shape(const Shape& in) const { return out_shape(in); }

 private:
  void init_prims(Prims& k, int64_t m, bool bf16) override {
    // y (m x units) = x (m x in) · Kᵀ where K is (units x in)
    k.fwd.init(matrix(m, in_), matrix(in_, units_, true), matrix(m, units_), use_bias_,
               forward_ops(), scratch_, bf16);
    // dK (units x in) += dzᵀ (units x m) · x (m x in)
    k.dw.init(matrix(units_, m, true), matrix(m, in_), matrix(units_, in_), false, accumulate(),
              scratch_, bf16);
    // dx (m x in) = dz (m x units) · K (units x in)
    k.dx.init(matrix(m, units_), matrix(units_, in_), matrix(m, in_), false, {}, scratch_, bf16);
  }
  const float* weights_grad_src(const float*, const float* dz) const override { return dz; }
  const float* weights_grad_wei(const float* x, const float*) const override { return x; }
  std::string tied_to_;
};

void add_common(Spec& s) {
  s.add("activation", Type::String)
      .def("linear")
      .choices(dnn::activation_names())
      .doc("activation applied to the output");
  s.add("alpha", Type::Float).doc(dnn::alpha_doc());
  s.add("use_bias", Type::Bool).def("true").doc("add a learned bias");
  s.add("bias_initializer", Type::String).def("zeros").doc("initializer of the bias");
}

}  // namespace

void register_dense(Registry& r) {
  Spec d("Fully connected layer over the last axis: y = activation(x · W + b).");
  d.add("units", Type::Int).required().min(1).doc("number of output units");
  add_common(d);
  d.add("kernel_initializer", Type::String).def("glorot_uniform").doc("initializer of the kernel");
  d.add("spectral_norm", Type::Bool)
      .def("false")
      .doc(
          "divide the kernel by its largest singular value (one power iteration per training "
          "step; for GAN discriminators)");
  r.add<Layer>("dense", d, [](const Params& p) { return std::make_unique<DenseLayer>(p); });

  Spec t(
      "Dense layer using the transposed kernel of another dense layer (tied autoencoders): "
      "y = activation(x · Wᵀ + b), with its own bias.");
  t.add("tied_to", Type::String)
      .required()
      .doc("the dense layer whose kernel is reused: layer or model.layer");
  add_common(t);
  r.add<Layer>("dense_transpose", t,
               [](const Params& p) { return std::make_unique<DenseTransposeLayer>(p); });
}

}  // namespace loom::core
