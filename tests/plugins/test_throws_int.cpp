// A plugin whose register function registers one layer, then throws something that is not a
// std::exception: loading must fail with a message and leave no entry behind.
#include "loom/layer.hpp"
#include "loom/plugin.hpp"

namespace {
void register_types(loom::Registry& r) {
  r.add<loom::Layer>("half_registered", loom::Spec("Registered before the throw."),
                     [](const loom::Params&) -> std::unique_ptr<loom::Layer> { return nullptr; });
  throw 42;
}
}  // namespace

LOOM_PLUGIN("test_throws_int", "1.0", "Test plugin whose registration throws an int",
            register_types)
