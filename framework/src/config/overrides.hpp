// Internal: command-line overrides of a pipeline, `--set key.path[i].x=value`.
//
// An override replaces a value the pipeline holds, or adds a parameter to an existing entry
// (a stage, a dataset, a model, a layer, ...), where the entry's declaration validates it. It
// never creates an entry: a key that names no dataset, model or stage, or a missing section at
// the top of the file, is an error naming the closest existing key.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "loom/export.hpp"

namespace loom {

// Applies one override ("key.path=value"; the value is YAML: 3, 1e-4, [1, 2], {type: adam}).
// Throws Error, naming the override, for a malformed key, a list index out of range, a value
// that is not YAML, or a key that names nothing in the pipeline.
LOOM_API void apply_override(YAML::Node root, const std::string& text);

// Applies each override in order.
LOOM_API void apply_overrides(YAML::Node root, const std::vector<std::string>& overrides);

}  // namespace loom
