#include "stage/runtime.hpp"

#include <tbb/flow_graph.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "loom/augmenter.hpp"
#include "loom/create.hpp"
#include "loom/plugins.hpp"
#include "output/safetensors.hpp"
#include "stage/run_folder.hpp"

namespace fs = std::filesystem;

namespace loom {

struct Runtime::DatasetDecl {
  std::string name;
  YAML::Node node;
  Params params;  // the source's parameters
  std::string source;
  std::unique_ptr<Source> src;
  std::map<std::string, std::pair<int64_t, int64_t>> splits;  // name -> (skip, take or -1)
  std::vector<double> scale;
  std::shared_ptr<Transform> transform;
  std::shared_ptr<const Dataset> loaded;
  std::mutex mutex;
};

namespace {

const std::set<std::string> kDatasetReserved{"source", "splits", "scale", "transform"};
const std::set<std::string> kStageReserved{"recipe", "after"};

class Context : public StageContext {
 public:
  Context(Runtime& rt, const std::string& name, const Params& p)
      : rt_(rt), name_(name), params_(p) {}
  const std::string& name() const override { return name_; }
  const Params& params() const override { return params_; }
  const Registry& registry() const override { return rt_.registry(); }
  std::shared_ptr<Model> model(const std::string& n) override { return rt_.models().get(n); }
  DataSplit data(const std::string& ref, const std::string& fallback) override {
    return rt_.data(ref, fallback);
  }
  std::string out_path(const std::string& rel) override { return rt_.out_path(rel); }
  uint64_t seed() const override { return rt_.pipeline().seed; }
  void log(const std::string& line) override { rt_.log(line); }
  void metric(const std::string& json) override { rt_.metric(name_, json); }
  int64_t max_steps() const override { return rt_.options().max_steps; }
  int64_t epochs_override() const override { return rt_.options().epochs; }
  bool resume() const override { return rt_.options().resume; }
  bool quiet() const override { return rt_.options().quiet; }
  const BenchSettings* bench() const override {
    return rt_.options().benchmark ? &rt_.options().bench : nullptr;
  }
  void publish(const std::string& n, std::shared_ptr<const Dataset> d,
               const std::string& like) override {
    rt_.publish(n, std::move(d), like);
  }
  void bench_result(const std::vector<double>& rates, int64_t batch) override {
    rt_.add_bench_report({name_, batch, rates});
  }

