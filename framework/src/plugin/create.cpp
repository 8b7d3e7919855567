#include "loom/create.hpp"

#include "config/yaml_util.hpp"

namespace loom {

Registry& global_registry() {
  static Registry* r = new Registry;  // lives as long as the resident plugin libraries
  return *r;
}

const TypeInfo& find_type(const Registry& registry, Kind kind, const YAML::Node& name,
                          const std::string& file, const std::string& path) {
  std::string n = name.Scalar();
  if (const TypeInfo* t = registry.find(kind, n)) return *t;
  throw Error(location_of(name, file), path, registry.unknown_message(kind, n));
}

const TypeInfo& resolve_entry(const Registry& registry, Kind kind, const Params& entry,
                              const std::set<std::string>& reserved, Params* params) {
  const Params::Impl& im = entry.impl();
  YAML::Node node = im.node;
  std::string name;
  YAML::Node at = node;
  if (node.IsScalar()) {
    name = node.Scalar();
    node.reset(YAML::Node(YAML::NodeType::Map));
  } else if (node.IsMap() && node["type"]) {
    at.reset(node["type"]);  // rebind: `at = ...` would overwrite the entry node itself
    name = node["type"].Scalar();
  } else {
    throw Error(location_of(node, im.file), im.path,
                std::string("expected a ") + kind_name(kind) + " name or a mapping with a 'type'");
  }
  const TypeInfo* t = &find_type(registry, kind, at, im.file, im.path);
  std::set<std::string> skip = reserved;
  skip.insert("type");
  Problems problems;
  check_params(node, t->spec, im.file, im.path, skip, problems);
  problems.raise_if_any();
  *params = make_params(node, t->spec, im.file, im.path);
  return *t;
}

}  // namespace loom
