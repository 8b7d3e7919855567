// Channel-blocked layouts kept between layers (Model::blocked, Layer::layout_role): a model that
// keeps its feature maps blocked computes what the same model computes on plain tensors —
// outputs, every parameter and input gradient, the values and seeds of inner nodes — for each
// layer that takes the layout, in training and inference, fp32 and bf16, on one process and
// with the data-parallel batch norm; and its gradients pass the finite-difference check.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/rng.hpp"
#include "loom/training.hpp"
#include "support/harness.hpp"

using loom::Shape;
using loom::Tensor;
using loom::test::model_from_yaml;

namespace {

// Every layer that takes blocked maps, in the arrangements the UNet and the DCGAN use them: a
// stem convolution from 3 channels, batch norm, element-wise layers, dropout, a time vector added
// over the pixels, separable convolutions, pooling, a strided 1x1 link and a sum, transposed
// convolutions (strided, by the matrix product, and not), both upsamplings, a channel concat, and
// a global pool and a dense head to end on plain tensors. x is (3, 8, 8), t is (4).
const char* kModel = R"(
m:
  inputs: {x: [3, 8, 8], t: [4]}
  outputs: [head, image]
  layers:
    - {type: conv2d, filters: 16, kernel_size: [3], padding: same, inputs: [x], name: stem}
    - {type: batch_norm, name: stem_bn}
    - {type: relu}
    - {type: dropout, rate: 0.3, name: drop}
    - {type: dense, units: 16, inputs: [t], name: t16}
    - {type: broadcast_add, inputs: [t16, drop], name: timed}
    - {type: separable_conv2d, filters: 32, kernel_size: [3], padding: same, activation: swish}
    - {type: batch_norm}
    - {type: max_pool2d, pool_size: [3], strides: [2], padding: same, name: pool}
    - {type: conv2d, filters: 32, kernel_size: [1], strides: [2], padding: same, inputs: [timed], name: link}
    - {type: add, inputs: [pool, link], name: sum}
    - {type: avg_pool2d, pool_size: [2], strides: [1], padding: same, name: avg}
    - {type: conv2d_transpose, filters: 16, kernel_size: [3], strides: [2], padding: same, activation: leaky_relu, alpha: 0.2, inputs: [avg], name: up_t}
    - {type: upsampling2d, size: [2], inputs: [sum], name: up_n}
    - {type: conv2d, filters: 16, kernel_size: [1], name: up_n16}
    - {type: upsampling2d, size: [2], interpolation: bilinear, inputs: [sum], name: up_b}
    - {type: conv2d_transpose, filters: 16, kernel_size: [3], padding: same, activation: selu, name: up_b16}
    - {type: concat, axis: 0, inputs: [up_t, up_n16, up_b16, timed], name: cat}
    - {type: tanh, name: squash}
    - {type: conv2d, filters: 2, kernel_size: [3], padding: same, name: image}
    - {type: global_avg_pool2d, inputs: [squash], name: gap}
    - {type: dense, units: 3, name: head}
)";

// The nodes that must be blocked in kModel (a test of equal results means nothing if nothing is
// blocked), and some that must not.
const char* kBlocked[] = {"stem", "stem_bn", "drop",   "timed", "pool",   "link", "sum",   "avg",
                          "up_t", "up_n",    "up_n16", "up_b",  "up_b16", "cat",  "squash"};
const char* kPlain[] = {"t16", "image", "gap", "head"};

void randomize(loom::Model& m) {
  loom::Rng rng(5, "params", 0, 0);
  for (auto& p : m.params()) {
    bool positive = p->name.find("variance") != std::string::npos;
    float scale = p->value.size() > 64 ? 0.3f : 1.f;
    for (int64_t i = 0; i < p->value.size(); ++i)
      p->value[i] = positive ? rng.uniform(0.5f, 1.5f) : rng.uniform(-scale, scale);
  }
}

Tensor random(const Shape& sample, int64_t batch, uint64_t seed) {
  return loom::test::random_batch(sample, batch, seed, -1.5f, 1.5f);
}

loom::Param& param_of(loom::Model& m, const std::string& name) {
  for (auto& p : m.params())
    if (p->name == name) return *p;
  throw std::runtime_error("no parameter " + name);
}

// The largest |a - b| relative to the larger magnitude of b's values (1 at least).
double worst(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double scale = 1, w = 0;
  for (int64_t i = 0; i < b.size(); ++i) scale = std::max(scale, double(std::fabs(b[i])));
  for (int64_t i = 0; i < b.size() && i < a.size(); ++i)
    w = std::max(w, double(std::fabs(a[i] - b[i])));
  return w / scale;
}

struct Pair {
  std::shared_ptr<loom::Model> blocked, plain;
};

Pair pair() {
  Pair p{model_from_yaml(kModel, "m"), model_from_yaml(kModel, "m")};
  p.plain->set_blocked_layouts(false);
  randomize(*p.blocked);
  for (auto& q : p.blocked->params()) param_of(*p.plain, q->name).value.copy_from(q->value);
  return p;
}

