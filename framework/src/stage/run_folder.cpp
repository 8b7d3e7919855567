#include "stage/run_folder.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "config/yaml_util.hpp"
#include "loom/io.hpp"
#include "model/model_set.hpp"
#include "output/safetensors.hpp"

namespace fs = std::filesystem;

namespace loom {
namespace {

Spec recorded_spec() {
  Spec s("How `loom run` was called; written by loom into the run folder's pipeline.yaml.");
  s.add("version", Type::String).doc("the Loom version that ran it");
  s.add("pipeline", Type::String).doc("the pipeline file it was first run from");
  s.add("epochs", Type::Int).min(1).doc("--epochs");
  s.add("subset", Type::Int).min(1).doc("--subset");
  s.add("max_steps", Type::Int).min(1).doc("--max-steps");
  s.add("set", Type::Strings).doc("every --set, in order (already applied to this file)");
  return s;
}

// A relative data file is looked up next to the pipeline, then in the current folder (then under
// /usr/share/datasets, which holds wherever the copy goes): the first two become absolute.
void make_data_paths_absolute(YAML::Node datasets, const std::string& pipeline_path) {
  static const std::set<std::string> kNotFiles{"source", "splits", "scale", "transform",
                                               "class_names"};
  if (!datasets || !datasets.IsMap()) return;
  fs::path beside = fs::path(pipeline_path).parent_path();
  for (auto d = datasets.begin(); d != datasets.end(); ++d) {
    if (!d->second.IsMap()) continue;
    for (auto kv = d->second.begin(); kv != d->second.end(); ++kv) {
      if (kNotFiles.count(kv->first.Scalar()) || !kv->second.IsScalar()) continue;
      fs::path given(kv->second.Scalar());
      if (given.empty() || given.is_absolute()) continue;
      for (const fs::path& dir : {beside, fs::current_path()})
        if (fs::is_regular_file(dir / given)) {
          kv->second = fs::absolute(dir / given).lexically_normal().string();
          break;
        }
    }
  }
}

}  // namespace

std::string loom_version() { return LOOM_VERSION; }

void check_run_folder(const std::string& dir, const RunOptions& options) {
  if (options.resume || options.overwrite) return;
  std::vector<std::string> found;
  if (fs::exists(fs::path(dir) / "metrics.jsonl")) found.push_back("metrics.jsonl");
  if (fs::is_directory(fs::path(dir) / "checkpoints")) found.push_back("checkpoints/");
  if (found.empty()) return;
  std::string what;
  for (auto& f : found) what += (what.empty() ? "" : ", ") + f;
  throw Error(dir + " already holds a run (" + what +
              "); continue it with --resume, or replace it with --overwrite (or give another "
              "folder with --out)");
}

void lock_run_folder(const std::string& dir) {
  fs::create_directories(dir);
  std::string path = (fs::path(dir) / ".loom.lock").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) throw Error(path + ": cannot lock the run folder (" + std::strerror(errno) + ")");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw Error(dir +
                ": another loom run is writing this folder; wait for it to finish, or give "
                "another --out");
  }
  // The descriptor stays open: the lock is released when the process ends, however it ends.
}

bool leaves_run_folder(const std::string& rel) {
  fs::path n = fs::path(rel).lexically_normal();
  return n.empty() || n == "." || *n.begin() == "..";
}

void apply_recorded_options(const PipelineFile& file, RunOptions& options) {
  YAML::Node block = file.root["loom_run"];
  if (!block) return;
  Spec spec = recorded_spec();
  Problems problems;
  check_params(block, spec, file.path, "loom_run", {}, problems);
  problems.raise_if_any();
  Params p = make_params(block, spec, file.path, "loom_run");
  if (options.epochs == 0 && p.given("epochs")) options.epochs = p.i("epochs");
  if (options.subset == 0 && p.given("subset")) options.subset = p.i("subset");
  if (options.max_steps == 0 && p.given("max_steps")) options.max_steps = p.i("max_steps");
}

