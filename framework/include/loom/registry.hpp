// The registry of named types. Plugins register factories into it from their manifest's
// register function; the framework creates objects by kind and name.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/kind.hpp"
#include "loom/params.hpp"

namespace loom {

struct LOOM_API TypeInfo {
  Kind kind;
  std::string name;
  Spec spec;
  std::string library;                       // path of the library that registered it
  std::function<void*(const Params&)> make;  // returns a new object of the kind's base type
};

class LOOM_API Registry {
 public:
  Registry();
  ~Registry();
  // Registers `name` for kind Base::kind. The factory receives validated Params.
  template <class Base, class Factory>
  void add(const std::string& name, Spec spec, Factory factory) {
    add_erased(Base::kind, name, std::move(spec), [factory](const Params& p) -> void* {
      std::unique_ptr<Base> obj = factory(p);
      return static_cast<void*>(obj.release());
    });
  }
  template <class Base>
  std::unique_ptr<Base> create(const std::string& name, const Params& params) const {
    return std::unique_ptr<Base>(static_cast<Base*>(get(Base::kind, name).make(params)));
  }

  const TypeInfo* find(Kind kind, const std::string& name) const;
  const TypeInfo& get(Kind kind, const std::string& name) const;  // throws Error if unknown
  std::vector<std::string> names(Kind kind) const;
  // "unknown layer 'x' (did you mean 'y'?)", and the plugin libraries skipped as broken.
  std::string unknown_message(Kind kind, const std::string& name) const;
  std::vector<const TypeInfo*> all() const;

  // Set by the loader while a library's register function runs.
  void set_current_library(const std::string& path) { current_library_ = path; }
  // Forgets every type the library at `path` registered (its registration failed).
  void remove_library(const std::string& path);

 private:
  void add_erased(Kind kind, const std::string& name, Spec spec,
                  std::function<void*(const Params&)> make);
  std::map<std::pair<Kind, std::string>, TypeInfo> types_;
  std::string current_library_;
};

}  // namespace loom
