// A plugin that needs a function no library defines (as one built against another version of
// a library would): loading fails naming the library and the function, demangled.
#include "loom/plugin.hpp"

namespace loom {
void function_that_no_library_defines(int);  // declared, never defined
}

namespace {
void register_types(loom::Registry&) { loom::function_that_no_library_defines(1); }
}  // namespace

LOOM_PLUGIN("test_missing_symbol", "1.0", "Test plugin with an undefined symbol", register_types)
