// Recipes: what a pipeline stage does (train an autoencoder, predict, ...). A recipe declares
// its parameters like any type (training recipes add add_training_params()), and run() drives
// models and data through the StageContext, usually with fit().
#pragma once
#include "loom/export.hpp"
#include "loom/registry.hpp"
#include "loom/training.hpp"

namespace loom {

class LOOM_API Recipe {
 public:
  static constexpr Kind kind = Kind::Recipe;
  virtual ~Recipe();
  virtual void run(StageContext& ctx) = 0;
};

// Reshapes a batch tensor (N, ...) to a model input of the same size per sample, or throws a
// clear Error naming both shapes.
LOOM_API Tensor as_model_input(const Tensor& batch, const Model& model, size_t input = 0);

}  // namespace loom
