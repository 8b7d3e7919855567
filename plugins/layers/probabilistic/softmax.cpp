// softmax and log_softmax over the last axis, on oneDNN's softmax / logsoftmax primitives
// (oneDNN 2.6 API). Any leading axes (batch, timesteps) are flattened into rows.
#include <map>

#include "dnn/dnn.hpp"
#include "loom/error.hpp"
#include "loom/layer.hpp"

namespace loom::probabilistic {
namespace {

using dnn::dt;
using dnn::md;
using dnn::tag;

template <class Fwd, class Bwd>
class SoftmaxBase : public Layer {
 public:
  ValueRange range(const std::vector<ValueRange>&) const override { return {0, 1}; }
  Shape infer(const std::vector<Shape>& in) override {
    classes_ = in[0].back();
    return in[0];
  }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    Prims& k = prims(in[0]->size() / classes_);
    k.x.set_data_handle(const_cast<float*>(in[0]->data()));
    k.y.set_data_handle(out.data());
    scratch_.run(k.fwd, {{DNNL_ARG_SRC, k.x}, {DNNL_ARG_DST, k.y}});
  }
  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    Prims& k = prims(in[0]->size() / classes_);
    k.y.set_data_handle(const_cast<float*>(out.data()));
    k.dy.set_data_handle(const_cast<float*>(dout.data()));
    k.dx.set_data_handle(din[0]->data());
    scratch_.run(k.bwd,
                 {{DNNL_ARG_DST, k.y}, {DNNL_ARG_DIFF_DST, k.dy}, {DNNL_ARG_DIFF_SRC, k.dx}});
  }

 private:
  struct Prims {
    Fwd fwd;
    Bwd bwd;
    dnnl::memory x, y, dy, dx;
  };
  Prims& prims(int64_t rows) {
    auto it = cache_.find(rows);
    if (it != cache_.end()) return it->second;
    Prims& k = cache_[rows];
    auto& eng = dnn::engine();
    md m({rows, classes_}, dt::f32, tag::ab);
    typename Fwd::primitive_desc fpd(typename Fwd::desc(dnnl::prop_kind::forward_training, m, 1),
                                     dnn::Scratchpad::attr(), eng);
    typename Bwd::primitive_desc bpd(typename Bwd::desc(m, m, 1), dnn::Scratchpad::attr(), eng,
                                     fpd);
    scratch_.reserve(fpd);
    scratch_.reserve(bpd);
    k.fwd = Fwd(fpd);
    k.bwd = Bwd(bpd);
    k.x = dnnl::memory(m, eng, nullptr);
    k.y = dnnl::memory(m, eng, nullptr);
    k.dy = dnnl::memory(m, eng, nullptr);
    k.dx = dnnl::memory(m, eng, nullptr);
    return k;
  }
  int64_t classes_ = 0;
  dnn::Scratchpad scratch_;
  std::map<int64_t, Prims> cache_;
};

using SoftmaxLayer = SoftmaxBase<dnnl::softmax_forward, dnnl::softmax_backward>;
using LogSoftmaxLayer = SoftmaxBase<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>;

}  // namespace

void register_softmax(Registry& r) {
  r.add<Layer>("softmax", Spec("Softmax over the last axis: y = exp(x) / Σ exp(x)."),
               [](const Params&) { return std::make_unique<SoftmaxLayer>(); });
  r.add<Layer>("log_softmax",
               Spec("Log-softmax over the last axis: y = x - log Σ exp(x) (numerically stable)."),
               [](const Params&) { return std::make_unique<LogSoftmaxLayer>(); });
}

}  // namespace loom::probabilistic
