// The plugin entry point. Each plugin library contains exactly one LOOM_PLUGIN(...) line:
//
//   static void register_types(loom::Registry& r) {
//     r.add<loom::Layer>("my_layer", my_layer_spec(), [](const loom::Params& p) {
//       return std::make_unique<MyLayer>(p);
//     });
//   }
//   LOOM_PLUGIN("my_plugins", "1.0", "What these types are for", register_types)
//
// The macro exports one symbol, `loom_plugin_manifest`, through Boost.DLL. The loader checks the
// manifest's ABI version against its own before calling register_types; nothing registers
// itself from a static initialiser.
#pragma once
#include <boost/dll/alias.hpp>
#include <cstdint>

#include "loom/registry.hpp"

namespace loom {

// Bumped whenever a public header changes in a way that breaks compiled plugins.
inline constexpr uint32_t kAbiVersion =
    6;  // 6: Tensor::blocked, Layer::layout_role; 5: RunContext::ranks; 4: Dataset::class_names; 3:
        // Recipe::check, ...

struct PluginManifest {
  uint32_t abi_version;
  const char* name;
  const char* version;
  const char* description;
  void (*register_types)(Registry&);
};

using ManifestFunction = const PluginManifest*();

}  // namespace loom

#define LOOM_PLUGIN_WITH_ABI(ABI, NAME, VERSION, DESCRIPTION, REGISTER_FN)               \
  namespace loom_plugin_entry {                                                          \
  const ::loom::PluginManifest* manifest() {                                             \
    static const ::loom::PluginManifest m{ABI, NAME, VERSION, DESCRIPTION, REGISTER_FN}; \
    return &m;                                                                           \
  }                                                                                      \
  }                                                                                      \
  BOOST_DLL_ALIAS(loom_plugin_entry::manifest, loom_plugin_manifest)

#define LOOM_PLUGIN(NAME, VERSION, DESCRIPTION, REGISTER_FN) \
  LOOM_PLUGIN_WITH_ABI(::loom::kAbiVersion, NAME, VERSION, DESCRIPTION, REGISTER_FN)
