// A plugin built for another ABI version: the loader must refuse it before registering anything.
#include "loom/plugin.hpp"

namespace {
void register_types(loom::Registry&) {}
}  // namespace

LOOM_PLUGIN_WITH_ABI(999, "test_abi_mismatch", "1.0", "Test plugin with a foreign ABI version",
                     register_types)
