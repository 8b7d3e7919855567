// The adversarial recipe's parts: the losses against hand-computed values and finite differences,
// the two phases (a generator phase leaves every discriminator weight, optimizer slot and running
// statistic bit-identical; a discriminator phase leaves the generator alone), the replay buffer's
// mix, and a whole shortened run resumed bit-identically.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "../../plugins/recipes/adversarial_step.hpp"
#include "loom/create.hpp"
#include "loom/dataset_io.hpp"
#include "loom/io.hpp"
#include "output/safetensors.hpp"
#include "support/cli.hpp"
#include "support/fake_stage.hpp"
#include "support/harness.hpp"

using namespace loom;
using namespace loom::test;
using loom::recipes::gan_loss;
using loom::recipes::GanLoss;

namespace fs = std::filesystem;

namespace {

double loss_of(GanLoss k, std::vector<float> l, bool real, bool for_g, double s,
               std::vector<float>* grad = nullptr, double scale = 1.0) {
  if (grad) grad->assign(l.size(), 0.f);
  return gan_loss(k, l.data(), int64_t(l.size()), real, for_g, s, grad ? grad->data() : nullptr,
                  scale);
}

TEST(GanLosses, BceMatchesHandComputedValues) {
  std::vector<float> g;
  // log(1 + e^0) = log 2 for a real image scored 0; d/dl = sigmoid(0) - 1.
  EXPECT_NEAR(loss_of(GanLoss::Bce, {0.f}, true, false, 0, &g), std::log(2.0), 1e-9);
  EXPECT_NEAR(g[0], -0.5, 1e-7);
  // Smoothed target 0.9 for a real logit 2: softplus(2) - 0.9 * 2.
  EXPECT_NEAR(loss_of(GanLoss::Bce, {2.f}, true, false, 0.1, &g), 2.1269280110429727 - 1.8, 1e-9);
  EXPECT_NEAR(g[0], 1 / (1 + std::exp(-2.0)) - 0.9, 1e-7);
  // A fake scored 1: -log(1 - sigmoid(1)) = softplus(1); smoothing never touches fakes.
  EXPECT_NEAR(loss_of(GanLoss::Bce, {1.f}, false, false, 0.1, &g), 1.3132616875182228, 1e-9);
  EXPECT_NEAR(g[0], 0.7310585786300049, 1e-7);
  // Non-saturating generator loss on a fake scored -3: softplus(3); d/dl = sigmoid(-3) - 1.
  EXPECT_NEAR(loss_of(GanLoss::Bce, {-3.f}, true, true, 0.1, &g), 3.048587351573742, 1e-9);
  EXPECT_NEAR(g[0], -0.9525741268224334, 1e-7);
  // Stable far out: no overflow to inf, no log(0).
  EXPECT_NEAR(loss_of(GanLoss::Bce, {100.f}, false, false, 0), 100.0, 1e-9);
  EXPECT_NEAR(loss_of(GanLoss::Bce, {-100.f}, true, false, 0), 100.0, 1e-9);
  EXPECT_NEAR(loss_of(GanLoss::Bce, {-100.f}, false, false, 0), 0.0, 1e-9);
  // The batch mean, the gradient divided by the batch and multiplied by the scale.
  EXPECT_NEAR(loss_of(GanLoss::Bce, {0.f, 1.f}, false, false, 0, &g, 0.5),
              0.5 * (std::log(2.0) + 1.3132616875182228), 1e-9);
  EXPECT_NEAR(g[0], 0.5 * 0.5 / 2, 1e-7);
  EXPECT_NEAR(g[1], 0.7310585786300049 * 0.5 / 2, 1e-7);
}

TEST(GanLosses, HingeAndLeastSquaresMatchHandComputedValues) {
  std::vector<float> g;
  EXPECT_NEAR(loss_of(GanLoss::Hinge, {0.5f}, true, false, 0, &g), 0.5, 1e-9);
  EXPECT_EQ(g[0], -1.f);
  EXPECT_NEAR(loss_of(GanLoss::Hinge, {2.f}, true, false, 0, &g), 0.0, 1e-9);
  EXPECT_EQ(g[0], 0.f);
  EXPECT_NEAR(loss_of(GanLoss::Hinge, {-0.5f}, false, false, 0, &g), 0.5, 1e-9);
  EXPECT_EQ(g[0], 1.f);
  EXPECT_NEAR(loss_of(GanLoss::Hinge, {-2.f}, false, false, 0, &g), 0.0, 1e-9);
  EXPECT_NEAR(loss_of(GanLoss::Hinge, {0.7f}, true, true, 0, &g), -0.7, 1e-7);
  EXPECT_EQ(g[0], -1.f);
  // ½(l - 1)² for real (½(l - 0.9)² smoothed), ½l² for fake, ½(l - 1)² for the generator.
  EXPECT_NEAR(loss_of(GanLoss::LeastSquares, {0.5f}, true, false, 0, &g), 0.125, 1e-9);
  EXPECT_NEAR(g[0], -0.5, 1e-7);
  EXPECT_NEAR(loss_of(GanLoss::LeastSquares, {0.5f}, true, false, 0.1, &g), 0.08, 1e-7);
  EXPECT_NEAR(loss_of(GanLoss::LeastSquares, {0.5f}, false, false, 0.1, &g), 0.125, 1e-9);
  EXPECT_NEAR(g[0], 0.5, 1e-7);
  EXPECT_NEAR(loss_of(GanLoss::LeastSquares, {-1.f}, false, true, 0, &g), 2.0, 1e-9);
  EXPECT_NEAR(g[0], -2.0, 1e-7);
}

TEST(GanLosses, GradientsMatchFiniteDifferences) {
  std::vector<float> l{-2.3f, -0.4f, 0.3f, 1.7f};
  for (GanLoss k : {GanLoss::Bce, GanLoss::Hinge, GanLoss::LeastSquares})
    for (bool real : {true, false})
      for (bool for_g : {true, false}) {
        std::vector<float> g;
        loss_of(k, l, real, for_g, 0.1, &g, 1.0);
        for (size_t i = 0; i < l.size(); ++i) {
          auto up = l, down = l;
          up[i] += 1e-3f;
          down[i] -= 1e-3f;
          double fd = (loss_of(k, up, real, for_g, 0.1) - loss_of(k, down, real, for_g, 0.1)) /
                      double(up[i] - down[i]);
          EXPECT_NEAR(g[i], fd, 1e-3)
              << "loss " << int(k) << " real " << real << " for_g " << for_g << " element " << i;
        }
      }
}

// A generator and a discriminator, each with batch normalisation (running statistics that must
// stay put when frozen) and dropout in D.
const char* kModels =
    "g: {input: [4], layers: [{type: dense, units: 8}, {type: batch_norm}, "
    "{type: relu}, {type: dense, units: 6, activation: tanh}]}\n"
    "d: {input: [6], layers: [{type: dense, units: 8}, {type: batch_norm}, "
    "{type: leaky_relu}, {type: dropout, rate: 0.3}, "
    "{type: dense, units: 1}]}\n";

using Snapshot = std::map<std::string, std::vector<float>>;

Snapshot values_of(const std::vector<ParamPtr>& ps) {
  Snapshot s;
  for (auto& p : ps) s[p->name].assign(p->value.data(), p->value.data() + p->value.size());
  return s;
}

// The optimizer slots of one group, read back from a checkpoint.
Snapshot slots_of(Trainer& trainer, const std::string& path, const std::string& group) {
  trainer.save(path, {});
  Snapshot s;
  for (auto& [name, t] : load_safetensors(path).tensors)
    if (name.rfind("optimizer." + group + ".", 0) == 0)
      s[name].assign(t.data(), t.data() + t.size());
  return s;
}

struct Gan {
  FakeStage stage{"{optimizer: {type: adam, lr: 0.01}}"};
  std::vector<std::shared_ptr<Model>> m = models_from_yaml(kModels, {"g", "d"});
  Model& G = *m[0];
  Model& D = *m[1];
  Trainer trainer{stage};
  std::unique_ptr<Sampler> latent = create_from<Sampler>(registry(), entry_from_yaml("gaussian"));
  std::unique_ptr<recipes::AdversarialStep> step;
  Tensor real = Tensor({5, 6});

