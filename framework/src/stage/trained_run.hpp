// Host side: a finished run rebuilt for inference (`loom predict`, `loom sample`), and datasets
// read at the value range a run was trained on.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loom/dataset_io.hpp"
#include "stage/runtime.hpp"

namespace loom {

// A finished run, rebuilt for inference: RUN_DIR (or a checkpoint file inside it) gives the
// pipeline RUN_DIR/pipeline.yaml with the trained weights (RUN_DIR/weights.safetensors or the
// checkpoint) loaded. Throws an Error naming the path when it is not a run folder or has no
// weights.
struct LOOM_API TrainedRun {
  std::unique_ptr<Runtime> runtime;
  std::string run_dir, weights;
  std::vector<std::string> missing;  // parameters the weights file does not hold
  TrainedRun();
  TrainedRun(TrainedRun&&) noexcept;
  ~TrainedRun();
  // The model `name`, every parameter of it trained; an Error names the known models otherwise.
  std::shared_ptr<Model> model(const std::string& name) const;
  // The value range the models were trained on: the first dataset's `scale`, default [0, 1].
  std::pair<float, float> data_range() const;
  // The class names of the first dataset that has them: its `class_names:`, or those of its
  // images (known_class_names: Fashion-MNIST's for an `idx` source with its default files);
  // empty when none has.
  std::vector<std::string> class_names() const;
  uint64_t seed() const;
  // The pipeline's stage with this recipe (and training `model` when it is given); a node that
  // is not a map when there is none.
  YAML::Node stage_with_recipe(const std::string& recipe, const std::string& model = "") const;
};
LOOM_API TrainedRun load_trained_run(const std::string& run_dir_or_checkpoint);

// Reads a dataset file (IDX with labels beside, .npy with .labels.npy) and rescales its values
// from the range it was stored at to [lo, hi]. An Error names the file when it holds no samples.
LOOM_API Dataset read_dataset_scaled(const std::string& path, float lo, float hi);

}  // namespace loom
