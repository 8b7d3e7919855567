// The runtime: loads a pipeline (plugins, models, datasets, stages; all validated), then runs
// the stages as a oneTBB task graph and owns the run folder's outputs.
#include "stage/runtime.hpp"

#include <tbb/flow_graph.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "core/distributed.hpp"
#include "loom/augmenter.hpp"
#include "loom/create.hpp"
#include "loom/interrupt.hpp"
#include "output/report.hpp"
#include "output/safetensors.hpp"
#include "plugin/plugins.hpp"
#include "stage/run_folder.hpp"

namespace fs = std::filesystem;

namespace loom {

Runtime::Runtime(const std::string& pipeline, RunOptions options) : opt_(std::move(options)) {
  keep_freed_memory_for_reuse();
  file_ = load_pipeline(pipeline, opt_.overrides);
  apply_recorded_options(file_, opt_);
  if (opt_.received) check_received_plugins(file_.plugin_dirs, file_.path);
  load_default_plugins(global_registry(),
                       opt_.received ? std::vector<std::string>{} : file_.plugin_dirs);
  out_dir_ = opt_.out_dir.empty() ? (fs::path("runs") / file_.name).string() : opt_.out_dir;
  models_ = std::make_unique<ModelSet>(global_registry(), file_.seed, file_.path);
  models_->set_memory_budget(opt_.memory_budget);
  Problems problems;
  if (file_.root["models"]) models_->declare(file_.root["models"]);
  validate_datasets(problems);
  models_->build_all(problems);
  validate_stages(problems);
  problems.raise_if_any();
  for (auto& r : opt_.rerun) {
    std::vector<std::string> names;
    for (auto& s : stages_) names.push_back(s->name);
    if (std::find(names.begin(), names.end(), r) != names.end()) continue;
    std::string list;
    for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw Error("--rerun " + r + ": " + file_.path + " has no stage '" + r + "'" +
                suggestion(r, names) + "; its stages: " + list);
  }
}

Runtime::~Runtime() = default;

bool Runtime::writes() const { return !opt_.benchmark && distributed::writer(); }

const Registry& Runtime::registry() const { return global_registry(); }

std::string Runtime::out_path(const std::string& rel) {
  fs::path p(rel);
  if (p.is_relative()) {
    // A relative path stays inside the run folder, through real folders only: `../x` and a
    // symbolic link planted in the folder would put the run's files elsewhere. (An absolute
    // path is the user's own choice and is taken as written.)
    if (leaves_run_folder(rel))
      throw Error("'" + rel + "' leads out of the run folder " + out_dir_ +
                  "; give a path inside it, or an absolute path");
    fs::path n = p.lexically_normal();
    p = fs::path(out_dir_) / n;
    fs::path walk = out_dir_;
    for (auto& part : n) {
      walk /= part;
      if (fs::is_symlink(walk))
        throw Error(walk.string() +
                    ": is a symbolic link inside the run folder; Loom writes its outputs only "
                    "into real files and folders there (remove the link)");
    }
  }
  // A benchmark (`loom bench`, `loom plan`) writes nothing: no folder is made for it. Of the
  // ranks of a data-parallel run, rank 0 alone writes.
  if (p.has_parent_path() && writes()) fs::create_directories(p.parent_path());
  return p.string();
}

void Runtime::log(const std::string& line) {
  if (!distributed::writer()) return;  // rank 0 speaks for every rank
  std::lock_guard<std::mutex> lock(mutex_);
  // A benchmark's standard output is its figures (`--json`): what its stages say goes aside.
  (opt_.benchmark ? std::cerr : std::cout) << line << std::endl;
}

void Runtime::metric(const std::string& stage, const std::string& json) {
  if (!writes()) return;  // a benchmark writes nothing; nor do ranks other than 0
  std::lock_guard<std::mutex> lock(mutex_);
  std::string path = (fs::path(out_dir_) / "metrics.jsonl").string();
  if (fs::is_symlink(path))
    throw Error(path + ": is a symbolic link; Loom writes the run's metrics only into a real file");
  std::ofstream o(path,
                  metrics_open_ ? std::ios::app : (opt_.resume ? std::ios::app : std::ios::trunc));
  metrics_open_ = true;
  // {"task": stage, ...rest}; stage names are plain (letters, digits, '_', '-', '.').
  o << "{\"task\":\"" << stage << "\"," << json.substr(1) << "\n";
  if (!o.flush())
    throw Error(path + ": cannot write the run's metrics (" + std::strerror(errno) + ")");
}

void Runtime::add_bench_report(BenchReport r) {
  std::lock_guard<std::mutex> lock(mutex_);
  bench_reports_.push_back(std::move(r));
}

void Runtime::add_bench_validation(const std::string& stage, double images_per_s) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& r : bench_reports_)
    if (r.stage == stage) r.valid_rate = images_per_s;
}

