#include "config/pipeline.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "config/overrides.hpp"
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

}  // namespace

PipelineFile load_pipeline(const std::string& path, const std::vector<std::string>& overrides) {
  PipelineFile pf;
  pf.path = path;
  if (!fs::exists(path)) throw Error(path + ": pipeline file not found");
  if (fs::is_directory(path)) throw Error(path + ": is a folder, not a pipeline file");
  // Read once: parsed here, and its line count places the overrides' values below its last line.
  std::string text;
  {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in) throw Error(path + ": cannot read the file");
    text = bytes.str();
  }
  pf.root = load_yaml_text(text, path);
  Problems problems;
  if (!pf.root.IsMap())
    throw Error(location_of(pf.root, path), "",
                "a pipeline is a mapping with 'models', 'stages', ...");
  check_duplicates(pf.root, path, "", problems);
  problems.raise_if_any();
  int64_t lines = 1 + std::count(text.begin(), text.end(), '\n');
  apply_overrides(pf.root, overrides, path, int(std::min<int64_t>(lines, INT32_MAX)));

  Spec top;
  top.add("name", Type::String).doc("pipeline name (default: the file name)");
  top.add("description", Type::String).doc("what the pipeline trains");
  top.add("seed", Type::Int).def(42).min(0).doc("the one seed of the run");
  top.add("precision", Type::String)
      .def("fp32")
      .choices({"fp32", "bf16"})
      .doc(
          "arithmetic of the training stages' convolutions and matrix products (a stage's own "
          "`precision:` wins); bf16 keeps fp32 weights and needs AVX512-BF16 or AMX");
  top.add("plugins", Type::Strings).doc("plugin folders or libraries to load");
  top.add("datasets", Type::Map).doc("named datasets");
  top.add("models", Type::Map).doc("named models");
  top.add("stages", Type::Map).required().doc("named stages (the task graph)");
  top.add("loom_run", Type::Map).doc("how `loom run` was called (written into a run folder)");
  check_params(pf.root, top, path, "", {}, problems);
  problems.raise_if_any();
  // Names become folders, files and JSON values (runs/<name>, checkpoints/<stage>/, metrics):
  // letters, digits, '_', '-' and '.', not starting with '.' or '-', at most 100 characters.
  auto check_name = [&](const YAML::Node& at, const std::string& where, const std::string& n) {
    bool ok = !n.empty() && n.size() <= 100 && n[0] != '.' && n[0] != '-';
    for (char c : n)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    if (!ok)
      problems.add(
          location_of(at, path), where,
          "'" + n +
              "' cannot be a name: names are made of letters, digits, '_', '-' "
              "and '.' (not first), at most 100 characters, as they name files and folders");
  };
  if (pf.root["name"]) check_name(pf.root["name"], "name", pf.root["name"].Scalar());
  for (const char* section : {"datasets", "models", "stages"})
    if (pf.root[section] && pf.root[section].IsMap())
      for (auto it = pf.root[section].begin(); it != pf.root[section].end(); ++it)
        check_name(it->first, section, it->first.Scalar());
  problems.raise_if_any();
  Params p = make_params(pf.root, top, path, "");
  pf.name = p.given("name") ? p.s("name") : fs::path(path).stem().string();
  pf.seed = uint64_t(p.i("seed"));
  pf.precision = p.s("precision");
  if (p.given("plugins"))
    for (auto& d : p.strings("plugins")) {
      if (d.empty()) p.fail("plugins", "an empty entry would name the pipeline's own folder");
      fs::path dp(d);
      if (dp.is_relative()) dp = fs::path(path).parent_path() / dp;
      if (!fs::exists(dp))
        p.fail("plugins", "plugin folder or library '" + d + "' not found (" + dp.string() + ")");
      pf.plugin_dirs.push_back(dp.string());
    }
  return pf;
}

}  // namespace loom
