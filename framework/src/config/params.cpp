#include <cmath>
#include <functional>
#include <sstream>

#include "config/overrides.hpp"
#include "config/yaml_util.hpp"

namespace loom {

void Problems::raise_if_any() const {
  if (list_.empty()) return;
  std::string all;
  for (size_t i = 0; i < list_.size(); ++i) all += (i ? "\n" : "") + list_[i];
  throw Error(all);
}

Location location_of(const YAML::Node& node, const std::string& file) {
  if (!node.IsDefined() || node.Mark().is_null()) return Location{file, 0, 0};
  std::string set = override_at(file, node.Mark().line);
  if (!set.empty()) return Location{"--set '" + set + "'", 0, 0};
  return Location{file, node.Mark().line + 1, node.Mark().column + 1};
}

namespace {

// Walks the tree as a reader would (aliases expanded), counting nodes and levels.
void walk_bounded(const YAML::Node& n, int depth, int64_t& nodes, const std::string& file) {
  if (depth > kMaxYamlDepth)
    throw Error(location_of(n, file), "",
                "the YAML nests more than " + std::to_string(kMaxYamlDepth) +
                    " levels deep (an alias used inside its own anchor never ends)");
  if (++nodes > kMaxYamlNodes)
    throw Error(location_of(n, file), "",
                "the YAML expands to more than " + std::to_string(kMaxYamlNodes) +
                    " values (aliases of aliases multiply); write the values out");
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      walk_bounded(it->first, depth + 1, nodes, file);
      walk_bounded(it->second, depth + 1, nodes, file);
    }
  } else if (n.IsSequence()) {
    for (auto it = n.begin(); it != n.end(); ++it) walk_bounded(*it, depth + 1, nodes, file);
  }
}

YAML::Node parse_yaml(const std::string& file, const std::function<YAML::Node()>& parse) {
  YAML::Node root;
  try {
    root = parse();
  } catch (const YAML::DeepRecursion& e) {
    throw Error(Location{file, e.mark.line + 1, e.mark.column + 1}, "",
                "the YAML nests too deeply to read");
  } catch (const YAML::ParserException& e) {
    throw Error(Location{file, e.mark.line + 1, e.mark.column + 1}, "",
                "YAML syntax error: " + e.msg);
  } catch (const YAML::BadFile&) {
    throw Error(file + ": cannot read the file");
  }
  check_yaml_bounds(root, file);
  return root;
}

}  // namespace

void check_yaml_bounds(const YAML::Node& root, const std::string& file) {
  int64_t nodes = 0;
  walk_bounded(root, 0, nodes, file);
}

YAML::Node load_yaml_file(const std::string& path) {
  return parse_yaml(path, [&] { return YAML::LoadFile(path); });
}

YAML::Node load_yaml_text(const std::string& text, const std::string& label) {
  return parse_yaml(label, [&] { return YAML::Load(text); });
}

std::string join_path(const std::string& path, const std::string& key) {
  if (key.empty()) return path;
  return path.empty() ? key : path + "." + key;
}

std::string index_path(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string describe_node(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  return "'" + n.Scalar() + "'";
}

const char* type_name(Type t) {
  switch (t) {
    case Type::Int:
      return "int";
    case Type::Float:
      return "float";
    case Type::Bool:
      return "bool";
    case Type::String:
      return "string";
    case Type::Ints:
      return "list of int";
    case Type::Floats:
      return "list of float";
    case Type::Strings:
      return "list of string";
    case Type::Map:
      return "mapping";
    case Type::Any:
      return "any";
  }
  return "?";
}

ParamSpec& ParamSpec::def(double v) {
  std::ostringstream o;
  o.precision(10);
  o << v;
  default_yaml = o.str();
  return *this;
}

ParamSpec& Spec::add(const std::string& name, Type type) {
  params.push_back(ParamSpec{});
  params.back().name = name;
  params.back().type = type;
  return params.back();
}

const ParamSpec* Spec::find(const std::string& name) const {
  for (auto& p : params)
    if (p.name == name) return &p;
  for (auto& p : params)
    for (auto& a : p.aliases)
      if (a == name) return &p;
  return nullptr;
}

// The key under which `node` gives parameter p: its name, else the first alias given; "" if none.
static std::string given_as(const YAML::Node& node, const ParamSpec& p) {
  if (!node.IsMap()) return "";
  if (node[p.name].IsDefined()) return p.name;
  for (auto& a : p.aliases)
    if (node[a].IsDefined()) return a;
  return "";
}

bool parse_int(const YAML::Node& n, int64_t& v) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  try {
    size_t pos = 0;
    long long x = std::stoll(s, &pos, 10);
    if (pos != s.size()) {
      double d = std::stod(s, &pos);  // accept 1e3 when integral
      if (pos != s.size() || d != std::floor(d)) return false;
      x = (long long)d;
    }
    v = x;
    return true;
  } catch (...) {
    return false;
  }
}