void Runtime::save_weights() {
  if (!writes()) return;
  std::vector<std::pair<std::string, const Tensor*>> t;
  for (auto& [name, p] : models_->params()) t.push_back({name, &p->value});
  for (auto& [name, p] : models_->params())
    if (p->average.size() == p->value.size() && p->average.size() > 0)
      t.push_back({"ema." + name, &p->average});
  save_safetensors(out_path("weights.safetensors"), t,
                   {{"pipeline", file_.name}, {"format", "loom-1"}});
}

void Runtime::run_stage(StageDecl& s) {
  auto recipe = registry().create<Recipe>(s.recipe, s.params);
  auto ctx = make_context(s);
  recipe->run(*ctx);
}

// A benchmark of a stage that reads a dataset another stage publishes (greedy layer-wise
// training: a predict stage's codings): that stage runs first, with whatever weights its models
// have (a timing needs data of the right shape and count, not trained codings), writing nothing.
void Runtime::make_bench_inputs(const StageDecl& s, std::set<std::string>& made) {
  for (auto& d : datasets_read(s)) {
    auto it = datasets_.find(d);
    if (it == datasets_.end() || it->second->src || it->second->loaded) continue;
    auto pub = publishers_.find(d);
    if (pub == publishers_.end() || !made.insert(pub->second).second) continue;
    StageDecl* producer = nullptr;
    for (auto& c : stages_)
      if (c->name == pub->second) producer = c.get();
    if (!producer) continue;
    if (registry().get(Kind::Recipe, producer->recipe).spec.find("epochs"))
      throw Error("stage '" + s.name + "' reads the dataset '" + d + "' that the training stage '" +
                  producer->name +
                  "' publishes; timing it needs that stage trained first (loom run)");
    make_bench_inputs(*producer, made);
    YAML::Node entry = YAML::Clone(file_.root["stages"][producer->name]);
    for (const char* k : {"recipe", "after", "write", "scatter", "preview"}) entry.remove(k);
    run_recipe(producer->name, producer->recipe, entry, file_.path);
  }
}

