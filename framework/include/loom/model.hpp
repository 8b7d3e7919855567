// Model graphs: a directed acyclic graph of layers with named inputs and outputs. Models are
// declared in a pipeline's `models:` section; a model used inside another is inlined and shares
// its layers (and so its weights) with the original.
//
// One training step, as a recipe drives it:
//   model.forward(ctx, {&x});               // fills every node's value
//   loss.compute(model.output(), &y, &model.seed_grad(model.output_node()), 1.f);
//   model.backward(ctx);                   // adds into every trainable Param::grad
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loom/error.hpp"
#include "loom/export.hpp"
#include "loom/layer.hpp"

namespace loom {

struct LOOM_API ModelNode {
  std::string name;              // qualified: "encoder.hidden"; inputs: "encoder.input"
  std::string type;              // registered layer type, or "input"
  std::shared_ptr<Layer> layer;  // null for inputs
  std::vector<int> inputs;       // indices of earlier nodes
  std::vector<ParamPtr> params;  // parameters of this node's layer
  Shape shape;                   // without the batch dimension
  Location where;                // YAML location of the layer entry
  std::string path;              // YAML path of the layer entry
  bool frozen = false;           // `trainable: false` on the entry: not trained through this model
};

class LOOM_API Model {
 public:
  Model(std::string name, std::vector<ModelNode> nodes, std::vector<int> inputs,
        std::vector<int> outputs);
  ~Model();

