// max_pool2d, avg_pool2d and global_avg_pool2d on oneDNN pooling primitives, over (C, H, W)
// samples in plain NCHW. No parameters.
//
// Keras semantics: strides default to pool_size; 'same' padding is TensorFlow's; padded cells
// never win a max and are excluded from averages. Max pooling keeps the oneDNN workspace (the
// argmax) of the last forward per batch size; backward recomputes it when called for an input
// buffer other than the last one forwarded (a layer used twice in a graph).
//
// With a multiple of 8 channels the primitives run in oneDNN's blocked layout nChw8c, reordered
// from and to the plain tensors at the layer's edges: on plain NCHW oneDNN 2.6 has only a scalar
// pooling implementation on AVX2 (measured: 2x2 max pooling of 32 x 16 x 28 x 28 took 2.3 ms,
// 18% of a conv_ae training step), while its vectorised kernels need channels in blocks.
#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "common.hpp"
#include "loom/layer.hpp"

namespace loom::conv {
namespace {

class PoolLayer : public Layer {
 public:
  ValueRange range(const std::vector<ValueRange>& in) const override { return in[0]; }
  PoolLayer(dnnl::algorithm alg, bool global) : alg_(alg), global_(global) {}
  PoolLayer(dnnl::algorithm alg, const Params& p) : alg_(alg), same_(p.s("padding") == "same") {
    std::tie(kh_, kw_) = pair_param(p, "pool_size");
    if (p.given("strides"))
      std::tie(sh_, sw_) = pair_param(p, "strides");
    else
      sh_ = kh_, sw_ = kw_;
  }

  // Blocked maps pool as they come (the output in the same layout); a global pool's output is a
  // plain vector whatever its input.
  LayoutRole layout_role() const override {
    return global_ ? LayoutRole::Any : LayoutRole::Follows;
  }

  Shape infer(const std::vector<Shape>& in) override {
    expect_chw(in);
    c_ = in[0][0];
    ih_ = in[0][1];
    iw_ = in[0][2];
    if (global_) {
      kh_ = ih_, kw_ = iw_, sh_ = sw_ = 1;
      oh_ = ow_ = 1;
      return {c_};
    }
    Axis h = conv_axis(ih_, kh_, sh_, same_), w = conv_axis(iw_, kw_, sw_, same_);
    if (h.out <= 0 || w.out <= 0)
      throw Error("input " + to_string(in[0]) + " is smaller than the pool size");
    oh_ = h.out, ow_ = w.out;
    pad_l_ = {h.before, w.before};
    pad_r_ = {h.after, w.after};
    return {c_, oh_, ow_};
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    Prims& k = prims(in[0]->dim(0), in[0]->blocked());
    run_forward(k, in[0]->data(), out.data());
  }

  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    Prims& k = prims(in[0]->dim(0), in[0]->blocked());
    if (k.ws && k.last_in != in[0]->data()) {
      k.scratch.resize(dout.shape());
      run_forward(k, in[0]->data(), k.scratch.data());
    }
    dnn::Args args{{DNNL_ARG_DIFF_DST, k.diff_dst(dout.data())},
                   {DNNL_ARG_DIFF_SRC, k.diff_src.mem(din[0]->data())}};
    if (k.ws) args[DNNL_ARG_WORKSPACE] = k.workspace;
    scratch_.run(k.bwd, std::move(args));
    k.diff_src.finish();
  }

 private:
  struct Prims {
    dnnl::pooling_forward fwd;
    dnnl::pooling_backward bwd;
    dnn::InPort src, diff_dst;
    dnn::OutPort dst, diff_src;
    dnnl::memory workspace;
    bool ws = false;
    const float* last_in = nullptr;
    Tensor scratch;
  };

  void run_forward(Prims& k, const float* x, float* y) {
    dnn::Args args{{DNNL_ARG_SRC, k.src(x)}, {DNNL_ARG_DST, k.dst.mem(y)}};
    if (k.ws) args[DNNL_ARG_WORKSPACE] = k.workspace;
    scratch_.run(k.fwd, std::move(args));
    k.dst.finish();
    k.last_in = x;
  }