void start_run_folder(const std::string& dir, const PipelineFile& file, const RunOptions& options,
                      ModelSet& models, const std::set<std::string>& reused,
                      const std::set<std::string>& restarted) {
  fs::path root(dir);
  std::map<std::string, int64_t> checkpointed;  // stage -> the epochs its last checkpoint holds
  if (options.resume && fs::is_directory(root / "checkpoints"))
    for (auto& stage : fs::directory_iterator(root / "checkpoints")) {
      fs::path last = stage.path() / "last.safetensors";
      if (!fs::is_regular_file(last) || restarted.count(stage.path().filename().string())) continue;
      TensorFile f = load_safetensors(last.string());
      try {
        checkpointed[stage.path().filename().string()] = std::stoll(f.metadata["epoch"]);
      } catch (...) {
        throw Error(last.string() + ": the checkpoint's epoch entry is damaged");
      }
      for (auto& [name, param] : models.params()) {
        auto it = f.tensors.find(name);
        if (it != f.tensors.end() && it->second.shape() != param->value.shape())
          throw Error(last.string() + ": tensor '" + name + "' has shape " +
                      to_string(it->second.shape()) + " but the pipeline's model needs " +
                      to_string(param->value.shape()) +
                      " (the architecture changed since this checkpoint was written; run the "
                      "stage again from the start with --rerun " +
                      stage.path().filename().string() +
                      ", start a new run folder, or --overwrite this one)");
      }
    }
  // --resume repeats what no checkpoint holds: the epochs after a stage's last checkpoint (a run
  // killed after an epoch's metrics lines but before its checkpoint), a stage with no checkpoint
  // yet (it starts again), and the lines a stage writes when it ends (epoch 0: a test split).
  // Their earlier lines are dropped, so that every epoch is reported once.
  if (options.resume && fs::is_regular_file(root / "metrics.jsonl")) {
    std::ifstream in(root / "metrics.jsonl");
    std::string kept, line;
    bool dropped = false;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("task") && j["task"].is_string() &&
          j.contains("epoch") && j["epoch"].is_number_integer()) {
        std::string task = j["task"].get<std::string>();
        auto it = checkpointed.find(task);
        int64_t epoch = j["epoch"].get<int64_t>();
        if (!reused.count(task) && (restarted.count(task) || it == checkpointed.end() ||
                                    epoch > it->second || epoch == 0)) {
          dropped = true;
          continue;
        }
      }
      kept += line + "\n";
    }
    if (dropped)
      write_atomically((root / "metrics.jsonl").string(), [&](const std::string& tmp) {
        std::ofstream o(tmp);
        o << kept;
        if (!o.flush()) throw Error(tmp + ": cannot write the run's metrics");
      });
  }
  if (options.resume)
    for (auto& stage : restarted) fs::remove_all(root / "checkpoints" / stage);
  if (options.overwrite) {
    fs::remove(root / "metrics.jsonl");
    fs::remove_all(root / "checkpoints");
    fs::remove(root / "weights.safetensors");
    fs::remove(root / "stages.json");
  }
  fs::create_directories(root);

  YAML::Node out = YAML::Clone(file.root);
  std::vector<std::string> sets;
  if (YAML::Node before = file.root["loom_run"])
    if (before["set"])
      for (auto s : before["set"]) sets.push_back(s.Scalar());
  sets.insert(sets.end(), options.overrides.begin(), options.overrides.end());
  out.remove("loom_run");
  if (!out["name"]) out["name"] = file.name;
  if (!file.plugin_dirs.empty()) {
    YAML::Node plugins(YAML::NodeType::Sequence);
    for (auto& p : file.plugin_dirs) plugins.push_back(fs::absolute(p).lexically_normal().string());
    out["plugins"] = plugins;
  }
  make_data_paths_absolute(out["datasets"], file.path);

  YAML::Node run(YAML::NodeType::Map);
  run["version"] = loom_version();
  const YAML::Node& given = file.root;
  bool rerun = given["loom_run"] && given["loom_run"]["pipeline"];
  run["pipeline"] = rerun ? given["loom_run"]["pipeline"].Scalar()
                          : fs::absolute(file.path).lexically_normal().string();
  if (options.epochs > 0) run["epochs"] = options.epochs;
  if (options.subset > 0) run["subset"] = options.subset;
  if (options.max_steps > 0) run["max_steps"] = options.max_steps;
  if (!sets.empty()) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (auto& s : sets) list.push_back(s);
    run["set"] = list;
  }
  out["loom_run"] = run;

  YAML::Emitter e;
  e << out;
  write_atomically((root / "pipeline.yaml").string(), [&](const std::string& tmp) {
    std::ofstream o(tmp);
    o << "# The pipeline of this run: overrides applied, data files and plugin folders made\n"
         "# absolute, and in `loom_run` the options it was run with. `loom run` this file with\n"
         "# another --out to repeat the run.\n"
      << e.c_str() << "\n";
    if (!o.flush()) throw Error(tmp + ": cannot write the run's pipeline.yaml");
  });
}

}  // namespace loom
