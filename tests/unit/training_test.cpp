// Optimizers against the Keras update rules, losses against hand-computed values and finite
// differences, learning-rate schedules, gradient clipping and early stopping.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "config/yaml_util.hpp"
#include "data/loader.hpp"
#include "loom/create.hpp"
#include "loom/loss.hpp"
#include "loom/optimizer.hpp"
#include "output/safetensors.hpp"
#include "support/cli.hpp"
#include "support/harness.hpp"
#include "train/schedule.hpp"

using namespace loom;
using namespace loom::test;

namespace {

struct OneParam {
  Param p;
  std::vector<Tensor> slots;
  OneParam(Optimizer& opt, std::vector<float> w) {
    p.value = Tensor({int64_t(w.size())});
    p.grad = Tensor({int64_t(w.size())});
    for (size_t i = 0; i < w.size(); ++i) p.value[int64_t(i)] = w[i];
    for (size_t k = 0; k < opt.slot_names().size(); ++k)
      slots.emplace_back(Shape{int64_t(w.size())});
  }
};

std::unique_ptr<Optimizer> optimizer(const std::string& yaml) {
  return create_from<Optimizer>(registry(), entry_from_yaml(yaml));
}

TEST(Optimizers, SgdMomentumAndNesterov) {
  for (bool nesterov : {false, true}) {
    std::string spec = "{type: sgd, lr: 0.1, momentum: 0.9, nesterov: ";
    spec += nesterov ? "true}" : "false}";
    auto opt = optimizer(spec);
    OneParam s(*opt, {1.0f});
    double w = 1, v = 0;
    for (int t = 1; t <= 3; ++t) {
      double g = 2 * w;  // d/dw of w²
      s.p.grad[0] = float(g);
      opt->update(s.p, s.slots, 0.1f, t);
      v = 0.9 * v - 0.1 * g;
      w += nesterov ? 0.9 * v - 0.1 * g : v;
      EXPECT_NEAR(s.p.value[0], w, 1e-6);
    }
  }
}

// Keras's name for the learning rate is accepted beside Loom's `lr`; both at once is refused.
TEST(Optimizers, LearningRateIsAnotherNameForLr) {
  for (const char* type : {"sgd", "adam", "nadam", "rmsprop"}) {
    SCOPED_TRACE(type);
    EXPECT_DOUBLE_EQ(
        optimizer(std::string("{type: ") + type + ", learning_rate: 0.0123}")->learning_rate(),
        0.0123);
    EXPECT_DOUBLE_EQ(optimizer(std::string("{type: ") + type + ", lr: 0.0456}")->learning_rate(),
                     0.0456);
  }
}

TEST(Optimizers, AdamMatchesKeras) {
  auto opt = optimizer("{type: adam}");
  OneParam s(*opt, {0.5f, -1.0f});
  double w[2] = {0.5, -1.0}, m[2] = {0, 0}, v[2] = {0, 0};
  for (int t = 1; t <= 5; ++t) {
    for (int i = 0; i < 2; ++i) s.p.grad[i] = float(std::sin(w[i]) + 0.1 * t);
    opt->update(s.p, s.slots, 0.001f, t);
    double alpha = 0.001 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    for (int i = 0; i < 2; ++i) {
      double g = std::sin(w[i]) + 0.1 * t;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      w[i] -= alpha * m[i] / (std::sqrt(v[i]) + 1e-7);
      EXPECT_NEAR(s.p.value[i], w[i], 1e-6) << "t=" << t;
    }
  }
}

TEST(Optimizers, NadamMatchesKeras) {
  auto opt = optimizer("{type: nadam}");
  OneParam s(*opt, {0.3f});
  double w = 0.3, m = 0, v = 0, prod = 1;
  for (int t = 1; t <= 6; ++t) {
    double g = 3 * w * w - 1;
    s.p.grad[0] = float(g);
    opt->update(s.p, s.slots, 0.001f, t);
    double u = 0.9 * (1 - 0.5 * std::pow(0.96, 0.004 * t)),
           u1 = 0.9 * (1 - 0.5 * std::pow(0.96, 0.004 * (t + 1)));
    prod *= u;
    double prod1 = prod * u1;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    double mhat = u1 * m / (1 - prod1) + (1 - u) * g / (1 - prod);
    double vhat = v / (1 - std::pow(0.999, t));
    w -= 0.001 * mhat / (std::sqrt(vhat) + 1e-7);
    EXPECT_NEAR(s.p.value[0], w, 1e-6) << "t=" << t;
  }
}

TEST(Optimizers, RmsPropMatchesKeras) {
  auto opt = optimizer("{type: rmsprop}");
  OneParam s(*opt, {2.0f});
  double w = 2, r = 0;
  for (int t = 1; t <= 4; ++t) {
    double g = w - 1;
    s.p.grad[0] = float(g);
    opt->update(s.p, s.slots, 0.001f, t);
    r = 0.9 * r + 0.1 * g * g;
    w -= 0.001 * g / (std::sqrt(r) + 1e-7);
    EXPECT_NEAR(s.p.value[0], w, 1e-6);
  }
}

double loss_value(const std::string& yaml, const std::vector<float>& p, const std::vector<float>& t,
                  Shape shape, Tensor* grad = nullptr) {
  auto loss = create_from<Loss>(registry(), entry_from_yaml(yaml));
  Tensor pred(shape), target(shape);
  for (size_t i = 0; i < p.size(); ++i) pred[int64_t(i)] = p[i];
  for (size_t i = 0; i < t.size(); ++i) target[int64_t(i)] = t[i];
  if (grad) grad->resize(shape);
  return loss->compute(pred, loss->needs_target() ? &target : nullptr, grad, 1.f);
}

TEST(Losses, HandComputedValues) {
  EXPECT_NEAR(loss_value("mse", {1, 2, 3, 4}, {1, 0, 3, 0}, {2, 2}), (4.0 + 16.0) / 4, 1e-9);
  EXPECT_NEAR(loss_value("mae", {1, 2, 3, 4}, {1, 0, 3, 0}, {2, 2}), (2.0 + 4.0) / 4, 1e-9);
  // huber, delta 1: |d| = 0.5 -> 0.125; |d| = 3 -> 3 - 0.5 = 2.5
  EXPECT_NEAR(loss_value("huber", {0.5, 3}, {0, 0}, {1, 2}), (0.125 + 2.5) / 2, 1e-9);
  // binary cross-entropy of p = 0.8 for t = 1 and p = 0.4 for t = 0
  EXPECT_NEAR(loss_value("binary_crossentropy", {0.8f, 0.4f}, {1, 0}, {2, 1}),
              -(std::log(0.8) + std::log(0.6)) / 2, 1e-6);
  // from logits, with extreme logits staying finite
  double v =
      loss_value("{type: binary_crossentropy, from_logits: true}", {100.f, -100.f}, {0, 1}, {2, 1});
  EXPECT_NEAR(v, 100.0, 1e-4);
  // KL sparsity: one unit, mean activation 0.2, target 0.1
  double kl = 0.1 * std::log(0.1 / 0.2) + 0.9 * std::log(0.9 / 0.8);
  EXPECT_NEAR(loss_value("{type: kl_sparsity, target: 0.1}", {0.1f, 0.3f}, {}, {2, 1}), kl, 1e-6);
}

TEST(Losses, GradientsMatchFiniteDifferences) {
  for (std::string yaml :
       {"mse", "mae", "{type: huber, delta: 0.5}", "binary_crossentropy",
        "{type: binary_crossentropy, from_logits: true}", "{type: kl_sparsity, target: 0.2}"}) {
    std::vector<float> p{0.2f, 0.7f, 0.45f, 0.9f, 0.3f, 0.55f}, t{0.f, 1.f, 0.5f, 1.f, 0.2f, 0.1f};
    Tensor g;
    loss_value(yaml, p, t, {3, 2}, &g);
    for (size_t i = 0; i < p.size(); ++i) {
      auto q = p;
      q[i] += 1e-3f;
      double plus = loss_value(yaml, q, t, {3, 2});
      q[i] -= 2e-3f;
      double minus = loss_value(yaml, q, t, {3, 2});
      EXPECT_NEAR(g[int64_t(i)], (plus - minus) / 2e-3, 2e-3) << yaml << " element " << i;
    }
  }
}

Params schedule_params(const std::string& yaml) {
  Spec open;
  open.open = true;
  return make_params(YAML::Load(yaml), open, "<test>", "lr_schedule");
}

TEST(Schedules, ShapesAndWarmup) {
  Schedule constant(0.1, Params());
  EXPECT_DOUBLE_EQ(constant.at(1000), 0.1);
  Schedule step(0.1, schedule_params("{type: step, step_size: 10, gamma: 0.5}"));
  EXPECT_DOUBLE_EQ(step.at(9), 0.1);
  EXPECT_DOUBLE_EQ(step.at(10), 0.05);
  EXPECT_DOUBLE_EQ(step.at(25), 0.025);
  Schedule expo(0.1, schedule_params("{type: exponential, decay_steps: 100, decay_rate: 0.5}"));
  EXPECT_NEAR(expo.at(50), 0.1 * std::sqrt(0.5), 1e-12);
  Schedule cosine(0.1, schedule_params("{type: cosine, decay_steps: 100, min_lr: 0.01}"));
  EXPECT_NEAR(cosine.at(0), 0.1, 1e-12);
  EXPECT_NEAR(cosine.at(50), 0.055, 1e-12);
  EXPECT_NEAR(cosine.at(100), 0.01, 1e-12);
  EXPECT_NEAR(cosine.at(500), 0.01, 1e-12);
  Schedule warm(0.1, schedule_params("{type: constant, warmup_steps: 4}"));
  EXPECT_NEAR(warm.at(0), 0.025, 1e-12);
  EXPECT_NEAR(warm.at(3), 0.1, 1e-12);
  EXPECT_THROW(Schedule(0.1, schedule_params("{type: step}")), Error);
  EXPECT_THROW(Schedule(0.1, schedule_params("{type: linear}")), Error);
}

std::map<std::string, Tensor> weights_after(const std::vector<std::string>& sets) {
  std::string dir = temp_dir("clip") + "/run";
  std::vector<std::string> args{"run",         source_path("pipelines/stacked_ae.yaml"),
                                "--out",       dir,
                                "--subset",    "64",
                                "--max-steps", "1",
                                "--quiet"};
  for (auto& s : sets) args.insert(args.end(), {"--set", s});
  CliResult r = run_loom(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return load_safetensors(dir + "/weights.safetensors").tensors;
}

TEST(Training, ClipNormBoundsTheUpdate) {
  auto start = weights_after({"stages.train.optimizer={type: sgd, lr: 0}"});
  auto clipped =
      weights_after({"stages.train.optimizer={type: sgd, lr: 1}", "stages.train.clip_norm=0.01"});
  double sq = 0;
  for (auto& [name, t] : start)
    for (int64_t i = 0; i < t.size(); ++i) sq += std::pow(double(clipped[name][i]) - t[i], 2);
  EXPECT_NEAR(std::sqrt(sq), 0.01, 1e-4);  // sgd, lr 1: the step is the clipped gradient
  auto by_value =
      weights_after({"stages.train.optimizer={type: sgd, lr: 1}", "stages.train.clip_value=0.001"});
  for (auto& [name, t] : start)
    for (int64_t i = 0; i < t.size(); ++i)
      ASSERT_LE(std::fabs(by_value[name][i] - t[i]), 0.001f + 1e-6f) << name;
}

TEST(Training, EarlyStoppingAndBestCheckpoint) {
  std::string dir = temp_dir("early") + "/run";
  // The learning rate drops to zero after the first epoch, so nothing improves afterwards.
  CliResult r =
      run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--out", dir, "--subset", "320",
                "--set", "stages.train.lr_schedule={type: step, step_size: 10, gamma: 0}", "--set",
                "stages.train.early_stopping={patience: 2}", "--set", "stages.train.epochs=10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("early stopping after epoch 3"), std::string::npos) << r.out;
  int epochs = 0;
  for (auto& m : read_metrics(dir + "/metrics.jsonl")) epochs = std::max(epochs, m.epoch);
  EXPECT_EQ(epochs, 3);
  auto best = load_safetensors(dir + "/checkpoints/train/best.safetensors");
  EXPECT_EQ(best.metadata["epoch"], "1");
}

}  // namespace

// The augmentation a runtime attaches to a dataset lives as long as that dataset: a later
// dataset, even one the allocator places at the freed one's address (which it usually does for
// an allocation of the same size right after the free), has none.
TEST(DataLoader, AugmentationBelongsToItsDatasetOnly) {
  auto make = [] {
    // Allocated apart from its control block, so that its memory is freed with the last owner.
    std::shared_ptr<loom::Dataset> d(new loom::Dataset);
    d->sample_shape = {2};
    d->count = 1;
    d->x = {0.f, 1.f};
    return d;
  };
  auto t = std::make_shared<loom::Transform>();
  std::shared_ptr<loom::Dataset> first = make();
  loom::set_transform(first, t);
  loom::DataSplit split;
  split.data = first;
  EXPECT_EQ(loom::transform_of(split), t);
  const loom::Dataset* where = first.get();
  split.data.reset();
  first.reset();
  std::shared_ptr<loom::Dataset> second = make();
  split.data = second;
  EXPECT_EQ(loom::transform_of(split), nullptr)
      << (second.get() == where ? "at the freed dataset's address" : "elsewhere");
}
