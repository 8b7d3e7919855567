// lstm: a single-layer, unidirectional LSTM (tanh activation, sigmoid recurrent activation) on
// oneDNN's LSTM primitive (oneDNN 2.6 API).
//
// Parameters use the Keras layout, which is exactly oneDNN's plain `ldigo` / `ldgo` layout for
// one layer and one direction, with the gates in the same order (i, f, c~, o):
//   kernel           (F, 4*units)      weights_layer
//   recurrent_kernel (units, 4*units)  weights_iter
//   bias             (4*units)         bias
// Each step the weights are reordered into the layout the primitive prefers (they change every
// step) and the weight gradients are reordered back and added into Param::grad.
//
// The forward pass always runs as forward_training and keeps its workspace, so backward can
// follow. A layer object applied at several places of a graph (shared layers) recomputes the
// forward pass in backward when the workspace belongs to another call.
#include <cstring>
#include <map>

#include "dnn/dnn.hpp"
#include "loom/error.hpp"
#include "loom/layer.hpp"

namespace loom::recurrent {
namespace {

using dnn::dt;
using dnn::md;
using dnn::tag;

// A plain buffer staged in the layout a primitive wants: the buffer itself when the layouts
// agree, otherwise a reordered copy (the reorder primitive and the copy are kept).
struct Staged {
  dnnl::memory copy;
  dnnl::reorder reorder;
  dnnl::memory get(const md& want, const md& plain, const float* data, dnn::Scratchpad& sp) {
    dnnl::memory user(plain, dnn::engine(), const_cast<float*>(data));
    if (want == plain) return user;
    if (!copy) {
      copy = dnnl::memory(want, dnn::engine());
      reorder = dnn::make_reorder(plain, want, sp);
    }
    sp.run(reorder, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, copy}});
    return copy;
  }
};

// Adds the gradient held in `m` (any layout) into the plain buffer `grad`.
void add_plain(dnnl::memory m, const md& plain, float* grad, std::vector<float>& tmp,
               dnn::Scratchpad& sp) {
  size_t n = plain.get_size() / sizeof(float);
  const float* src = static_cast<const float*>(m.get_data_handle());
  if (!(m.get_desc() == plain)) {
    tmp.resize(n);
    dnnl::memory dst(plain, dnn::engine(), tmp.data());
    sp.run(dnn::make_reorder(m.get_desc(), plain, sp), {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, dst}});
    dnn::stream().wait();
    src = tmp.data();
  }
  for (size_t i = 0; i < n; ++i) grad[i] += src[i];
}

void zero(dnnl::memory& m) { std::memset(m.get_data_handle(), 0, m.get_desc().get_size()); }

class LstmLayer : public Layer {
 public:
  // Per time step, four gates of (features + units) -> units.
  double flops(const std::vector<Shape>& in, const Shape&) const override {
    double steps = double(in[0][0]), features = double(in[0].back());
    return steps * 2.0 * 4.0 * double(units_) * (features + double(units_));
  }
  explicit LstmLayer(const Params& p)
      : units_(p.i("units")),
        return_sequences_(p.b("return_sequences")),
        unit_forget_bias_(p.b("unit_forget_bias")),
        kernel_init_(p.s("kernel_initializer")),
        recurrent_init_(p.s("recurrent_initializer")),
        bias_init_(p.s("bias_initializer")) {}

  Shape infer(const std::vector<Shape>& in) override {
    if (in[0].size() != 2)
      throw Error("lstm expects a sequence input (timesteps, features), got " + to_string(in[0]));
    steps_ = in[0][0];
    features_ = in[0][1];
    if (return_sequences_) return {steps_, units_};
    return {units_};
  }

  void build(LayerBuilder& b) override {
    int64_t g = 4 * units_;
    kernel_ = b.param("kernel", {features_, g}, kernel_init_, features_, g);
    recurrent_ = b.param("recurrent_kernel", {units_, g}, recurrent_init_, units_, g);
    bias_ = b.param("bias", {g}, bias_init_, features_, g);
    if (unit_forget_bias_)
      for (int64_t u = 0; u < units_; ++u) bias_->value[units_ + u] = 1.f;
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    const Tensor& x = *in[0];
    int64_t n = x.dim(0);
    Prims& k = prims(n);
    run_forward(k, x);
    const float* h = k.dst.data();
    if (return_sequences_) {
      std::memcpy(out.data(), h, sizeof(float) * size_t(k.dst.size()));
    } else {
      for (int64_t b = 0; b < n; ++b)
        std::memcpy(out.data() + b * units_, h + (b * steps_ + steps_ - 1) * units_,
                    sizeof(float) * size_t(units_));
    }
    k.last_in = x.data();
    k.last_out = out.data();
  }

  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    const Tensor& x = *in[0];
    int64_t n = x.dim(0);
    Prims& k = prims(n);
    // The workspace must come from the forward pass that produced `out`.
    if (k.last_in != x.data() || k.last_out != out.data()) {
      run_forward(k, x);
      k.last_in = x.data();
      k.last_out = out.data();
    }
    const float* ddst = dout.data();
    if (!return_sequences_) {
      k.ddst.zero();
      for (int64_t b = 0; b < n; ++b)
        std::memcpy(k.ddst.data() + (b * steps_ + steps_ - 1) * units_, dout.data() + b * units_,
                    sizeof(float) * size_t(units_));
      ddst = k.ddst.data();
    }
    float* dsrc = din[0] ? din[0]->data() : k.dsrc.data();

