#include "config/pipeline.hpp"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "config/yaml_util.hpp"

namespace fs = std::filesystem;

namespace loom {
namespace {

void check_duplicates(const YAML::Node& n, const std::string& file, const std::string& path,
                      Problems& problems) {
  if (n.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.Scalar();
      auto prev = seen.find(k);
      if (prev != seen.end())
        problems.add(location_of(it->first, file), join_path(path, k),
                     "duplicate key '" + k + "' (first given at line " +
                         std::to_string(prev->second.line + 1) + ")");
      else
        seen[k] = it->first.Mark();
      check_duplicates(it->second, file, join_path(path, k), problems);
    }
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i)
      check_duplicates(n[i], file, index_path(path, i), problems);
  }
}

// key.path[2].x=value — creates maps along the way; list indices must exist.
void apply_override(YAML::Node root, const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set " + text + ": expected key.path=value");
  std::string key = text.substr(0, eq), value = text.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string part = parts[i];
    int index = -1;
    auto br = part.find('[');
    if (br != std::string::npos) {
      index = std::stoi(part.substr(br + 1));
      part = part.substr(0, br);
    }
    YAML::Node cur = chain.back();
    bool last = i + 1 == parts.size();
    YAML::Node next = cur[part];
    if (index >= 0) {
      if (!next.IsSequence() || index >= int(next.size()))
        throw Error("--set " + text + ": '" + part + "' has no element " + std::to_string(index));
      if (last) {
        next[index] = YAML::Load(value);
        return;
      }
      chain.push_back(next[index]);
      continue;
    }
    if (last) {
      cur[part] = YAML::Load(value);
      return;
    }
    if (!next.IsDefined() || next.IsNull()) cur[part] = YAML::Node(YAML::NodeType::Map);
    chain.push_back(cur[part]);
  }
}

}  // namespace

PipelineFile load_pipeline(const std::string& path, const std::vector<std::string>& overrides) {
  PipelineFile pf;
  pf.path = path;
  if (!fs::exists(path)) throw Error(path + ": pipeline file not found");
  if (fs::is_directory(path)) throw Error(path + ": is a folder, not a pipeline file");
  try {
    pf.root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw Error(Location{path, e.mark.line + 1, e.mark.column + 1}, "",
                "YAML syntax error: " + e.msg);
  } catch (const YAML::BadFile&) {
    throw Error(path + ": cannot read the pipeline file");
  }
  Problems problems;
  if (!pf.root.IsMap())
    throw Error(location_of(pf.root, path), "",
                "a pipeline is a mapping with 'models', 'stages', ...");
  check_duplicates(pf.root, path, "", problems);
  problems.raise_if_any();
  for (auto& o : overrides) apply_override(pf.root, o);

  Spec top;
  top.add("name", Type::String).doc("pipeline name (default: the file name)");
  top.add("description", Type::String).doc("what the pipeline trains");
  top.add("seed", Type::Int).def(42).min(0).doc("the one seed of the run");
  top.add("plugins", Type::Strings).doc("plugin folders or libraries to load");
  top.add("datasets", Type::Map).doc("named datasets");
  top.add("models", Type::Map).doc("named models");
  top.add("stages", Type::Map).required().doc("named stages (the task graph)");
  check_params(pf.root, top, path, "", {}, problems);
  problems.raise_if_any();
  Params p = make_params(pf.root, top, path, "");
  pf.name = p.given("name") ? p.s("name") : fs::path(path).stem().string();
  pf.seed = uint64_t(p.i("seed"));
  if (p.given("plugins"))
    for (auto& d : p.strings("plugins")) {
      fs::path dp(d);
      if (dp.is_relative()) dp = fs::path(path).parent_path() / dp;
      if (!fs::exists(dp))
        p.fail("plugins", "plugin folder or library '" + d + "' not found (" + dp.string() + ")");
      pf.plugin_dirs.push_back(dp.string());
    }
  return pf;
}

}  // namespace loom
