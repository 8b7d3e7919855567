// repeat_vector: (F,) -> (n, F), the bridge from a sequence encoder's last state to a decoder.
#include <cstring>

#include "loom/error.hpp"
#include "loom/layer.hpp"

namespace loom::recurrent {
namespace {

class RepeatVectorLayer : public Layer {
 public:
  explicit RepeatVectorLayer(const Params& p) : n_(p.i("n")) {}
  Shape infer(const std::vector<Shape>& in) override {
    if (in[0].size() != 1)
      throw Error("repeat_vector expects a flat input (features), got " + to_string(in[0]));
    features_ = in[0][0];
    return {n_, features_};
  }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    int64_t batch = in[0]->dim(0);
    size_t bytes = sizeof(float) * size_t(features_);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < n_; ++t)
        std::memcpy(out.data() + (b * n_ + t) * features_, in[0]->data() + b * features_, bytes);
  }
  void backward(const RunContext&, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (!din[0]) return;
    int64_t batch = in[0]->dim(0);
    for (int64_t b = 0; b < batch; ++b) {
      float* d = din[0]->data() + b * features_;
      for (int64_t f = 0; f < features_; ++f) d[f] = 0.f;
      for (int64_t t = 0; t < n_; ++t) {
        const float* g = dout.data() + (b * n_ + t) * features_;
        for (int64_t f = 0; f < features_; ++f) d[f] += g[f];
      }
    }
  }

 private:
  int64_t n_, features_ = 0;
};

}  // namespace

void register_sequence_ops(Registry& r) {
  Spec s("Repeats a flat input n times: (features) -> (n, features).");
  s.add("n", Type::Int).required().min(1).doc("number of repetitions (timesteps)");
  r.add<Layer>("repeat_vector", s,
               [](const Params& p) { return std::make_unique<RepeatVectorLayer>(p); });
}

}  // namespace loom::recurrent
