// Stage caching: on `loom run --resume`, a stage whose inputs (its pipeline entry, the models and
// datasets it reads, the seed, Loom's version, --subset and the stages before it) are those
// recorded when it last finished in the run folder is not run again: the weights it left are
// loaded instead. A stage whose own settings changed continues from its checkpoint (as --resume
// always did); one whose seed, data or earlier stages changed runs again from the start, and so
// do the stages after any stage that runs. `--rerun STAGE` starts one over.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "output/safetensors.hpp"
#include "plugin/plugins.hpp"
#include "stage/run_folder.hpp"
#include "stage/runtime.hpp"

namespace fs = std::filesystem;

namespace loom {

namespace {

// A canonical text of a YAML node: map keys sorted, scalars length-prefixed (so no two nodes
// share a text), comments and layout ignored.
void canonical(const YAML::Node& n, std::string& out) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      out += std::to_string(n.Scalar().size()) + ":" + n.Scalar();
      break;
    case YAML::NodeType::Sequence:
      out += "[";
      for (auto e : n) {
        canonical(e, out);
        out += ",";
      }
      out += "]";
      break;
    case YAML::NodeType::Map: {
      std::map<std::string, YAML::Node> sorted;
      for (auto kv = n.begin(); kv != n.end(); ++kv) sorted[kv->first.Scalar()] = kv->second;
      out += "{";
      for (auto& [k, v] : sorted) {
        out += std::to_string(k.size()) + ":" + k + "=";
        canonical(v, out);
        out += ",";
      }
      out += "}";
      break;
    }
    default:
      out += "~";
  }
}

std::string canonical(const YAML::Node& n) {
  std::string out;
  canonical(n, out);
  return out;
}

// A node as one line of flow YAML, for messages.
std::string flow(const YAML::Node& n) {
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << n;
  return e.c_str();
}

// The stages of the run folder's pipeline.yaml, as the run began (before this run rewrites it);
// an empty node when it is missing or unreadable.
YAML::Node stages_as_begun(const std::string& run_dir) {
  try {
    return load_yaml_file((fs::path(run_dir) / "pipeline.yaml").string())["stages"];
  } catch (const std::exception&) {
    return YAML::Node();
  }
}

// What changed in a stage's entry from `old` (as the run began) to `now` (the keys of an
// unfinished stage that continues from its checkpoint: no record says what it started with):
// "ema: 0.999 -> (none), lr_schedule: ..."; "" when nothing did, or the old entry is unknown.
std::string entry_changes(const YAML::Node& old, const YAML::Node& now) {
  if (!old || !old.IsMap() || !now.IsMap()) return "";
  std::map<std::string, std::pair<YAML::Node, YAML::Node>> keys;
  for (auto kv = old.begin(); kv != old.end(); ++kv) keys[kv->first.Scalar()].first = kv->second;
  for (auto kv = now.begin(); kv != now.end(); ++kv) keys[kv->first.Scalar()].second = kv->second;
  std::string out;
  for (auto& [k, v] : keys) {
    if (k == "epochs") continue;  // --epochs and a longer run are how a run is continued
    auto given = [](const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); };
    std::string a = given(v.first) ? canonical(v.first) : "",
                b = given(v.second) ? canonical(v.second) : "";
    if (a == b) continue;
    out += (out.empty() ? "" : ", ") + k + ": " + (given(v.first) ? flow(v.first) : "(none)") +
           " -> " + (given(v.second) ? flow(v.second) : "(none)");
  }
  return out;
}

// Every scalar in a node (to find the models a model includes or shares layers with).
void scalars(const YAML::Node& n, std::vector<std::string>& out) {
  if (n.IsScalar()) out.push_back(n.Scalar());
  if (n.IsSequence())
    for (auto e : n) scalars(e, out);
  if (n.IsMap())
    for (auto kv = n.begin(); kv != n.end(); ++kv) scalars(kv->second, out);
}

