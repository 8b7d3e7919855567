// Loading plugin libraries into a registry: a host API (the runtime, the tools and the tests use
// it; plugins never do), so it lives beside the loader rather than in the SDK.
#pragma once
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/registry.hpp"

namespace loom {

struct LOOM_API LoadedPlugin {
  std::string path, name, version, description;
};

// Loads one library (immediate binding), checks its ABI version and calls its register
// function. Throws Error naming the file and the reason. A library already loaded is skipped.
LOOM_API void load_plugin(Registry& registry, const std::string& path);
// Loads every *.so in a folder (not recursive), in name order. A library that fails to load is
// reported on stderr and skipped, so that one broken file does not stop every command.
LOOM_API void load_plugin_dir(Registry& registry, const std::string& dir);
// The libraries load_plugin_dir skipped: (path, the reason).
LOOM_API std::vector<std::pair<std::string, std::string>> skipped_plugins();
// The default search: each of `extra` (folders or .so files, from a pipeline's `plugins:`),
// then LOOM_PLUGIN_PATH (':'-separated), then the plugin folder beside the running binary.
LOOM_API void load_default_plugins(Registry& registry, const std::vector<std::string>& extra = {});
// A pipeline received in a run folder (loom predict, sample, eval --classifier) names plugin
// libraries that are native code from whoever wrote the folder: they are not loaded from it.
// Each must already be allowed on LOOM_PLUGIN_PATH (the library, or a folder holding it); else an
// Error naming `file`, the libraries and how to allow them.
LOOM_API void check_received_plugins(const std::vector<std::string>& named,
                                     const std::string& file);
// Libraries loaded so far (kept resident for the life of the process).
LOOM_API std::vector<LoadedPlugin> loaded_plugins();
// <folder of the running executable>/../lib/loom/plugins
LOOM_API std::string builtin_plugin_dir();

}  // namespace loom