  const std::string& name() const { return name_; }
  const std::vector<ModelNode>& nodes() const { return nodes_; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  int input_node(size_t i = 0) const { return inputs_[i]; }
  int output_node(size_t i = 0) const { return outputs_[i]; }
  const Shape& input_shape(size_t i = 0) const { return nodes_[inputs_[i]].shape; }
  const Shape& output_shape(size_t i = 0) const { return nodes_[outputs_[i]].shape; }
  // The range of output i's values when the inputs lie in `inputs` (one per input; missing ones
  // unbounded), and the node whose layer last bounded it (-1 if none): from each layer's range().
  std::pair<ValueRange, int> output_range(const std::vector<ValueRange>& inputs,
                                          size_t i = 0) const;
  // Node index by qualified name, or by a name unique among the local names; -1 if none.
  int find(const std::string& name) const;

  // Unique parameters (shared ones once), in first-use order.
  const std::vector<ParamPtr>& params() const { return params_; }
  // The parameters a stage training this model steps: trainable ones (not running statistics) of
  // nodes that are not frozen. A parameter shared by a frozen and a trained node is trained.
  std::vector<ParamPtr> trainable_params() const;
  int64_t param_count(bool trainable_only = false) const;

  // Freezing for the current stage: nodes frozen by their entry (`trainable: false`) plus every
  // node named by `names` — a model name ("encoder": its layers, wherever inlined) or a layer
  // ("encoder.dense_1", "dense_1"). Frozen nodes run with RunContext::frozen (no parameter
  // gradients, running statistics kept) and still pass gradients to earlier nodes. Returns the
  // names that matched nothing. Reset with set_frozen({}).
  std::vector<std::string> set_frozen(const std::vector<std::string>& names);
  bool frozen(int node) const { return frozen_[size_t(node)] != 0; }

  // Runs the graph. Inputs are batch-first tensors matching input_shape(i).
  void forward(const RunContext& ctx, const std::vector<const Tensor*>& inputs);
  const Tensor& output(size_t i = 0) const { return values_[outputs_[i]]; }
  // A node's value of the last forward, plain (converted here when the model keeps it blocked).
  const Tensor& value(int node) const;
  // Sum of the layers' regularisation penalties of the last forward.
  double penalty() const;

  // The gradient buffer of a node for the coming backward(), zeroed on first use after a
  // forward(); callers add (or write) the loss gradient into it, plain.
  Tensor& seed_grad(int node);
  // Whether node's feature maps are kept channel-blocked between layers (Tensor::blocked()),
  // decided at the first forward from the layers' layout_role(): a map is blocked when it is
  // not a model input or output and every layer that writes or reads it takes the layout.
  bool blocked(int node) const { return size_t(node) < blocked_.size() && blocked_[node]; }
  // Off: every tensor plain, as before layouts were kept (for comparisons). Before the first
  // forward; the default for new models is set_blocked_layouts_default's (on).
  void set_blocked_layouts(bool on);
  static void set_blocked_layouts_default(bool on);
  // Back-propagates the seeded gradients; parameter gradients are ADDED to Param::grad.
  // With input_grads, input_grad(i) holds d(loss)/d(input i) afterwards.
  void backward(const RunContext& ctx, bool input_grads = false);
  const Tensor& input_grad(size_t i = 0) const { return grads_[inputs_[i]]; }
  void zero_grads();  // all parameter gradients

  // Keras-like summary table.
  std::string summary() const;

 private:
  std::string name_;
  std::vector<ModelNode> nodes_;
  std::vector<int> inputs_, outputs_;
  // Inside a catch: rethrows the exception in flight as an Error naming the model, the layer and
  // the pass (a plugin's exception, whatever its type).
  [[noreturn]] void rethrow_located(const ModelNode& node, const char* pass) const;
  std::vector<ParamPtr> params_;
  std::vector<Tensor> values_, grads_, scratch_;
  std::vector<char> has_grad_, trainable_below_, frozen_;
  // Per node: the parameters whose gradients are complete once its backward has run (their
  // last node in backward order), for RunContext::ranks->gradient_ready.
  std::vector<std::vector<Param*>> complete_at_;
  std::vector<uint64_t> serials_;  // each node's forward serial of the last forward
  // Layouts (see blocked()): planned at the first forward.
  void plan_layouts();
  Tensor& zeroed_grad(int node);
  bool layouts_on_ = true, planned_ = false;
  std::vector<char> blocked_;
  mutable std::vector<Tensor> plain_;      // value() of blocked nodes
  mutable std::vector<char> plain_valid_;  // plain_[i] holds the last forward's value
  std::vector<Tensor> seeds_;              // seed_grad() of blocked nodes, plain
  std::vector<char> seeded_;
  std::vector<std::vector<int>> consumers_;
};

// Runs `model` in inference mode over n samples of per_sample values each, stored one after
// another, batch_size at a time, and returns the values of node `node` (-1: the output), shaped
// (n, node shape...). Throws a clear Error when per_sample does not fit the model's input.
// A model with a second input of shape (1) — a class label — takes one label per sample from
// `labels`. With only >= 0, only the batch holding sample `only` is run (the other rows of the
// result stay zero): sample `only` is then computed exactly as in the whole run.
// `only` of predict(), decode() and generate(): -1 runs every batch; this value runs the batches
// this process owns when several MPI ranks generate together (batch k: rank k mod N), and rank 0
// then holds every row, the same bytes as one process computes.
inline constexpr int64_t kShardAcrossRanks = -2;
LOOM_API Tensor predict(Model& model, const float* samples, int64_t n, int64_t per_sample,
                        int node = -1, int64_t batch_size = 256, uint64_t seed = 0,
                        const float* labels = nullptr, int64_t only = -1);

// While alive, the model's parameters that have an average (Param::average: the exponential
// moving average a training stage kept) hold it, and their trained values wait in its place.
class LOOM_API AveragedWeights {
 public:
  explicit AveragedWeights(Model& model, bool enable = true);
  ~AveragedWeights();
  AveragedWeights(const AveragedWeights&) = delete;
  AveragedWeights& operator=(const AveragedWeights&) = delete;
  // How many parameters were swapped (0: the model has no averages).
  size_t count() const { return swapped_.size(); }

 private:
  std::vector<ParamPtr> swapped_;
};

}  // namespace loom
