// Validation before anything runs: every dataset entry (source, splits, scale, transform) and
// every stage (recipe, parameters, model and data references, `after:` and `freeze:`), each
// problem located and collected.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "core/cpu.hpp"
#include "loom/augmenter.hpp"
#include "loom/create.hpp"
#include "loom/recipe.hpp"
#include "stage/run_folder.hpp"
#include "stage/runtime.hpp"
#include "train/schedule.hpp"

namespace fs = std::filesystem;

namespace loom {

namespace {

const std::set<std::string> kDatasetReserved{"source", "splits", "scale", "transform",
                                             "class_names"};
const std::set<std::string> kStageReserved{"recipe", "after"};

}  // namespace

// A stage for its recipe's check(): parameters, the built models, and what the data files'
// headers say (through the dataset's source and splits).
class StageChecker : public StageCheck {
 public:
  StageChecker(Runtime& rt, const Runtime::StageDecl& s, const YAML::Node& node, Problems& out)
      : rt_(rt), s_(s), node_(node), out_(out) {}
  const Params& params() const override { return s_.params; }
  std::shared_ptr<Model> model(const std::string& key) const override {
    if (!s_.params.has(key)) return nullptr;
    std::string n = s_.params.s(key);
    return !n.empty() && rt_.models_->has(n) ? rt_.models_->get(n) : nullptr;
  }
  DataInfo data(const std::string& key) const override {
    if (!s_.params.has(key) || s_.params.s(key).empty()) return {};
    return rt_.data_info(s_.params.s(key));
  }
  std::unique_ptr<Loss> loss(const std::string& key) const override {
    if (!s_.params.has(key)) return nullptr;
    try {
      return create_from<Loss>(rt_.registry(), s_.params.child(key));
    } catch (const Error&) {
      return nullptr;  // reported with the stage's parameters
    }
  }
  void fail(const std::string& key, const std::string& message) override {
    YAML::Node at = node_[key] ? node_[key] : node_;
    out_.add(location_of(at, rt_.pipeline().path), "stages." + s_.name + "." + key, message);
  }

