// Test harness: build models from inline YAML with every built-in plugin loaded, and check
// gradients against central finite differences (after Caffe's GradientChecker).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/model.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"

namespace loom::test {

// The process registry with the built-in plugins loaded (once).
Registry& registry();

// Builds model `name` from a YAML `models:` section, e.g.
//   model_from_yaml("m: {input: [4], layers: [{type: dense, units: 3}]}", "m")
std::shared_ptr<Model> model_from_yaml(const std::string& models_yaml, const std::string& name,
                                       uint64_t seed = 1);

// Several models of one `models:` section, sharing their layers as a pipeline's models do.
std::vector<std::shared_ptr<Model>> models_from_yaml(const std::string& models_yaml,
                                                     const std::vector<std::string>& names,
                                                     uint64_t seed = 1);

// Params over an inline YAML entry (e.g. "{type: rotate, degrees: 15}"), for create_from<>().
Params entry_from_yaml(const std::string& yaml);

// A batch of `batch` samples of shape `sample`, uniform in [lo, hi) from the seeded stream.
Tensor random_batch(const Shape& sample, int64_t batch, uint64_t seed, float lo = -1.f,
                    float hi = 1.f);

struct GradCheck {
  double step = 1e-3;    // finite-difference step (small: kinks of relu-like functions)
  double rtol = 2e-2;    // relative tolerance
  double atol = 2e-3;    // absolute tolerance
  int max_checks = 60;   // elements checked per tensor (randomly chosen)
  bool training = true;  // run layers in training mode
  float input_lo = -1.f, input_hi = 1.f;  // uniform input range
  GradientReducer* ranks = nullptr;       // RunContext::ranks (data-parallel layers)
};

// Checks d(Σ out·g)/d(input) and d/d(every parameter) for `batch` samples. Reports failures
// through gtest (EXPECT_*), naming the tensor and element.
void check_gradients(Model& model, int64_t batch, const GradCheck& opts = {});

// Convenience: a one-layer model `{input: SHAPE, layers: [LAYER]}` checked as above.
void check_layer_gradients(const std::string& input_shape, const std::string& layer_yaml,
                           int64_t batch, const GradCheck& opts = {});

}  // namespace loom::test
