// The training core in process: parameter groups stepped one at a time, EMA, per-stage freezing,
// refused re-entrant backward, tracked state across save/load, the fit() loop with a fake stage
// context.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>

#include "config/yaml_util.hpp"
#include "loom/create.hpp"
#include "loom/loss.hpp"
#include "loom/training.hpp"
#include "output/safetensors.hpp"
#include "support/fake_stage.hpp"
#include "support/harness.hpp"

using namespace loom;
using namespace loom::test;
namespace fs = std::filesystem;

namespace {

std::vector<float> values(const ParamPtr& p) {
  return std::vector<float>(p->value.data(), p->value.data() + p->value.size());
}

// A tiny "GAN": g maps codings to samples, d scores them, gd = d(g(z)); one model set, so the
// three share their layers as a pipeline's models do.
const char* kGan =
    "g: {input: [3], layers: [{type: dense, units: 4, activation: relu}, {type: dense, units: "
    "5}]}\n"
    "d: {input: [5], layers: [{type: dense, units: 4, activation: relu}, {type: dense, units: "
    "1}]}\n"
    "gd: {sequence: [g, d]}";

Tensor filled(Shape s, float k) {
  Tensor t(std::move(s));
  for (int64_t i = 0; i < t.size(); ++i) t[i] = std::sin(k * float(i + 1));
  return t;
}

}  // namespace

TEST(Trainer, OneGroupSteppedTheOtherBitIdentical) {
  auto m = models_from_yaml(kGan, {"g", "d", "gd"});
  auto& g = m[0];
  auto& d = m[1];
  auto& gd = m[2];
  FakeStage stage("{optimizer: {type: adam, lr: 0.01}}");
  Trainer t(stage);
  t.add_group("generator", g->trainable_params(), t.stage_settings());
  t.add_group("discriminator", d->trainable_params(), t.stage_settings());
  std::vector<std::vector<float>> before_d;
  for (auto& p : d->params()) before_d.push_back(values(p));
  auto before_g = values(g->params()[0]);
  Tensor x = filled({2, 3}, 0.7f);
  t.zero_grad("generator");
  t.zero_grad("discriminator");
  RunContext rc;
  rc.training = true;
  gd->forward(rc, {&x});
  gd->seed_grad(gd->output_node()).fill(1.f);
  gd->backward(rc);
  t.step("generator");
  EXPECT_NE(values(g->params()[0]), before_g);
  for (size_t i = 0; i < d->params().size(); ++i)
    EXPECT_EQ(values(d->params()[i]), before_d[i]);  // it has gradients, but was not stepped
  EXPECT_EQ(t.updates("generator"), 1);
  EXPECT_EQ(t.updates("discriminator"), 0);
}

TEST(Trainer, GroupsKeepTheirOwnOptimizerSettings) {
  auto m =
      model_from_yaml("m: {input: [2], layers: [{type: dense, units: 1, use_bias: false}]}", "m");
  FakeStage stage("{optimizer: {type: sgd, lr: 0.5}}");
  Trainer t(stage);
  Trainer::GroupSettings fast = t.stage_settings();
  Trainer::GroupSettings slow = t.stage_settings();
  slow.optimizer = entry_from_yaml("{type: sgd, lr: 0.1}");
  auto p = m->params()[0];
  t.add_group("fast", {p}, fast);
  EXPECT_THROW(t.add_group("fast", {p}, slow), Error);
  p->grad.resize(p->value.shape());
  float w0 = p->value[0];
  p->grad.fill(1.f);
  t.step("fast");
  EXPECT_NEAR(p->value[0], w0 - 0.5f, 1e-6);
  EXPECT_DOUBLE_EQ(t.lr("fast"), 0.5);
}

