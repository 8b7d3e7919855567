// Parameter declarations and validated parameter values.
//
// Every registered type declares its parameters once, in a Spec:
//
//   Spec spec("Fully connected layer: y = activation(x W + b).");
//   spec.add("units", Type::Int).required().min(1).doc("number of output units");
//   spec.add("activation", Type::String).def("linear").choices({"linear", "relu"}).doc("...");
//
// The framework validates a pipeline's YAML against the Spec (unknown keys, types, ranges,
// choices, required keys — each error located at file:line:col) before the factory runs, and
// `loom plugins NAME` prints the same Spec. The factory then reads values through Params.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "loom/error.hpp"
#include "loom/export.hpp"
#include "loom/kind.hpp"

namespace loom {

enum class Type { Int, Float, Bool, String, Ints, Floats, Strings, Map, Any };
LOOM_API const char* type_name(Type t);

struct LOOM_API ParamSpec {
  std::string name;
  Type type = Type::Any;
  bool is_required = false;
  std::string default_yaml;  // default value as YAML text; empty when none
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  std::vector<std::string> allowed;  // for strings: the accepted values
  std::string help;
  // The value is a registered type given as a name or {type: NAME, ...} (or a list of them),
  // validated against that type's own Spec when the pipeline is validated.
  bool is_entry = false, is_entry_list = false, is_entry_map = false;
  Kind entry_kind = Kind::Layer;
  std::vector<std::string> entry_reserved;  // extra keys the caller reads (e.g. on, weight)
  // Other names the key may be given by (Keras's learning_rate for lr); one of them at most.
  std::vector<std::string> aliases;

  ParamSpec& entry(Kind k) {
    is_entry = true;
    entry_kind = k;
    return *this;
  }
  ParamSpec& entry_list(Kind k, std::vector<std::string> reserved = {}) {
    is_entry_list = true;
    entry_kind = k;
    entry_reserved = std::move(reserved);
    return *this;
  }
  // A mapping from the names `keys` to entries of kind k, e.g. optimizers: {generator: adam,
  // discriminator: {type: rmsprop, lr: 2e-4}}; each is validated like a single entry.
  ParamSpec& entry_map(Kind k, std::vector<std::string> keys) {
    is_entry_map = true;
    entry_kind = k;
    entry_reserved = std::move(keys);
    return *this;
  }
  ParamSpec& required() {
    is_required = true;
    return *this;
  }
  ParamSpec& def(const std::string& yaml) {
    default_yaml = yaml;
    return *this;
  }
  ParamSpec& def(double v);
  ParamSpec& min(double v) {
    lo = v;
    return *this;
  }
  ParamSpec& max(double v) {
    hi = v;
    return *this;
  }
  ParamSpec& range(double a, double b) {
    lo = a;
    hi = b;
    return *this;
  }
  ParamSpec& choices(std::vector<std::string> c) {
    allowed = std::move(c);
    return *this;
  }
  ParamSpec& alias(std::string a) {
    aliases.push_back(std::move(a));
    return *this;
  }
  ParamSpec& doc(std::string d) {
    help = std::move(d);
    return *this;
  }
};

class LOOM_API Spec {
 public:
  Spec() = default;
  explicit Spec(std::string description) : description(std::move(description)) {}
  // Adds a parameter; the returned reference is valid until the next add().
  ParamSpec& add(const std::string& name, Type type);
  // The parameter called `name` or with `name` among its aliases.
  const ParamSpec* find(const std::string& name) const;

  std::string description;
  std::vector<ParamSpec> params;
  // When true, keys not declared here are accepted and left to the type (e.g. nested specs).
  bool open = false;
};

// Validated values for one Spec, read by the factory. Missing optional keys read as their
// default. fail() throws an Error located at the key (or at the whole node).
class LOOM_API Params {
 public:
  Params();
  ~Params();
  Params(const Params&);
  Params& operator=(const Params&);

  bool has(const std::string& key) const;    // given in the YAML, or has a default
  bool given(const std::string& key) const;  // given in the YAML
  int64_t i(const std::string& key) const;
  double f(const std::string& key) const;
  bool b(const std::string& key) const;
  std::string s(const std::string& key) const;
  std::vector<int64_t> ints(const std::string& key) const;
  std::vector<double> floats(const std::string& key) const;
  std::vector<std::string> strings(const std::string& key) const;
  // A nested mapping or scalar (Type::Map / Type::Any parameters), e.g. an optimizer spec.
  Params child(const std::string& key) const;
  // True when the value of `key` is a list (e.g. a parameter that takes a number or [min, max]).
  bool is_list(const std::string& key) const;
  // The elements of a list value, each as a node of its own ("transforms[2]"), e.g. a list of
  // entries for create_from(). Fails (located) when the value is not a list.
  std::vector<Params> items(const std::string& key) const;

  // For an entry given as a name or as {type: NAME, ...}: NAME.
  std::string entry_type(const std::string& key) const;

  // The dotted path of this node ("models.encoder.layers[1]") and of one of its keys.
  std::string path(const std::string& key = "") const;
  Location where(const std::string& key = "") const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  [[noreturn]] void fail(const std::string& message) const;

  struct Impl;
  explicit Params(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace loom