  Gan() {
    trainer.add_weights(G.params());
    trainer.add_weights(D.params());
    trainer.add_group("generator", G.trainable_params(), trainer.stage_settings());
    trainer.add_group("discriminator", D.trainable_params(), trainer.stage_settings());
    step = std::make_unique<recipes::AdversarialStep>(G, D, trainer, *latent,
                                                      recipes::AdversarialSettings{}, nullptr, 3);
    for (int64_t i = 0; i < real.size(); ++i) real[i] = std::sin(0.7f * float(i));
  }
  RunContext rc(int64_t s) {
    RunContext r;
    r.training = true;
    r.seed = 3;
    r.step = s;
    return r;
  }
};

TEST(AdversarialStep, GeneratorPhaseLeavesTheDiscriminatorBitIdentical) {
  Gan gan;
  std::string ckpt = gan.stage.out_path("ckpt.safetensors");
  gan.step->discriminator_phase(gan.real, nullptr, gan.rc(0));  // Adam slots now exist
  Snapshot d_before = values_of(gan.D.params());                // weights and running statistics
  Snapshot slots_before = slots_of(gan.trainer, ckpt, "discriminator");
  Snapshot g_before = values_of(gan.G.params());
  ASSERT_FALSE(slots_before.empty());
  ASSERT_TRUE(d_before.count("d.batch_norm_1.moving_mean"));

  double loss = gan.step->generator_phase(5, nullptr, gan.rc(1));
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_EQ(values_of(gan.D.params()), d_before);
  EXPECT_EQ(slots_of(gan.trainer, ckpt, "discriminator"), slots_before);
  Snapshot g_after = values_of(gan.G.params());
  // The generator trained: its weights and its own running statistics moved.
  EXPECT_NE(g_after["g.dense_1.kernel"], g_before["g.dense_1.kernel"]);
  EXPECT_NE(g_after["g.batch_norm_1.moving_mean"], g_before["g.batch_norm_1.moving_mean"]);
  // D's freeze was lifted afterwards: its next phase trains it again.
  gan.step->discriminator_phase(gan.real, nullptr, gan.rc(2));
  EXPECT_NE(values_of(gan.D.params())["d.dense_1.kernel"], d_before["d.dense_1.kernel"]);
}

TEST(AdversarialStep, DiscriminatorPhaseLeavesTheGeneratorAlone) {
  Gan gan;
  Snapshot g_before = values_of(gan.G.params());
  Snapshot d_before = values_of(gan.D.params());
  auto st = gan.step->discriminator_phase(gan.real, nullptr, gan.rc(0));
  EXPECT_EQ(values_of(gan.G.params()), g_before);  // weights and running statistics
  EXPECT_NE(values_of(gan.D.params())["d.dense_1.kernel"], d_before["d.dense_1.kernel"]);
  EXPECT_NE(values_of(gan.D.params())["d.batch_norm_1.moving_mean"],
            d_before["d.batch_norm_1.moving_mean"]);
  EXPECT_GE(st.real_acc, 0.0);
  EXPECT_LE(st.real_acc, 1.0);
  EXPECT_TRUE(std::isfinite(st.loss));
}

TEST(AdversarialStep, GeneratorGradientMatchesFiniteDifferences) {
  // The generator's gradient flows through the frozen discriminator: compare d(loss)/d(weight)
  // of one generator kernel with central differences of the same loss (dropout off: inference
  // noise would differ between calls, so D here has none).
  const char* models =
      "g: {input: [3], layers: [{type: dense, units: 5, activation: tanh}]}\n"
      "d: {input: [5], layers: [{type: dense, units: 4, activation: tanh}, {type: dense, "
      "units: 1}]}\n";
  FakeStage stage("{optimizer: {type: sgd, lr: 0.0}}");
  auto m = models_from_yaml(models, {"g", "d"});
  Trainer trainer(stage);
  trainer.add_group("generator", m[0]->trainable_params(), trainer.stage_settings());
  trainer.add_group("discriminator", m[1]->trainable_params(), trainer.stage_settings());
  auto latent = create_from<Sampler>(registry(), entry_from_yaml("gaussian"));
  recipes::AdversarialStep step(*m[0], *m[1], trainer, *latent, {}, nullptr, 5);
  RunContext rc;
  rc.training = true;
  rc.seed = 5;
  rc.step = 4;
  step.generator_phase(3, nullptr, rc);  // lr 0: computes gradients, changes nothing
  ParamPtr k = m[0]->params()[0];
  ASSERT_EQ(k->name, "g.dense_1.kernel");
  std::vector<float> analytic(k->grad.data(), k->grad.data() + k->grad.size());
  for (int64_t i = 0; i < k->value.size(); i += 3) {
    float keep = k->value[i];
    k->value[i] = keep + 1e-3f;
    double up = step.generator_phase(3, nullptr, rc);
    k->value[i] = keep - 1e-3f;
    double down = step.generator_phase(3, nullptr, rc);
    k->value[i] = keep;
    EXPECT_NEAR(analytic[size_t(i)], (up - down) / 2e-3, 2e-3) << "element " << i;
  }
}

TEST(ReplayBuffer, MixesTheAskedShareAndKeepsRowsWhole) {
  const int64_t per = 3, n = 50;
  recipes::ReplayBuffer buf(20, per, 0.3);
  std::vector<float> batch(n * per);
  auto fill = [&](int call) {
    for (int64_t i = 0; i < n * per; ++i) batch[size_t(i)] = float(call * 1000 + i);
  };
  fill(0);
  EXPECT_EQ(buf.mix(batch.data(), n, 9, 0, 0), 0);  // empty buffer: nothing to replay
  EXPECT_EQ(buf.filled(), 20);
  EXPECT_EQ(batch[0], 0.f);  // the batch is untouched
  int64_t used = 0;
  for (int call = 1; call <= 40; ++call) {
    fill(call);
    std::vector<std::vector<float>> stored;
    for (int64_t r = 0; r < buf.size(); ++r) stored.emplace_back(buf.row(r), buf.row(r) + per);
    int64_t u = buf.mix(batch.data(), n, 9, uint64_t(call), 0);
    used += u;
    int64_t replayed = 0;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<float> row(batch.begin() + i * per, batch.begin() + (i + 1) * per);
      bool fresh = row[0] == float(call * 1000 + i * per);
      bool past = std::find(stored.begin(), stored.end(), row) != stored.end();
      EXPECT_TRUE(fresh || past) << "row " << i << " of call " << call;
      replayed += fresh ? 0 : 1;
    }
    EXPECT_EQ(replayed, u);
  }
  EXPECT_NEAR(double(used) / (40.0 * n), 0.3, 0.03);
  // The same (seed, step, k) make the same choices.
  recipes::ReplayBuffer a(4, 1, 0.5), b(4, 1, 0.5);
  for (int call = 0; call < 5; ++call) {
    std::vector<float> x(8), y(8);
    for (int i = 0; i < 8; ++i) x[size_t(i)] = y[size_t(i)] = float(call * 8 + i);
    EXPECT_EQ(a.mix(x.data(), 8, 1, uint64_t(call), 0), b.mix(y.data(), 8, 1, uint64_t(call), 0));
    EXPECT_EQ(x, y);
  }
}

