// The diffusion recipes, run whole through `loom run` on a tiny denoiser: a shortened stage
// resumed bit-identically (weights, EMA, optimizer slots, step-keyed noise), the validation loss
// computed on the same noise every epoch (a learning rate of 0 gives the same figure twice), the
// per-epoch sample grids, diffusion_sample giving the same bytes twice and for any number of
// samples, a conditional model with classifier-free guidance, and the messages for a model with
// the wrong inputs or steps asked of ddpm.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "loom/io.hpp"
#include "loom/rng.hpp"
#include "support/cli.hpp"

using namespace loom;
using namespace loom::test;
namespace fs = std::filesystem;

namespace {

const char* kHead = R"(name: tiny_diffusion
seed: 3
datasets:
  fashion:
    source: idx
    scale: [-1, 1]
    splits: {train: {take: 55000}, valid: {skip: 55000}}
models:
  denoiser:
    inputs: {x: [1, 28, 28], t: [1]}
    layers:
      - {type: time_encoding, timesteps: 50, size: 8, inputs: [t], name: te}
      - {type: dense, units: 4, inputs: [te], name: tv}
      - {type: conv2d, filters: 4, kernel_size: [3], padding: same, activation: relu, inputs: [x], name: c1}
      - {type: broadcast_add, inputs: [c1, tv]}
      - {type: conv2d, filters: 1, kernel_size: [3], padding: same}
  conditional:
    inputs: {x: [1, 28, 28], t: [1], label: [1]}
    layers:
      - {type: time_encoding, timesteps: 50, size: 8, inputs: [t], name: te}
      - {type: embedding, input_dim: 11, output_dim: 8, inputs: [label], name: class}
      - {type: concat, inputs: [te, class], name: cond}
      - {type: dense, units: 4, inputs: [cond], name: tv}
      - {type: conv2d, filters: 4, kernel_size: [3], padding: same, activation: relu, inputs: [x], name: c1}
      - {type: broadcast_add, inputs: [c1, tv]}
      - {type: conv2d, filters: 1, kernel_size: [3], padding: same}
stages:
)";

const char* kTrain = R"(  train:
    recipe: diffusion
    model: denoiser
    data: fashion
    timesteps: 50
    batch_size: 32
    epochs: 2
    ema: 0.9
    min_snr_gamma: 5
    samples: 8
    grid_cols: 4
    sampling_steps: 5
)";

std::string write_pipeline(const std::string& dir, const std::string& stages) {
  std::string path = dir + "/p.yaml";
  std::ofstream(path) << kHead << stages;
  return path;
}

std::map<std::string, double> epoch_values(const std::vector<MetricLine>& m, int epoch) {
  std::map<std::string, double> v;
  for (auto& l : m)
    if (l.epoch == epoch)
      for (auto& [k, x] : l.values)
        if (k != "time_s" && k != "images_per_s") v[l.split + "." + k] = x;
  return v;
}

TEST(DiffusionRecipe, ResumeContinuesBitIdenticallyAndWritesGrids) {
  std::string dir = temp_dir("diffusion_resume");
  std::string pipeline = write_pipeline(dir, kTrain);
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
  auto va = epoch_values(a, 2), vb = epoch_values(b, 2);
  ASSERT_TRUE(va.count("train.loss")) << read_text(dir + "/whole/metrics.jsonl");
  EXPECT_TRUE(va.count("train.huber"));  // Min-SNR: the unweighted loss beside the weighted one
  EXPECT_TRUE(va.count("valid.loss"));
  EXPECT_TRUE(va.count("samples.samples"));
  EXPECT_EQ(va, vb);
  EXPECT_LT(a.back().epoch, 3);
  for (const char* f : {"samples.png", "samples/epoch_001.png", "samples/epoch_002.png"})
    EXPECT_TRUE(fs::exists(dir + "/whole/" + f)) << f;
  // The EMA is saved beside the weights.
  EXPECT_NE(read_text(dir + "/whole/weights.safetensors").find("ema."), std::string::npos);
  fs::remove_all(dir);
}