 private:
  Runtime& rt_;
  const Runtime::StageDecl& s_;
  YAML::Node node_;
  Problems& out_;
};

DataInfo Runtime::data_info(const std::string& ref) const {
  DataInfo info;
  info.name = ref;
  std::string ds = ref.substr(0, ref.find('.'));
  auto it = datasets_.find(ds);
  if (it == datasets_.end()) return info;  // reported
  const DatasetDecl& d = *it->second;
  if (!d.src && !d.loaded) return info;  // produced by a stage that has not run
  try {
    SourceInfo si;
    if (d.src) {
      info.sample_shape = d.src->sample_shape();
      si = d.src->info();
    } else {  // published by a stage that ran (a benchmark's inputs)
      info.sample_shape = d.loaded->sample_shape;
      si.count = d.loaded->count;
      si.num_classes = d.loaded->num_classes;
      si.lo = d.loaded->lo;
      si.hi = d.loaded->hi;
    }
    info.num_classes = si.num_classes;
    if (d.scale.size() == 2)
      info.range = {std::min(d.scale[0], d.scale[1]), std::max(d.scale[0], d.scale[1])};
    else if (si.lo < si.hi)
      info.range = {si.lo, si.hi};
    if (si.count >= 0) {
      // A whole dataset trains on its 'train' split when it has splits.
      std::string split = ref.find('.') == std::string::npos
                              ? (d.splits.count("train") ? "train" : "")
                              : ref.substr(ref.find('.') + 1);
      info.count = si.count;
      if (auto sp = d.splits.find(split); sp != d.splits.end()) {
        auto [skip, take] = sp->second;
        info.count = std::max<int64_t>(0, si.count - skip);
        if (take >= 0) info.count = std::min(info.count, take);
      }
      if (opt_.subset > 0 && info.count > opt_.subset) info.count = opt_.subset;
    }
  } catch (const Error&) {
    DataInfo unknown;  // an unreadable file is reported with its dataset
    unknown.name = ref;
    return unknown;
  }
  return info;
}

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
        for (auto v : node["scale"]) {
          double x = 0;
          parse_float(v, x);
          d->scale.push_back(x);
        }
      }
      if (node["class_names"]) {
        ParamSpec s;
        s.type = Type::Strings;
        std::string why = check_value(node["class_names"], s);
        if (why.empty() && node["class_names"].size() == 0)
          why = "expected the names of classes 0, 1, ... (e.g. [cat, dog])";
        if (!why.empty())
          throw Error(location_of(node["class_names"], file_.path), path + ".class_names", why);
        for (auto v : node["class_names"]) d->class_names.push_back(v.Scalar());
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
          int64_t skip = 0, take = -1;
          if (s->second["skip"]) parse_int(s->second["skip"], skip);
          if (s->second["take"]) parse_int(s->second["take"], take);
          d->splits[sn] = {skip, take};
        }
      }
      // Splits against the sample count in the file's header (and labels against it).
      SourceInfo info = d->src->info();
      if (info.count >= 0 && node["splits"])
        for (auto s = node["splits"].begin(); s != node["splits"].end(); ++s) {
          auto [skip, take] = d->splits[s->first.Scalar()];
          std::string where = path + ".splits." + s->first.Scalar();
          std::string n = std::to_string(info.count);
          if (skip >= info.count)
            problems.add(location_of(s->second, file_.path), where,
                         "skips " + std::to_string(skip) + " samples but the data holds " + n +
                             ": the split is empty");
          else if (take >= 0 && skip + take > info.count)
            problems.add(location_of(s->second, file_.path), where,
                         "takes " + std::to_string(take) + " samples after skipping " +
                             std::to_string(skip) + ", but the data holds " + n + " (" +
                             std::to_string(info.count - skip) + " left)");
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
  for (auto it = st.begin(); it != st.end(); ++it) {
    YAML::Node pub = it->second.IsMap() ? it->second["publish"] : YAML::Node();
    if (!pub) continue;
    std::string dn = pub.Scalar();
    if (datasets_.count(dn) || publishers_.count(dn)) {
      problems.add(location_of(pub, file_.path), "stages." + it->first.Scalar() + ".publish",
                   "dataset '" + dn + "' already exists");
      continue;
    }
    auto d = std::make_unique<DatasetDecl>();
    d->name = dn;
    d->node = pub;
    datasets_[dn] = std::move(d);
    publishers_[dn] = it->first.Scalar();
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
      // Outputs named relative to the run folder stay inside it (found now, not after training).
      for (const char* key : {"write", "scatter"}) {
        YAML::Node w = node[key];
        if (!w || !w.IsScalar() || fs::path(w.Scalar()).is_absolute()) continue;
        if (leaves_run_folder(w.Scalar()))
          local.add(location_of(w, file_.path), path + "." + key,
                    "'" + w.Scalar() +
                        "' leads out of the run folder; give a path inside it, or an absolute "
                        "path");
      }
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
      // Learning-rate schedules: their keys and the ones each type needs.
      auto check_schedule = [&](const Params& sp) {
        try {
          Schedule(1.0, sp);
        } catch (const Error& e) {
          local.add(e.what());
        }
      };
      if (t->spec.find("lr_schedule") && s->params.given("lr_schedule"))
        check_schedule(s->params.child("lr_schedule"));
      if (t->spec.find("lr_schedules") && s->params.given("lr_schedules") &&
          node["lr_schedules"].IsMap())
        for (auto g = node["lr_schedules"].begin(); g != node["lr_schedules"].end(); ++g)
          check_schedule(s->params.child("lr_schedules").child(g->first.Scalar()));
      // bf16 arithmetic where this CPU (and oneDNN's ISA cap) runs it natively.
      if (t->spec.find("precision")) {
        bool own = s->params.given("precision");
        std::string why;
        if (precision(s->params) == "bf16" && !bf16_available(why))
          local.add(location_of(own ? node["precision"] : file_.root["precision"], file_.path),
                    own ? path + ".precision" : "precision",
                    why + " (`loom --version` shows what oneDNN uses); train in fp32 here");
      }
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
          } else if (publishers_.count(ds)) {
            // A stage reading a produced dataset waits for its publisher.
            if (publishers_[ds] != name &&
                std::find(s->after.begin(), s->after.end(), publishers_[ds]) == s->after.end())
              s->after.push_back(publishers_[ds]);
          } else if (v.find('.') == std::string::npos) {
            // The whole dataset: a training stage reads its 'train' split and validates on its
            // 'valid' one. Splits under other names would silently mean "all of it, no
            // validation" (as Keras' words training/validation did).
            auto& splits = datasets_[ds]->splits;
            if (!splits.empty() && !splits.count("train")) {
              std::string sk;
              for (auto& [k, x] : splits) sk += (sk.empty() ? "" : ", ") + k;
              local.add(location_of(node[ps.name], file_.path), path + "." + ps.name,
                        "dataset '" + ds + "' has the splits " + sk +
                            " but no 'train': a stage given the whole dataset trains on its "
                            "'train' split and validates on 'valid'; name the splits so, or "
                            "give one (" +
                            ps.name + ": " + ds + "." + splits.begin()->first + ")");
            }
          } else {
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
      // The recipe's own checks (shapes against the data files' headers, the loss against the
      // task), once its parameters are known to be well-formed.
      if (local.empty()) {
        StageChecker checker(*this, *s, node, local);
        registry().create<Recipe>(s->recipe, s->params)->check(checker);
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

}  // namespace loom
