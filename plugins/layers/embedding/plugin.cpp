// The embedding layer library: class labels (or any integer index) to learned vectors, the way a
// conditional GAN or diffusion model takes the class it is asked for.
#include "loom/plugin.hpp"

namespace loom::embedding {
void register_embedding(Registry& r);
}  // namespace loom::embedding

LOOM_PLUGIN("loom_layers_embedding", "0.1.0", "Embedding: integer indices to learned vectors",
            loom::embedding::register_embedding)