bool parse_float(const YAML::Node& n, double& v) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  try {
    size_t pos = 0;
    v = std::stod(s, &pos);
    return pos == s.size();
  } catch (...) {
    return false;
  }
}

bool parse_bool(const YAML::Node& n, bool& v) {
  if (!n.IsScalar()) return false;
  std::string s = n.Scalar();
  if (s == "true" || s == "True" || s == "yes" || s == "on") return v = true, true;
  if (s == "false" || s == "False" || s == "no" || s == "off") return v = false, true;
  return false;
}

static std::string range_text(const ParamSpec& p) {
  std::ostringstream o;
  if (std::isfinite(p.lo) && std::isfinite(p.hi))
    o << "between " << p.lo << " and " << p.hi;
  else if (std::isfinite(p.lo))
    o << ">= " << p.lo;
  else
    o << "<= " << p.hi;
  return o.str();
}

static std::string check_number(double v, const ParamSpec& p) {
  if (v < p.lo || v > p.hi) {
    std::ostringstream o;
    o << "must be " << range_text(p) << ", got " << v;
    return o.str();
  }
  return "";
}

std::string check_value(const YAML::Node& value, const ParamSpec& p) {
  auto elements = [&](auto&& one) -> std::string {
    if (!value.IsSequence())
      return std::string("expected a ") + type_name(p.type) + ", got " + describe_node(value);
    for (size_t i = 0; i < value.size(); ++i) {
      std::string e = one(value[i]);
      if (!e.empty()) return "element " + std::to_string(i) + ": " + e;
    }
    return "";
  };
  auto one_int = [&](const YAML::Node& n) -> std::string {
    int64_t v;
    if (!parse_int(n, v)) return "expected an integer, got " + describe_node(n);
    return check_number(double(v), p);
  };
  auto one_float = [&](const YAML::Node& n) -> std::string {
    double v;
    if (!parse_float(n, v)) return "expected a number, got " + describe_node(n);
    if (!std::isfinite(v)) return "expected a finite number, got " + describe_node(n);
    return check_number(v, p);
  };
  auto one_string = [&](const YAML::Node& n) -> std::string {
    if (!n.IsScalar()) return "expected a string, got " + describe_node(n);
    if (!p.allowed.empty()) {
      for (auto& a : p.allowed)
        if (a == n.Scalar()) return "";
      return "'" + n.Scalar() + "' is not one of the accepted values" +
             suggestion(n.Scalar(), p.allowed);
    }
    return "";
  };
  switch (p.type) {
    case Type::Int:
      return one_int(value);
    case Type::Float:
      return one_float(value);
    case Type::Bool: {
      bool b;
      return parse_bool(value, b) ? "" : "expected true or false, got " + describe_node(value);
    }
    case Type::String:
      return one_string(value);
    case Type::Ints:
      return elements(one_int);
    case Type::Floats:
      return elements(one_float);
    case Type::Strings:
      return elements(one_string);
    case Type::Map:
      return value.IsMap() ? "" : "expected a mapping, got " + describe_node(value);
    case Type::Any:
      return "";
  }
  return "";
}

void check_params(const YAML::Node& node, const Spec& spec, const std::string& file,
                  const std::string& path, const std::set<std::string>& reserved,
                  Problems& problems) {
  if (!node.IsMap()) {
    problems.add(location_of(node, file), path, "expected a mapping, got " + describe_node(node));
    return;
  }
  std::vector<std::string> names;
  for (auto& p : spec.params) names.push_back(p.name);
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = it->first.Scalar();
    if (reserved.count(key)) continue;
    const ParamSpec* p = spec.find(key);
    if (!p) {
      if (!spec.open)
        // A key an override added has no place in the file; its value has (the override).
        problems.add(location_of(it->first.Mark().is_null() ? it->second : it->first, file),
                     join_path(path, key), "unknown key '" + key + "'" + suggestion(key, names));
      continue;
    }
    std::string why = check_value(it->second, *p);
    if (!why.empty()) problems.add(location_of(it->second, file), join_path(path, key), why);
  }
  for (auto& p : spec.params) {
    std::string first = given_as(node, p);
    for (auto& a : p.aliases)
      if (a != first && node[a])
        problems.add(
            location_of(node[a], file), join_path(path, a),
            "'" + a + "' is another name for '" + first + "', which is given too: keep one");
  }
  for (auto& p : spec.params)
    if (p.is_required && given_as(node, p).empty())
      problems.add(
          location_of(node, file), path,
          "missing required key '" + p.name + "' (" + type_name(p.type) + ": " + p.help + ")");
}

Params make_params(const YAML::Node& node, const Spec& spec, const std::string& file,
                   const std::string& path) {
  auto impl = std::make_shared<Params::Impl>();
  impl->node = node;
  impl->spec = spec;
  impl->file = file;
  impl->path = path;
  return Params(impl);
}

