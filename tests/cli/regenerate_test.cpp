// Provenance: every dataset Loom writes gets DATASET.manifest.json, and `loom regenerate MANIFEST
// --index I` makes sample I again, alone, byte for byte: VAE samples (a pipeline's sample stage),
// GAN samples (a pipeline's write: and `loom sample` of a conditional generator), diffusion
// samples (diffusion_sample, an index in a padded last batch) and augmented images (`loom
// augment` of a file, a pipeline's augment stage). Each regenerated sample is compared with the
// dataset's here too, not only by the command. Then the refusals: changed weights, a changed
// pipeline, an index past the end, a file that is not a manifest.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loom/dataset_io.hpp"
#include "support/cli.hpp"

using namespace loom;
using namespace loom::test;
namespace fs = std::filesystem;

namespace {

// Sample `index` of `dataset` and the one-sample dataset `made` hold the same bytes.
void expect_same_sample(const std::string& dataset, int64_t index, const std::string& made) {
  Dataset whole = read_dataset(dataset), one = read_dataset(made);
  ASSERT_EQ(one.count, 1) << made;
  ASSERT_EQ(one.sample_shape, whole.sample_shape) << made;
  int64_t per = numel(whole.sample_shape);
  EXPECT_EQ(std::memcmp(one.sample(0), whole.sample(index), size_t(per) * sizeof(float)), 0)
      << made << " is not sample " << index << " of " << dataset;
  // Not a constant image either (a regenerated batch left at zero would be).
  double spread = 0;
  for (int64_t k = 1; k < per; ++k) spread += std::fabs(one.sample(0)[k] - one.sample(0)[0]);
  EXPECT_GT(spread, 0.5) << made;
  if (whole.has_labels()) {
    ASSERT_TRUE(one.has_labels()) << made;
    EXPECT_EQ(one.labels[0], whole.labels[size_t(index)]) << made;
  }
}

void regenerate_and_check(const std::string& manifest, const std::string& dataset, int64_t index,
                          const std::string& out) {
  auto r = run_loom({"regenerate", manifest, "--index", std::to_string(index), "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("identical"), std::string::npos) << r.out;
  expect_same_sample(dataset, index, out);
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(2);
}

const char* kDiffusion = R"(name: tiny_diffusion
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
stages:
  train:
    recipe: diffusion
    model: denoiser
    data: fashion
    timesteps: 50
    batch_size: 32
    epochs: 1
    ema: 0.9
    sample_every: 0
  sample:
    after: train
    recipe: diffusion_sample
    model: denoiser
    timesteps: 50
    sampler: ddpm
    batch_size: 4
    n: 7
    write: s.npy
)";

TEST(Regenerate, VaeSamplesOfAPipelineStage) {
  std::string dir = temp_dir("regen_vae");
  auto r = run_loom({"run", source_path("pipelines/vae.yaml"), "--subset", "320", "--epochs", "1",
                     "--out", dir + "/run", "--set", "stages.samples.write=samples.npy", "--set",
                     "stages.samples.n=300", "--set", "stages.samples.batch_size=128"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string manifest = dir + "/run/samples.npy.manifest.json";
  ASSERT_TRUE(fs::exists(manifest)) << r.out;
  nlohmann::json m = read_json(manifest);
  EXPECT_EQ(m["recipe"], "sample");
  EXPECT_EQ(m["count"], 300);
  EXPECT_EQ(m["entry"]["sampler"]["type"], "gaussian");
  EXPECT_EQ(m["parameters"]["sampler"]["truncation"], "0");    // every parameter, defaults filled
  EXPECT_FALSE(m["entry"]["sampler"].contains("truncation"));  // as given
  EXPECT_EQ(m["pipeline_sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(m["weights_sha256"].contains("decoder"));
  EXPECT_NE(m["random_streams"].get<std::string>().find("(seed, \"sample\", i)"),
            std::string::npos);
  for (int64_t i : {0, 200, 299})
    regenerate_and_check(manifest, dir + "/run/samples.npy", i,
                         dir + "/one" + std::to_string(i) + ".npy");
  fs::remove_all(dir);
}

TEST(Regenerate, GanSamplesOfAStageAndOfLoomSample) {
  std::string dir = temp_dir("regen_gan");
  auto r = run_loom({"run", source_path("pipelines/gan.yaml"), "--subset", "320", "--epochs", "1",
                     "--out", dir + "/gan", "--set", "stages.generated.n=300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  regenerate_and_check(dir + "/gan/generated.npy.manifest.json", dir + "/gan/generated.npy", 257,
                       dir + "/g257.npy");

  // A conditional generator through `loom sample`, classes in blocks: the label comes back too.
  r = run_loom({"run", source_path("pipelines/cgan.yaml"), "--subset", "320", "--epochs", "1",
                "--out", dir + "/cgan"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_loom({"sample", dir + "/cgan", "--n", "40", "--batch-size", "16", "--out",
                dir + "/c-images-idx3-ubyte"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string manifest = dir + "/c-images-idx3-ubyte.manifest.json";
  ASSERT_TRUE(fs::exists(manifest));
  EXPECT_EQ(read_json(manifest)["written_by"], "loom sample");
  regenerate_and_check(manifest, dir + "/c-images-idx3-ubyte", 37, dir + "/c37.idx");
  Dataset one = read_dataset(dir + "/c37.idx");
  EXPECT_EQ(one.labels[0], 9);  // 40 samples, 10 classes: blocks of 4

  // Refused: the weights changed since (as if a later stage had trained the generator on).
  nlohmann::json m = read_json(manifest);
  std::string& hash = m["weights_sha256"]["generator"].get_ref<std::string&>();
  hash[0] = hash[0] == '0' ? '1' : '0';
  write_json(dir + "/tampered.json", m);
  r = run_loom({"regenerate", dir + "/tampered.json", "--index", "1", "--out", dir + "/t.idx"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the weights of model 'generator'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("are not those that made the dataset"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/t.idx"));

  // Refused: the run folder's pipeline changed.
  { std::ofstream(dir + "/gan/pipeline.yaml", std::ios::app) << "# edited\n"; }
  r = run_loom({"regenerate", dir + "/gan/generated.npy.manifest.json", "--index", "1", "--out",
                dir + "/p.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("pipeline.yaml changed since the dataset was written"), std::string::npos)
      << r.err;

  // An index past the end: a usage error naming the range.
  r = run_loom({"regenerate", manifest, "--index", "40"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("describes 40 samples (0..39)"), std::string::npos) << r.err;
  // Not a manifest.
  r = run_loom({"regenerate", dir + "/gan/metrics.jsonl", "--index", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a provenance manifest"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(Regenerate, DiffusionSamplesIncludingThePaddedLastBatch) {
  std::string dir = temp_dir("regen_diffusion");
  std::string pipeline = dir + "/p.yaml";
  std::ofstream(pipeline) << kDiffusion;
  auto r = run_loom({"run", pipeline, "--subset", "160", "--out", dir + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string manifest = dir + "/run/s.npy.manifest.json";
  ASSERT_TRUE(fs::exists(manifest)) << r.out;
  EXPECT_EQ(read_json(manifest)["recipe"], "diffusion_sample");
  // Image 6 is alone in the last batch of 4 (rows 7 and 8 come from the following streams).
  for (int64_t i : {1, 6})
    regenerate_and_check(manifest, dir + "/run/s.npy", i, dir + "/d" + std::to_string(i) + ".npy");
  // `loom sample` of the run (diffusion_sample run from the command line).
  r = run_loom({"sample", dir + "/run", "--n", "5", "--sampler", "ddim", "--steps", "5",
                "--batch-size", "2", "--out", dir + "/cli.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  regenerate_and_check(dir + "/cli.npy.manifest.json", dir + "/cli.npy", 4, dir + "/c4.npy");
  fs::remove_all(dir);
}

TEST(Regenerate, AugmentedImagesOfLoomAugmentAndOfAStage) {
  std::string dir = temp_dir("regen_augment");
  auto r = run_loom({"augment", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                     "--out", dir + "/a-images-idx3-ubyte", "--transform",
                     "[{type: rotate, degrees: 15}, {type: gaussian_noise, std: 0.1}]", "--copies",
                     "3", "--keep-originals", "--subset", "50", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string manifest = dir + "/a-images-idx3-ubyte.manifest.json";
  ASSERT_TRUE(fs::exists(manifest));
  EXPECT_EQ(read_json(manifest)["parameters"]["transform"][0]["interpolation"], "bilinear");
  // 4 outputs per input: 0 is input 0's original, 198 copy 1 of input 49.
  for (int64_t i : {0, 198})
    regenerate_and_check(manifest, dir + "/a-images-idx3-ubyte", i,
                         dir + "/a" + std::to_string(i) + ".idx");

  r = run_loom({"run", source_path("pipelines/augment_fashion.yaml"), "--subset", "40", "--out",
                dir + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string stage = dir + "/run/augmented/train-images-idx3-ubyte";
  regenerate_and_check(stage + ".manifest.json", stage, 77, dir + "/s77.idx");
  fs::remove_all(dir);
}

}  // namespace
