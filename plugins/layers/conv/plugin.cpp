// The convolutional layer library: convolutions, pooling, batch normalisation, resizing.
#include "loom/plugin.hpp"

namespace loom::conv {
void register_conv(Registry& r);
void register_pooling(Registry& r);
void register_batch_norm(Registry& r);
void register_resize(Registry& r);

static void register_types(Registry& r) {
  register_conv(r);
  register_pooling(r);
  register_batch_norm(r);
  register_resize(r);
}
}  // namespace loom::conv

LOOM_PLUGIN("loom_layers_conv", "0.1.0",
            "Convolution, pooling, batch normalisation and resizing layers (channels first)",
            loom::conv::register_types)
