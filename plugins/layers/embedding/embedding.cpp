// embedding: y[..., :] = W[index, :] for each integer index of the input (stored as floats, as
// labels are in a batch). Input (L) gives (L, D); the common label input (1) gives (D), ready to
// concatenate with codings or to reshape into an image channel. Backward adds each row of the
// output gradient into the kernel row it came from; indices have no gradient.
#include <cmath>

#include "loom/layer.hpp"

namespace loom::embedding {

class EmbeddingLayer : public Layer {
 public:
  explicit EmbeddingLayer(const Params& p)
      : input_dim_(p.i("input_dim")), output_dim_(p.i("output_dim")), init_(p.s("initializer")) {}

  Shape infer(const std::vector<Shape>& in) override {
    const Shape& s = in[0];
    if (s.size() != 1)
      throw Error("embedding takes a vector of indices, shape (L) or (1), got " + to_string(s));
    length_ = s[0];
    return s[0] == 1 ? Shape{output_dim_} : Shape{s[0], output_dim_};
  }

  void build(LayerBuilder& b) override {
    kernel_ = b.param("embeddings", {input_dim_, output_dim_}, init_, input_dim_, output_dim_);
  }

  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    const Tensor& x = *in[0];
    const float* w = kernel_->value.data();
    for (int64_t i = 0; i < x.size(); ++i) {
      int64_t k = index(x[i]);
      std::copy(w + k * output_dim_, w + (k + 1) * output_dim_, out.data() + i * output_dim_);
    }
  }

  void backward(const RunContext& ctx, const std::vector<const Tensor*>& in, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    const Tensor& x = *in[0];
    if (din[0]) din[0]->zero();  // indices are not differentiable
    if (ctx.frozen || !kernel_->trainable) return;
    float* g = kernel_->grad.data();
    for (int64_t i = 0; i < x.size(); ++i) {
      int64_t k = index(x[i]);
      const float* d = dout.data() + i * output_dim_;
      for (int64_t j = 0; j < output_dim_; ++j) g[k * output_dim_ + j] += d[j];
    }
  }

 private:
  int64_t index(float v) const {
    if (!(v >= 0) || v >= float(input_dim_) || v != std::floor(v))
      throw Error("layer '" + name() + "': index " + std::to_string(v) +
                  " is not an integer in [0, " + std::to_string(input_dim_) +
                  ") (input_dim: the number of classes)");
    return int64_t(v);
  }
  int64_t input_dim_, output_dim_, length_ = 1;
  std::string init_;
  ParamPtr kernel_;
};

void register_embedding(Registry& r) {
  Spec s(
      "Learned vectors for integer indices (class labels): input (1) -> (output_dim), input (L) "
      "-> (L, output_dim). Indices outside [0, input_dim) are an error.");
  s.add("input_dim", Type::Int).required().min(1).doc("number of indices (e.g. classes)");
  s.add("output_dim", Type::Int).required().min(1).doc("size of each vector");
  s.add("initializer", Type::String).def("glorot_uniform").doc("initializer of the table");
  r.add<Layer>("embedding", s, [](const Params& p) { return std::make_unique<EmbeddingLayer>(p); });
}

}  // namespace loom::embedding