// A dataset entry as found on disk: every value that names a data file (looked up as the source
// does: as given, beside the pipeline, in the current folder, under /usr/share/datasets) becomes
// its absolute path followed by the file's size and modification time, so that the pipeline and
// the run folder's copy of it (whose paths were made absolute) give the same text.
void resolve_files(YAML::Node n, const std::string& pipeline_path) {
  if (n.IsSequence() || n.IsMap()) {
    for (auto e = n.begin(); e != n.end(); ++e)
      resolve_files(n.IsMap() ? e->second : *e, pipeline_path);
    return;
  }
  if (!n.IsScalar() || n.Scalar().empty() || n.Scalar().size() > 4096) return;
  std::string v = n.Scalar();
  fs::path beside = fs::path(pipeline_path).parent_path();
  for (const fs::path& p :
       {fs::path(v), beside / v, fs::current_path() / v, fs::path("/usr/share/datasets") / v}) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    std::error_code ec;
    fs::path real = fs::weakly_canonical(fs::absolute(p), ec);
    n = (ec ? p.string() : real.string()) + " " + std::to_string(st.st_size) + " " +
        std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    return;
  }
}

}  // namespace

std::vector<Runtime::StageDecl*> Runtime::stages_in_order() {
  std::map<std::string, StageDecl*> by;
  for (auto& s : stages_) by[s->name] = s.get();
  std::vector<StageDecl*> order;
  std::set<std::string> seen;
  std::function<void(StageDecl*)> visit = [&](StageDecl* s) {
    if (!seen.insert(s->name).second) return;
    for (auto& a : s->after)
      if (by.count(a)) visit(by[a]);
    order.push_back(s);
  };
  for (auto& s : stages_) visit(s.get());
  return order;
}

std::vector<std::string> Runtime::datasets_read(const StageDecl& s) const {
  std::vector<std::string> out;
  for (auto& ps : registry().get(Kind::Recipe, s.recipe).spec.params)
    if ((ps.name == "data" || ps.name.ends_with("_data")) && s.params.given(ps.name)) {
      std::string v = s.params.s(ps.name);
      out.push_back(v.substr(0, v.find('.')));
    }
  return out;
}

