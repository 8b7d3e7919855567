// The probabilistic layer library: the VAE sampling layer and softmax / log_softmax.
#include "loom/plugin.hpp"

namespace loom::probabilistic {
void register_sampling(Registry& r);
void register_softmax(Registry& r);

static void register_types(Registry& r) {
  register_sampling(r);
  register_softmax(r);
}
}  // namespace loom::probabilistic

LOOM_PLUGIN("loom_layers_probabilistic", "0.1.0",
            "Reparameterised Gaussian sampling (VAE) and softmax layers",
            loom::probabilistic::register_types)