  Prims& prims(int64_t n, bool blocked) {
    auto& p = cache_[2 * n + int(blocked)];
    if (p) return *p;
    p = std::make_unique<Prims>();
    auto& eng = dnn::engine();
    md src = dnn::map4(n, c_, ih_, iw_, blocked),
       dst = dnn::map4(n, c_, oh_, ow_, blocked && !global_);
    md in = src, out = dst;
    if (blocked) {
      if (global_) out = md({n, c_, oh_, ow_}, dnn::dt::f32, dnn::tag::nChw16c);
    } else if (c_ % 8 == 0) {
      in = md({n, c_, ih_, iw_}, dnn::dt::f32, dnn::tag::nChw8c);
      out = md({n, c_, oh_, ow_}, dnn::dt::f32, dnn::tag::nChw8c);
    }
    dims strides{sh_, sw_}, kernel{kh_, kw_};
    dnnl::pooling_forward::primitive_desc fpd(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, alg_, in, out, strides,
                                    kernel, pad_l_, pad_r_),
        dnn::Scratchpad::attr(), eng);
    dnnl::pooling_backward::primitive_desc bpd(
        dnnl::pooling_backward::desc(alg_, in, out, strides, kernel, pad_l_, pad_r_),
        dnn::Scratchpad::attr(), eng, fpd);
    scratch_.reserve(fpd);
    scratch_.reserve(bpd);
    p->fwd = dnnl::pooling_forward(fpd);
    p->bwd = dnnl::pooling_backward(bpd);
    p->src.init(src, fpd.src_desc(), scratch_);
    p->dst.init(dst, fpd.dst_desc(), scratch_);
    p->diff_dst.init(dst, bpd.diff_dst_desc(), scratch_);
    p->diff_src.init(src, bpd.diff_src_desc(), scratch_);
    p->ws = fpd.workspace_desc().get_size() > 0;
    if (p->ws) p->workspace = dnnl::memory(fpd.workspace_desc(), eng);
    return *p;
  }

  dnnl::algorithm alg_;
  bool global_ = false, same_ = false;
  int64_t kh_ = 1, kw_ = 1, sh_ = 1, sw_ = 1;
  int64_t c_ = 0, ih_ = 0, iw_ = 0, oh_ = 0, ow_ = 0;
  dims pad_l_{0, 0}, pad_r_{0, 0};
  dnn::Scratchpad scratch_;
  std::map<int64_t, std::unique_ptr<Prims>> cache_;  // by 2·batch + blocked
};

Spec pool_spec(const std::string& doc) {
  Spec s(doc);
  s.add("pool_size", Type::Ints).def("[2]").doc("[p] or [ph, pw]");
  s.add("strides", Type::Ints).doc("[s] or [sh, sw]; default: pool_size");
  s.add("padding", Type::String)
      .def("valid")
      .choices({"valid", "same"})
      .doc("valid (no padding) or same (TensorFlow 'same')");
  return s;
}

}  // namespace

void register_pooling(Registry& r) {
  r.add<Layer>(
      "max_pool2d", pool_spec("2-D max pooling over (C, H, W) inputs."),
      [](const Params& p) { return std::make_unique<PoolLayer>(dnnl::algorithm::pooling_max, p); });
  r.add<Layer>(
      "avg_pool2d",
      pool_spec("2-D average pooling over (C, H, W) inputs; padded cells are not counted."),
      [](const Params& p) {
        return std::make_unique<PoolLayer>(dnnl::algorithm::pooling_avg_exclude_padding, p);
      });
  r.add<Layer>("global_avg_pool2d", Spec("Mean over the spatial axes: (C, H, W) -> (C,)."),
               [](const Params&) {
                 return std::make_unique<PoolLayer>(dnnl::algorithm::pooling_avg_exclude_padding,
                                                    true);
               });
}

}  // namespace loom::conv
