#include "model/model_set.hpp"

#include <unistd.h>

#include <cstdio>

#include "loom/initializer.hpp"

namespace loom {

namespace {

const std::set<std::string> kLayerReserved{"type", "name", "inputs", "model", "trainable"};

constexpr int64_t kMaxSampleValues = int64_t(1) << 31;  // of a data sample or a layer's output

// The number of values of a shape of positive sizes, or -1 when a size is not positive or the
// count would pass `limit` (checked before each product, so it never overflows).
int64_t bounded_count(const Shape& s, int64_t limit) {
  int64_t count = 1;
  for (int64_t v : s) {
    if (v <= 0 || v > limit / count) return -1;
    count *= v;
  }
  return count;
}

Shape read_shape(const YAML::Node& n, const std::string& file, const std::string& path) {
  Shape s;
  if (!n.IsSequence()) throw Error(location_of(n, file), path, "expected a shape such as [28, 28]");
  for (auto e : n) {
    int64_t v = 0;
    if (!parse_int(e, v) || v <= 0)
      throw Error(location_of(e, file), path, "shape entries must be positive integers");
    s.push_back(v);
  }
  if (bounded_count(s, kMaxSampleValues) < 0)
    throw Error(location_of(n, file), path,
                "the shape holds more than 2^31 values per sample; no sample is that large");
  if (s.empty()) throw Error(location_of(n, file), path, "expected a shape such as [28, 28]");
  return s;
}

int64_t physical_memory() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? int64_t(pages) * size : int64_t(1) << 62;
}

std::string byte_text(int64_t bytes) {
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = double(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char b[32];
  std::snprintf(b, sizeof b, "%.1f %s", v, units[u]);
  return b;
}

// A layer's output shape: positive sizes, at most 2^31 values per sample (as data shapes).
void check_output(const Shape& s) {
  for (int64_t v : s)
    if (v <= 0) throw Error("its output would have shape " + to_string(s) + ": empty");
  if (bounded_count(s, kMaxSampleValues) < 0)
    throw Error("its output would hold more than 2^31 values per sample");
}

}  // namespace

class NodeBuilder : public LayerBuilder {
 public:
  NodeBuilder(ModelSet& set, ModelNode& node, const std::string& model, const Params& at)
      : set_(set), node_(node), model_(model), at_(at) {}
  const std::string& name() const override { return node_.name; }
  ParamPtr param(const std::string& local, const Shape& shape, const std::string& initializer,
                 int64_t fan_in, int64_t fan_out, bool trainable) override {
    auto p = std::make_shared<Param>();
    p->name = node_.name + "." + local;
    reserve(local, shape);
    p->value.resize(shape);
    p->grad.resize(shape);
    p->trainable = trainable;
    const TypeInfo* init = set_.registry_.find(Kind::Initializer, initializer);
    if (!init)
      at_.fail("unknown initializer '" + initializer + "' for " + local +
               suggestion(initializer, set_.registry_.names(Kind::Initializer)));
    auto obj = set_.registry_.create<Initializer>(initializer, Params());
    Rng rng(set_.seed_, "init", hash_string(p->name), 0);
    obj->fill(p->value, fan_in, fan_out, rng);
    set_.params_[p->name] = p;
    node_.params.push_back(p);
    return p;
  }
  ParamPtr shared(const std::string& reference, const std::string& key) override {
    // "model.layer.param" or "layer.param" (same model)
    std::string ref = reference;
    size_t dots = std::count(ref.begin(), ref.end(), '.');
    if (dots == 1) ref = model_ + "." + ref;
    if (dots == 0 || dots > 2)
      at_.fail(key,
               "'" + reference + "' should name a parameter as layer.param or model.layer.param");
    std::string model = ref.substr(0, ref.find('.'));
    if (model != model_ && set_.has(model)) set_.get(model);
    ParamPtr p = set_.find_param(ref);
    if (!p) {
      std::vector<std::string> names;
      for (auto& [n, q] : set_.params_) names.push_back(n);
      at_.fail(key, "no parameter '" + ref + "' (layers are built in order; it must come earlier)" +
                        suggestion(ref, names));
    }
    node_.params.push_back(p);
    return p;
  }