TEST(ReplayBuffer, RatioZeroNeverReplaysRatioOneAlwaysDoes) {
  recipes::ReplayBuffer none(5, 1, 0.0), all(5, 1, 1.0);
  std::vector<float> x(10, 1.f);
  none.mix(x.data(), 10, 1, 0, 0);
  all.mix(x.data(), 10, 1, 0, 0);
  for (int call = 1; call < 5; ++call) {
    std::vector<float> a(10, 2.f), b(10, 2.f);
    EXPECT_EQ(none.mix(a.data(), 10, 1, uint64_t(call), 0), 0);
    EXPECT_EQ(all.mix(b.data(), 10, 1, uint64_t(call), 0), 10);
  }
}

// A whole adversarial stage, cut short: 2 epochs in one go, and 1 epoch then --resume to 2, give
// the same metrics and the same weights, bit for bit (both models, both optimizers, the EMA and
// the replay buffer come back from the checkpoint).
const char* kPipeline = R"(name: tiny_gan
seed: 3
datasets:
  fashion:
    source: idx
    scale: [-1, 1]
models:
  generator:
    input: [8]
    layers:
      - {type: dense, units: 32, activation: relu}
      - {type: batch_norm}
      - {type: dense, units: 784, activation: tanh}
      - {type: reshape, shape: [28, 28]}
  discriminator:
    input: [28, 28]
    layers:
      - {type: flatten}
      - {type: dense, units: 16, activation: leaky_relu, alpha: 0.2}
      - {type: dropout, rate: 0.3}
      - {type: dense, units: 1}