void Runtime::run_recipe(const std::string& name, const std::string& recipe,
                         const YAML::Node& entry, const std::string& where) {
  StageDecl s;
  s.name = name;
  s.recipe = recipe;
  s.params = make_params(entry, registry().get(Kind::Recipe, recipe).spec, where, name);
  s.keeps_metrics = false;
  run_stage(s);
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
    std::set<std::string> made;
    make_bench_inputs(*chosen, made);
    run_stage(*chosen);
    return;
  }
  // Of several ranks, rank 0 prepares the folder; every rank decides the stages' fates from the
  // folder as it was, before rank 0 changes it, and reads it (checkpoints) only once it is ready.
  if (writes()) {
    lock_run_folder(out_dir_);
    check_run_folder(out_dir_, opt_);  // again, under the lock
  }
  distributed::barrier();
  decide_fates();
  distributed::barrier();
  std::set<std::string> reused, restarted;
  for (auto& [name, fate] : fates_) {
    if (fate == Fate::Reuse) reused.insert(name);
    if (fate == Fate::Restart) restarted.insert(name);
  }
  if (writes()) {
    start_run_folder(out_dir_, file_, opt_, *models_, reused, restarted);
    write_stage_records(out_dir_, records_);
  }
  distributed::barrier();
  // report.html, written again as each stage ends (stages may end concurrently).
  ReportInput report;
  report.run_dir = out_dir_;
  report.summary = summary();
  report.threads = opt_.thread_budget.rfind("threads: ", 0) == 0 ? opt_.thread_budget.substr(9)
                                                                 : opt_.thread_budget;
  for (auto& s : stages_) {
    report.stages.push_back(s->name);
    report.recipes[s->name] = s->recipe;
  }
  std::mutex report_mutex;
  auto write_stage_report = [&](const std::string& stage, const std::string* failure) {
    if (!writes()) return;
    std::lock_guard<std::mutex> lock(report_mutex);
    if (failure)
      record_stage_failure(out_dir_, stage, *failure);
    else
      clear_stage_failure(out_dir_, stage);
    report.running.erase(stage);
    write_report(report);
  };
  tbb::flow::graph g;
  std::map<std::string, std::unique_ptr<tbb::flow::continue_node<tbb::flow::continue_msg>>> nodes;
  std::mutex err_mutex;
  std::vector<std::string> errors;
  std::set<std::string> failed;
  int interrupted = 0;  // the signal a stage stopped on
  for (auto& sp : stages_) {
    StageDecl* s = sp.get();
    nodes[s->name] = std::make_unique<tbb::flow::continue_node<tbb::flow::continue_msg>>(
        g, [this, s, &err_mutex, &errors, &failed, &interrupted, &report, &report_mutex,
            &write_stage_report](const tbb::flow::continue_msg&) {
          {
            std::lock_guard<std::mutex> lock(err_mutex);
            bool stop = stop_requested() != 0;  // asked to stop: start nothing new
            for (auto& a : s->after) stop = stop || failed.count(a);
            // Ranks run the stages one after another and stop at the first failure (the
            // command then stops every rank).
            if (distributed::world() > 1) stop = stop || !failed.empty();
            if (stop) {
              failed.insert(s->name);
              return;
            }
          }
          bool reuse = fates_.at(s->name) == Fate::Reuse;
          {
            std::lock_guard<std::mutex> lock(report_mutex);
            report.running[s->name] = "running";
            if (reuse) report.reused.insert(s->name);
          }
          std::string failure;
          try {
            if (reuse) {
              load_stage_weights(*s);
            } else {
              auto t0 = std::chrono::steady_clock::now();
              run_stage(*s);
              if (writes()) save_stage_weights(*s);
              double secs =
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::lock_guard<std::mutex> lock(records_mutex_);
              records_[s->name] = {inputs_.at(s->name), utc_now(), secs, report.threads};
              if (writes()) write_stage_records(out_dir_, records_);
            }
          } catch (const Interrupted& e) {
            std::lock_guard<std::mutex> lock(err_mutex);
            errors.push_back(e.what());
            failed.insert(s->name);
            interrupted = e.exit_code() - 128;
            failure = e.what();
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(err_mutex);
            errors.push_back(e.what());
            failed.insert(s->name);
            failure = e.what();
          }
          try {
            write_stage_report(s->name, failure.empty() ? nullptr : &failure);
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(err_mutex);
            errors.push_back(e.what());
            failed.insert(s->name);
          }
        });
  }
  std::vector<tbb::flow::continue_node<tbb::flow::continue_msg>*> roots;
  // Stages that MPI ranks run must call the collectives in the same order on every rank: with
  // several ranks, each stage also waits for the one before it (in an order that respects
  // `after:`).
  std::map<std::string, std::set<std::string>> before;
  for (auto& s : stages_) before[s->name].insert(s->after.begin(), s->after.end());
  if (distributed::world() > 1) {
    std::vector<StageDecl*> order = stages_in_order();
    for (size_t i = 1; i < order.size(); ++i) before[order[i]->name].insert(order[i - 1]->name);
  }
  for (auto& s : stages_) {
    for (auto& a : before[s->name]) tbb::flow::make_edge(*nodes[a], *nodes[s->name]);
    if (before[s->name].empty()) roots.push_back(nodes[s->name].get());
  }
  for (auto* r : roots) r->try_put(tbb::flow::continue_msg());
  g.wait_for_all();
  // Once, when no stage runs: the weights every stage left (also after a failed stage, so the
  // stages that finished can be used), never a mix of two stages' moments.
  if (failed.size() < stages_.size()) save_weights();
  if (!errors.empty()) {
    std::string all;
    for (size_t i = 0; i < errors.size(); ++i) all += (i ? "\n" : "") + errors[i];
    if (interrupted) throw Interrupted(interrupted, all);
    throw Error(all);
  }
}

}  // namespace loom
