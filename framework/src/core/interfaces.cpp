// Out-of-line destructors: the vtables and type information of the plugin interfaces live in
// libloom, so plugins built with hidden visibility share them.
#include "loom/initializer.hpp"
#include "loom/layer.hpp"
#include "loom/loss.hpp"
#include "loom/optimizer.hpp"
#include "loom/source.hpp"

namespace loom {
LayerBuilder::~LayerBuilder() = default;
Layer::~Layer() = default;
ValueRange Layer::range(const std::vector<ValueRange>&) const { return {}; }
double Layer::flops(const std::vector<Shape>&, const Shape& out) const {
  return double(numel(out));
}

std::string ValueRange::str() const {
  auto end = [](double v) {
    if (std::isinf(v)) return std::string(v < 0 ? "-inf" : "inf");
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  std::string s(1, std::isinf(lo) ? '(' : '[');
  s += end(lo);
  s += ", ";
  s += end(hi);
  s += std::isinf(hi) ? ')' : ']';
  return s;
}
void Layer::build(LayerBuilder&) {}
Loss::~Loss() = default;
Optimizer::~Optimizer() = default;
Initializer::~Initializer() = default;
Source::~Source() = default;
}  // namespace loom

#include "loom/augmenter.hpp"
namespace loom {
Augmenter::~Augmenter() = default;
void Augmenter::apply_batch(Tensor&, Tensor&, Rng&) const {}
}  // namespace loom

#include "loom/recipe.hpp"
namespace loom {
Recipe::~Recipe() = default;
StageCheck::~StageCheck() = default;

Tensor as_model_input(const Tensor& batch, const Model& model, size_t input) {
  Shape want = model.input_shape(input);
  int64_t n = batch.dim(0);
  if (numel(want) * n != batch.size()) {
    Shape got(batch.shape().begin() + 1, batch.shape().end());
    throw Error("model '" + model.name() + "' takes inputs of shape " + to_string(want) +
                " but the data has samples of shape " + to_string(got));
  }
  want.insert(want.begin(), n);
  return batch.reshaped(want);
}
}  // namespace loom

#include "loom/sampler.hpp"
namespace loom {
Sampler::~Sampler() = default;
}  // namespace loom
