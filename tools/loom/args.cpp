#include <algorithm>

#include "cli.hpp"
#include "loom/error.hpp"

namespace loom::cli {

long long Args::integer(const std::string& k, long long d) const {
  if (!has(k)) return d;
  try {
    size_t pos = 0;
    long long v = std::stoll(get(k), &pos);
    if (pos != get(k).size()) throw 0;
    return v;
  } catch (...) {
    throw Error("--" + k + ": expected an integer, got '" + get(k) + "'");
  }
}

Args parse(int argc, char** argv, int first, const std::vector<std::string>& value_options,
           const std::vector<std::string>& flag_options) {
  Args a;
  auto known = [](const std::vector<std::string>& v, const std::string& k) {
    return std::find(v.begin(), v.end(), k) != v.end();
  };
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 2 && s.rfind("--", 0) == 0) {
      std::string key = s.substr(2), value;
      bool inline_value = false;
      if (auto eq = key.find('='); eq != std::string::npos && key.rfind("set", 0) != 0) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
        inline_value = true;
      }
      if (known(flag_options, key)) {
        a.flags[key] = true;
        continue;
      }
      if (key == "set" && known(value_options, "set")) {
        if (i + 1 >= argc) throw Error("--set needs KEY=VALUE");
        a.sets.push_back(argv[++i]);
        continue;
      }
      if (key.rfind("set=", 0) == 0 && known(value_options, "set")) {
        a.sets.push_back(key.substr(4));
        continue;
      }
      if (known(value_options, key)) {
        if (!inline_value) {
          if (i + 1 >= argc) throw Error("--" + key + " needs a value");
          value = argv[++i];
        }
        a.values[key] = value;
        continue;
      }
      std::vector<std::string> all = value_options;
      all.insert(all.end(), flag_options.begin(), flag_options.end());
      throw Error("unknown option --" + key + suggestion(key, all));
    }
    a.positional.push_back(s);
  }
  return a;
}

}  // namespace loom::cli
