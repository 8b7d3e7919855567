// The layer interface. A layer maps one or more input tensors (batch first) to one output.
//
// Life cycle, driven by the model graph:
//   infer(input shapes)  -> output shape (shapes exclude the batch dimension); throw
//                           loom::Error("reason") on a mismatch: the framework adds the YAML
//                           location of the layer.
//   build(builder)       -> create parameters (once, after infer); infer() is called once more
//                           afterwards, so a layer whose shape depends on a shared parameter
//                           (dense_transpose) can refine it.
//   forward / backward   -> many times. backward receives the forward inputs and output, the
//                           gradient of the loss w.r.t. the output, and writes (overwrites) the
//                           input gradients din[i] (null when not needed) and ADDS parameter
//                           gradients into Param::grad (parameters may be shared).
// Layers own their oneDNN primitives and create them once per input shape.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"
#include "loom/tensor.hpp"

namespace loom {

struct LOOM_API Param {
  std::string name;  // qualified: "model.layer.kernel"
  Tensor value;
  Tensor grad;
  bool trainable = true;  // false: never updated by an optimizer (frozen, or running statistics)
};
using ParamPtr = std::shared_ptr<Param>;

struct RunContext {
  bool training = false;  // dropout, noise and batch statistics act only when training
  uint64_t seed = 0;      // pipeline seed
  int64_t step = 0;       // global step: keys the random streams of stochastic layers
};

// Given to Layer::build by the framework.
class LOOM_API LayerBuilder {
 public:
  virtual ~LayerBuilder();
  virtual const std::string& name() const = 0;  // qualified layer name ("encoder.dense_1")
  // Creates (or, when loading, finds) a parameter filled by the named initializer.
  virtual ParamPtr param(const std::string& local_name, const Shape& shape,
                         const std::string& initializer, int64_t fan_in, int64_t fan_out,
                         bool trainable = true) = 0;
  // A parameter of another, already built layer: `reference` is "layer.param" or
  // "model.layer.param". `key` names the parameter of this layer that asked, for errors.
  virtual ParamPtr shared(const std::string& reference, const std::string& key) = 0;
};

class LOOM_API Layer {
 public:
  static constexpr Kind kind = Kind::Layer;
  virtual ~Layer();

  virtual int min_inputs() const { return 1; }
  virtual int max_inputs() const { return 1; }
  virtual Shape infer(const std::vector<Shape>& inputs) = 0;
  virtual void build(LayerBuilder& builder);
  virtual void forward(const RunContext& ctx, const std::vector<const Tensor*>& in,
                       Tensor& out) = 0;
  virtual void backward(const RunContext& ctx, const std::vector<const Tensor*>& in,
                        const Tensor& out, const Tensor& dout, const std::vector<Tensor*>& din) = 0;
  // Regularisation loss added by the last forward (activity penalties); 0 for most layers.
  virtual double penalty() const { return 0.0; }
  // The layer's qualified name, set by the framework before build().
  const std::string& name() const { return name_; }
  void set_name(const std::string& n) { name_ = n; }

 private:
  std::string name_;
};

}  // namespace loom