TEST(Trainer, EmaFollowsTheUpdateRule) {
  auto m =
      model_from_yaml("m: {input: [2], layers: [{type: dense, units: 1, use_bias: false}]}", "m");
  auto p = m->params()[0];
  FakeStage stage("{optimizer: {type: sgd, lr: 1.0}}");
  Trainer t(stage);
  t.add_group("model", {p}, t.stage_settings());
  t.add_ema("model", 0.9);
  p->grad.resize(p->value.shape());
  std::vector<double> shadow;
  for (int s = 0; s < 4; ++s) {
    p->grad.fill(0.25f * float(s + 1));
    t.step("model");
    if (s == 0) {
      shadow = {p->value[0], p->value[1]};  // starts at the weights after the first update
    } else {
      for (int i = 0; i < 2; ++i) shadow[size_t(i)] = 0.9 * shadow[size_t(i)] + 0.1 * p->value[i];
    }
  }
  std::vector<float> live = values(p);
  t.swap_ema();
  EXPECT_NEAR(p->value[0], shadow[0], 1e-6);
  EXPECT_NEAR(p->value[1], shadow[1], 1e-6);
  t.swap_ema();
  EXPECT_EQ(values(p), live);  // swapping back restores the training weights exactly
}

// The running statistics of batch norm are averaged with the weights: the averaged weights run
// with averaged statistics, never with the live ones (which describe the live weights).
TEST(Trainer, EmaAveragesRunningStatisticsAlongside) {
  auto m = model_from_yaml("m: {input: [3], layers: [{type: dense, units: 2}, {type: batch_norm}]}",
                           "m");
  FakeStage stage("{optimizer: {type: sgd, lr: 0.1}}");
  Trainer t(stage);
  t.add_weights(m->params());
  t.add_group("model", m->trainable_params(), t.stage_settings());
  t.add_ema("model", 0.5, m->params());
  ParamPtr mean;
  for (auto& p : m->params())
    if (!p->trainable && p->name.find("mean") != std::string::npos) mean = p;
  ASSERT_TRUE(mean) << "no running mean among the model's tensors";
  std::vector<double> shadow;
  RunContext rc;
  rc.training = true;
  for (int s = 0; s < 3; ++s) {
    Tensor x = filled({4, 3}, 0.5f + float(s));
    x[0] = -1.f;
    m->forward(rc, {&x});
    m->seed_grad(m->output_node()).fill(0.1f);
    m->backward(rc);
    t.step("model");
    for (int i = 0; i < 2; ++i) {
      if (s == 0)
        shadow.push_back(mean->value[i]);
      else
        shadow[size_t(i)] = 0.5 * shadow[size_t(i)] + 0.5 * mean->value[i];
    }
  }
  std::vector<float> live = values(mean);
  ASSERT_NE(live[0], float(shadow[0])) << "the statistics did not move; the test shows nothing";
  t.swap_ema();
  EXPECT_NEAR(mean->value[0], shadow[0], 1e-6);
  EXPECT_NEAR(mean->value[1], shadow[1], 1e-6);
  t.swap_ema();
  EXPECT_EQ(values(mean), live);
  // Saved and restored with the run.
  std::string path = stage.out_path("stats.safetensors");
  t.save(path, {});
  EXPECT_TRUE(load_safetensors(path).tensors.count("ema." + mean->name));
}