 private:
  Runtime& rt_;
  std::string name_;
  Params params_;
};

}  // namespace

Runtime::Runtime(const std::string& pipeline, RunOptions options) : opt_(std::move(options)) {
  keep_freed_memory_for_reuse();
  file_ = load_pipeline(pipeline, opt_.overrides);
  apply_recorded_options(file_, opt_);
  load_default_plugins(global_registry(), file_.plugin_dirs);
  out_dir_ = opt_.out_dir.empty() ? (fs::path("runs") / file_.name).string() : opt_.out_dir;
  models_ = std::make_unique<ModelSet>(global_registry(), file_.seed, file_.path);
  Problems problems;
  if (file_.root["models"]) models_->declare(file_.root["models"]);
  validate_datasets(problems);
  models_->build_all(problems);
  validate_stages(problems);
  problems.raise_if_any();
}

Runtime::~Runtime() = default;

const Registry& Runtime::registry() const { return global_registry(); }

void Runtime::validate_datasets(Problems& problems) {
  YAML::Node ds = file_.root["datasets"];
  if (!ds) return;
  for (auto it = ds.begin(); it != ds.end(); ++it) {
    std::string name = it->first.Scalar(), path = "datasets." + name;
    YAML::Node node = it->second;
    auto d = std::make_unique<DatasetDecl>();
    d->name = name;
    d->node = node;
    try {
      if (!node.IsMap())
        throw Error(location_of(node, file_.path), path, "expected a mapping with a 'source'");
      if (name.find('.') != std::string::npos)
        throw Error(location_of(it->first, file_.path), path, "dataset names cannot contain '.'");
      if (!node["source"])
        throw Error(location_of(node, file_.path), path,
                    "missing required key 'source' (e.g. source: idx)");
      d->source = node["source"].Scalar();
      const TypeInfo* t =
          &find_type(registry(), Kind::Source, node["source"], file_.path, path + ".source");
      Problems local;
      check_params(node, t->spec, file_.path, path, kDatasetReserved, local);
      local.raise_if_any();
      d->params = make_params(node, t->spec, file_.path, path);
      d->src = registry().create<Source>(d->source, d->params);
      if (node["scale"]) {
        ParamSpec s;
        s.type = Type::Floats;
        std::string why = check_value(node["scale"], s);
        if (why.empty() && node["scale"].size() != 2) why = "expected [low, high]";
        if (!why.empty()) throw Error(location_of(node["scale"], file_.path), path + ".scale", why);
        for (auto v : node["scale"]) d->scale.push_back(v.as<double>());
      }
      if (node["splits"]) {
        YAML::Node sp = node["splits"];
        if (!sp.IsMap())
          throw Error(location_of(sp, file_.path), path + ".splits",
                      "expected {train: {take: N}, valid: {skip: N}}");
        Spec split_spec;
        split_spec.add("take", Type::Int).min(0).doc("number of samples");
        split_spec.add("skip", Type::Int).min(0).doc("samples skipped first");
        for (auto s = sp.begin(); s != sp.end(); ++s) {
          std::string sn = s->first.Scalar();
          Problems lp;
          check_params(s->second, split_spec, file_.path, path + ".splits." + sn, {}, lp);
          lp.raise_if_any();
          int64_t skip = s->second["skip"] ? s->second["skip"].as<int64_t>() : 0;
          int64_t take = s->second["take"] ? s->second["take"].as<int64_t>() : -1;
          d->splits[sn] = {skip, take};
        }
      }
      if (node["transform"]) {
        YAML::Node tr = node["transform"];
        if (!tr.IsSequence())
          throw Error(location_of(tr, file_.path), path + ".transform",
                      "expected a list of augmenters");
        d->transform = std::make_shared<Transform>();
        for (size_t i = 0; i < tr.size(); ++i) {
          Spec open;
          open.open = true;
          Params e = make_params(tr[i], open, file_.path, index_path(path + ".transform", i));
          d->transform->chain.push_back(create_from<Augmenter>(registry(), e));
        }
      }
    } catch (const Error& e) {
      problems.add(e.what());
      continue;
    }
    datasets_[name] = std::move(d);
  }
}

void Runtime::validate_stages(Problems& problems) {
  YAML::Node st = file_.root["stages"];
  if (!st.IsMap() || st.size() == 0) {
    problems.add(location_of(st, file_.path), "stages", "expected at least one stage");
    return;
  }
  std::set<std::string> names;
  for (auto it = st.begin(); it != st.end(); ++it) names.insert(it->first.Scalar());
  // Datasets that stages produce (`publish: NAME`) can be used by later stages.
  std::map<std::string, std::string> producer;
  for (auto it = st.begin(); it != st.end(); ++it) {
    YAML::Node pub = it->second.IsMap() ? it->second["publish"] : YAML::Node();
    if (!pub) continue;
    std::string dn = pub.Scalar();
    if (datasets_.count(dn) || producer.count(dn)) {
      problems.add(location_of(pub, file_.path), "stages." + it->first.Scalar() + ".publish",
                   "dataset '" + dn + "' already exists");
      continue;
    }
    auto d = std::make_unique<DatasetDecl>();
    d->name = dn;
    d->node = pub;
    datasets_[dn] = std::move(d);
    producer[dn] = it->first.Scalar();
  }
  for (auto it = st.begin(); it != st.end(); ++it) {
    std::string name = it->first.Scalar(), path = "stages." + name;
    YAML::Node node = it->second;
    try {
      if (!node.IsMap() || !node["recipe"])
        throw Error(
            location_of(node, file_.path), path, "a stage needs a 'recipe' (known: " + [&] {
              std::string s;
              for (auto& n : registry().names(Kind::Recipe)) s += (s.empty() ? "" : ", ") + n;
              return s;
            }() + ")");
      auto s = std::make_unique<StageDecl>();
      s->name = name;
      s->recipe = node["recipe"].Scalar();
      s->where = location_of(node, file_.path);
      const TypeInfo* t =
          &find_type(registry(), Kind::Recipe, node["recipe"], file_.path, path + ".recipe");
      Problems local;
      check_params(node, t->spec, file_.path, path, kStageReserved, local);
      if (node["after"]) {
        std::vector<std::string> after;
        if (node["after"].IsScalar())
          after.push_back(node["after"].Scalar());
        else
          for (auto a : node["after"]) after.push_back(a.Scalar());
        for (auto& a : after) {
          if (!names.count(a))
            local.add(location_of(node["after"], file_.path), path + ".after",
                      "unknown stage '" + a + "'" + suggestion(a, {names.begin(), names.end()}));
          else if (a == name)
            local.add(location_of(node["after"], file_.path), path + ".after",
                      "a stage cannot wait for itself");
        }
        s->after = after;
      }
      s->params = make_params(node, t->spec, file_.path, path);
      // Nested registry entries (optimizer, loss, terms, ...) are validated now, not at run time.
      for (auto& ps : t->spec.params) {
        if (ps.is_entry_map && s->params.given(ps.name)) {
          YAML::Node m = node[ps.name];
          if (!m.IsMap()) {
            local.add(location_of(m, file_.path), path + "." + ps.name,
                      "expected a mapping such as {" + ps.entry_reserved[0] + ": ...}");
            continue;
          }
          for (auto e = m.begin(); e != m.end(); ++e) {
            std::string k = e->first.Scalar();
            if (std::find(ps.entry_reserved.begin(), ps.entry_reserved.end(), k) ==
                ps.entry_reserved.end()) {
              local.add(location_of(e->first, file_.path), path + "." + ps.name + "." + k,
                        "unknown key '" + k + "'" + suggestion(k, ps.entry_reserved));
              continue;
            }
            try {
              Params scratch;
              resolve_entry(registry(), ps.entry_kind, s->params.child(ps.name).child(k), {},
                            &scratch);
            } catch (const Error& err) {
              local.add(err.what());
            }
          }
          continue;
        }
        if (!(ps.is_entry || ps.is_entry_list) || !s->params.has(ps.name)) continue;
        try {
          Params scratch;
          if (ps.is_entry) {
            resolve_entry(registry(), ps.entry_kind, s->params.child(ps.name), {}, &scratch);
          } else if (s->params.given(ps.name)) {
            std::set<std::string> reserved(ps.entry_reserved.begin(), ps.entry_reserved.end());
            for (const Params& e : s->params.items(ps.name))
              resolve_entry(registry(), ps.entry_kind, e, reserved, &scratch);
          }
        } catch (const Error& e) {
          local.add(e.what());
        }
      }
      // Cross-references: model names and dataset references.
      for (auto& ps : t->spec.params) {
        if (!node[ps.name] || ps.type != Type::String) continue;
        std::string v = node[ps.name].Scalar();
        bool is_model = ps.name == "model" || ps.name.ends_with("_model") ||
                        ps.name == "generator" || ps.name == "discriminator";
        bool is_data = ps.name == "data" || ps.name.ends_with("_data");
        if (models_->has(v) && std::find(s->models.begin(), s->models.end(), v) == s->models.end())
          s->models.push_back(v);
        if (is_model && !models_->has(v)) {
          local.add(location_of(node[ps.name], file_.path), path + "." + ps.name,
                    "unknown model '" + v + "'" + suggestion(v, models_->names()));
        } else if (is_data) {
          std::string ds = v.substr(0, v.find('.'));
          std::vector<std::string> known;
          for (auto& [k, d] : datasets_) known.push_back(k);
          if (!datasets_.count(ds)) {
            if (file_.root["datasets"] && file_.root["datasets"][ds]) continue;  // already reported
            local.add(location_of(node[ps.name], file_.path), path + "." + ps.name,
                      "unknown dataset '" + ds + "'" + suggestion(ds, known));
          } else if (producer.count(ds)) {
            // A stage reading a produced dataset waits for its producer.
            if (producer[ds] != name &&
                std::find(s->after.begin(), s->after.end(), producer[ds]) == s->after.end())
              s->after.push_back(producer[ds]);
          } else if (v.find('.') != std::string::npos) {
            std::string sp = v.substr(v.find('.') + 1);
            auto& splits = datasets_[ds]->splits;
            if (!splits.count(sp)) {
              std::vector<std::string> sk;
              for (auto& [k, x] : splits) sk.push_back(k);
              local.add(location_of(node[ps.name], file_.path), path + "." + ps.name,
                        "dataset '" + ds + "' has no split '" + sp + "'" + suggestion(sp, sk));
            }
          }
        }
      }
      // `freeze:` names layers or models inside the stage's models.
      if (node["freeze"] && node["freeze"].IsSequence())
        for (auto f : node["freeze"]) {
          std::string n = f.Scalar();
          std::vector<std::string> known;
          bool found = false;
          for (auto& mn : s->models) {
            auto m = models_->get(mn);
            std::vector<std::string> left = m->set_frozen({n});
            m->set_frozen({});
            found |= left.empty();
            for (auto& nd : m->nodes()) {
              if (!nd.layer) continue;
              known.push_back(nd.name);
              std::string prefix = nd.name.substr(0, nd.name.find('.'));  // its model
              if (std::find(known.begin(), known.end(), prefix) == known.end())
                known.push_back(prefix);
            }
          }
          if (!found)
            local.add(location_of(f, file_.path), path + ".freeze",
                      "'" + n + "' names no layer or model of this stage's models" +
                          suggestion(n, known));
        }
      for (auto& m : local.list()) problems.add(m);
      stages_.push_back(std::move(s));
    } catch (const Error& e) {
      problems.add(e.what());
    }
  }
  // Cycles among `after`.
  std::map<std::string, StageDecl*> by;
  for (auto& s : stages_) by[s->name] = s.get();
  std::map<std::string, int> state;
  std::function<bool(const std::string&)> visit = [&](const std::string& n) {
    if (state[n] == 1) return true;
    if (state[n] == 2 || !by.count(n)) return false;
    state[n] = 1;
    for (auto& a : by[n]->after)
      if (visit(a)) {
        if (state[n] == 1)
          problems.add(by[n]->where, "stages." + n,
                       "stages wait for each other in a cycle (through 'after')");
        state[n] = 2;
        return false;
      }
    state[n] = 2;
    return false;
  };
  for (auto& s : stages_) visit(s->name);
  if (problems.empty()) order_sharing_stages();
}

std::shared_ptr<const Dataset> Runtime::load_dataset(DatasetDecl& d) {
  std::lock_guard<std::mutex> lock(d.mutex);
  if (d.loaded) return d.loaded;
  if (!d.src) throw Error("dataset '" + d.name + "' is produced by a stage that has not run yet");
  auto data = std::make_shared<Dataset>(d.src->load());
  if (!d.scale.empty()) {
    float a = float(d.scale[0]), b = float(d.scale[1]);
    float k = (b - a) / (data->hi - data->lo), lo = data->lo;
    for (auto& v : data->x) v = a + (v - lo) * k;
    data->lo = a;
    data->hi = b;
  }
  for (auto& [sn, s] : d.splits) {
    int64_t end = s.second < 0 ? data->count : s.first + s.second;
    if (s.first > data->count || end > data->count)
      throw Error(located(location_of(d.node["splits"][sn], file_.path),
                          "datasets." + d.name + ".splits." + sn,
                          "split needs samples up to " + std::to_string(end) + " but " +
                              data->origin + " holds " + std::to_string(data->count)));
  }
  if (d.transform) {
    d.transform->num_classes = data->num_classes;
    set_transform(data.get(), d.transform);
  }
  d.loaded = data;
  return data;
}

DataSplit Runtime::data(const std::string& ref, const std::string& fallback) {
  std::string ds = ref.substr(0, ref.find('.'));
  std::string split = ref.find('.') == std::string::npos ? "" : ref.substr(ref.find('.') + 1);
  auto it = datasets_.find(ds);
  if (it == datasets_.end()) throw Error("unknown dataset '" + ds + "'");
  DatasetDecl& d = *it->second;
  DataSplit out;
  out.data = load_dataset(d);
  out.name = ref;
  std::string use = split.empty() ? fallback : split;
  bool named_split = !use.empty() && d.splits.count(use);
  if (named_split) {
    auto [skip, take] = d.splits[use];
    // Clamped: a dataset published by a stage may hold fewer samples than its splits name.
    out.begin = std::min(skip, out.data->count);
    out.count =
        take < 0 ? out.data->count - out.begin : std::min(take, out.data->count - out.begin);
    out.name = ds + "." + use;
  } else if (!split.empty()) {
    throw Error("dataset '" + ds + "' has no split '" + split + "'");
  } else if (fallback == "valid") {
    out.count = 0;  // no validation split: no validation
  } else {
    out.count = out.data->count;
  }
  // --subset shortens splits (and datasets without splits); a stage that reads a whole split
  // dataset (e.g. to encode all of it for later stages) still sees every sample.
  if (opt_.subset > 0 && (named_split || d.splits.empty()))
    out.count = std::min(out.count, opt_.subset);
  return out;
}

void Runtime::load_data() {
  for (auto& [name, d] : datasets_) {
    bool used = false;
    for (auto& s : stages_)
      for (auto& ps : registry().get(Kind::Recipe, s->recipe).spec.params)
        if ((ps.name == "data" || ps.name.ends_with("_data")) && s->params.given(ps.name) &&
            s->params.s(ps.name).substr(0, s->params.s(ps.name).find('.')) == name)
          used = true;
    if (used && d->src) load_dataset(*d);
  }
}

std::string Runtime::out_path(const std::string& rel) {
  fs::path p(rel);
  if (p.is_relative()) p = fs::path(out_dir_) / p;
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  return p.string();
}

void Runtime::log(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::cout << line << std::endl;
}

void Runtime::metric(const std::string& stage, const std::string& json) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string path = (fs::path(out_dir_) / "metrics.jsonl").string();
  std::ofstream o(path,
                  metrics_open_ ? std::ios::app : (opt_.resume ? std::ios::app : std::ios::trunc));
  metrics_open_ = true;
  // {"task": stage, ...rest}
  o << "{\"task\":\"" << stage << "\"," << json.substr(1) << "\n";
}

