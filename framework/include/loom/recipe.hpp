// Recipes: what a pipeline stage does (train an autoencoder, predict, ...). A recipe declares
// its parameters like any type (training recipes add add_training_params()), and run() drives
// models and data through the StageContext, usually with fit().
#pragma once
#include <memory>

#include "loom/export.hpp"
#include "loom/loss.hpp"
#include "loom/model.hpp"
#include "loom/registry.hpp"
#include "loom/training.hpp"

namespace loom {

// What validation knows of the data a stage parameter names (dataset or dataset.split), from
// the files' headers and label files: shape empty and count -1 when unknown (a dataset another
// stage publishes), num_classes 0 when unlabelled and -1 when unknown.
struct LOOM_API DataInfo {
  std::string name;  // as the stage named it
  Shape sample_shape;
  int64_t count = -1;
  int num_classes = -1;
  ValueRange range;  // the values after the dataset's `scale:` (unbounded when unknown)
  bool known() const { return !sample_shape.empty(); }
};

// A stage as `loom validate` sees it, before anything runs: a recipe's check() reads its
// parameters, models and data from here and reports what cannot work, located at the parameter.
class LOOM_API StageCheck {
 public:
  virtual ~StageCheck();
  virtual const Params& params() const = 0;
  // The model a string parameter names; nullptr when not given (an unknown name is reported
  // already).
  virtual std::shared_ptr<Model> model(const std::string& key) const = 0;
  // The data a string parameter names; unknown (known() false) when not given.
  virtual DataInfo data(const std::string& key) const = 0;
  // The loss a loss parameter names (a name or {type: ...}); nullptr when it does not resolve.
  virtual std::unique_ptr<Loss> loss(const std::string& key) const = 0;
  virtual void fail(const std::string& key, const std::string& message) = 0;
};

class LOOM_API Recipe {
 public:
  static constexpr Kind kind = Kind::Recipe;
  virtual ~Recipe();
  virtual void run(StageContext& ctx) = 0;
  // Checks before anything runs (shapes against the data files, the loss against the task);
  // `loom validate` and `loom run` call it once per stage.
  virtual void check(StageCheck&) const {}
};

// The checks of recipes that feed the data named by `data_key` to a model: the model's first
// input holds as many values as a sample.
LOOM_API void check_model_takes_data(StageCheck& c, const std::string& model_key,
                                     const std::string& data_key);
// The values a model's first output can take (from its layers' range()) cover the data it is
// compared with (the samples of `data_key`, after `scale:`); `what` says what the output is
// ("its targets", "the real images"). With `exact`, an output range much wider than the data's
// is refused too (a generator whose fakes a discriminator tells apart by range alone).
LOOM_API void check_output_range(StageCheck& c, const std::string& model_key,
                                 const std::string& data_key, const std::string& what, bool exact);
// For recipes with `conditional` and `num_classes`: a conditional model's data is labelled and
// its classes cover the labels.
LOOM_API void check_conditional_classes(StageCheck& c);

// Reshapes a batch tensor (N, ...) to a model input of the same size per sample, or throws a
// clear Error naming both shapes.
LOOM_API Tensor as_model_input(const Tensor& batch, const Model& model, size_t input = 0);

// Writes PATH.manifest.json beside the dataset a stage wrote at `path` (nothing for a .png
// grid): the run folder's pipeline and its hash, the hash of each model's weights as used now
// (`models`), the stage's entry with every parameter, the seed, and `random_streams`, the rule
// giving sample i its randomness. `loom regenerate` runs the entry again with `only_index: I`
// in the run folder (without `write`, `publish`, `preview`, `cols`; with `range: [lo, hi]` in
// place of `data` when `range` is given). Nothing is written for a run of `only_index` itself.
LOOM_API void record_provenance(StageContext& ctx, const std::string& path, int64_t count,
                                const std::vector<const Model*>& models,
                                const std::string& random_streams,
                                const std::pair<float, float>* range = nullptr);

}  // namespace loom
