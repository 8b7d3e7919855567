// Internal: the runtime of one pipeline — plugins, validated datasets, models and stages — and
// the oneTBB flow graph that runs the stages (independent ones concurrently).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "config/pipeline.hpp"
#include "config/yaml_util.hpp"
#include "data/loader.hpp"
#include "loom/recipe.hpp"
#include "loom/source.hpp"
#include "loom/training.hpp"
#include "model/model_set.hpp"
#include "stage/stage_cache.hpp"

namespace loom {

// Tunes glibc's allocator so per-step buffers are reused instead of mapped and unmapped each
// step (core/allocator.cpp). Called once by every Runtime.
LOOM_API void keep_freed_memory_for_reuse();

struct LOOM_API RunOptions {
  std::string out_dir;  // default runs/<pipeline name>
  std::vector<std::string> overrides;
  int64_t epochs = 0, max_steps = 0;
  int64_t subset = 0;  // cap every split at this many samples (CI, quick checks)
  int threads = 0;
  // The most memory the models' parameters may take, in bytes (0: the machine's memory).
  int64_t memory_budget = 0;
  std::string thread_budget;  // as printed at start ("threads: 2 for oneDNN ..."), for the report
  bool resume = false, quiet = false;
  bool overwrite = false;  // replace the run already in out_dir (see stage/run_folder.hpp)
  // --rerun: on --resume, these stages (and those after them) run from the start even when their
  // inputs are unchanged (stage/caching.cpp).
  std::vector<std::string> rerun;
  // The pipeline comes from a run folder (predict, sample): its plugins are loaded only when
  // allowed on LOOM_PLUGIN_PATH (check_received_plugins).
  bool received = false;
  std::string weights;  // the weights file a received run loaded (named in provenance manifests)
  // Benchmark mode: only the training stage `bench_stage` (default: the first one) runs.
  StageContext::BenchSettings bench;
  bool benchmark = false;
  std::string bench_stage;
};

// What `loom plan` shows of a stage before anything runs (stage/plan.cpp).
struct LOOM_API StagePlan {
  struct ModelPlan {
    std::string name;
    int64_t params = 0, trainable = 0;
    double forward_flops = 0;  // per sample
    int64_t values = 0;        // activation values per sample (every node's output)
  };
  std::string name, recipe;
  bool trains = false;  // has batch_size and epochs
  int64_t batch = 0, epochs = 0;
  int64_t train_images = -1, valid_images = -1;  // -1: unknown before the run
  int optimizer_slots = 0;                       // per parameter (Adam: 2)
  std::vector<ModelPlan> models;
};

struct BenchReport {
  std::string stage;
  int64_t batch = 0;
  std::vector<double> rates;
  double valid_rate = 0;  // images/s of the validation pass, 0 when not timed
};

class StageChecker;

class LOOM_API Runtime {
 public:
  // Parses, loads plugins, validates everything (every problem reported, located).
  Runtime(const std::string& pipeline, RunOptions options);
  ~Runtime();
  const PipelineFile& pipeline() const { return file_; }
  // A training stage's arithmetic: its own `precision:`, else the pipeline's.
  std::string precision(const Params& stage) const {
    return stage.given("precision") ? stage.s("precision") : file_.precision;
  }
  ModelSet& models() { return *models_; }
  const Registry& registry() const;
  std::string summary();
  std::string dot();
  std::vector<StagePlan> plan();
  // What the files' headers say of the data `ref` names (dataset or dataset.split; a whole
  // dataset: its 'train' split when it has splits).
  DataInfo data_info(const std::string& ref) const;
  // Loads every dataset that a stage uses (data errors surface here, before any output).
  void load_data();
  // Runs every stage; writes under the output folder.
  void run();
  // Runs `recipe` once as a stage `name` outside the pipeline's stages (`loom sample` of a
  // diffusion run), with the parameters of `entry`, validated as a stage's are (`where` names
  // their origin in messages). It keeps no metrics and writes only where its parameters say.
  void run_recipe(const std::string& name, const std::string& recipe, const YAML::Node& entry,
                  const std::string& where);
  const std::string& out_dir() const { return out_dir_; }
  const std::vector<BenchReport>& bench_reports() const { return bench_reports_; }