namespace {

// The plugin libraries that registered types from outside Loom's own plugin folder, by file
// name, each with the fingerprint of its bytes.
std::map<std::string, std::string> third_party_plugins(const Registry& registry) {
  std::set<std::string> libraries;
  std::error_code ec;
  const fs::path builtin = fs::weakly_canonical(builtin_plugin_dir(), ec);
  for (const TypeInfo* t : registry.all())
    if (!t->library.empty() &&
        fs::weakly_canonical(fs::path(t->library), ec).parent_path() != builtin)
      libraries.insert(t->library);
  std::map<std::string, std::string> out;
  for (auto& lib : libraries) {
    std::ifstream in(lib, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    out[fs::path(lib).filename().string()] = fingerprint(bytes.str());
  }
  return out;
}

}  // namespace

StageInputs Runtime::stage_inputs(const StageDecl& s,
                                  const std::map<std::string, std::string>& plugins) const {
  StageInputs in;
  YAML::Node entry = YAML::Clone(file_.root["stages"][s.name]);
  std::string epochs = entry["epochs"] ? entry["epochs"].Scalar() : "";
  entry.remove("epochs");
  in.entry = fingerprint(canonical(entry));
  // The models it names and, through any value naming a model (`sequence: [encoder, decoder]`,
  // a shared layer `encoder.coding`), those they include.
  YAML::Node models = file_.root["models"];
  std::vector<std::string> todo = s.models;
  while (!todo.empty()) {
    std::string m = todo.back();
    todo.pop_back();
    if (in.models.count(m) || !models || !models[m]) continue;
    in.models[m] = fingerprint(canonical(models[m]));
    std::vector<std::string> refs;
    scalars(models[m], refs);
    for (auto& r : refs)
      for (const std::string& name : {r, r.substr(0, r.find('.'))})
        if (models_->has(name) && !in.models.count(name)) todo.push_back(name);
  }
  // Datasets from files; a dataset a stage publishes is covered by that stage's key (`after`).
  YAML::Node datasets = file_.root["datasets"];
  for (auto& d : datasets_read(s))
    if (datasets && datasets[d]) {
      YAML::Node entry = YAML::Clone(datasets[d]);
      resolve_files(entry, file_.path);
      in.datasets[d] = fingerprint(canonical(entry));
    }
  for (auto& a : s.after) {
    auto it = inputs_.find(a);
    if (it != inputs_.end()) in.after[a] = it->second.full_key();
  }
  in.seed = std::to_string(file_.seed);
  in.version = loom_version();
  in.plugins = plugins;
  in.options = opt_.subset > 0 ? std::to_string(opt_.subset) : "";
  if (file_.precision != "fp32") in.options += (in.options.empty() ? "" : ", ") + file_.precision;
  if (opt_.epochs > 0) epochs = std::to_string(opt_.epochs);
  in.length = (epochs.empty() ? "" : "epochs " + epochs) +
              (opt_.max_steps > 0 ? ", max-steps " + std::to_string(opt_.max_steps) : "");
  return in;
}

void Runtime::decide_fates() {
  std::vector<StageDecl*> order = stages_in_order();
  const std::map<std::string, std::string> plugins = third_party_plugins(registry());
  for (StageDecl* s : order) inputs_[s->name] = stage_inputs(*s, plugins);
  for (StageDecl* s : order) fates_[s->name] = Fate::Run;
  if (!opt_.resume) return;
  records_ = read_stage_records(out_dir_);
  const YAML::Node begun = stages_as_begun(out_dir_);
  auto changes = [&](const std::string& stage) {
    return begun && begun.IsMap() ? entry_changes(begun[stage], file_.root["stages"][stage])
                                  : std::string();
  };
  std::set<std::string> forced(opt_.rerun.begin(), opt_.rerun.end());
  std::map<std::string, std::string> why;
  for (StageDecl* s : order) {
    Fate& fate = fates_[s->name];
    const StageInputs& now = inputs_[s->name];
    auto rec = records_.find(s->name);
    fs::path ckpt = fs::path(out_dir_) / "checkpoints" / s->name;
    bool has_checkpoint = fs::exists(ckpt / "last.safetensors");
    std::string before;
    for (auto& a : s->after)
      if (fates_[a] != Fate::Reuse && before.empty()) before = a;
    if (forced.count(s->name)) {
      fate = Fate::Restart;
      why[s->name] = "runs again from the start (--rerun)";
    } else if (!before.empty()) {
      fate = Fate::Restart;
      why[s->name] = "runs again from the start (stage '" + before + "' before it runs again)";
    } else if (rec == records_.end()) {
      fate = Fate::Run;
      std::string changed = has_checkpoint ? changes(s->name) : "";
      why[s->name] = has_checkpoint ? "runs (it did not finish; continuing from its checkpoint)"
                                    : "runs (it has not finished in this folder)";
      if (!changed.empty())
        why[s->name] += "; its entry changed since the run began (" + changed +
                        "): the run folder's pipeline.yaml has the overrides it began with, "
                        "--rerun " +
                        s->name + " starts it over";
    } else if (StageChange c = what_changed(now, rec->second.inputs); c.starts_over) {
      fate = Fate::Restart;
      why[s->name] = "runs again from the start (" + c.why + ")";
    } else if (!c.why.empty() || now.length != rec->second.inputs.length) {
      fate = Fate::Run;
      auto said = [](const std::string& l) { return l.empty() ? std::string("none") : l; };
      std::string what = !c.why.empty() ? c.why
                                        : said(rec->second.inputs.length) + " before, " +
                                              said(now.length) + " now";
      if (now.entry != rec->second.inputs.entry)
        if (std::string d = changes(s->name); !d.empty()) what += ": " + d;
      why[s->name] = has_checkpoint
                         ? "runs (" + what + "; continuing from its checkpoint, --rerun " +
                               s->name + " starts it over)"
                         : "runs again (" + what + ")";
    } else if (!fs::is_regular_file(ckpt / "final.safetensors")) {
      fate = Fate::Run;
      why[s->name] =
          "runs (the weights it left, " + (ckpt / "final.safetensors").string() + ", are missing)";
    } else {
      fate = Fate::Reuse;
      why[s->name] = "reused (finished " + rec->second.finished + "; inputs unchanged)";
    }
  }
  // A dataset a stage publishes lives in memory only: a stage that runs and reads it needs its
  // producer to run again (with the same inputs it makes the same data, so the stages after the
  // producer stay reused).
  for (bool changed = true; changed;) {
    changed = false;
    for (StageDecl* s : order) {
      if (fates_[s->name] == Fate::Reuse) continue;
      for (auto& d : datasets_read(*s)) {
        auto p = publishers_.find(d);
        if (p == publishers_.end() || fates_[p->second] != Fate::Reuse) continue;
        fates_[p->second] = Fate::Restart;
        why[p->second] = "runs again (stage '" + s->name + "' reads the dataset '" + d +
                         "' it publishes, which is kept in memory only)";
        changed = true;
      }
    }
  }
  if (!opt_.quiet)
    for (auto& s : stages_) log("stage " + s->name + ": " + why[s->name]);
  // Only the stages reused keep their records until they finish again.
  for (auto it = records_.begin(); it != records_.end();)
    it = fates_.count(it->first) && fates_[it->first] == Fate::Reuse ? std::next(it)
                                                                     : records_.erase(it);
}

void Runtime::save_stage_weights(const StageDecl& s) {
  std::vector<std::pair<std::string, const Tensor*>> t;
  std::set<std::string> seen;
  for (auto& m : s.models)
    for (auto& p : models_->get(m)->params()) {
      if (!seen.insert(p->name).second) continue;
      t.push_back({p->name, &p->value});
      if (p->average.size() == p->value.size() && p->average.size() > 0)
        t.push_back({"ema." + p->name, &p->average});
    }
  save_safetensors(out_path("checkpoints/" + s.name + "/final.safetensors"), t,
                   {{"pipeline", file_.name}, {"stage", s.name}, {"format", "loom-1"}});
}

void Runtime::load_stage_weights(const StageDecl& s) {
  std::string path = (fs::path(out_dir_) / "checkpoints" / s.name / "final.safetensors").string();
  TensorFile f = load_safetensors(path);
  std::vector<ParamPtr> params;
  for (auto& m : s.models)
    for (auto& p : models_->get(m)->params()) params.push_back(p);
  auto fail = [&](const std::string& what) {
    throw Error(path + ": " + what + "; run the stage again with --rerun " + s.name);
  };
  // Every tensor checked before any is loaded.
  for (auto& p : params) {
    auto it = f.tensors.find(p->name);
    if (it == f.tensors.end()) fail("has no tensor '" + p->name + "'");
    if (it->second.shape() != p->value.shape())
      fail("tensor '" + p->name + "' has shape " + to_string(it->second.shape()) +
           " but the model needs " + to_string(p->value.shape()));
    auto avg = f.tensors.find("ema." + p->name);
    if (avg != f.tensors.end() && avg->second.shape() != p->value.shape())
      fail("tensor 'ema." + p->name + "' has shape " + to_string(avg->second.shape()));
  }
  for (auto& p : params) {
    p->value.copy_from(f.tensors.at(p->name));
    auto avg = f.tensors.find("ema." + p->name);
    if (avg != f.tensors.end()) p->average = avg->second.clone();
  }
}

}  // namespace loom