void Runtime::publish(const std::string& name, std::shared_ptr<const Dataset> data,
                      const std::string& splits_like) {
  auto it = datasets_.find(name);
  if (it == datasets_.end()) throw Error("dataset '" + name + "' was not declared as published");
  std::lock_guard<std::mutex> lock(it->second->mutex);
  auto src = datasets_.find(splits_like.substr(0, splits_like.find('.')));
  if (src != datasets_.end() && splits_like.find('.') == std::string::npos)
    it->second->splits = src->second->splits;
  it->second->loaded = std::move(data);
}

void Runtime::add_bench_report(BenchReport r) {
  std::lock_guard<std::mutex> lock(mutex_);
  bench_reports_.push_back(std::move(r));
}

void Runtime::save_weights() {
  std::vector<std::pair<std::string, const Tensor*>> t;
  for (auto& [name, p] : models_->params()) t.push_back({name, &p->value});
  for (auto& [name, p] : models_->params())
    if (p->average.size() == p->value.size() && p->average.size() > 0)
      t.push_back({"ema." + name, &p->average});
  save_safetensors(out_path("weights.safetensors"), t,
                   {{"pipeline", file_.name}, {"format", "loom-1"}});
}

std::string Runtime::summary() {
  std::string s;
  for (auto& n : models_->names()) s += models_->get(n)->summary() + "\n";
  s += "Stages:\n";
  for (auto& st : stages_) {
    s += "  " + st->name + " (" + st->recipe + ")";
    if (!st->after.empty()) {
      s += " after";
      for (auto& a : st->after) s += " " + a;
    }
    if (!st->shares_with.empty()) {
      s += " (shares layers with";
      for (auto& a : st->shares_with) s += " " + a;
      s += ", so runs after it)";
    }
    s += "\n";
    if (st->params.has("epochs") && !st->models.empty()) s += trainable_summary(*st);
  }
  return s;
}

