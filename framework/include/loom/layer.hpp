// The layer interface. A layer maps one or more input tensors (batch first) to one output.
//
// Life cycle, driven by the model graph:
//   infer(input shapes)  -> output shape (shapes exclude the batch dimension); throw
//                           loom::Error("reason") on a mismatch: the framework adds the YAML
//                           location of the layer.
//   build(builder)       -> create parameters (once, after infer); infer() is called once more
//                           afterwards, so a layer whose shape depends on a shared parameter
//                           (dense_transpose) can refine it.
//   forward / backward   -> many times.
//
// The contract, answered once:
// - `out` (forward) and every non-null `din[i]` (backward) arrive sized to (batch, shape...);
//   their contents are unspecified: write every element.
// - backward receives the inputs and output of the layer's most recent forward and the gradient
//   of the loss w.r.t. that output; it OVERWRITES din[i] (null when not needed) and ADDS into
//   Param::grad (a parameter may be shared by several layers).
// - Param::grad is zeroed by the trainer before each step of the group that owns the parameter.
//   When ctx.frozen is set the stage does not train this layer: skip parameter gradients (they
//   would be discarded) and leave running statistics alone, but still fill din.
// - Re-entrancy: a layer object keeps what backward needs from its last forward. A second
//   forward before backward (a discriminator applied to real, then to fake images) replaces that
//   state; the model refuses such a backward with a clear message, so recipes either run
//   forward+backward per call or concatenate the batches into one call.
// - Threads: one layer object is used by one thread at a time (stages that share a layer never
//   run concurrently); inside forward/backward a layer may use oneDNN's threads freely.
// - Per-channel parameters (biases, batch-norm scale) take fan_in = fan_out = the channel count;
//   kernels take fan_in = inputs per output unit x receptive field, fan_out likewise.
// - Layouts: a layer that can read and write channel-blocked feature maps (Tensor::blocked())
//   says so with layout_role(); the model then keeps such maps blocked between the layers that
//   all accept them, and converts nowhere else (model inputs, outputs and every tensor a Plain
//   layer touches are plain). Each call's tensors carry their layout: a layer shared by several
//   nodes may see both.
// Layers own their oneDNN primitives and create them once per input shape (and layout).
#pragma once
#include <cmath>
#include <limits>
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
  // The exponential moving average of `value` a training stage kept (`ema:`), or empty. Written
  // beside the weights as "ema.<name>"; samplers use it (AveragedWeights) when present.
  Tensor average;
};
using ParamPtr = std::shared_ptr<Param>;

class GradientReducer;  // loom/training.hpp

// What one forward/backward call is. Stochastic layers draw from counter-based streams keyed by
// stream(layer key) and row(b), so a result never depends on threads, and backward can
// regenerate the noise of its forward instead of storing it.
struct RunContext {
  bool training = false;  // dropout, noise and batch statistics act only when training
  uint64_t seed = 0;      // pipeline seed
  int64_t step = 0;       // global step (training) or pass number (inference)
  // Distinguishes calls within one step (a discriminator on real, then on fake images) and
  // inference passes over the same data; 0 for the single call of a plain training step.
  uint64_t salt = 0;
  int64_t first = 0;  // index of the batch's first sample within its pass over the data
  // Set per layer by the model: this stage does not train the layer's parameters (`freeze:`).
  // A frozen layer keeps its running statistics (batch norm) and need not add to Param::grad;
  // it still back-propagates into its inputs.
  bool frozen = false;

  // Compute in bfloat16 where the layer can (`precision: bf16`): convolutions and matrix products
  // round their inputs and weights to bf16 and sum in fp32; tensors between layers, parameters
  // and gradients stay fp32. Layers that cannot ignore it.
  bool bf16 = false;
  // Data-parallel training (mpirun): the ranks that share this training step, each with its part
  // of the batch, for layers whose output depends on the whole batch (batch normalisation sums
  // its statistics over them). Null on one process and outside training steps.
  GradientReducer* ranks = nullptr;
  // The random stream of a layer (key = hash_string(layer name)) for this call.
  uint64_t stream(uint64_t key) const { return salt ? key ^ (0x9e3779b97f4a7c15ULL * salt) : key; }
  // A call whose batch is made of parts of `part` rows each (a discriminator's fakes, then its
  // reals), each part being this rank's rows `first` .. of a part of `stride` rows of the whole
  // step: row b of the call is row (b / part)·stride + first + b % part of the step. 0: one part.
  int64_t part = 0, stride = 0;
  // The stream index of row b of the batch: unique across the batches of one pass, and the same
  // on N ranks as on one process with their whole batch.
  uint64_t row(int64_t b) const {
    if (part <= 0) return uint64_t(first + b);
    return uint64_t((b / part) * stride + first + b % part);
  }
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

// The interval a tensor's values lie in, as far as a layer can tell (unbounded by default):
// inferred with the shapes so that `loom validate` can compare a model's output with its data.
struct ValueRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool bounded() const { return std::isfinite(lo) || std::isfinite(hi); }
  // Both ends, for messages: "[0, 1]", "[0, inf)".
  std::string str() const;
};

// How a layer takes channel-blocked feature maps (Tensor::blocked()).
enum class LayoutRole {
  Plain,    // never: its inputs and output are plain (the default)
  Follows,  // its output and its (C, H, W) inputs share one layout, either (element-wise
            // layers, batch norm, pooling, channel concat); other inputs are plain
  Any,      // each input and the output may be either (convolutions reorder as they need)
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
  // The range of the output given the inputs' (after infer): a bounded activation's interval,
  // the inputs' own for layers that only move values (reshape, pooling, dropout at inference),
  // else unbounded (the default).
  virtual ValueRange range(const std::vector<ValueRange>& inputs) const;
  // Floating-point operations of one sample's forward pass (a multiply-add counts 2), after
  // infer; `loom plan` adds them up. The default counts one per output value.
  virtual double flops(const std::vector<Shape>& inputs, const Shape& output) const;
  // Which layouts the layer takes (after infer).
  virtual LayoutRole layout_role() const { return LayoutRole::Plain; }
  // The layer's qualified name, set by the framework before build().
  const std::string& name() const { return name_; }
  void set_name(const std::string& n) { name_ = n; }
  // Set by the model graph at each forward, so a backward that would use the state of another
  // call is refused (see "Re-entrancy" above).
  uint64_t forward_serial() const { return forward_serial_; }
  void set_forward_serial(uint64_t s) { forward_serial_ = s; }

 private:
  std::string name_;
  uint64_t forward_serial_ = 0;
};

}  // namespace loom
