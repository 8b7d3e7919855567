// Provenance of generated data: every dataset Loom writes (`loom sample`, `loom augment`, a
// pipeline's `write:`) gets a manifest beside it, PATH.manifest.json, saying how to make it
// again: the pipeline and weights it came from (with their SHA-256), the recipe entry with every
// parameter, the seed, the thread count, the Loom version and the rule that gives each sample
// its random stream. `loom regenerate MANIFEST --index I` reads it back
// (tools/loom/regenerate.cpp).
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "loom/model.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"

namespace loom {

inline constexpr const char* kManifestFormat = "loom-provenance-1";

struct Manifest {
  std::string dataset;  // the path written
  int64_t count = 0;    // samples in it
  std::string written_by;
  // How it was made: a recipe run in a run folder (run_dir, its pipeline.yaml and weights), or
  // (recipe "augment_command") `loom augment` of a file or pipeline (`extra` holds its options).
  std::string run_dir, pipeline, checkpoint, recipe;
  YAML::Node entry{YAML::NodeType::Map};       // as given: what `loom regenerate` runs again
  YAML::Node parameters{YAML::NodeType::Map};  // every parameter, defaults filled (the record)
  std::vector<std::pair<std::string, std::string>> weights;  // model -> weights_sha256
  uint64_t seed = 0;
  int threads = 0;
  std::string random_streams;
  nlohmann::json extra = nlohmann::json::object();
};

// PATH.manifest.json (a PNG folder DIR/: DIR.manifest.json).
LOOM_API std::string manifest_path(const std::string& dataset);
// Writes the manifest (atomically) with the hashes of the dataset and pipeline files.
LOOM_API void write_manifest(const Manifest& m);
// SHA-256 over a model's parameters in order (name, shape, float32 bytes), as they are now (so
// with a moving average swapped in, of the average).
LOOM_API std::string weights_sha256(const Model& m);
// A recipe's or plugin's entry with every parameter: the given values, the declared defaults,
// and nested entries (a sampler, a list of augmenters) resolved the same way against the types
// of `registry`.
LOOM_API YAML::Node resolved_entry(const Params& p, const Registry& registry);
// One entry of kind `kind` (a name or {type: NAME, ...}) with every parameter.
LOOM_API YAML::Node resolved_entry(const YAML::Node& entry, Kind kind, const Registry& registry);
LOOM_API nlohmann::json yaml_to_json(const YAML::Node& n);
LOOM_API YAML::Node json_to_yaml(const nlohmann::json& j);

}  // namespace loom
