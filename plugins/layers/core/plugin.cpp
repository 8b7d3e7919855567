// The core layer library: dense layers, activations, shape operations, regularisation layers.
#include "loom/plugin.hpp"

namespace loom::core {
void register_activations(Registry& r);
void register_dense(Registry& r);
void register_shape_ops(Registry& r);
void register_regularization(Registry& r);

static void register_types(Registry& r) {
  register_dense(r);
  register_activations(r);
  register_shape_ops(r);
  register_regularization(r);
}
}  // namespace loom::core

LOOM_PLUGIN("loom_layers_core", "0.1.0", "Dense, activation, shape and regularisation layers",
            loom::core::register_types)
