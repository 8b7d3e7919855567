// Training and inference recipes.
#include "loom/plugin.hpp"

namespace loom::recipes {
void register_adversarial(Registry& r);
void register_augment(Registry& r);
void register_diffusion(Registry& r);
void register_autoencoder(Registry& r);
void register_predict(Registry& r);
void register_sample(Registry& r);
void register_supervised(Registry& r);
static void register_types(Registry& r) {
  register_adversarial(r);
  register_augment(r);
  register_diffusion(r);
  register_autoencoder(r);
  register_predict(r);
  register_sample(r);
  register_supervised(r);
}
}  // namespace loom::recipes

LOOM_PLUGIN("loom_recipes", "0.1.0",
            "Autoencoder, adversarial, diffusion, supervised and prediction recipes",
            loom::recipes::register_types)
