// A test plugin for data-parallel runs: the layer `rank_fault` passes its input through, and on
// rank `rank` of several (RunContext::ranks) from training step `at_step` on it fails as asked:
// `how: throw` raises an error, `how: kill` kills its process (SIGKILL), as a crashed node would.
// `how: misorder` adds two per-layer offsets, declared in the opposite order on that rank: a
// layer whose parameters come in a rank-dependent order, which the MPI reducer must refuse.
#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "loom/error.hpp"
#include "loom/layer.hpp"
#include "loom/plugin.hpp"
#include "loom/training.hpp"

namespace {

class RankFault : public loom::Layer {
 public:
  explicit RankFault(const loom::Params& p)
      : rank_(int(p.i("rank"))), at_step_(p.i("at_step")), how_(p.s("how")) {}
  loom::Shape infer(const std::vector<loom::Shape>& in) override { return in[0]; }
  void build(loom::LayerBuilder& b) override {
    if (how_ != "misorder") return;
    const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
    bool flipped = r && std::atoi(r) == rank_;
    for (const char* name :
         flipped ? std::vector<const char*>{"b", "a"} : std::vector<const char*>{"a", "b"})
      (std::string(name) == "a" ? a_ : b_) = b.param(name, {1}, "zeros", 1, 1);
  }
  void forward(const loom::RunContext& ctx, const std::vector<const loom::Tensor*>& in,
               loom::Tensor& out) override {
    if (how_ != "misorder" && ctx.training && ctx.ranks && ctx.ranks->rank() == rank_ &&
        ctx.step >= at_step_) {
      if (how_ == "kill") ::raise(SIGKILL);
      throw loom::Error("rank_fault: failing on rank " + std::to_string(rank_) + " as asked");
    }
    float shift = a_ ? a_->value[0] + b_->value[0] : 0.f;
    for (int64_t i = 0; i < out.size(); ++i) out[i] = (*in[0])[i] + shift;
  }
  void backward(const loom::RunContext&, const std::vector<const loom::Tensor*>&,
                const loom::Tensor&, const loom::Tensor& dout,
                const std::vector<loom::Tensor*>& din) override {
    if (din[0])
      for (int64_t i = 0; i < dout.size(); ++i) (*din[0])[i] = dout[i];
    if (a_) {
      float sum = 0;
      for (int64_t i = 0; i < dout.size(); ++i) sum += dout[i];
      a_->grad[0] += sum;
      b_->grad[0] += sum;
    }
  }

 private:
  int rank_;
  int64_t at_step_;
  std::string how_;
  loom::ParamPtr a_, b_;
};

void register_types(loom::Registry& r) {
  loom::Spec s("Passes its input through; fails on one rank of a data-parallel run.");
  s.add("rank", loom::Type::Int).def(1).min(0).doc("the rank that fails");
  s.add("at_step", loom::Type::Int).def(1).min(1).doc("the training step it fails from");
  s.add("how", loom::Type::String)
      .def("throw")
      .doc("throw (an error), kill (SIGKILL), or misorder (parameters in a rank-dependent order)");
  r.add<loom::Layer>("rank_fault", s,
                     [](const loom::Params& p) { return std::make_unique<RankFault>(p); });
}

}  // namespace

LOOM_PLUGIN("test_rank_fault", "1.0", "Test plugin: the rank_fault layer", register_types)
