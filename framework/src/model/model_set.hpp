// Internal: builds every model of a pipeline's `models:` section, with shape inference, layer
// creation from the registry, parameter creation and weight sharing.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "config/yaml_util.hpp"
#include "loom/model.hpp"
#include "loom/registry.hpp"

namespace loom {

class LOOM_API ModelSet {
 public:
  ModelSet(const Registry& registry, uint64_t seed, std::string file);
  // Records the declarations (a mapping name -> model entry).
  void declare(const YAML::Node& models);
  // Builds every declared model, collecting all problems.
  void build_all(Problems& problems);
  // The built model; builds it (and what it uses) on demand. Throws a located Error.
  std::shared_ptr<Model> get(const std::string& name);
  bool has(const std::string& name) const { return decls_.count(name) > 0; }
  std::vector<std::string> names() const;
  // Every parameter of every model, by qualified name.
  const std::map<std::string, ParamPtr>& params() const { return params_; }
  ParamPtr find_param(const std::string& qualified) const;
  // The most memory the parameters of every model may take (values and gradients), in bytes;
  // default: the machine's physical memory. A model past it is refused where it is declared,
  // before anything is allocated.
  void set_memory_budget(int64_t bytes) { budget_ = bytes; }

 private:
  friend class NodeBuilder;
  std::shared_ptr<Model> build(const std::string& name);

  const Registry& registry_;
  uint64_t seed_;
  std::string file_;
  std::map<std::string, YAML::Node> decls_;
  std::vector<std::string> order_;
  std::map<std::string, std::shared_ptr<Model>> built_;
  std::set<std::string> building_;
  std::map<std::string, ParamPtr> params_;
  int64_t budget_ = 0;
  int64_t param_bytes_ = 0;  // of params_, values and gradients
};

}  // namespace loom
