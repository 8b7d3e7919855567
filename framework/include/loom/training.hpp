// What a recipe (a training or inference procedure, itself a plugin) gets from the runtime: the
// stage's validated parameters, the pipeline's models and datasets, batches produced ahead of
// compute by a oneTBB data stage, and fit(), the training loop every recipe shares (optimizer,
// learning-rate schedule, gradient clipping, validation, early stopping, checkpoints, resume,
// metrics.jsonl, progress, NaN guard).
#pragma once
#include <functional>
#include <map>
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

// The gradient-synchronisation seam for data-parallel training, owned by the runtime and reached
// through StageContext::reducer(). One process: every call is a no-op. Many processes (MPI):
// each rank trains on its shard of every epoch (the loader shards by rank()/world()), and the
// trainer calls reduce_gradients() once per group step, after backward and before clipping.
class LOOM_API GradientReducer {
 public:
  virtual ~GradientReducer();
  virtual int rank() const { return 0; }
  virtual int world() const { return 1; }
  // Replaces each gradient by its mean over the ranks.
  virtual void reduce_gradients(const std::vector<ParamPtr>& params) { (void)params; }
  // Called by Model::backward (training steps on several ranks) as soon as a parameter's
  // gradient is complete for this step, so that its all-reduce can start while the layers below
  // run backward; reduce_gradients() then finishes it. A parameter gets its gradient from one
  // backward pass per step: a recipe that runs backward twice over the same parameters before
  // stepping them clears RunContext::ranks for all but the last pass (the MPI reducer refuses a
  // gradient handed over twice). Every rank must hand its parameters over in the same order
  // (the MPI reducer packs them into buckets in that order, and checks a digest of it each
  // step): an order from the model's structure, never from addresses or hash tables.
  virtual void gradient_ready(Param& p) { (void)p; }
  // Replaces each loss term by its mean over the ranks (what every rank then logs).
  virtual void reduce_terms(LossTerms& terms) { (void)terms; }
  // Makes every rank's values equal rank 0's (parameters at start, after a resume).
  virtual void broadcast(const std::vector<Tensor*>& tensors) { (void)tensors; }
  // Replaces each of the n values by its sum over the ranks (a layer's statistics over the whole
  // batch of a step: batch normalisation).
  virtual void sum(double* values, int64_t n) {
    (void)values;
    (void)n;
  }
  // Sharded generation: batch k of a sequence belongs to rank k mod N; each rank computes the
  // batches it owns into its copy of the whole output (`rows` rows of `row_floats` floats, in
  // batches of `rows_per_batch`), and gather_rows() then gives rank 0 every other rank's rows.
  bool owns(int64_t batch) const { return batch % world() == rank(); }
  virtual void gather_rows(float* out, int64_t rows, int64_t rows_per_batch, int64_t row_floats) {
    (void)out;
    (void)rows;
    (void)rows_per_batch;
    (void)row_floats;
  }
};

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
    // Time a diffusion stage's denoising steps (its model in inference on one batch) instead
    // of its training steps; other recipes refuse it.
    bool sampling = false;
    // A window also lasts at least this long (more steps when they are short), so that a model
    // whose step takes microseconds is not timed over a few hundred of them.
    double min_window_s = 0;
  };
  virtual const BenchSettings* bench() const { return nullptr; }
  virtual void bench_result(const std::vector<double>& images_per_s_per_window, int64_t batch) {
    (void)images_per_s_per_window;
    (void)batch;
  }
  // After the training windows: images/s of the stage's validation pass (0: none).
  virtual void bench_validation(double images_per_s) { (void)images_per_s; }
  // Gradient synchronisation across processes (a no-op reducer on one process).
  virtual GradientReducer& reducer();
  // The stage's `freeze:` list (models or layers this stage does not train).
  virtual std::vector<std::string> freeze() const;
  // The stage's arithmetic (`precision:`, else the pipeline's): true for bf16. The training loop
  // sets RunContext::bf16 from it, for training and validation steps alike.
  virtual bool bf16() const {
    return params().given("precision") && params().s("precision") == "bf16";
  }
};

// Declares the shared training parameters (batch_size, epochs, optimizer, lr_schedule, clip,
// early_stopping, checkpoint, shuffle, ...) on a recipe's Spec.
LOOM_API void add_training_params(Spec& spec);

// Parameter groups, each with its own optimizer, learning-rate schedule, slots and clipping,
// stepped explicitly. A single-model recipe has one group (fit() makes it); an adversarial recipe
// has "generator" and "discriminator"; EMA shadows and other state that must survive --resume
// are registered with track(). The trainer writes and reads checkpoints.
class LOOM_API Trainer {
 public:
  explicit Trainer(StageContext& ctx);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // How a group is stepped: an optimizer entry (`nadam` or {type: adam, lr: 2e-4, beta_1: 0.5}),
  // an optional learning-rate schedule, gradient clipping.
  struct GroupSettings {
    Params optimizer;
    Params lr_schedule;  // empty: constant
    bool has_schedule = false;
    double clip_norm = 0, clip_value = 0;
  };
  // The stage's own `optimizer`, `lr_schedule`, `clip_norm`, `clip_value`.
  GroupSettings stage_settings() const;
  // A group over `params` (duplicates removed).
  void add_group(const std::string& name, const std::vector<ParamPtr>& params,
                 const GroupSettings& settings);
  bool has_group(const std::string& name) const;
  std::vector<std::string> groups() const;
  const std::vector<ParamPtr>& params(const std::string& group) const;