stages:
  train:
    recipe: adversarial
    generator: generator
    discriminator: discriminator
    data: fashion
    batch_size: 32
    epochs: 2
    replay_size: 64
    ema: 0.9
    optimizers:
      generator: {type: adam, lr: 0.001, beta_1: 0.5}
      discriminator: {type: rmsprop, lr: 0.001}
)";

TEST(AdversarialRecipe, ResumeContinuesBitIdentically) {
  std::string dir = temp_dir("gan_resume");
  std::string pipeline = dir + "/gan.yaml";
  {
    std::ofstream f(pipeline);
    f << kPipeline;
  }
  auto whole = run_loom({"run", pipeline, "--subset", "320", "--out", dir + "/whole"});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  auto first =
      run_loom({"run", pipeline, "--subset", "320", "--epochs", "1", "--out", dir + "/cut"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto rest = run_loom({"run", pipeline, "--subset", "320", "--resume", "--out", dir + "/cut"});
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_EQ(read_text(dir + "/whole/weights.safetensors"),
            read_text(dir + "/cut/weights.safetensors"));
  auto a = read_metrics(dir + "/whole/metrics.jsonl");
  auto b = read_metrics(dir + "/cut/metrics.jsonl");
  auto last_epoch = [](const std::vector<MetricLine>& m) {
    std::map<std::string, double> v;
    for (auto& l : m)
      if (l.epoch == 2)
        for (auto& [k, x] : l.values)
          if (k != "time_s" && k != "images_per_s") v[l.split + "." + k] = x;
    return v;
  };
  auto va = last_epoch(a), vb = last_epoch(b);
  ASSERT_TRUE(va.count("train.g_loss")) << read_text(dir + "/whole/metrics.jsonl");
  EXPECT_TRUE(va.count("samples.diversity"));
  EXPECT_TRUE(va.count("train.d_real_acc"));
  EXPECT_EQ(va, vb);
  // A GAN's losses do not rank its epochs: no best.safetensors, and asking for one is refused.
  EXPECT_TRUE(fs::exists(dir + "/whole/checkpoints/train/last.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/whole/checkpoints/train/best.safetensors"));
}

TEST(AdversarialRecipe, KeepsEveryEpochWhenAskedAndRefusesABestOne) {
  std::string dir = temp_dir("gan_epochs");
  std::string pipeline = dir + "/gan.yaml";
  std::ofstream(pipeline) << kPipeline << "    checkpoint: {keep_epochs: true}\n";
  auto r = run_loom({"run", pipeline, "--subset", "96", "--out", dir + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/train/epoch_001.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/train/epoch_002.safetensors"));
  // An epoch's checkpoint is a run's weights for `loom sample`.
  r = run_loom({"sample", dir + "/run/checkpoints/train/epoch_001.safetensors", "--n", "4", "--out",
                dir + "/e1.npy"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* bad :
       {"    checkpoint: {keep_best: true}\n", "    early_stopping: {patience: 2}\n"}) {
    std::ofstream(pipeline) << kPipeline << bad;
    r = run_loom({"run", pipeline, "--subset", "96", "--out", dir + "/bad"});
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.err.find("do not say which epoch made the best samples"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("gan.yaml:"), std::string::npos) << r.err;
  }
  fs::remove_all(dir);
}

}  // namespace

namespace {

// A tiny conditional GAN with an EMA generator, trained for a few steps.
const char* kConditional = R"(name: tiny_cgan
seed: 5
datasets:
  fashion:
    source: idx
    scale: [-1, 1]
models:
  generator:
    inputs: {codings: [4], label: [1]}
    layers:
      - {type: embedding, input_dim: 10, output_dim: 4, inputs: [label]}
      - {type: concat, axis: 0, inputs: [codings, embedding_1]}
      - {type: dense, units: 784, activation: tanh}
      - {type: reshape, shape: [28, 28]}
  discriminator:
    inputs: {image: [28, 28], label: [1]}
    layers:
      - {type: flatten, inputs: [image]}
      - {type: embedding, input_dim: 10, output_dim: 4, inputs: [label], name: e}
      - {type: concat, axis: 0, inputs: [flatten_1, e]}
      - {type: dense, units: 1, spectral_norm: true}
stages:
  train:
    recipe: adversarial
    generator: generator
    discriminator: discriminator
    conditional: true
    data: fashion
    batch_size: 16
    epochs: 1
    ema: 0.9
    grid_cols: 3
)";

}  // namespace

TEST(AdversarialRecipe, ConditionalSamplingByClassFromTheAverage) {
  std::string dir = temp_dir("cgan_sample");
  std::string pipeline = dir + "/cgan.yaml", run = dir + "/run";
  std::ofstream(pipeline) << kConditional;
  auto r = run_loom({"run", pipeline, "--subset", "160", "--out", run});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The per-epoch grid has one row per class, its name at the left ("Ankle boot": wider than
  // 60 pixels).
  loom::Tensor grid = loom::read_png(run + "/samples.png");
  EXPECT_EQ(grid.dim(1), 10 * 30 + 2);
  EXPECT_GT(grid.dim(2), 3 * 30 + 2 + 60);
  // The weights file holds the generator's moving average beside the trained values.
  auto w = load_safetensors(run + "/weights.safetensors");
  EXPECT_TRUE(w.tensors.count("ema.generator.dense_1.kernel"));
  EXPECT_FALSE(w.tensors.count("ema.discriminator.dense_1.kernel"));
  EXPECT_TRUE(w.tensors.count("discriminator.dense_1.sn_u"));
  // --class K: every sample asked for K, labels written beside the samples.
  r = run_loom({"sample", run, "--class", "3", "--n", "5", "--out", dir + "/three.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("moving average"), std::string::npos) << r.out;
  loom::Dataset d = loom::read_dataset(dir + "/three.npy");
  ASSERT_EQ(d.count, 5);
  EXPECT_EQ(d.labels, std::vector<int32_t>(5, 3));
  // Every class in turn, one row each; --no-ema uses the trained weights instead.
  r = run_loom({"sample", run, "--n", "20", "--out", dir + "/all.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  loom::Tensor all = loom::read_png(dir + "/all.png");
  EXPECT_EQ(all.dim(1), 10 * 30 + 2);
  EXPECT_EQ(all.dim(2) - (2 * 30 + 2), grid.dim(2) - (3 * 30 + 2)) << "the same class names";
  r = run_loom({"sample", run, "--class", "3", "--n", "5", "--no-ema", "--out", dir + "/raw.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Tensor raw = loom::read_npy(dir + "/raw.npy"), avg = loom::read_npy(dir + "/three.npy");
  ASSERT_EQ(raw.size(), avg.size());
  EXPECT_FALSE(std::equal(raw.data(), raw.data() + raw.size(), avg.data()));
  // Mistakes: a class out of range, a class for a model that takes none.
  r = run_loom({"sample", run, "--class", "12", "--n", "5", "--out", dir + "/x.npy"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--class"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.npy"));
}