TEST(Trainer, CheckpointRestoresSlotsEmaAndTrackedState) {
  auto m = model_from_yaml("m: {input: [2], layers: [{type: dense, units: 3}]}", "m");
  FakeStage stage("{optimizer: adam}");
  std::string path = stage.out_path("ck.safetensors");
  Tensor buffer = filled({4}, 1.3f);
  int64_t counter = 41;
  auto run = [&](Trainer& t) {
    t.add_weights(m->params());
    t.add_group("model", m->trainable_params(), t.stage_settings());
    t.add_ema("model", 0.99);
    t.track("replay", {&buffer});
    t.track("counter", &counter);
  };
  Trainer a(stage);
  run(a);
  for (auto& p : m->params()) {
    p->grad.resize(p->value.shape());
    p->grad.fill(0.3f);
  }
  a.set_step_count(5);
  a.step("model");
  a.step("model");
  a.save(path, {{"epoch", "1"}});
  auto saved = values(m->params()[0]);
  Tensor saved_buffer = buffer.clone();
  // Change everything, then load into a fresh trainer.
  for (auto& p : m->params()) p->value.fill(9.f);
  buffer.fill(0.f);
  counter = 0;
  Trainer b(stage);
  run(b);
  auto meta = b.load(path, true);
  EXPECT_EQ(meta["epoch"], "1");
  EXPECT_EQ(values(m->params()[0]), saved);
  EXPECT_EQ(b.step_count(), 5);
  EXPECT_EQ(b.updates("model"), 2);
  EXPECT_EQ(counter, 41);
  for (int64_t i = 0; i < buffer.size(); ++i) EXPECT_EQ(buffer[i], saved_buffer[i]);
  // The next update continues the same run: a's third update from the same state.
  for (auto& p : m->params()) p->grad.fill(0.3f);
  b.step("model");
  auto resumed = values(m->params()[0]);
  for (auto& p : m->params()) p->value.fill(9.f);
  a.load(path, true);
  a.step("model");
  EXPECT_EQ(values(m->params()[0]), resumed);
  EXPECT_EQ(a.updates("model"), 3);
}

TEST(Trainer, ResumeIntoAChangedArchitectureNamesTheTensor) {
  auto small = model_from_yaml("m: {input: [2], layers: [{type: dense, units: 3}]}", "m");
  auto big = model_from_yaml("m: {input: [2], layers: [{type: dense, units: 5}]}", "m");
  FakeStage stage("{optimizer: adam}");
  std::string path = stage.out_path("ck.safetensors");
  Trainer a(stage);
  a.add_weights(small->params());
  a.add_group("model", small->trainable_params(), a.stage_settings());
  a.save(path, {});
  auto before = values(big->params()[0]);
  Trainer b(stage);
  b.add_weights(big->params());
  b.add_group("model", big->trainable_params(), b.stage_settings());
  try {
    b.load(path, true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("m.dense_1.kernel"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2, 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2, 5)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("architecture changed"), std::string::npos) << msg;
  }
  EXPECT_EQ(values(big->params()[0]), before);  // nothing was changed by the failed load
}

