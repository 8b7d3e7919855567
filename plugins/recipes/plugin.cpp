// Training and inference recipes.
#include "loom/plugin.hpp"

namespace loom::recipes {
void register_autoencoder(Registry& r);
void register_predict(Registry& r);
static void register_types(Registry& r) {
  register_autoencoder(r);
  register_predict(r);
}
}  // namespace loom::recipes

LOOM_PLUGIN("loom_recipes", "0.1.0", "Autoencoder training and prediction recipes", loom::recipes::register_types)
