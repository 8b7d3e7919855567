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
// `line`: the 0-based line at which the value is parsed (see apply_overrides).
LOOM_API void apply_override(YAML::Node root, const std::string& text, int line = 0);

// Applies each override in order. With `file` (the pipeline's path) and `lines` (how many lines
// it has), the values are parsed as if they stood below the file's last line, each on lines of
// its own, so that an error about a value that came from an override is located at that
// override (`--set 'stages.train.epochs=x': ...`) instead of at a line of the file:
// location_of() asks override_at().
LOOM_API void apply_overrides(YAML::Node root, const std::vector<std::string>& overrides,
                              const std::string& file = "", int lines = 0);

// The override (its whole `key=value` text) that the value at 0-based `line` of `file` came from,
// after apply_overrides(root, overrides, file, lines); empty when it came from the file.
LOOM_API std::string override_at(const std::string& file, int line);

}  // namespace loom