// One forward and backward of both models with the same inputs and seeds (the output seeds and
// one on the inner node "sum", as a loss on an inner node gives), compared.
void compare(Pair& p, const loom::RunContext& ctx, double tol) {
  const int64_t n = 4;
  Tensor x = random({3, 8, 8}, n, 1), t = random({4}, n, 2);
  Tensor gh = random({3}, n, 3), gi = random({2, 8, 8}, n, 4), gs = random({32, 4, 4}, n, 5);
  int sum = p.blocked->find("sum");
  for (auto* m : {p.blocked.get(), p.plain.get()}) {
    m->zero_grads();
    m->forward(ctx, {&x, &t});
    m->seed_grad(m->output_node(0)).copy_from(gh);
    m->seed_grad(m->output_node(1)).copy_from(gi);
    m->seed_grad(sum).copy_from(gs);
    m->backward(ctx, true);
  }
  for (const char* name : kBlocked) EXPECT_TRUE(p.blocked->blocked(p.blocked->find(name))) << name;
  for (const char* name : kPlain) EXPECT_FALSE(p.blocked->blocked(p.blocked->find(name))) << name;
  for (size_t i = 0; i < 2; ++i)
    EXPECT_LT(worst(p.blocked->output(i), p.plain->output(i)), tol) << "output " << i;
  for (const char* name : {"sum", "cat", "drop"}) {
    int node = p.blocked->find(name);
    EXPECT_FALSE(p.blocked->value(node).blocked());
    EXPECT_LT(worst(p.blocked->value(node), p.plain->value(node)), tol) << name;
  }
  for (size_t i = 0; i < 2; ++i)
    EXPECT_LT(worst(p.blocked->input_grad(i), p.plain->input_grad(i)), tol) << "input grad " << i;
  for (auto& q : p.blocked->params()) {
    if (!q->trainable) {  // running statistics
      EXPECT_LT(worst(q->value, param_of(*p.plain, q->name).value), tol) << q->name;
      continue;
    }
    EXPECT_LT(worst(q->grad, param_of(*p.plain, q->name).grad), tol) << q->name << " gradient";
  }
}

}  // namespace

TEST(BlockedLayouts, KeptMapsComputeWhatPlainTensorsCompute) {
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "inference");
    Pair p = pair();
    loom::RunContext ctx;
    ctx.training = training;
    ctx.seed = 7;
    ctx.step = 3;
    // Reductions (bias gradients, batch statistics) may sum in other orders: float rounding.
    compare(p, ctx, 1e-4);
    ctx.step = 4;  // a second step on the same models: cached primitives, new dropout masks
    compare(p, ctx, 1e-4);
  }
}

TEST(BlockedLayouts, KeptMapsInBf16ComputeWhatPlainTensorsCompute) {
  Pair p = pair();
  loom::RunContext ctx;
  ctx.training = true;
  ctx.bf16 = true;
  // Both round the same values to bf16; the sums may run in other orders.
  compare(p, ctx, 2e-2);
}

TEST(BlockedLayouts, SynchronisedBatchNormTakesBlockedMaps) {
  loom::GradientReducer one_rank;  // the data-parallel code path, on one process
  Pair p = pair();
  loom::RunContext ctx;
  ctx.training = true;
  ctx.ranks = &one_rank;
  compare(p, ctx, 1e-4);
}

TEST(BlockedLayouts, SwitchedOffEveryMapIsPlain) {
  Pair p = pair();
  loom::RunContext ctx;
  Tensor x = random({3, 8, 8}, 2, 1), t = random({4}, 2, 2);
  p.plain->forward(ctx, {&x, &t});
  for (size_t i = 0; i < p.plain->nodes().size(); ++i) EXPECT_FALSE(p.plain->blocked(int(i)));
}

// A map whose channels are not a multiple of the block, or that a plain layer reads (flatten),
// stays plain, and so does every map that shares its layout through element-wise layers.
TEST(BlockedLayouts, MapsAPlainLayerTouchesStayPlain) {
  auto m = model_from_yaml(R"(
m:
  input: [1, 8, 8]
  layers:
    - {type: conv2d, filters: 16, kernel_size: [3], name: a}
    - {type: relu, name: a_relu}
    - {type: conv2d, filters: 8, kernel_size: [3], name: b}
    - {type: relu, name: b_relu}
    - {type: conv2d, filters: 16, kernel_size: [1], name: c}
    - {type: dropout, rate: 0.5, name: c_drop}
    - {type: flatten}
    - {type: dense, units: 2}
)",
                           "m");
  loom::RunContext ctx;
  Tensor x = random({1, 8, 8}, 2, 1);
  m->forward(ctx, {&x});
  EXPECT_TRUE(m->blocked(m->find("a")));
  EXPECT_TRUE(m->blocked(m->find("a_relu")));
  EXPECT_FALSE(m->blocked(m->find("b")));       // 8 channels
  EXPECT_FALSE(m->blocked(m->find("b_relu")));  // follows b
  EXPECT_FALSE(m->blocked(m->find("c")));       // c_drop, its follower, is read by flatten
  EXPECT_FALSE(m->blocked(m->find("c_drop")));
}

// kModel with one input and one output, as the harness takes: the vector comes from the image.
TEST(BlockedLayouts, GradientsPassTheFiniteDifferenceCheck) {
  std::string yaml = kModel;
  auto swap = [&](const std::string& from, const std::string& to) {
    size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  };
  swap("inputs: {x: [3, 8, 8], t: [4]}", "inputs: {x: [3, 8, 8]}");
  swap("outputs: [head, image]", "outputs: [head]");
  swap("    - {type: dense, units: 16, inputs: [t], name: t16}",
       "    - {type: global_avg_pool2d, inputs: [x], name: x_mean}\n"
       "    - {type: dense, units: 16, name: t16}");
  auto m = model_from_yaml(yaml, "m");
  randomize(*m);
  loom::test::GradCheck opts;
  opts.max_checks = 20;
  loom::test::check_gradients(*m, 2, opts);
  for (const char* name : kBlocked) EXPECT_TRUE(m->blocked(m->find(name))) << name;
}