TEST(DiffusionRecipe, ValidationNoiseIsTheSameEveryEpoch) {
  std::string dir = temp_dir("diffusion_valid");
  std::string pipeline = write_pipeline(dir, R"(  train:
    recipe: diffusion
    model: denoiser
    data: fashion
    timesteps: 50
    batch_size: 32
    epochs: 3
    optimizer: {type: sgd, lr: 0}
    sample_every: 0
)");
  auto r = run_loom({"run", pipeline, "--subset", "160", "--out", dir + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<double> valid, train;
  for (auto& l : read_metrics(dir + "/run/metrics.jsonl"))
    (l.split == "valid" ? valid : train).push_back(l.loss);
  ASSERT_EQ(valid.size(), 3u);
  // Unchanged weights: the same noisy images give the same loss, to the bit...
  EXPECT_EQ(valid[0], valid[1]);
  EXPECT_EQ(valid[1], valid[2]);
  // ...while every training step draws new time steps and noise.
  ASSERT_EQ(train.size(), 3u);
  EXPECT_NE(train[0], train[1]);
  EXPECT_FALSE(fs::exists(dir + "/run/samples.png"));
  fs::remove_all(dir);
}

TEST(DiffusionSample, SameBytesTwiceAndForAnyNumberOfSamples) {
  std::string dir = temp_dir("diffusion_sample");
  std::string stages = std::string(kTrain) + R"(  sample:
    after: train
    recipe: diffusion_sample
    model: denoiser
    timesteps: 50
    sampler: ddim
    sampling_steps: 10
    batch_size: 4
    n: 6
    write: s.npy
)";
  std::string pipeline = write_pipeline(dir, stages);
  for (const char* run : {"a", "b"}) {
    auto r =
        run_loom({"run", pipeline, "--subset", "160", "--epochs", "1", "--out", dir + "/" + run});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto r = run_loom({"run", pipeline, "--subset", "160", "--epochs", "1", "--out", dir + "/c",
                     "--set", "stages.sample.n=3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Tensor a = read_npy(dir + "/a/s.npy"), b = read_npy(dir + "/b/s.npy"),
         c = read_npy(dir + "/c/s.npy");
  ASSERT_EQ(a.shape(), Shape({6, 1, 28, 28}));
  ASSERT_EQ(c.shape(), Shape({3, 1, 28, 28}));
  EXPECT_EQ(std::memcmp(a.data(), b.data(), size_t(a.size()) * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(a.data(), c.data(), size_t(c.size()) * sizeof(float)), 0);
  double spread = 0;  // samples differ from one another
  for (int64_t k = 0; k < 784; ++k) spread += std::fabs(a[k] - a[784 + k]);
  EXPECT_GT(spread, 1.0);

  // `loom sample` of the run folder: the stage's images, byte for byte, with the same settings.
  r = run_loom({"sample", dir + "/a", "--n", "6", "--sampler", "ddim", "--steps", "10",
                "--batch-size", "4", "--out", dir + "/cli.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("6 x (1, 28, 28) by ddim (10 model steps, averaged weights)"),
            std::string::npos)
      << r.out;
  Tensor cli = read_npy(dir + "/cli.npy");
  ASSERT_EQ(cli.shape(), a.shape());
  EXPECT_EQ(std::memcmp(a.data(), cli.data(), size_t(a.size()) * sizeof(float)), 0);

  // A denoising strip: per image, frames from the starting noise to the final image, which is
  // the image sampled without --trajectory.
  r = run_loom({"sample", dir + "/a", "--trajectory", "--n", "2", "--cols", "5", "--sampler",
                "ddim", "--steps", "10", "--batch-size", "4", "--out", dir + "/strip.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Tensor strip = read_npy(dir + "/strip.npy");
  ASSERT_EQ(strip.shape(), Shape({10, 1, 28, 28}));
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_EQ(
        std::memcmp(strip.data() + (i * 5 + 4) * 784, a.data() + i * 784, 784 * sizeof(float)), 0);
  // The first frame is image i's starting noise, Rng(seed, "diffusion_sample", i), clipped to
  // the images' range [-1, 1] as written.
  for (int64_t i = 0; i < 2; ++i) {
    Rng rng(3, "diffusion_sample", uint64_t(i), 0);
    for (int64_t k = 0; k < 784; ++k)
      ASSERT_EQ(strip[i * 5 * 784 + k], std::clamp(float(rng.normal()), -1.f, 1.f)) << k;
  }
  r = run_loom({"sample", dir + "/a", "--trajectory", "--steps", "10", "--out", dir + "/s.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One row of 10 frames under a band naming their time steps.
  Tensor png = read_png(dir + "/s.png");
  EXPECT_EQ(png.dim(2), 10 * 30 + 2);
  EXPECT_GT(png.dim(1), 32 + 10);

  // Options that do not fit a diffusion run are refused, naming the option.
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"--n", "2", "--guidance", "3"}, 2, "--guidance: the model of"},
      {{"--n", "2", "--class", "3"}, 2, "--class: the model of"},
      {{"--interpolate", "--axis", "1"}, 2, "--interpolate: interpolation works with decoders"},
      {{"--n", "2", "--sampler", "gaussian"}, 1, "gaussian"},
      {{"--n", "2", "--sampler", "ddpm", "--steps", "5"}, 1, "ddpm visits every time step"},
  };
  for (auto& c : cases) {
    std::vector<std::string> args = {"sample", dir + "/a", "--out", dir + "/bad.png"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    r = run_loom(args);
    EXPECT_EQ(r.exit_code, c.code) << c.expect << "\n" << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/bad.png"));
  }

  // `loom bench --sample`: denoising steps per second on one batch.
  r = run_loom(
      {"bench", pipeline, "--sample", "--json", "--warmup", "1", "--windows", "2", "--steps", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"denoising_steps_per_s\":"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

// Classifier-free guidance in one batched call, checked against its formula: with one DDIM step
// from t = 1 (leading: trailing's one step would start where the signal is ~0 and the image
// leaves any range) and no clipping the image is linear in the prediction, so the image sampled
// with guidance w equals uncond + w (cond - uncond) of the images sampled with guidance 0 and 1
// (a wide range: no clipping either).
TEST(DiffusionSample, GuidanceIsUncondPlusWTimesTheDifference) {
  std::string dir = temp_dir("diffusion_guidance");
  std::string stages = R"(  train:
    recipe: diffusion
    model: conditional
    conditional: true
    data: fashion
    timesteps: 50
    batch_size: 32
    epochs: 1
    sampling_steps: 2
    sample_every: 0
)";
  for (const char* w : {"0", "1", "3"})
    stages += std::string("  g") + w + R"(:
    after: train
    recipe: diffusion_sample
    model: conditional
    conditional: true
    timesteps: 50
    sampler: ddim
    sampling_steps: 1
    spacing: leading
    clip: false
    n: 4
    batch_size: 4
    range: [-100, 100]
    guidance: )" +
              w + "\n    write: g" + w + ".npy\n";
  std::string pipeline = write_pipeline(dir, stages);
  auto r = run_loom({"run", pipeline, "--subset", "96", "--out", dir + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Tensor u = read_npy(dir + "/run/g0.npy"), c = read_npy(dir + "/run/g1.npy"),
         g = read_npy(dir + "/run/g3.npy");
  ASSERT_EQ(g.shape(), Shape({4, 1, 28, 28}));
  double diff = 0, worst = 0;
  for (int64_t i = 0; i < g.size(); ++i) {
    diff += std::fabs(c[i] - u[i]);
    worst = std::max(worst, std::fabs(double(g[i]) - (u[i] + 3.0 * (c[i] - u[i]))));
  }
  EXPECT_GT(diff / double(g.size()), 1e-4);  // the class changes the prediction
  EXPECT_LT(worst, 1e-3);
  fs::remove_all(dir);
}

TEST(DiffusionRecipe, ConditionalWithGuidance) {
  std::string dir = temp_dir("diffusion_cond");
  std::string pipeline = write_pipeline(dir, R"(  train:
    recipe: diffusion
    model: conditional
    conditional: true
    num_classes: 10
    label_dropout: 0.1
    guidance: 2
    data: fashion
    timesteps: 50
    batch_size: 32
    epochs: 1
    sampling_steps: 5
    grid_cols: 3
  sample:
    after: train
    recipe: diffusion_sample
    model: conditional
    conditional: true
    guidance: 3
    label: 7
    timesteps: 50
    sampler: ddpm
    n: 4
    write: sevens.npy
)");
  auto r = run_loom({"run", pipeline, "--subset", "160", "--out", dir + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/run/samples.png"));  // one row per class
  Tensor s = read_npy(dir + "/run/sevens.npy");
  EXPECT_EQ(s.shape(), Shape({4, 1, 28, 28}));
  for (int64_t i = 0; i < s.size(); ++i) ASSERT_TRUE(std::isfinite(s[i]));
  fs::remove_all(dir);
}

TEST(DiffusionRecipe, MistakesAreLocatedMessages) {
  std::string dir = temp_dir("diffusion_errors");
  struct Case {
    std::string stages, expect;
  };
  std::vector<Case> cases = {
      {R"(  train: {recipe: diffusion, model: conditional, data: fashion, timesteps: 50}
)",
       "takes 3 input(s); a diffusion model takes 2: (noisy image, time step)"},
      {R"(  train: {recipe: diffusion, model: denoiser, data: fashion, timesteps: 50, sampler: ddpm, sampling_steps: 10}
)",
       "ddpm visits every time step"},
      {R"(  train: {recipe: diffusion, model: denoiser, data: fashion, timesteps: 50, sampling_steps: 80}
)",
       "at most timesteps (50) sampling steps"},
      {R"(  train: {recipe: diffusion, model: denoiser, data: fashion, timesteps: 50, target: score}
)",
       "score"},
  };
  for (auto& c : cases) {
    std::string pipeline = write_pipeline(dir, c.stages);
    auto r = run_loom({"run", pipeline, "--subset", "64", "--out", dir + "/run"});
    EXPECT_EQ(r.exit_code, 1) << c.stages;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("p.yaml:"), std::string::npos) << r.err;  // file:line:col
  }
  fs::remove_all(dir);
}

}  // namespace
