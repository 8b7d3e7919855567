#include "config/overrides.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "config/yaml_util.hpp"
#include "loom/error.hpp"

namespace loom {
namespace {

// One component of a key path: a mapping key, then zero or more list indices (`layers[1]`).
struct Step {
  std::string key;
  std::vector<size_t> indices;
};

std::vector<Step> parse_key(const std::string& text, const std::string& key) {
  auto bad = [&](const std::string& why) { return Error("--set " + text + ": " + why); };
  std::vector<Step> steps;
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = key.find('.', start);
    std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    Step s;
    size_t br = part.find('[');
    s.key = part.substr(0, br);
    if (s.key.empty())
      throw bad("empty key in '" + key + "' (expected key.path=value, e.g. stages.train.epochs=3)");
    while (br != std::string::npos) {
      size_t close = part.find(']', br);
      std::string digits = part.substr(br + 1, close == std::string::npos ? close : close - br - 1);
      if (close == std::string::npos || digits.empty() ||
          digits.find_first_not_of("0123456789") != std::string::npos)
        throw bad("'" + part + "': a list index is a number in brackets, e.g. layers[1]");
      if (digits.size() > 9) throw bad("'" + part + "': the list index is too large");
      s.indices.push_back(std::stoul(digits));
      br = close + 1 == part.size() ? std::string::npos : close + 1;
      if (br != std::string::npos && part[br] != '[')
        throw bad("'" + part + "': unexpected text after ']'");
    }
    steps.push_back(s);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return steps;
}

std::vector<std::string> keys_of(const YAML::Node& map) {
  std::vector<std::string> keys;
  if (map.IsMap())
    for (auto it = map.begin(); it != map.end(); ++it) keys.push_back(it->first.Scalar());
  return keys;
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

const char* what_it_is(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "a single value";
}

// Where each pipeline's overrides were parsed: lines [first, last] of the file's path, the
// override's text. One list per path, replaced at each load, so it stays as small as the
// command line.
struct Placed {
  int first, last;
  std::string text;
};
std::mutex g_placed_mutex;
std::map<std::string, std::vector<Placed>> g_placed;

}  // namespace

void apply_override(YAML::Node root, const std::string& text, int line) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set " + text + ": expected key.path=value (e.g. stages.train.epochs=3)");
  std::string key = text.substr(0, eq), value_text = text.substr(eq + 1);
  auto bad = [&](const std::string& why) { return Error("--set " + text + ": " + why); };
  std::vector<Step> steps = parse_key(text, key);
  YAML::Node value;
  try {
    value = YAML::Load(std::string(size_t(std::max(line, 0)), '\n') + value_text);
  } catch (const YAML::Exception& e) {
    throw bad("the value '" + value_text + "' is not valid YAML (" + e.msg + ")");
  }
  check_yaml_bounds(value, "--set " + key);

  // The sections whose keys are names the pipeline gives (a new key there would be a new entry).
  static const std::map<std::string, std::string> kNamedEntries{
      {"datasets", "dataset"}, {"models", "model"}, {"stages", "stage"}};
  // Nodes are kept in a chain: assigning one yaml-cpp node variable to another would overwrite
  // the first node's content instead of moving along the tree.
  std::vector<YAML::Node> chain{root};
  std::string path;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    bool last = i + 1 == steps.size();
    YAML::Node cur = chain.back();
    if (!cur.IsMap())
      throw bad("'" + path + "' is " + what_it_is(cur) + ", so it has no key '" + s.key + "'");
    const YAML::Node& view = cur;  // const access does not create the key
    bool exists = view[s.key].IsDefined();
    std::string here = join(path, s.key);
    if (!exists) {
      std::vector<std::string> siblings = keys_of(cur);
      std::string close = closest_match(s.key, siblings);
      std::string hint = close.empty() ? suggestion(s.key, siblings)
                                       : " (did you mean '" + join(path, close) + "'?)";
      auto named = i == 1 ? kNamedEntries.find(path) : kNamedEntries.end();
      if (named != kNamedEntries.end())
        throw bad("the pipeline has no " + named->second + " '" + s.key + "'" + hint);
      if (i == 0 && !last) throw bad("the pipeline has no '" + s.key + "' section" + hint);
      if (!s.indices.empty()) throw bad("'" + here + "' is not given, so it has no list elements");
      if (last) {
        cur[s.key] = value;
        return;
      }
      cur[s.key] = YAML::Node(YAML::NodeType::Map);
    } else if (last && s.indices.empty()) {
      cur[s.key] = value;
      return;
    } else if (!last && s.indices.empty() && view[s.key].IsNull()) {
      cur[s.key] = YAML::Node(YAML::NodeType::Map);
    }
    chain.push_back(cur[s.key]);
    path = here;
    for (size_t k = 0; k < s.indices.size(); ++k) {
      YAML::Node seq = chain.back();
      size_t index = s.indices[k];
      if (!seq.IsSequence())
        throw bad("'" + path + "' is " + what_it_is(seq) + ", not a list, so it has no element " +
                  std::to_string(index));
      if (index >= seq.size())
        throw bad("'" + path + "' has no element " + std::to_string(index) + " (it has " +
                  std::to_string(seq.size()) + ", numbered from 0)");
      path += '[';
      path += std::to_string(index);
      path += ']';
      if (last && k + 1 == s.indices.size()) {
        seq[index] = value;
        return;
      }
      chain.push_back(seq[index]);
    }
  }
}

void apply_overrides(YAML::Node root, const std::vector<std::string>& overrides,
                     const std::string& file, int lines) {
  // A file of over a million lines (no pipeline has that many) is not worth as many newlines
  // in front of each value: its overrides stay unlocated.
  const bool locate = !file.empty() && lines >= 0 && lines < (1 << 20);
  std::vector<Placed> placed;
  int line = locate ? lines + 1 : 0;
  for (auto& o : overrides) {
    int last = line + int(std::count(o.begin(), o.end(), '\n'));
    if (locate) placed.push_back({line, last, o});
    apply_override(root, o, locate ? line : 0);
    if (locate) line = last + 2;
  }
  if (file.empty()) return;
  std::lock_guard<std::mutex> lock(g_placed_mutex);
  if (placed.empty())
    g_placed.erase(file);
  else
    g_placed[file] = std::move(placed);
}

std::string override_at(const std::string& file, int line) {
  std::lock_guard<std::mutex> lock(g_placed_mutex);
  auto it = g_placed.find(file);
  if (it == g_placed.end()) return "";
  for (auto& p : it->second)
    if (line >= p.first && line <= p.last) return p.text;
  return "";
}

}  // namespace loom
