// A plugin that registers a name the core layers already use.
#include "loom/layer.hpp"
#include "loom/plugin.hpp"

namespace {
void register_types(loom::Registry& r) {
  r.add<loom::Layer>("dense", loom::Spec("Clashes with the core dense layer."),
                     [](const loom::Params&) -> std::unique_ptr<loom::Layer> { return nullptr; });
}
}  // namespace

LOOM_PLUGIN("test_duplicate_dense", "1.0", "Test plugin that registers 'dense' again",
            register_types)
