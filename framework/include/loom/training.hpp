// What a recipe (a training or inference procedure, itself a plugin) gets from the runtime: the
// stage's validated parameters, the pipeline's models and datasets, batches produced ahead of
// compute by a oneTBB data stage, and fit(), the training loop every recipe shares (optimizer,
// learning-rate schedule, gradient clipping, validation, early stopping, checkpoints, resume,
// metrics.jsonl, progress, NaN guard).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loom/export.hpp"
#include "loom/model.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"
#include "loom/source.hpp"

namespace loom {

// A contiguous range of a dataset (after the pipeline's scaling), e.g. fashion.train.
struct LOOM_API DataSplit {
  std::shared_ptr<const Dataset> data;
  int64_t begin = 0, count = 0;
  std::string name;  // "fashion.train"
  const float* sample(int64_t i) const { return data->sample(begin + i); }
  int32_t label(int64_t i) const { return data->labels[size_t(begin + i)]; }
};

struct LOOM_API Batch {
  Tensor x;        // (N, ...) inputs (augmented when the dataset has a transform)
  Tensor x_clean;  // (N, ...) the same samples before augmentation (reconstruction targets)
  Tensor paired;   // (N, ...) samples of a paired split (e.g. corrupted inputs), or empty
  Tensor labels;   // (N,) class labels as floats, or (N, K) mixed one-hot labels, or empty
  int64_t size = 0;
  int64_t first = 0;  // position of the batch in the epoch
};

// Named loss terms of one step; the first is the total that is minimised.
using LossTerms = std::vector<std::pair<std::string, double>>;

class LOOM_API StageContext {
 public:
  virtual ~StageContext();
  virtual const std::string& name() const = 0;
  virtual const Params& params() const = 0;  // the stage entry, validated against the recipe
  virtual const Registry& registry() const = 0;
  virtual std::shared_ptr<Model> model(const std::string& name) = 0;
  // "fashion.valid" or "fashion" (then `fallback_split`, or the whole dataset if it has no
  // such split). An empty optional split (e.g. no validation split) gives count 0.
  virtual DataSplit data(const std::string& ref, const std::string& fallback_split = "") = 0;
  // Path inside the run folder (folders created); absolute paths are kept.
  virtual std::string out_path(const std::string& relative) = 0;
  virtual uint64_t seed() const = 0;
  virtual void log(const std::string& line) = 0;
  // Appends one line to metrics.jsonl ("task" is set to the stage name).
  virtual void metric(const std::string& json_object) = 0;
  // Stops early for CI and benchmarks: the `--max-steps` and `--epochs` of the command line.
  virtual int64_t max_steps() const = 0;
  virtual int64_t epochs_override() const = 0;
  virtual bool resume() const = 0;
  virtual bool quiet() const = 0;
  // Makes `data` available to later stages as dataset `name` (declared by the stage's `publish`
  // key); with `splits_like` naming a whole dataset, it takes that dataset's splits.
  virtual void publish(const std::string& name, std::shared_ptr<const Dataset> data,
                       const std::string& splits_like) = 0;
  // Benchmark mode (`loom bench`): fit() runs `warmup` steps, then `windows` timed windows of
  // `steps` steps each, reports them through bench_result() and returns.
  struct BenchSettings {
    int64_t warmup = 0, windows = 0, steps = 0;
  };
  virtual const BenchSettings* bench() const { return nullptr; }
  virtual void bench_result(const std::vector<double>& images_per_s_per_window, int64_t batch) {
    (void)images_per_s_per_window;
    (void)batch;
  }
};

// Declares the shared training parameters (batch_size, epochs, optimizer, lr_schedule, clip,
// early_stopping, checkpoint, shuffle, ...) on a recipe's Spec.
LOOM_API void add_training_params(Spec& spec);

struct LOOM_API TrainHooks {
  // Forward + loss (+ backward when training): returns the loss terms of the batch.
  std::function<LossTerms(const Batch&, const RunContext&)> step;
  // Called after each epoch's validation (e.g. to write a reconstruction grid).
  std::function<void(int64_t epoch)> on_epoch_end;
  // Batches: the training split, an optional validation split, an optional paired split.
  DataSplit train, valid, paired_train, paired_valid;
};

struct LOOM_API FitResult {
  int64_t epochs = 0, steps = 0;
  double last_train_loss = 0, last_valid_loss = 0, best_valid_loss = 0;
  double images_per_s = 0;
  bool stopped_early = false;
};

// The shared training loop over `model`'s trainable parameters.
LOOM_API FitResult fit(StageContext& ctx, Model& model, const TrainHooks& hooks);

// Runs `step` over a split in inference mode and returns the mean of each term.
LOOM_API LossTerms evaluate(StageContext& ctx, const DataSplit& split, int64_t batch_size,
                            const std::function<LossTerms(const Batch&, const RunContext&)>& step,
                            const DataSplit& paired = {});

// Creates a loss from a stage entry (`loss: mse` or `loss: {type: huber, delta: 1}`).
LOOM_API std::unique_ptr<class Loss> make_loss(StageContext& ctx, const Params& entry);

// Extra weighted loss terms on named model tensors, declared in a stage as
//   terms: [{type: kl_sparsity, on: coding, weight: 5e-3, target: 0.1}]
// add_terms() computes them after a forward, seeds their gradients, and appends to `terms`.
class LOOM_API ExtraTerms {
 public:
  ExtraTerms(StageContext& ctx, Model& model, const std::string& key = "terms");
  ~ExtraTerms();
  double add_terms(Model& model, bool training, LossTerms& terms);
  bool empty() const;

 private:
  struct Term;
  std::vector<std::unique_ptr<Term>> terms_;
};

}  // namespace loom
