#include "loom/registry.hpp"

#include "loom/error.hpp"
#include "plugin/plugins.hpp"

namespace loom {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Layer:
      return "layer";
    case Kind::Loss:
      return "loss";
    case Kind::Optimizer:
      return "optimizer";
    case Kind::Initializer:
      return "initializer";
    case Kind::Source:
      return "source";
    case Kind::Recipe:
      return "recipe";
    case Kind::Augmenter:
      return "augmenter";
    case Kind::Sampler:
      return "sampler";
  }
  return "?";
}

const std::vector<Kind>& all_kinds() {
  static const std::vector<Kind> k{Kind::Layer,  Kind::Loss,   Kind::Optimizer, Kind::Initializer,
                                   Kind::Source, Kind::Recipe, Kind::Augmenter, Kind::Sampler};
  return k;
}

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::add_erased(Kind kind, const std::string& name, Spec spec,
                          std::function<void*(const Params&)> make) {
  auto key = std::make_pair(kind, name);
  auto it = types_.find(key);
  if (it != types_.end())
    throw Error(std::string(kind_name(kind)) + " '" + name + "' is registered twice: by " +
                it->second.library + " and by " + current_library_);
  types_.emplace(key, TypeInfo{kind, name, std::move(spec), current_library_, std::move(make)});
}

void Registry::remove_library(const std::string& path) {
  for (auto it = types_.begin(); it != types_.end();)
    it = it->second.library == path ? types_.erase(it) : std::next(it);
}

const TypeInfo* Registry::find(Kind kind, const std::string& name) const {
  auto it = types_.find({kind, name});
  return it == types_.end() ? nullptr : &it->second;
}

const TypeInfo& Registry::get(Kind kind, const std::string& name) const {
  if (auto* t = find(kind, name)) return *t;
  throw Error(unknown_message(kind, name));
}

std::string Registry::unknown_message(Kind kind, const std::string& name) const {
  std::string why;
  for (auto& [path, reason] : skipped_plugins())
    why += "\n  (it may be in " + path + ", which was skipped: " + reason + ")";
  return "unknown " + std::string(kind_name(kind)) + " '" + name + "'" +
         suggestion(name, names(kind)) + why;
}

std::vector<std::string> Registry::names(Kind kind) const {
  std::vector<std::string> out;
  for (auto& [k, t] : types_)
    if (k.first == kind) out.push_back(k.second);
  return out;
}

std::vector<const TypeInfo*> Registry::all() const {
  std::vector<const TypeInfo*> out;
  for (auto& [k, t] : types_) out.push_back(&t);
  return out;
}

}  // namespace loom
