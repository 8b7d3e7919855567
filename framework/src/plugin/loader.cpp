#include <cxxabi.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>

#include "loom/error.hpp"
#include "loom/plugin.hpp"
#include "plugin/plugins.hpp"

namespace fs = std::filesystem;

namespace loom {
namespace {

struct Resident {
  std::mutex mutex;
  // Libraries stay loaded for the life of the process: objects made by a plugin must never
  // outlive its code, and the registry's factories point into it.
  std::vector<boost::dll::shared_library> libraries;
  std::vector<LoadedPlugin> info;
  std::set<std::pair<const Registry*, std::string>> loaded;  // (registry, canonical path)
  std::vector<std::pair<std::string, std::string>> skipped;  // (path, why) of plugin folders
};

Resident& resident() {
  static Resident* r = new Resident;  // never destroyed: unloading at exit would race objects
  return *r;
}

std::string clean_dl_message(const std::string& what) {
  // Boost.DLL wraps dlerror() text in its own prefix, and appends the (unrelated) errno text
  // after "): "; keep the dlerror part.
  auto p = what.find("dlerror system message: ");
  std::string s = p == std::string::npos ? what : what.substr(p + 24);
  if (p != std::string::npos) {
    auto tail = s.rfind("): ");
    if (tail != std::string::npos) s = s.substr(0, tail);
  }
  while (!s.empty() && (s.back() == ']' || s.back() == ')' || s.back() == ' ')) s.pop_back();
  // "undefined symbol: _ZNK4loom5Layer..." -> the C++ name.
  auto u = s.find("undefined symbol: ");
  if (u != std::string::npos) {
    size_t b = u + 18, e = s.find_first_of(" ,()", b);
    std::string sym = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
    int status = 0;
    char* d = abi::__cxa_demangle(sym.c_str(), nullptr, nullptr, &status);
    if (d && status == 0)
      s = s.substr(0, b) + d + " (" + sym + ")" + (e == std::string::npos ? "" : s.substr(e));
    std::free(d);
  }
  return s;
}

}  // namespace

void load_plugin(Registry& registry, const std::string& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(fs::path(path), ec);
  if (!fs::exists(path)) throw Error(path + ": plugin library not found");
  Resident& r = resident();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.loaded.count({&registry, canonical.string()})) return;

  boost::dll::shared_library lib;
  try {
    lib.load(boost::dll::fs::path(path), boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    throw Error(path + ": cannot load plugin library: " + clean_dl_message(e.what()));
  }
  if (!lib.has("loom_plugin_manifest"))
    throw Error(path + ": not a Loom plugin (it exports no loom_plugin_manifest entry point)");
  const PluginManifest* m = nullptr;
  try {
    auto& fn = lib.get_alias<ManifestFunction>("loom_plugin_manifest");
    m = fn();
  } catch (const std::exception& e) {
    throw Error(path + ": cannot read the plugin manifest: " + clean_dl_message(e.what()));
  }
  if (!m) throw Error(path + ": the plugin manifest function returned nothing");
  if (m->abi_version != kAbiVersion)
    throw Error(path + ": plugin ABI version mismatch: this Loom expects version " +
                std::to_string(kAbiVersion) + ", the library was built for version " +
                std::to_string(m->abi_version) + "; rebuild the plugin against this Loom");
  // A registration that fails leaves nothing behind: the types it added point into the library,
  // which is unloaded when `lib` goes out of scope.
  registry.set_current_library(canonical.string());
  std::string failure;
  try {
    m->register_types(registry);
  } catch (const Error& e) {
    failure = e.what();
  } catch (const std::exception& e) {
    failure = std::string("registering its types failed: ") + e.what();
  } catch (...) {
    failure = "registering its types failed (it threw something that is not an exception)";
  }
  registry.set_current_library("");
  if (!failure.empty()) {
    registry.remove_library(canonical.string());
    throw Error(path + ": " + failure);
  }
  r.loaded.insert({&registry, canonical.string()});
  r.info.push_back(LoadedPlugin{canonical.string(), m->name ? m->name : "",
                                m->version ? m->version : "",
                                m->description ? m->description : ""});
  r.libraries.push_back(std::move(lib));
}

void load_plugin_dir(Registry& registry, const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": plugin folder not found");
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".so") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  // One broken library does not stop the others: it is reported once and skipped, and a
  // pipeline that needs one of its types hears why that type is unknown (skipped_plugins()).
  for (auto& f : files) {
    try {
      load_plugin(registry, f);
    } catch (const Error& e) {
      Resident& r = resident();
      std::lock_guard<std::mutex> lock(r.mutex);
      bool known = false;
      for (auto& s : r.skipped) known |= s.first == f;
      if (known) continue;
      std::string why = e.what();
      if (why.rfind(f + ": ", 0) == 0) why = why.substr(f.size() + 2);
      r.skipped.push_back({f, why});
      std::fprintf(stderr, "warning: skipped the plugin library %s: %s\n", f.c_str(), why.c_str());
    }
  }
}

