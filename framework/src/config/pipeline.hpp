// Internal: a pipeline file, parsed with locations, duplicate keys rejected, --set overrides
// applied, top-level keys checked.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "loom/export.hpp"

namespace loom {

struct LOOM_API PipelineFile {
  std::string path;  // as given
  std::string name;
  uint64_t seed = 42;
  std::string precision = "fp32";  // the training stages' default (`precision:`)
  YAML::Node root;
  std::vector<std::string> plugin_dirs;  // resolved against the pipeline's folder
};

// Throws Error (all problems, located) on syntax errors, duplicate keys, unknown top-level keys,
// malformed overrides ("key.path=value").
LOOM_API PipelineFile load_pipeline(const std::string& path,
                                    const std::vector<std::string>& overrides);

}  // namespace loom
