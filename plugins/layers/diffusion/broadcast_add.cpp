// broadcast_add: feature maps (C, ...) plus one vector (C) per sample, added to every position of
// its channel: y[c, p] = x[c, p] + v[c]. The chapter adds the encoded time step to every pixel of
// each UNet block this way (time[:, tf.newaxis, tf.newaxis, :] + Z). The two inputs may come in
// either order. Backward: dx = dy, dv[c] = sum over p of dy[c, p]. Channel-blocked maps
// (Tensor::blocked()) are read and written as they come.
#include <cstring>

#include "loom/layer.hpp"

namespace loom::diffusion {

class BroadcastAddLayer : public Layer {
 public:
  int min_inputs() const override { return 2; }
  int max_inputs() const override { return 2; }
  LayoutRole layout_role() const override { return LayoutRole::Follows; }

  Shape infer(const std::vector<Shape>& in) override {
    auto fits = [](const Shape& maps, const Shape& vec) {
      return maps.size() >= 2 && vec.size() == 1 && vec[0] == maps[0];
    };
    if (fits(in[0], in[1]))
      maps_ = 0;
    else if (fits(in[1], in[0]))
      maps_ = 1;
    else
      throw Error(
          "broadcast_add adds a vector (C) to feature maps (C, H, W) (one value per channel, "
          "added at every position); got " +
          to_string(in[0]) + " and " + to_string(in[1]));
    channels_ = in[size_t(maps_)][0];
    inner_ = numel(in[size_t(maps_)]) / channels_;
    return in[size_t(maps_)];
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    const float* x = in[size_t(maps_)]->data();
    const float* v = in[size_t(1 - maps_)]->data();
    if (out.blocked())
      add<kChannelBlock>(x, v, out.data(), out.size());
    else
      add<1>(x, v, out.data(), out.size());
  }

  void backward(const RunContext&, const std::vector<const Tensor*>&, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (Tensor* dx = din[size_t(maps_)])
      std::memcpy(dx->data(), dout.data(), size_t(dout.size()) * sizeof(float));
    if (Tensor* dv = din[size_t(1 - maps_)]) {
      if (dout.blocked())
        sum<kChannelBlock>(dout.data(), dv->data(), dout.size());
      else
        sum<1>(dout.data(), dv->data(), dout.size());
    }
  }

 private:
  // The maps as rows of inner_ pixels × B channels (B = 1 plain; kChannelBlock blocked: a
  // sample's blocks follow each other as its channels do in v), v's B values per row.
  template <int64_t B>
  void add(const float* x, const float* v, float* y, int64_t size) const {
    for (int64_t r = 0; r < size / (inner_ * B); ++r) {
      const float* vr = v + r * B;
      const float* xr = x + r * inner_ * B;
      float* yr = y + r * inner_ * B;
      for (int64_t p = 0; p < inner_; ++p)
        for (int64_t j = 0; j < B; ++j) yr[p * B + j] = xr[p * B + j] + vr[j];
    }
  }
  template <int64_t B>
  void sum(const float* dy, float* dv, int64_t size) const {
    for (int64_t r = 0; r < size / (inner_ * B); ++r) {
      const float* d = dy + r * inner_ * B;
      double s[B] = {};
      for (int64_t p = 0; p < inner_; ++p)
        for (int64_t j = 0; j < B; ++j) s[j] += d[p * B + j];
      for (int64_t j = 0; j < B; ++j) dv[r * B + j] = float(s[j]);
    }
  }

  int maps_ = 0;
  int64_t channels_ = 0, inner_ = 1;
};

void register_broadcast_add(Registry& r) {
  r.add<Layer>("broadcast_add",
               Spec("Adds a vector (C) to feature maps (C, H, W), one value per channel at every "
                    "position (e.g. an encoded time step added to every pixel). Inputs in either "
                    "order."),
               [](const Params&) { return std::make_unique<BroadcastAddLayer>(); });
}

}  // namespace loom::diffusion