TEST(Trainer, ResumeWithoutOptimizerStateIsRefused) {
  auto m = model_from_yaml("m: {input: [2], layers: [{type: dense, units: 3}]}", "m");
  FakeStage stage("{optimizer: adam}");
  std::string path = stage.out_path("weights.safetensors");
  std::vector<std::pair<std::string, const Tensor*>> t;
  for (auto& p : m->params()) t.push_back({p->name, &p->value});
  save_safetensors(path, t, {{"step", "3"}});
  Trainer b(stage);
  b.add_weights(m->params());
  b.add_group("model", m->trainable_params(), b.stage_settings());
  try {
    b.load(path, true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer state"), std::string::npos) << e.what();
  }
}

TEST(Freezing, FrozenNodesPassGradientsButTrainNothing) {
  auto gd = models_from_yaml(kGan, {"gd"})[0];
  EXPECT_TRUE(gd->set_frozen({"d"}).empty());
  std::vector<ParamPtr> trainable = gd->trainable_params();
  for (auto& p : trainable) EXPECT_EQ(p->name.rfind("g.", 0), 0u) << p->name;
  EXPECT_EQ(trainable.size(), 4u);
  // Gradients still reach the generator through the frozen discriminator.
  for (auto& p : gd->params()) {
    p->grad.resize(p->value.shape());
    p->grad.zero();
  }
  Tensor z = filled({3, 3}, 0.4f);
  RunContext rc;
  rc.training = true;
  gd->forward(rc, {&z});
  gd->seed_grad(gd->output_node()).fill(1.f);
  gd->backward(rc);
  double gsum = 0;
  for (auto& p : trainable)
    for (int64_t i = 0; i < p->grad.size(); ++i) gsum += std::fabs(p->grad[i]);
  EXPECT_GT(gsum, 0);
  EXPECT_TRUE(gd->frozen(gd->find("d.dense_1")));
  EXPECT_FALSE(gd->frozen(gd->find("g.dense_1")));
  EXPECT_EQ(gd->set_frozen({"nothing_here"}), std::vector<std::string>{"nothing_here"});
  gd->set_frozen({"d.dense_2"});
  EXPECT_EQ(gd->trainable_params().size(), 6u);
  gd->set_frozen({});
  EXPECT_EQ(gd->trainable_params().size(), 8u);
}

TEST(Freezing, TrainableFalseBelongsToTheModelEntryNotTheWeights) {
  // The classifier freezes the encoder it inlines; the autoencoder still trains it.
  auto m = models_from_yaml(
      "enc: {input: [4], layers: [{type: dense, units: 3}]}\n"
      "dec: {input: [3], layers: [{type: dense, units: 4}]}\n"
      "ae: {sequence: [enc, dec]}\n"
      "clf: {input: [4], layers: [{model: enc, trainable: false}, {type: dense, units: 2}]}",
      {"ae", "clf"});
  EXPECT_EQ(m[0]->trainable_params().size(), 4u);
  EXPECT_EQ(m[1]->trainable_params().size(), 2u);
  EXPECT_EQ(m[1]->param_count(true), 3 * 2 + 2);
  EXPECT_EQ(m[1]->param_count(false), 4 * 3 + 3 + 3 * 2 + 2);
}

TEST(Reentrancy, BackwardAfterAnotherModelRanTheLayerIsRefused) {
  auto m = models_from_yaml(kGan, {"d", "gd"});
  auto& d = m[0];
  auto& gd = m[1];
  Tensor z = filled({2, 3}, 0.3f), real = filled({2, 5}, 0.9f);
  RunContext rc;
  rc.training = true;
  gd->forward(rc, {&z});    // d's layers now hold the state of D(G(z))
  d->forward(rc, {&real});  // ... replaced by D(real)
  gd->seed_grad(gd->output_node()).fill(1.f);
  try {
    gd->backward(rc);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("layer 'd.dense_"), std::string::npos) << msg;
    EXPECT_NE(msg.find("run forward and backward per call"), std::string::npos) << msg;
  }
  // Forward and backward per call is fine.
  d->forward(rc, {&real});
  d->seed_grad(d->output_node()).fill(1.f);
  EXPECT_NO_THROW(d->backward(rc));
}

namespace {

// y = 2·x0 − x1 + 0.5, 256 samples, as a dataset with a train and a valid split.
std::shared_ptr<Dataset> regression_data() {
  auto d = std::make_shared<Dataset>();
  d->sample_shape = {3};  // x0, x1, y
  d->count = 256;
  for (int64_t i = 0; i < d->count; ++i) {
    float x0 = std::sin(0.37f * float(i)), x1 = std::cos(0.11f * float(i));
    d->x.insert(d->x.end(), {x0, x1, 2 * x0 - x1 + 0.5f});
  }
  return d;
}

struct Regression {
  std::shared_ptr<Model> model =
      model_from_yaml("m: {input: [2], layers: [{type: dense, units: 1}]}", "m");
  std::unique_ptr<Loss> mse = create_from<Loss>(registry(), entry_from_yaml("mse"));
  TrainHooks hooks(std::shared_ptr<Dataset> data) {
    TrainHooks h;
    h.train = {data, 0, 192, "toy.train"};
    h.valid = {data, 192, 64, "toy.valid"};
    h.step = [this](const Batch& b, const RunContext& rc) {
      int64_t n = b.size;
      Tensor x({n, 2}), y({n, 1});
      for (int64_t i = 0; i < n; ++i) {
        x[2 * i] = b.x[3 * i];
        x[2 * i + 1] = b.x[3 * i + 1];
        y[i] = b.x[3 * i + 2];
      }
      model->forward(rc, {&x});
      Tensor* g = rc.training ? &model->seed_grad(model->output_node()) : nullptr;
      double l = mse->compute(model->output(), &y, g, 1.f);
      if (rc.training) model->backward(rc);
      return LossTerms{{"mse", l}};
    };
    return h;
  }
};

}  // namespace

