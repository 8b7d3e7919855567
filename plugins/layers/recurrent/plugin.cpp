// The recurrent layer library: lstm, repeat_vector, and the orthogonal initializer used for
// recurrent kernels.
#include "loom/plugin.hpp"

namespace loom::recurrent {
void register_lstm(Registry& r);
void register_sequence_ops(Registry& r);
void register_orthogonal(Registry& r);

static void register_types(Registry& r) {
  register_lstm(r);
  register_sequence_ops(r);
  register_orthogonal(r);
}
}  // namespace loom::recurrent

LOOM_PLUGIN("loom_layers_recurrent", "0.1.0", "LSTM and sequence layers, orthogonal initializer",
            loom::recurrent::register_types)
