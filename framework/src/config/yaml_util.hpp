// Internal: yaml-cpp helpers that keep locations, and the Params implementation.
#pragma once
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "loom/error.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"

namespace loom {

// Collects located problems so that validation reports all of them, not the first one.
class LOOM_API Problems {
 public:
  // A problem found again (in a model inlined by several others) is reported once.
  void add(const std::string& message) {
    if (std::find(list_.begin(), list_.end(), message) == list_.end()) list_.push_back(message);
  }
  void add(const Location& where, const std::string& path, const std::string& message) {
    add(located(where, path, message));
  }
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  const std::vector<std::string>& list() const { return list_; }
  // Throws one Error holding every problem, one per line.
  void raise_if_any() const;

 private:
  std::vector<std::string> list_;
};

LOOM_API Location location_of(const YAML::Node& node, const std::string& file);

// YAML as Loom reads it, from a file or from text (`label` names the text in messages, e.g.
// "--set"): syntax errors located; nesting past yaml-cpp's parser guard reported as such; and the
// parsed tree bounded with its aliases expanded, because yaml-cpp shares an alias's node instead
// of copying it: an alias inside its own anchor (`a: &x [*x]`) is a cycle, and a few lines of
// nested aliases ("billion laughs") expand to billions of nodes for anything that walks the tree.
// At most kMaxYamlDepth levels and kMaxYamlNodes nodes; beyond, a located Error.
constexpr int kMaxYamlDepth = 100;
constexpr int64_t kMaxYamlNodes = 100000;  // the largest pipeline here has 769
LOOM_API YAML::Node load_yaml_file(const std::string& path);
LOOM_API YAML::Node load_yaml_text(const std::string& text, const std::string& label);
LOOM_API void check_yaml_bounds(const YAML::Node& root, const std::string& file);
std::string join_path(const std::string& path, const std::string& key);
std::string index_path(const std::string& path, size_t i);
std::string describe_node(const YAML::Node& n);  // "a mapping", "'abc'", ...

// A scalar read as Loom's parameter checks read it (an integer also as 1e3 or 5.0; booleans
// true/false/yes/no/on/off); false when it is not one. Code that reads a value the checks
// passed uses these rather than yaml-cpp's as<T>(), which accepts a different set and throws.
LOOM_API bool parse_int(const YAML::Node& n, int64_t& v);
LOOM_API bool parse_float(const YAML::Node& n, double& v);
LOOM_API bool parse_bool(const YAML::Node& n, bool& v);

struct Params::Impl {
  YAML::Node node;
  Spec spec;
  std::string file;
  std::string path;
};

LOOM_API Params make_params(const YAML::Node& node, const Spec& spec, const std::string& file,
                            const std::string& path);

// Validates the keys of `node` (a mapping) against `spec`, ignoring `reserved` keys. Problems
// are collected, each located.
LOOM_API void check_params(const YAML::Node& node, const Spec& spec, const std::string& file,
                           const std::string& path, const std::set<std::string>& reserved,
                           Problems& problems);

// The registered type named by the scalar node `name`, or an Error located at that node:
// "path: unknown KIND 'x' (did you mean 'y'?)".
LOOM_API const TypeInfo& find_type(const Registry& registry, Kind kind, const YAML::Node& name,
                                   const std::string& file, const std::string& path);

// Checks one value against one parameter declaration; returns "" or the reason.
std::string check_value(const YAML::Node& value, const ParamSpec& p);

}  // namespace loom
