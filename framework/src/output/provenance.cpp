#include "output/provenance.hpp"

#include <omp.h>

#include <filesystem>
#include <fstream>

#include "config/yaml_util.hpp"
#include "core/sha256.hpp"
#include "loom/io.hpp"
#include "stage/run_folder.hpp"

namespace fs = std::filesystem;

namespace loom {
namespace {

YAML::Node resolve(const YAML::Node& given, const Spec& spec, const Registry& registry);

// One nested entry: a name or {type: NAME, ...}.
YAML::Node resolve_entry(const YAML::Node& e, Kind kind, const Registry& registry) {
  if (!(e.IsScalar() || (e.IsMap() && e["type"]))) return YAML::Clone(e);
  std::string type = e.IsScalar() ? e.Scalar() : e["type"].Scalar();
  const TypeInfo* t = registry.find(kind, type);
  if (!t) return YAML::Clone(e);
  YAML::Node out(YAML::NodeType::Map);
  out["type"] = type;
  YAML::Node rest = resolve(e.IsMap() ? e : YAML::Node(YAML::NodeType::Map), t->spec, registry);
  for (auto it = rest.begin(); it != rest.end(); ++it)
    if (it->first.Scalar() != "type") out[it->first.Scalar()] = it->second;
  return out;
}

YAML::Node resolve(const YAML::Node& given, const Spec& spec, const Registry& registry) {
  YAML::Node out = given.IsMap() ? YAML::Clone(given) : YAML::Node(YAML::NodeType::Map);
  for (const ParamSpec& ps : spec.params) {
    const YAML::Node& view = out;
    YAML::Node v;
    if (view[ps.name] && !view[ps.name].IsNull())
      v = view[ps.name];
    else if (!ps.default_yaml.empty())
      v = YAML::Load(ps.default_yaml);
    else
      continue;
    if (ps.is_entry) {
      v = resolve_entry(v, ps.entry_kind, registry);
    } else if (ps.is_entry_list && v.IsSequence()) {
      YAML::Node list(YAML::NodeType::Sequence);
      for (size_t i = 0; i < v.size(); ++i)
        list.push_back(resolve_entry(v[i], ps.entry_kind, registry));
      v = list;
    } else if (ps.is_entry_map && v.IsMap()) {
      YAML::Node map(YAML::NodeType::Map);
      for (auto it = v.begin(); it != v.end(); ++it)
        map[it->first.Scalar()] = resolve_entry(it->second, ps.entry_kind, registry);
      v = map;
    }
    out[ps.name] = v;
  }
  return out;
}

std::string file_hash_or_empty(const std::string& path) {
  return fs::is_regular_file(path) ? sha256_file(path) : std::string();
}

}  // namespace

YAML::Node resolved_entry(const YAML::Node& entry, Kind kind, const Registry& registry) {
  return resolve_entry(entry, kind, registry);
}

YAML::Node resolved_entry(const Params& p, const Registry& registry) {
  return resolve(p.impl().node, p.impl().spec, registry);
}

nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json o = nlohmann::json::object();
    for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = yaml_to_json(it->second);
    return o;
  }
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (size_t i = 0; i < n.size(); ++i) a.push_back(yaml_to_json(n[i]));
    return a;
  }
  if (!n.IsScalar()) return nullptr;
  // Scalars keep their text: the entry is read back through the same YAML parameter checks, so
  // "1e-4" and "0.0001" need not be told apart here.
  return n.Scalar();
}

YAML::Node json_to_yaml(const nlohmann::json& j) {
  if (j.is_object()) {
    YAML::Node m(YAML::NodeType::Map);
    for (auto& [k, v] : j.items()) m[k] = json_to_yaml(v);
    return m;
  }
  if (j.is_array()) {
    YAML::Node s(YAML::NodeType::Sequence);
    for (auto& v : j) s.push_back(json_to_yaml(v));
    return s;
  }
  if (j.is_string()) return YAML::Node(j.get<std::string>());
  if (j.is_null()) return YAML::Node();
  return YAML::Node(j.dump());
}

std::string manifest_path(const std::string& dataset) {
  std::string d = dataset;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d + ".manifest.json";
}

std::string weights_sha256(const Model& m) {
  Sha256 h;
  for (auto& p : m.params()) {
    h.update(p->name);
    h.update("\0", 1);
    for (int64_t d : p->value.shape()) h.update(&d, sizeof d);
    h.update(p->value.data(), size_t(p->value.size()) * sizeof(float));
  }
  return h.hex();
}

void write_manifest(const Manifest& m) {
  std::string out = manifest_path(m.dataset);
  nlohmann::json j;
  j["manifest"] = kManifestFormat;
  j["loom_version"] = loom_version();
  // Named relative to the manifest, which sits beside it: the two can move together.
  std::string ds = out.substr(0, out.size() - std::string(".manifest.json").size());
  j["dataset"] = fs::path(ds).filename().string();
  j["dataset_path"] = fs::absolute(ds).lexically_normal().string();
  j["dataset_sha256"] = file_hash_or_empty(ds);
  j["count"] = m.count;
  j["written_by"] = m.written_by;
  if (!m.run_dir.empty()) j["run"] = fs::absolute(m.run_dir).lexically_normal().string();
  if (!m.pipeline.empty()) {
    j["pipeline"] = fs::absolute(m.pipeline).lexically_normal().string();
    j["pipeline_sha256"] = file_hash_or_empty(m.pipeline);
  }
  if (!m.checkpoint.empty()) j["checkpoint"] = m.checkpoint;
  nlohmann::json w = nlohmann::json::object();
  for (auto& [model, hash] : m.weights) w[model] = hash;
  if (!m.weights.empty()) j["weights_sha256"] = w;
  j["recipe"] = m.recipe;
  j["entry"] = yaml_to_json(m.entry);
  if (m.parameters.IsDefined() && !m.parameters.IsNull())
    j["parameters"] = yaml_to_json(m.parameters);
  j["seed"] = m.seed;
  j["threads"] = m.threads > 0 ? m.threads : omp_get_max_threads();
  j["random_streams"] = m.random_streams;
  for (auto& [k, v] : m.extra.items()) j[k] = v;
  j["regenerate"] = "loom regenerate " + fs::path(out).filename().string() + " --index I";
  std::string text = j.dump(2) + "\n";
  write_atomically(out, [&](const std::string& tmp) {
    std::ofstream o(tmp, std::ios::binary);
    o << text;
    if (!o.flush()) throw Error(write_failed(out));
  });
}

}  // namespace loom