  // Zeroes the gradients of a group's parameters (sizes them on first use).
  void zero_grad(const std::string& group);
  // One update of a group: gradient reduction across ranks, clipping, the optimizer with the
  // group's scheduled learning rate and its own 1-based update count, then the update hooks.
  void step(const std::string& group);
  // Called after every step(group), e.g. to update an EMA of the weights.
  void on_update(std::function<void(const std::string& group)> hook);
  int64_t updates(const std::string& group) const;
  double lr(const std::string& group) const;  // the rate of the last update (the first before any)

  // An exponential moving average of `group`'s parameters, updated after each of its steps
  // (shadow = decay·shadow + (1−decay)·value, from the values at the first step), saved in
  // checkpoints as "ema.<param>". swap_ema() exchanges shadows and live values (call it twice).
  // `statistics`: the model's tensors that no optimizer steps (batch-norm running statistics;
  // trainable ones in the list are ignored) are averaged alongside, so that the averaged weights
  // run with statistics of the same period: the live statistics describe the live weights'
  // activations, and with them the averaged weights of a fast-moving model can be far off.
  void add_ema(const std::string& group, double decay,
               const std::vector<ParamPtr>& statistics = {});
  bool has_ema() const;
  void swap_ema();
  // Hands the EMA shadows to their parameters (Param::average), so that later stages, the
  // weights file and `loom sample` can use them. fit() calls it when training ends.
  void keep_averages();

  // Extra state saved in checkpoints and restored by --resume: tensors under `name.<i>`,
  // integers as metadata.
  void track(const std::string& name, std::vector<Tensor*> tensors);
  void track(const std::string& name, int64_t* value);

  // The global step: batches trained so far in this stage (keys the random streams).
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }

  // Every tensor of the stage's models by qualified name (the weights a checkpoint holds).
  void add_weights(const std::vector<ParamPtr>& params);
  // Writes a checkpoint atomically: weights, optimizer slots, tracked state and `metadata`.
  void save(const std::string& path,
            const std::vector<std::pair<std::string, std::string>>& metadata);
  // Reads one: weights always; with `with_state` also slots, EMA and tracked state. Every tensor
  // is checked against the model's shape, naming the tensor and both shapes. Returns metadata.
  std::map<std::string, std::string> load(const std::string& path, bool with_state);

  StageContext& context() { return ctx_; }

 private:
  struct Group;
  struct Impl;
  StageContext& ctx_;
  std::unique_ptr<Impl> impl_;
  int64_t step_ = 0;
};

struct LOOM_API TrainHooks {
  // Forward + loss (+ backward when training): returns the loss terms of the batch. With
  // fit(ctx, trainer, hooks) the step also steps the trainer's groups itself.
  std::function<LossTerms(const Batch&, const RunContext&)> step;
  // Called after each epoch's validation (e.g. to write a reconstruction grid).
  std::function<void(int64_t epoch)> on_epoch_end;
  // Batches: the training split, an optional validation split, an optional paired split.
  DataSplit train, valid, paired_train, paired_valid;
  // Whether a lower first loss term means better weights, so that fit() keeps the best epoch
  // (best.safetensors) and early stopping may watch it. False for adversarial training, whose
  // losses weigh two networks against each other and say nothing of the samples' quality.
  bool losses_rank_epochs = true;
};

struct LOOM_API FitResult {
  int64_t epochs = 0, steps = 0;
  double last_train_loss = 0, last_valid_loss = 0, best_valid_loss = 0;
  double images_per_s = 0;
  bool stopped_early = false;
};

// The training loop every recipe shares: epochs, data, validation, metrics, early stopping,
// checkpoints and --resume, the NaN guard, progress and bench mode. hooks.step runs one
// training step (zero_grad / forward / backward / trainer.step for each group it trains).
LOOM_API FitResult fit(StageContext& ctx, Trainer& trainer, const TrainHooks& hooks);

// The single-model form: one group "model" over `model`'s trainable parameters (minus the
// stage's `freeze:`), stepped after hooks.step has run forward and backward.
LOOM_API FitResult fit(StageContext& ctx, Model& model, const TrainHooks& hooks);

// Applies the stage's `freeze:` list (and the entries' trainable: false) to `model`, and
// returns the names that match no layer as a located error. Reset when the guard is destroyed.
class LOOM_API FreezeGuard {
 public:
  FreezeGuard(StageContext& ctx, Model& model, std::vector<std::string> extra = {});
  ~FreezeGuard();

 private:
  Model& model_;
};

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