// ---- Params ----

Params::Params() : impl_(std::make_shared<Impl>()) {}
Params::~Params() = default;
Params::Params(const Params&) = default;
Params& Params::operator=(const Params&) = default;
Params::Params(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

// The key under which the node gives `key`: itself, else one of its aliases; "" if neither.
static std::string key_given(const Params::Impl& im, const std::string& key) {
  if (!im.node.IsMap()) return "";
  if (im.node[key].IsDefined()) return key;
  const ParamSpec* p = im.spec.find(key);
  return p ? given_as(im.node, *p) : "";
}

static YAML::Node lookup(const Params::Impl& im, const std::string& key, const Params& self) {
  std::string as = key_given(im, key);
  if (!as.empty()) return im.node[as];
  if (const ParamSpec* p = im.spec.find(key)) {
    if (!p->default_yaml.empty()) return YAML::Load(p->default_yaml);
  }
  self.fail("missing required key '" + key + "'");
}

bool Params::given(const std::string& key) const { return !key_given(*impl_, key).empty(); }

bool Params::has(const std::string& key) const {
  if (given(key)) return true;
  const ParamSpec* p = impl_->spec.find(key);
  return p && !p->default_yaml.empty();
}

int64_t Params::i(const std::string& key) const {
  int64_t v;
  if (!parse_int(lookup(*impl_, key, *this), v)) fail(key, "expected an integer");
  return v;
}
double Params::f(const std::string& key) const {
  double v;
  if (!parse_float(lookup(*impl_, key, *this), v)) fail(key, "expected a number");
  return v;
}
bool Params::b(const std::string& key) const {
  bool v;
  if (!parse_bool(lookup(*impl_, key, *this), v)) fail(key, "expected true or false");
  return v;
}
std::string Params::s(const std::string& key) const {
  YAML::Node n = lookup(*impl_, key, *this);
  if (!n.IsScalar()) fail(key, "expected a string");
  return n.Scalar();
}
std::vector<int64_t> Params::ints(const std::string& key) const {
  YAML::Node n = lookup(*impl_, key, *this);
  std::vector<int64_t> out;
  if (!n.IsSequence()) fail(key, "expected a list of integers");
  for (auto e : n) {
    int64_t v;
    if (!parse_int(e, v)) fail(key, "expected a list of integers");
    out.push_back(v);
  }
  return out;
}
std::vector<double> Params::floats(const std::string& key) const {
  YAML::Node n = lookup(*impl_, key, *this);
  std::vector<double> out;
  if (!n.IsSequence()) fail(key, "expected a list of numbers");
  for (auto e : n) {
    double v;
    if (!parse_float(e, v)) fail(key, "expected a list of numbers");
    out.push_back(v);
  }
  return out;
}
std::vector<std::string> Params::strings(const std::string& key) const {
  YAML::Node n = lookup(*impl_, key, *this);
  std::vector<std::string> out;
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence()) fail(key, "expected a list of strings");
  for (auto e : n) out.push_back(e.Scalar());
  return out;
}
Params Params::child(const std::string& key) const {
  auto impl = std::make_shared<Impl>();
  impl->node = lookup(*impl_, key, *this);
  impl->file = impl_->file;
  impl->path = join_path(impl_->path, key);
  impl->spec.open = true;
  return Params(impl);
}

std::string Params::entry_type(const std::string& key) const {
  YAML::Node n = lookup(*impl_, key, *this);
  if (n.IsScalar()) return n.Scalar();
  if (n.IsMap() && n["type"]) return n["type"].Scalar();
  fail(key, "expected a name or a mapping with a 'type'");
}

bool Params::is_list(const std::string& key) const {
  return lookup(*impl_, key, *this).IsSequence();
}
std::vector<Params> Params::items(const std::string& key) const {
  YAML::Node n = lookup(*impl_, key, *this);
  if (!n.IsSequence()) fail(key, "expected a list, got " + describe_node(n));
  std::vector<Params> out;
  std::string base = join_path(impl_->path, key);
  for (size_t i = 0; i < n.size(); ++i) {
    auto impl = std::make_shared<Impl>();
    impl->node = n[i];
    impl->file = impl_->file;
    impl->path = index_path(base, i);
    impl->spec.open = true;
    out.push_back(Params(impl));
  }
  return out;
}

std::string Params::path(const std::string& key) const { return join_path(impl_->path, key); }

Location Params::where(const std::string& key) const {
  std::string as = key.empty() ? "" : key_given(*impl_, key);
  if (!as.empty()) return location_of(impl_->node[as], impl_->file);
  return location_of(impl_->node, impl_->file);
}

void Params::fail(const std::string& key, const std::string& message) const {
  throw Error(where(key), path(key), message);
}
void Params::fail(const std::string& message) const { throw Error(where(), path(), message); }

}  // namespace loom