TEST(FitLoop, TrainsWritesMetricsAndResumesExactly) {
  auto data = regression_data();
  FakeStage full("{batch_size: 16, epochs: 6, optimizer: {type: adam, lr: 0.05}}");
  Regression a;
  FitResult r = fit(full, *a.model, a.hooks(data));
  EXPECT_EQ(r.epochs, 6);
  EXPECT_EQ(r.steps, 6 * 12);
  EXPECT_LT(r.last_valid_loss, 0.02);   // learned the line
  ASSERT_EQ(full.metrics.size(), 12u);  // train + valid per epoch
  EXPECT_NE(full.metrics[1].find("\"split\":\"valid\""), std::string::npos) << full.metrics[1];
  EXPECT_NE(full.metrics[0].find("\"lr\":0.05"), std::string::npos) << full.metrics[0];

  // Three epochs, then --resume to six, in another folder: the same final weights.
  FakeStage part("{batch_size: 16, epochs: 3, optimizer: {type: adam, lr: 0.05}}");
  Regression b;
  fit(part, *b.model, b.hooks(data));
  FakeStage rest("{batch_size: 16, epochs: 6, optimizer: {type: adam, lr: 0.05}}");
  fs::copy(part.out_path("checkpoints"), rest.out_path("checkpoints"), fs::copy_options::recursive);
  rest.resume_ = true;
  FitResult rb = fit(rest, *b.model, b.hooks(data));
  EXPECT_EQ(rb.steps, 6 * 12);
  EXPECT_EQ(values(b.model->params()[0]), values(a.model->params()[0]));
  EXPECT_EQ(rest.metrics.size(), 6u);  // only the resumed epochs
}

TEST(FitLoop, AStageThatTrainsNothingIsRefused) {
  auto data = regression_data();
  FakeStage stage("{batch_size: 16, epochs: 1, freeze: [m], optimizer: adam}");
  Regression a;
  auto before = values(a.model->params()[0]);
  try {
    fit(stage, *a.model, a.hooks(data));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nothing to train"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("stages.s.freeze"), std::string::npos) << e.what();
  }
  EXPECT_EQ(values(a.model->params()[0]), before);
  // The freeze lasted for that stage only.
  EXPECT_EQ(a.model->trainable_params().size(), 2u);
}

// On several ranks each rank packs the gradients into its all-reduce buckets in the order the
// model hands them over, so that order must be the same on every rank: the layers from the
// output down, each layer's parameters in the order it declared them, a shared parameter once —
// never an order that depends on where the parameters sit in memory.
TEST(DataParallel, GradientsAreHandedOverInTheLayersOrder) {
  struct Recorder : GradientReducer {
    std::vector<std::string> names;
    void gradient_ready(Param& p) override { names.push_back(p.name); }
  };
  auto m = models_from_yaml(
      "m: {input: [6], layers: [{type: dense, units: 5}, {type: batch_norm}, "
      "{type: dense, units: 4, activation: relu}, {type: dense, units: 2}]}",
      {"m"})[0];
  for (auto& p : m->params()) {
    p->grad.resize(p->value.shape());
    p->grad.zero();
  }
  Recorder r;
  RunContext rc;
  rc.training = true;
  rc.ranks = &r;
  Tensor x = filled({3, 6}, 0.3f);
  for (int pass = 0; pass < 2; ++pass) {
    r.names.clear();
    m->forward(rc, {&x});
    m->seed_grad(m->output_node()).fill(1.f);
    m->backward(rc);
    EXPECT_EQ(r.names, (std::vector<std::string>{"m.dense_3.kernel", "m.dense_3.bias",
                                                 "m.dense_2.kernel", "m.dense_2.bias",
                                                 "m.batch_norm_1.gamma", "m.batch_norm_1.beta",
                                                 "m.dense_1.kernel", "m.dense_1.bias"}));
  }
}
