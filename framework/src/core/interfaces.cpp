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