std::vector<std::pair<std::string, std::string>> skipped_plugins() {
  std::lock_guard<std::mutex> lock(resident().mutex);
  return resident().skipped;
}

static void load_entry(Registry& registry, const std::string& entry) {
  if (fs::is_directory(entry))
    load_plugin_dir(registry, entry);
  else
    load_plugin(registry, entry);
}

std::string builtin_plugin_dir() {
  fs::path exe = boost::dll::program_location().string();
  fs::path build_tree = (exe.parent_path() / ".." / "lib" / "loom" / "plugins").lexically_normal();
  fs::path installed =
      (exe.parent_path() / ".." / LOOM_INSTALL_LIBDIR / "loom" / "plugins").lexically_normal();
  return fs::is_directory(build_tree) ? build_tree.string() : installed.string();
}

void load_default_plugins(Registry& registry, const std::vector<std::string>& extra) {
  for (auto& e : extra) load_entry(registry, e);
  if (const char* env = std::getenv("LOOM_PLUGIN_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      std::string part = s.substr(start, end - start);
      if (!part.empty()) {
        if (!fs::exists(part))
          throw Error("LOOM_PLUGIN_PATH: " + part + ": no such file or folder");
        load_entry(registry, part);
      }
      start = end + 1;
    }
  }
  std::string builtin = builtin_plugin_dir();
  if (fs::is_directory(builtin)) load_plugin_dir(registry, builtin);
}

void check_received_plugins(const std::vector<std::string>& named, const std::string& file) {
  if (named.empty()) return;
  std::vector<fs::path> allowed;
  if (const char* env = std::getenv("LOOM_PLUGIN_PATH")) {
    std::string s = env;
    for (size_t start = 0; start <= s.size();) {
      size_t end = std::min(s.find(':', start), s.size());
      std::error_code ec;
      if (end > start) allowed.push_back(fs::weakly_canonical(s.substr(start, end - start), ec));
      start = end + 1;
    }
  }
  std::string refused;
  for (auto& n : named) {
    std::error_code ec;
    fs::path p = fs::weakly_canonical(n, ec);
    bool ok = false;
    for (auto& a : allowed) {
      auto rel = p.lexically_relative(a);
      ok = ok || p == a || (!rel.empty() && *rel.begin() != "..");
    }
    if (!ok) refused += (refused.empty() ? "" : ":") + n;
  }
  if (!refused.empty())
    throw Error(file +
                " names plugin libraries, which are native code from whoever wrote this run "
                "folder; Loom loads them only when you allow them: LOOM_PLUGIN_PATH=" +
                refused);
}

std::vector<LoadedPlugin> loaded_plugins() {
  std::lock_guard<std::mutex> lock(resident().mutex);
  return resident().info;
}

}  // namespace loom