// What a training stage updates, after its `freeze:` list and the models' `trainable: false`.
std::string Runtime::trainable_summary(StageDecl& st) {
  std::vector<std::string> freeze;
  if (st.params.given("freeze")) freeze = st.params.strings("freeze");
  std::set<const Param*> seen, trained;
  int64_t total = 0, trainable = 0;
  std::string frozen_models;
  for (auto& name : st.models) {
    if (!models_->has(name)) continue;
    auto m = models_->get(name);
    m->set_frozen(freeze);
    for (auto& p : m->trainable_params()) trained.insert(p.get());
    m->set_frozen({});
    for (auto& p : m->params())
      if (p->trainable && seen.insert(p.get()).second) {
        total += p->value.size();
        if (trained.count(p.get())) trainable += p->value.size();
      }
  }
  std::string s = "    trains " + std::to_string(trainable) + " of " + std::to_string(total) +
                  " trainable parameters";
  if (trainable < total) s += " (" + std::to_string(total - trainable) + " frozen)";
  return s + "\n";
}

std::string Runtime::dot() {
  std::string s = "digraph \"" + file_.name +
                  "\" {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n";
  for (auto& st : stages_) {
    s += "  \"stage:" + st->name + "\" [label=\"" + st->name + "\\n(" + st->recipe +
         ")\", style=rounded];\n";
    for (auto& a : st->after) s += "  \"stage:" + a + "\" -> \"stage:" + st->name + "\";\n";
  }
  for (auto& n : models_->names()) {
    auto m = models_->get(n);
    s += "  subgraph \"cluster_" + n + "\" {\n    label=\"model " + n + "\";\n";
    for (size_t i = 0; i < m->nodes().size(); ++i) {
      auto& node = m->nodes()[i];
      s += "    \"" + n + "/" + node.name + "\" [label=\"" + node.name + "\\n" + node.type + " " +
           to_string(node.shape) + "\"];\n";
      for (int j : node.inputs)
        s += "    \"" + n + "/" + m->nodes()[j].name + "\" -> \"" + n + "/" + node.name + "\";\n";
    }
    s += "  }\n";
  }
  return s + "}\n";
}

