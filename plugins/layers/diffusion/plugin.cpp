// The diffusion layer library: what a denoising network needs besides convolutions: the
// sinusoidal encoding of the time step, and a per-image vector added to every pixel of feature
// maps (how a UNet takes the time step, or a class, in every block).
#include "loom/plugin.hpp"

namespace loom::diffusion {
void register_time_encoding(Registry& r);
void register_broadcast_add(Registry& r);

static void register_types(Registry& r) {
  register_time_encoding(r);
  register_broadcast_add(r);
}
}  // namespace loom::diffusion

LOOM_PLUGIN("loom_layers_diffusion", "0.1.0",
            "Sinusoidal time-step encoding and per-channel broadcast add",
            loom::diffusion::register_types)
