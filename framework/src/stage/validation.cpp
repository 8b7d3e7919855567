// Validation before anything runs: every dataset entry (source, splits, scale, transform) and
// every stage (recipe, parameters, model and data references, `after:` and `freeze:`), each
// problem located and collected.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "loom/augmenter.hpp"
#include "loom/create.hpp"
#include "stage/run_folder.hpp"
#include "stage/runtime.hpp"

namespace fs = std::filesystem;

namespace loom {

namespace {

const std::set<std::string> kDatasetReserved{"source", "splits", "scale", "transform"};
const std::set<std::string> kStageReserved{"recipe", "after"};

}  // namespace

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
      // The model that takes the data's samples (the discriminator of an adversarial stage)
      // against the sample shape in the data file's header: found now, not at the first batch.
      // For the built-in recipes that feed their data to the model (the sampling recipes read
      // it only for its value range and labels).
      static const std::set<std::string> kFeedsData{"autoencoder", "supervised", "diffusion",
                                                    "adversarial", "predict"};
      if (kFeedsData.count(s->recipe)) {
        YAML::Node dn = node["data"];
        YAML::Node mn = node["discriminator"] ? node["discriminator"] : node["model"];
        std::string ds = dn && dn.IsScalar() ? dn.Scalar().substr(0, dn.Scalar().find('.')) : "";
        if (!ds.empty() && mn && mn.IsScalar() && models_->has(mn.Scalar()) &&
            datasets_.count(ds) && datasets_[ds]->src && !producer.count(ds)) {
          Shape data_shape;
          try {
            data_shape = datasets_[ds]->src->sample_shape();
          } catch (const Error&) {
            // A data file that cannot be read is reported with its dataset.
          }
          auto m = models_->get(mn.Scalar());
          if (!data_shape.empty() && m->num_inputs() > 0 &&
              numel(data_shape) != numel(m->input_shape(0)))
            local.add(location_of(dn, file_.path), path + ".data",
                      "model '" + mn.Scalar() + "' takes inputs of shape " +
                          to_string(m->input_shape(0)) + " but dataset '" + ds +
                          "' has samples of shape " + to_string(data_shape));
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

}  // namespace loom