void Runtime::run_stage(StageDecl& s) {
  auto recipe = registry().create<Recipe>(s.recipe, s.params);
  Context ctx(*this, s.name, s.params);
  recipe->run(ctx);
}

void Runtime::run() {
  if (!opt_.benchmark) check_run_folder(out_dir_, opt_);
  load_data();
  if (opt_.benchmark) {
    StageDecl* chosen = nullptr;
    for (auto& s : stages_)
      if ((opt_.bench_stage.empty() &&
           registry().get(Kind::Recipe, s->recipe).spec.find("batch_size")) ||
          s->name == opt_.bench_stage) {
        chosen = s.get();
        break;
      }
    if (!chosen)
      throw Error(file_.path + ": no training stage to benchmark" +
                  (opt_.bench_stage.empty() ? "" : " named '" + opt_.bench_stage + "'"));
    run_stage(*chosen);
    return;
  }
  start_run_folder(out_dir_, file_, opt_, *models_);
  tbb::flow::graph g;
  std::map<std::string, std::unique_ptr<tbb::flow::continue_node<tbb::flow::continue_msg>>> nodes;
  std::mutex err_mutex;
  std::vector<std::string> errors;
  std::set<std::string> failed;
  for (auto& sp : stages_) {
    StageDecl* s = sp.get();
    nodes[s->name] = std::make_unique<tbb::flow::continue_node<tbb::flow::continue_msg>>(
        g, [this, s, &err_mutex, &errors, &failed](const tbb::flow::continue_msg&) {
          {
            std::lock_guard<std::mutex> lock(err_mutex);
            for (auto& a : s->after)
              if (failed.count(a)) {
                failed.insert(s->name);
                return;
              }
          }
          try {
            run_stage(*s);
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(err_mutex);
            errors.push_back(e.what());
            failed.insert(s->name);
          }
        });
  }
  std::vector<tbb::flow::continue_node<tbb::flow::continue_msg>*> roots;
  for (auto& s : stages_) {
    for (auto& a : s->after) tbb::flow::make_edge(*nodes[a], *nodes[s->name]);
    if (s->after.empty()) roots.push_back(nodes[s->name].get());
  }
  for (auto* r : roots) r->try_put(tbb::flow::continue_msg());
  g.wait_for_all();
  // Once, when no stage runs: the weights every stage left (also after a failed stage, so the
  // stages that finished can be used), never a mix of two stages' moments.
  if (failed.size() < stages_.size()) save_weights();
  if (!errors.empty()) {
    std::string all;
    for (size_t i = 0; i < errors.size(); ++i) all += (i ? "\n" : "") + errors[i];
    throw Error(all);
  }
}

}  // namespace loom