  // For stage contexts.
  DataSplit data(const std::string& ref, const std::string& fallback);
  void metric(const std::string& stage, const std::string& json);
  void log(const std::string& line);
  std::string out_path(const std::string& rel);
  const RunOptions& options() const { return opt_; }
  // Whether this process writes the run folder: not in a benchmark, and of the ranks of a
  // data-parallel run only rank 0.
  bool writes() const;
  void add_bench_report(BenchReport r);
  void add_bench_validation(const std::string& stage, double images_per_s);
  void publish(const std::string& name, std::shared_ptr<const Dataset> data,
               const std::string& splits_like);
  void save_weights();

 private:
  friend class StageChecker;  // a stage as its recipe's check() sees it (validation.cpp)
  // A `datasets:` entry: its source, splits, scale and transform, loaded once on first use.
  struct DatasetDecl {
    std::string name;
    YAML::Node node;
    Params params;  // the source's parameters
    std::string source;
    std::unique_ptr<Source> src;
    std::map<std::string, std::pair<int64_t, int64_t>> splits;  // name -> (skip, take or -1)
    std::vector<double> scale;
    std::vector<std::string> class_names;  // `class_names:`, empty when not given
    std::shared_ptr<Transform> transform;
    std::shared_ptr<const Dataset> loaded;
    std::mutex mutex;
  };
  struct StageDecl {
    std::string name, recipe;
    Params params;
    std::vector<std::string> after;
    Location where;
    std::vector<std::string> models;  // models the stage names (model, generator, ...)
    // Stages this one waits for because they share layers (added to `after`), for the summary.
    std::vector<std::string> shares_with;
    bool keeps_metrics = true;  // false for a recipe run outside the pipeline (run_recipe)
  };
  void validate_datasets(Problems& problems);
  void validate_stages(Problems& problems);
  // Stages that share a layer (and so its weights and its per-call state) never run at once:
  // each such pair not already ordered by `after` runs in declaration order.
  void order_sharing_stages();
  std::string trainable_summary(StageDecl& st);
  std::shared_ptr<const Dataset> load_dataset(DatasetDecl& d);
  void run_stage(StageDecl& s);
  void make_bench_inputs(const StageDecl& s, std::set<std::string>& made);
  // Dataset -> the stage that publishes it (`publish:`), from validation.
  std::map<std::string, std::string> publishers_;
  // Stage caching (stage/caching.cpp). What becomes of a stage on --resume: it runs as --resume
  // always did (from its checkpoint, if any), is reused (its recorded weights loaded, not run),
  // or runs again from the start (its checkpoints and metrics lines dropped).
  enum class Fate { Run, Reuse, Restart };
  // Stages in an order where each comes after those it waits for.
  std::vector<StageDecl*> stages_in_order();
  // The fingerprints of a stage's inputs; the stages it comes after must be in `inputs_`.
  // `plugins`: the third-party plugin libraries' fingerprints (the same for every stage).
  StageInputs stage_inputs(const StageDecl& s,
                           const std::map<std::string, std::string>& plugins) const;
  // Computes inputs_ and, on --resume, fates_ from the run folder's stages.json; logs each
  // stage's fate and why.
  void decide_fates();
  // checkpoints/<stage>/final.safetensors: the weights of the models a stage names.
  void save_stage_weights(const StageDecl& s);
  void load_stage_weights(const StageDecl& s);
  // The names of the datasets a stage reads (`data`, `*_data`), without their splits.
  std::vector<std::string> datasets_read(const StageDecl& s) const;
  // The context a stage's recipe runs in (stage/context.cpp).
  std::unique_ptr<StageContext> make_context(StageDecl& s);

  RunOptions opt_;
  PipelineFile file_;
  std::unique_ptr<ModelSet> models_;
  std::map<std::string, std::unique_ptr<DatasetDecl>> datasets_;
  std::vector<std::unique_ptr<StageDecl>> stages_;
  std::string out_dir_;
  std::mutex mutex_;
  std::vector<BenchReport> bench_reports_;
  bool metrics_open_ = false;
  std::map<std::string, StageInputs> inputs_;
  std::map<std::string, StageRecord> records_;  // stages.json, guarded by records_mutex_
  std::mutex records_mutex_;
  std::map<std::string, Fate> fates_;
};

}  // namespace loom