 private:
  // Counts the parameter against the models' memory budget before it is allocated.
  void reserve(const std::string& local, const Shape& shape) {
    int64_t count = bounded_count(shape, int64_t(1) << 40);
    if (count < 0)
      throw Error("its " + local + " of shape " + to_string(shape) +
                  " is too large to hold in memory");
    int64_t bytes = count * int64_t(2 * sizeof(float));  // value and gradient
    int64_t budget = set_.budget_ > 0 ? set_.budget_ : physical_memory();
    if (set_.param_bytes_ + bytes > budget)
      throw Error("its " + local + " of shape " + to_string(shape) + " needs " + byte_text(bytes) +
                  " (weights and gradients), and the parameters of the models " + "would need " +
                  byte_text(set_.param_bytes_ + bytes) + " in all: more than " +
                  (set_.budget_ > 0 ? "the budget of " : "this machine's memory of ") +
                  byte_text(budget));
    set_.param_bytes_ += bytes;
  }
  ModelSet& set_;
  ModelNode& node_;
  std::string model_;
  const Params& at_;
};

ModelSet::ModelSet(const Registry& registry, uint64_t seed, std::string file)
    : registry_(registry), seed_(seed), file_(std::move(file)) {}

void ModelSet::declare(const YAML::Node& models) {
  for (auto it = models.begin(); it != models.end(); ++it) {
    decls_[it->first.Scalar()] = it->second;
    order_.push_back(it->first.Scalar());
  }
}

std::vector<std::string> ModelSet::names() const { return order_; }

ParamPtr ModelSet::find_param(const std::string& q) const {
  auto it = params_.find(q);
  return it == params_.end() ? nullptr : it->second;
}

void ModelSet::build_all(Problems& problems) {
  for (auto& name : order_) {
    try {
      get(name);
    } catch (const Error& e) {
      problems.add(e.what());
    }
  }
}

std::shared_ptr<Model> ModelSet::get(const std::string& name) {
  auto it = built_.find(name);
  if (it != built_.end()) return it->second;
  if (!decls_.count(name)) throw Error("unknown model '" + name + "'" + suggestion(name, order_));
  if (building_.count(name))
    throw Error(location_of(decls_[name], file_), "models." + name,
                "model '" + name + "' uses itself (through the models it contains)");
  building_.insert(name);
  std::shared_ptr<Model> m;
  try {
    m = build(name);
  } catch (...) {
    building_.erase(name);
    throw;
  }
  building_.erase(name);
  built_[name] = m;
  return m;
}

std::shared_ptr<Model> ModelSet::build(const std::string& name) {
  const YAML::Node decl = decls_[name];
  const std::string mpath = "models." + name;
  Problems problems;
  Spec model_spec;
  model_spec.add("input", Type::Ints).doc("shape of the single input, without the batch");
  model_spec.add("inputs", Type::Map).doc("named inputs: name -> shape");
  model_spec.add("layers", Type::Any).doc("the layers, in order");
  model_spec.add("outputs", Type::Strings).doc("output layer names (default: the last layer)");
  model_spec.add("sequence", Type::Strings).doc("models applied one after another");
  check_params(decl, model_spec, file_, mpath, {}, problems);
  problems.raise_if_any();

  std::vector<ModelNode> nodes;
  std::vector<int> inputs;
  std::map<std::string, int> by_name;  // local names and inlined model names -> node
  auto add_node = [&](ModelNode n) {
    nodes.push_back(std::move(n));
    return int(nodes.size() - 1);
  };

  // Inputs.
  if (decl["input"] && decl["inputs"])
    throw Error(location_of(decl, file_), mpath, "give either 'input' or 'inputs', not both");
  if (decl["input"]) {
    ModelNode n{name + ".input",
                "input",
                nullptr,
                {},
                {},
                read_shape(decl["input"], file_, mpath + ".input"),
                location_of(decl["input"], file_),
                mpath + ".input"};
    by_name["input"] = add_node(n);
    inputs.push_back(by_name["input"]);
  } else if (decl["inputs"]) {
    for (auto it = decl["inputs"].begin(); it != decl["inputs"].end(); ++it) {
      std::string in = it->first.Scalar();
      ModelNode n{name + "." + in,
                  "input",
                  nullptr,
                  {},
                  {},
                  read_shape(it->second, file_, mpath + ".inputs." + in),
                  location_of(it->second, file_),
                  mpath + ".inputs." + in};
      by_name[in] = add_node(n);
      inputs.push_back(by_name[in]);
    }
  }

  // Layer entries (a sequence is sugar for entries {model: X}).
  std::vector<YAML::Node> entries;
  std::vector<std::string> entry_paths;
  if (decl["sequence"]) {
    if (decl["layers"])
      throw Error(location_of(decl, file_), mpath, "give either 'layers' or 'sequence', not both");
    size_t i = 0;
    for (YAML::Node m : decl["sequence"]) {
      YAML::Node e(YAML::NodeType::Map);
      e["model"] = m;
      e.SetStyle(YAML::EmitterStyle::Flow);
      entries.push_back(e);
      entry_paths.push_back(index_path(mpath + ".sequence", i++));
    }
  } else if (decl["layers"]) {
    if (!decl["layers"].IsSequence())
      throw Error(location_of(decl["layers"], file_), mpath + ".layers",
                  "expected a list of layers");
    size_t i = 0;
    for (auto e : decl["layers"]) {
      entries.push_back(e);
      entry_paths.push_back(index_path(mpath + ".layers", i++));
    }
  } else {
    throw Error(location_of(decl, file_), mpath, "a model needs 'layers' or 'sequence'");
  }

  std::map<std::string, int> type_counter;
  int last = inputs.empty() ? -1 : inputs.back();
  for (size_t e = 0; e < entries.size(); ++e) {
    const YAML::Node& entry = entries[e];
    const std::string& path = entry_paths[e];
    Location where =
        decl["sequence"] ? location_of(decl["sequence"][e], file_) : location_of(entry, file_);
    if (!entry.IsMap())
      throw Error(where, path, "expected a layer such as {type: dense, units: 10}");

    // Resolve the entry's inputs.
    std::vector<int> in;
    if (entry["inputs"]) {
      for (auto r : entry["inputs"]) {
        std::string ref = r.Scalar();
        int idx = -1;
        if (by_name.count(ref)) idx = by_name[ref];
        for (size_t k = 0; idx < 0 && k < nodes.size(); ++k)
          if (nodes[k].name == ref) idx = int(k);
        if (idx < 0) {
          std::vector<std::string> known;
          for (auto& [k, v] : by_name) known.push_back(k);
          throw Error(location_of(r, file_), path + ".inputs",
                      "unknown input '" + ref + "' (only inputs and earlier layers can be used)" +
                          suggestion(ref, known));
        }
        in.push_back(idx);
      }
    } else if (last >= 0) {
      in.push_back(last);
    }
    bool trainable = true;
    if (entry["trainable"]) {
      if (!parse_bool(entry["trainable"], trainable))
        throw Error(location_of(entry["trainable"], file_), path + ".trainable",
                    "expected true or false");
    }

    if (entry["model"]) {
      // Inline another model: its layers (and weights) are shared.
      std::string sub = entry["model"].Scalar();
      if (!has(sub))
        throw Error(location_of(entry["model"], file_), path + ".model",
                    "unknown model '" + sub + "'" + suggestion(sub, order_));
      for (auto it = entry.begin(); it != entry.end(); ++it) {
        std::string k = it->first.Scalar();
        if (k != "model" && k != "inputs" && k != "name" && k != "trainable")
          throw Error(
              location_of(it->first, file_), path + "." + k,
              "unknown key '" + k + "' for a model entry (known: model, inputs, name, trainable)");
      }
      std::shared_ptr<Model> m = get(sub);
      if (in.empty() && inputs.empty()) {
        // The first entry of a model without declared inputs: adopt the sub-model's inputs.
        for (size_t k = 0; k < m->num_inputs(); ++k) {
          const ModelNode& src = m->nodes()[m->input_node(k)];
          std::string local = src.name.substr(src.name.rfind('.') + 1);
          ModelNode n{name + "." + local, "input", nullptr, {}, {}, src.shape, where, path};
          by_name[local] = add_node(n);
          inputs.push_back(by_name[local]);
          in.push_back(by_name[local]);
        }
      }
      if (in.size() != m->num_inputs() && !(in.empty() && m->num_inputs() == 0))
        throw Error(where, path,
                    "model '" + sub + "' takes " + std::to_string(m->num_inputs()) + " input(s), " +
                        std::to_string(in.size()) + " given");
      std::map<int, int> remap;
      for (size_t k = 0; k < m->num_inputs(); ++k) {
        const Shape& want = m->input_shape(k);
        if (nodes[in[k]].shape != want)
          throw Error(where, path,
                      "model '" + sub + "' expects input " + to_string(want) + ", but '" +
                          nodes[in[k]].name + "' has shape " + to_string(nodes[in[k]].shape));
        remap[m->input_node(k)] = in[k];
      }
      for (size_t k = 0; k < m->nodes().size(); ++k) {
        const ModelNode& src = m->nodes()[k];
        if (!src.layer) continue;
        ModelNode copy = src;
        for (auto& j : copy.inputs) j = remap.at(j);
        if (!trainable) copy.frozen = true;  // through this model only: the parameters stay shared
        remap[int(k)] = add_node(copy);
      }
      std::string label = entry["name"] ? entry["name"].Scalar() : sub;
      by_name[label] = remap.at(m->output_node(0));
      for (size_t k = 0; k < m->num_outputs(); ++k) {
        const std::string& q = m->nodes()[m->output_node(k)].name;
        by_name[q.substr(q.rfind('.') + 1)] = remap.at(m->output_node(k));
      }
      last = remap.at(m->output_node(0));
      continue;
    }

    if (!entry["type"])
      throw Error(where, path, "a layer needs a 'type' (or 'model' to use a model)");
    std::string type = entry["type"].Scalar();
    const TypeInfo* info = &find_type(registry_, Kind::Layer, entry["type"], file_, path);
    std::string local;
    if (entry["name"]) {
      local = entry["name"].Scalar();
    } else {
      do local = type + "_" + std::to_string(++type_counter[type]);
      while (by_name.count(local));
    }
    if (by_name.count(local))
      throw Error(location_of(entry["name"] ? entry["name"] : entry, file_), path,
                  "layer name '" + local + "' is used twice in model '" + name + "'");
    Problems pp;
    check_params(entry, info->spec, file_, path, kLayerReserved, pp);
    pp.raise_if_any();
    Params params = make_params(entry, info->spec, file_, path);

    ModelNode node;
    node.name = name + "." + local;
    node.type = type;
    node.inputs = in;
    node.where = where;
    node.path = path;
    std::string at = path + " (" + type + " '" + local + "')";
    try {
      node.layer = std::shared_ptr<Layer>(registry_.create<Layer>(type, params));
    } catch (const Error& err) {
      std::string msg = err.what();
      if (msg.find(file_) == 0) throw;
      throw Error(where, at, msg);
    }
    node.layer->set_name(node.name);
    int nin = int(in.size());
    if (nin < node.layer->min_inputs() || nin > node.layer->max_inputs())
      throw Error(where, at,
                  "takes " + std::to_string(node.layer->min_inputs()) +
                      (node.layer->max_inputs() != node.layer->min_inputs() ? "+" : "") +
                      " input(s), " + std::to_string(nin) + " given" +
                      (nin == 0 ? " (declare the model's 'input' shape)" : ""));
    std::vector<Shape> shapes;
    for (int j : in) shapes.push_back(nodes[j].shape);
    try {
      node.shape = node.layer->infer(shapes);
      check_output(node.shape);
    } catch (const Error& err) {
      std::string shapes_text;
      for (size_t k = 0; k < shapes.size(); ++k)
        shapes_text += (k ? ", " : "") + to_string(shapes[k]);
      throw Error(where, at, std::string(err.what()) + " (input shape " + shapes_text + ")");
    }
    int idx = add_node(node);
    try {
      NodeBuilder b(*this, nodes[idx], name, params);
      nodes[idx].layer->build(b);
      nodes[idx].shape = nodes[idx].layer->infer(shapes);  // layers may refine it once built
      check_output(nodes[idx].shape);
    } catch (const Error& err) {
      std::string msg = err.what();
      if (msg.find(file_) == 0) throw;
      throw Error(where, at, msg);
    }
    nodes[idx].frozen = !trainable;
    by_name[local] = idx;
    last = idx;
  }

  std::vector<int> outputs;
  if (decl["outputs"]) {
    for (auto o : decl["outputs"]) {
      std::string ref = o.Scalar();
      if (!by_name.count(ref)) {
        std::vector<std::string> known;
        for (auto& [k, v] : by_name) known.push_back(k);
        throw Error(location_of(o, file_), mpath + ".outputs",
                    "unknown output '" + ref + "'" + suggestion(ref, known));
      }
      outputs.push_back(by_name[ref]);
    }
  } else {
    if (last < 0) throw Error(location_of(decl, file_), mpath, "the model has no layers");
    outputs.push_back(last);
  }
  return std::make_shared<Model>(name, std::move(nodes), inputs, outputs);
}

}  // namespace loom