    dnnl::memory wl =
        k.bwd_wl.get(k.bwd_pd.weights_layer_desc(), wl_md(), kernel_->value.data(), scratch_);
    dnnl::memory wi =
        k.bwd_wi.get(k.bwd_pd.weights_iter_desc(), wi_md(), recurrent_->value.data(), scratch_);
    dnnl::memory bias = k.bwd_b.get(k.bwd_pd.bias_desc(), bias_md(), bias_->value.data(), scratch_);
    zero(k.dwl);
    zero(k.dwi);
    zero(k.db);
    k.src.set_data_handle(const_cast<float*>(x.data()));
    k.dst_mem.set_data_handle(k.dst.data());
    k.ddst_mem.set_data_handle(const_cast<float*>(ddst));
    k.dsrc_mem.set_data_handle(dsrc);
    scratch_.run(k.bwd, {{DNNL_ARG_SRC_LAYER, k.src},
                         {DNNL_ARG_WEIGHTS_LAYER, wl},
                         {DNNL_ARG_WEIGHTS_ITER, wi},
                         {DNNL_ARG_BIAS, bias},
                         {DNNL_ARG_DST_LAYER, k.dst_mem},
                         {DNNL_ARG_DIFF_DST_LAYER, k.ddst_mem},
                         {DNNL_ARG_WORKSPACE, k.ws},
                         {DNNL_ARG_DIFF_SRC_LAYER, k.dsrc_mem},
                         {DNNL_ARG_DIFF_WEIGHTS_LAYER, k.dwl},
                         {DNNL_ARG_DIFF_WEIGHTS_ITER, k.dwi},
                         {DNNL_ARG_DIFF_BIAS, k.db}});
    dnn::stream().wait();
    if (kernel_->trainable) add_plain(k.dwl, wl_md(), kernel_->grad.data(), tmp_, scratch_);
    if (recurrent_->trainable) add_plain(k.dwi, wi_md(), recurrent_->grad.data(), tmp_, scratch_);
    if (bias_->trainable) add_plain(k.db, bias_md(), bias_->grad.data(), tmp_, scratch_);
  }

 private:
  struct Prims {
    dnnl::lstm_forward::primitive_desc fwd_pd;
    dnnl::lstm_backward::primitive_desc bwd_pd;
    dnnl::lstm_forward fwd;
    dnnl::lstm_backward bwd;
    dnnl::memory src, dst_mem, ddst_mem, dsrc_mem, ws;
    Staged fwd_wl, fwd_wi, fwd_b, bwd_wl, bwd_wi, bwd_b;  // weights in the primitives' layouts
    dnnl::memory dwl, dwi, db;                            // weight gradients
    Tensor dst, ddst, dsrc;                               // (N, T, units), (N, T, units), (N, T, F)
    const float* last_in = nullptr;
    const float* last_out = nullptr;
  };

  md wl_md() const { return md({1, 1, features_, 4, units_}, dt::f32, tag::ldigo); }
  md wi_md() const { return md({1, 1, units_, 4, units_}, dt::f32, tag::ldigo); }
  md bias_md() const { return md({1, 1, 4, units_}, dt::f32, tag::ldgo); }

  Prims& prims(int64_t n) {
    auto it = cache_.find(n);
    if (it != cache_.end()) return it->second;
    Prims& k = cache_[n];
    auto& eng = dnn::engine();
    md src({steps_, n, features_}, dt::f32, tag::ntc);
    md dst({steps_, n, units_}, dt::f32, tag::ntc);
    md wl({1, 1, features_, 4, units_}, dt::f32, tag::any);
    md wi({1, 1, units_, 4, units_}, dt::f32, tag::any);
    md bias({1, 1, 4, units_}, dt::f32, tag::any);
    md none;  // zero initial state; final state not needed
    auto dir = dnnl::rnn_direction::unidirectional_left2right;
    dnnl::lstm_forward::desc fd(dnnl::prop_kind::forward_training, dir, src, none, none, wl, wi,
                                bias, dst, none, none);
    k.fwd_pd = dnnl::lstm_forward::primitive_desc(fd, dnn::Scratchpad::attr(), eng);
    scratch_.reserve(k.fwd_pd);
    k.fwd = dnnl::lstm_forward(k.fwd_pd);
    dnnl::lstm_backward::desc bd(dnnl::prop_kind::backward, dir, src, none, none, wl, wi, bias, dst,
                                 none, none, src, none, none, wl, wi, bias, dst, none, none);
    k.bwd_pd = dnnl::lstm_backward::primitive_desc(bd, dnn::Scratchpad::attr(), eng, k.fwd_pd);
    scratch_.reserve(k.bwd_pd);
    k.bwd = dnnl::lstm_backward(k.bwd_pd);
    k.src = dnnl::memory(src, eng, nullptr);
    k.dst_mem = dnnl::memory(dst, eng, nullptr);
    k.ddst_mem = dnnl::memory(dst, eng, nullptr);
    k.dsrc_mem = dnnl::memory(src, eng, nullptr);
    k.ws = dnnl::memory(k.fwd_pd.workspace_desc(), eng);
    k.dwl = dnnl::memory(k.bwd_pd.diff_weights_layer_desc(), eng);
    k.dwi = dnnl::memory(k.bwd_pd.diff_weights_iter_desc(), eng);
    k.db = dnnl::memory(k.bwd_pd.diff_bias_desc(), eng);
    k.dst.resize({n, steps_, units_});
    k.ddst.resize({n, steps_, units_});
    k.dsrc.resize({n, steps_, features_});
    return k;
  }

  // Runs the training forward pass into k.dst, filling the workspace.
  void run_forward(Prims& k, const Tensor& x) {
    dnnl::memory wl =
        k.fwd_wl.get(k.fwd_pd.weights_layer_desc(), wl_md(), kernel_->value.data(), scratch_);
    dnnl::memory wi =
        k.fwd_wi.get(k.fwd_pd.weights_iter_desc(), wi_md(), recurrent_->value.data(), scratch_);
    dnnl::memory bias = k.fwd_b.get(k.fwd_pd.bias_desc(), bias_md(), bias_->value.data(), scratch_);
    k.src.set_data_handle(const_cast<float*>(x.data()));
    k.dst_mem.set_data_handle(k.dst.data());
    scratch_.run(k.fwd, {{DNNL_ARG_SRC_LAYER, k.src},
                         {DNNL_ARG_WEIGHTS_LAYER, wl},
                         {DNNL_ARG_WEIGHTS_ITER, wi},
                         {DNNL_ARG_BIAS, bias},
                         {DNNL_ARG_DST_LAYER, k.dst_mem},
                         {DNNL_ARG_WORKSPACE, k.ws}});
    dnn::stream().wait();
  }

  int64_t units_;
  bool return_sequences_, unit_forget_bias_;
  std::string kernel_init_, recurrent_init_, bias_init_;
  int64_t steps_ = 0, features_ = 0;
  ParamPtr kernel_, recurrent_, bias_;
  dnn::Scratchpad scratch_;
  std::map<int64_t, Prims> cache_;
  std::vector<float> tmp_;
};

}  // namespace

void register_lstm(Registry& r) {
  Spec s(
      "Long short-term memory layer over a sequence (timesteps, features), as Keras's LSTM with "
      "tanh activation and sigmoid recurrent activation; zero initial state. Parameters: kernel "
      "(features, 4·units), recurrent_kernel (units, 4·units), bias (4·units), gates in the "
      "order i, f, c, o.");
  s.add("units", Type::Int).required().min(1).doc("size of the hidden state");
  s.add("return_sequences", Type::Bool)
      .def("false")
      .doc("output the hidden state of every step (timesteps, units) instead of the last (units)");
  s.add("kernel_initializer", Type::String)
      .def("glorot_uniform")
      .doc("initializer of the input kernel");
  s.add("recurrent_initializer", Type::String)
      .def("orthogonal")
      .doc("initializer of the recurrent kernel");
  s.add("bias_initializer", Type::String).def("zeros").doc("initializer of the bias");
  s.add("unit_forget_bias", Type::Bool)
      .def("true")
      .doc("set the forget-gate bias to 1 at initialisation");
  r.add<Layer>("lstm", s, [](const Params& p) { return std::make_unique<LstmLayer>(p); });
}

}  // namespace loom::recurrent
