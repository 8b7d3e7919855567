#include <filesystem>

#include "config/yaml_util.hpp"
#include "loom/source.hpp"

namespace fs = std::filesystem;

namespace loom {

std::string resolve_data_path(const Params& p, const std::string& key) {
  std::string given = p.s(key);
  fs::path g(given);
  std::vector<fs::path> tried;
  if (g.is_absolute()) {
    tried.push_back(g);
  } else {
    fs::path dir = fs::path(p.impl().file).parent_path();
    if (!p.impl().file.empty() && p.impl().file[0] != '<') tried.push_back(dir / g);
    tried.push_back(fs::current_path() / g);
    tried.push_back(fs::path("/usr/share/datasets") / g);
  }
  for (auto& t : tried)
    if (fs::is_regular_file(t)) return t.lexically_normal().string();
  std::string where;
  for (size_t i = 0; i < tried.size(); ++i)
    where += (i ? ", " : "") + tried[i].lexically_normal().string();
  p.fail(key, "data file '" + given + "' not found (looked in: " + where + ")");
}

}  // namespace loom
