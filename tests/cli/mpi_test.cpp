// Data-parallel training on MPI ranks (`mpirun -np 2 loom run ...`): two ranks with batch b
// train as one process with batch 2b (stacked_ae, conv_ae, dcgan: gradients averaged, batch norm
// over the whole batch, per-row noise and dropout as one process draws them), rank 0 alone
// writes the run folder, a failing or killed rank stops every rank with one message and the
// last checkpoint stays loadable, and --resume continues with another number of ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "output/safetensors.hpp"
#include "support/cli.hpp"

using namespace loom::test;
namespace fs = std::filesystem;

namespace {

struct Trained {
  std::vector<MetricLine> metrics;
  loom::TensorFile weights;
};

// Trains `pipeline` for one epoch of `subset` samples on `ranks` processes with `batch` per rank.
Trained train(const std::string& dir, const std::string& pipeline, int ranks, int batch, int subset,
              const std::vector<std::string>& more = {}) {
  std::vector<std::string> args{"run",       source_path(pipeline),
                                "--out",     dir,
                                "--subset",  std::to_string(subset),
                                "--epochs",  "1",
                                "--threads", "1",
                                "--set",     "stages.train.batch_size=" + std::to_string(batch)};
  args.insert(args.end(), more.begin(), more.end());
  CliResult r = ranks == 1 ? run_loom(args) : run_mpi(ranks, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Trained t;
  t.metrics = read_metrics(dir + "/metrics.jsonl");
  if (fs::exists(dir + "/weights.safetensors"))
    t.weights = loom::load_safetensors(dir + "/weights.safetensors");
  return t;
}

// The largest difference between two runs' weights, relative to the weights' own scale.
double weight_difference(const loom::TensorFile& a, const loom::TensorFile& b) {
  double worst = 0;
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  for (auto& [name, t] : a.tensors) {
    auto it = b.tensors.find(name);
    if (it == b.tensors.end()) {
      ADD_FAILURE() << "no tensor " << name;
      continue;
    }
    double scale = 1e-3;
    for (int64_t i = 0; i < t.size(); ++i) scale = std::max(scale, double(std::fabs(t[i])));
    for (int64_t i = 0; i < t.size(); ++i)
      worst = std::max(worst, std::fabs(double(t[i]) - double(it->second[i])) / scale);
  }
  return worst;
}

void expect_equivalent(const std::string& pipeline, int batch, int subset, double loss_tol,
                       double weight_tol, const std::vector<std::string>& more = {}) {
  SCOPED_TRACE(pipeline);
  std::string dir = temp_dir("mpi-equivalence");
  Trained one = train(dir + "/one", pipeline, 1, 2 * batch, subset, more);
  Trained two = train(dir + "/two", pipeline, 2, batch, subset, more);
  ASSERT_EQ(one.metrics.size(), two.metrics.size());
  ASSERT_FALSE(one.metrics.empty());
  for (size_t i = 0; i < one.metrics.size(); ++i) {
    SCOPED_TRACE(one.metrics[i].task + " " + one.metrics[i].split);
    EXPECT_EQ(one.metrics[i].values["step"], two.metrics[i].values["step"]);
    for (auto& [k, v] : one.metrics[i].values) {
      if (k == "images_per_s" || k == "time_s" || k == "step" || k == "epoch") continue;
      ASSERT_TRUE(two.metrics[i].values.count(k)) << k;
      EXPECT_NEAR(two.metrics[i].values[k], v, loss_tol * std::max(1.0, std::fabs(v))) << k;
    }
  }
  EXPECT_LT(weight_difference(one.weights, two.weights), weight_tol);
  fs::remove_all(dir);
}

}  // namespace

// 100 steps each: the losses of every epoch line and the final weights agree to float rounding
// (the sums of two half batches are added in another order than one whole batch's).
//
// conv_ae and dcgan train with SGD here: the adaptive optimizers' first steps are about
// lr·sign(g), so a gradient that is zero but for rounding (a dead unit's bias, the bias before a
// batch norm) can flip sign between the two runs and move its weight by a whole step, after
// which the runs drift apart (measured: conv_ae with Nadam identical after 1 step, 1e-3 apart
// after 10, 0.2 after 50; with SGD 2e-5 after 100). SGD's step is proportional to the gradient
// and shows what was computed; stacked_ae keeps its Nadam, which stays within 1e-4.
TEST(Mpi, TwoRanksTrainAsOneProcessWithTheWholeBatch) {
  expect_equivalent("pipelines/stacked_ae.yaml", 16, 3200, 1e-4, 1e-3);
  expect_equivalent("pipelines/conv_ae.yaml", 16, 3200, 1e-4, 1e-3,
                    {"--set", "stages.train.optimizer={type: sgd, lr: 0.05, momentum: 0.9}"});
  // Batch norm in the generator, dropout in the discriminator, latent codes per row.
  expect_equivalent("pipelines/dcgan.yaml", 16, 3200, 1e-3, 1e-2,
                    {"--set", "stages.train.optimizer={type: sgd, lr: 0.01}"});
}

TEST(Mpi, OnlyRankZeroWritesTheRunFolder) {
  std::string dir = temp_dir("mpi-writer");
  std::vector<std::string> args{"run",       source_path("pipelines/stacked_ae.yaml"),
                                "--out",     dir + "/run",
                                "--subset",  "640",
                                "--epochs",  "2",
                                "--threads", "1"};
  CliResult r = run_mpi(2, args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One line per epoch and split, one banner, no temporary files.
  auto lines = read_metrics(dir + "/run/metrics.jsonl");
  EXPECT_EQ(lines.size(), 4u);
  size_t banners = 0;
  for (size_t at = r.out.find("done: outputs in"); at != std::string::npos;
       at = r.out.find("done: outputs in", at + 1))
    ++banners;
  EXPECT_EQ(banners, 1u) << r.out;
  for (auto& e : fs::recursive_directory_iterator(dir + "/run"))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/train/last.safetensors"));
  fs::remove_all(dir);
}

namespace {

// stacked_ae with a `rank_fault` layer that fails on rank 1 from step `at_step` on.
std::string faulty_pipeline(const std::string& dir, const std::string& how, int at_step) {
  std::string path = dir + "/faulty.yaml";
  std::ofstream o(path);
  o << "name: faulty\nseed: 1\nplugins: [" << LOOM_TEST_PLUGIN_DIR << "/libtest_rank_fault.so]\n"
    << "datasets:\n  fashion: {source: idx, scale: [0, 1], splits: {train: {take: 55000}, "
       "valid: {skip: 55000}}}\n"
    << "models:\n  ae:\n    input: [28, 28]\n    layers:\n      - {type: flatten}\n"
    << "      - {type: dense, units: 30, activation: relu}\n"
    << "      - {type: rank_fault, rank: 1, at_step: " << at_step << ", how: " << how << "}\n"
    << "      - {type: dense, units: 784}\n      - {type: reshape, shape: [28, 28]}\n"
    << "stages:\n  train: {recipe: autoencoder, model: ae, data: fashion, loss: mse, "
       "optimizer: {type: adam}, batch_size: 16, epochs: 3}\n";
  return path;
}

}  // namespace

// Rank 1 fails in the second epoch (20 steps of 2 x 16 per epoch): every rank stops, one message
// names the rank, and the first epoch's checkpoint continues on one process.
TEST(Mpi, AFailingRankStopsEveryRank) {
  for (const char* how : {"throw", "kill"}) {
    SCOPED_TRACE(how);
    std::string dir = temp_dir("mpi-fault");
    std::string pipeline = faulty_pipeline(dir, how, 25);
    CliResult r =
        run_mpi(2, {"run", pipeline, "--out", dir + "/run", "--subset", "640", "--threads", "1"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.exit_code, 124) << "timed out: the ranks hung";  // timeout's code
    if (std::string(how) == "throw") {
      EXPECT_NE(r.err.find("error (rank 1 of 2): "), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("rank_fault: failing on rank 1 as asked"), std::string::npos) << r.err;
    }
    ASSERT_TRUE(fs::exists(dir + "/run/checkpoints/train/last.safetensors"));
    // One process (no ranks: the layer passes through) resumes from the checkpoint and finishes.
    CliResult resumed = run_loom({"run", pipeline, "--out", dir + "/run", "--resume", "--subset",
                                  "640", "--threads", "1", "--set", "stages.train.batch_size=32"});
    EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find("resuming 'train' after epoch 1"), std::string::npos) << resumed.out;
    fs::remove_all(dir);
  }
}

// Ranks whose gradients would be packed in different orders (here a plugin layer that declares
// its parameters in a rank-dependent order) stop at the first step with an error, instead of
// adding one parameter's gradient to another's.
TEST(Mpi, RanksThatPackGradientsDifferentlyStop) {
  std::string dir = temp_dir("mpi-misorder");
  CliResult r = run_mpi(2, {"run", faulty_pipeline(dir, "misorder", 1), "--out", dir + "/run",
                            "--subset", "640", "--threads", "1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "timed out: the ranks hung";
  EXPECT_NE(r.err.find("stage 'train', epoch 1, step 1: the ranks sent their gradients in "
                       "different orders in one step"),
            std::string::npos)
      << r.err;
  // The same pipeline on one process (no ranks to disagree) trains.
  CliResult one = run_loom({"run", faulty_pipeline(dir, "misorder", 1), "--out", dir + "/one",
                            "--subset", "640", "--epochs", "1", "--threads", "1"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  fs::remove_all(dir);
}

// A run begun on two ranks (batch 16 each) continues on one process (batch 32) as one process
// would have trained it throughout.
TEST(Mpi, ResumeContinuesWithAnotherNumberOfRanks) {
  std::string dir = temp_dir("mpi-resume");
  std::string p = source_path("pipelines/stacked_ae.yaml");
  std::vector<std::string> common{"--subset", "640", "--threads", "1"};
  auto args = [&](const std::string& out, int batch, int epochs, bool resume) {
    std::vector<std::string> a{"run",      p,
                               "--out",    out,
                               "--epochs", std::to_string(epochs),
                               "--set",    "stages.train.batch_size=" + std::to_string(batch)};
    a.insert(a.end(), common.begin(), common.end());
    if (resume) a.push_back("--resume");
    return a;
  };
  ASSERT_EQ(run_mpi(2, args(dir + "/mixed", 16, 1, false)).exit_code, 0);
  CliResult r = run_loom(args(dir + "/mixed", 32, 2, true));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(run_loom(args(dir + "/one", 32, 2, false)).exit_code, 0);
  auto mixed = read_metrics(dir + "/mixed/metrics.jsonl");
  auto one = read_metrics(dir + "/one/metrics.jsonl");
  ASSERT_EQ(mixed.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_NEAR(mixed[i].loss, one[i].loss, 1e-4 * one[i].loss) << i;
  fs::remove_all(dir);
}

// `mpirun -np N loom sample`: each rank generates its share of the batches (batch k: rank
// k mod N) and rank 0 writes them: the dataset's bytes do not depend on N. A generator's
// codings and a diffusion model's DDIM denoising alike.
TEST(Mpi, ShardedSamplingWritesTheBytesOfOneProcess) {
  std::string dir = temp_dir("mpi-sample");
  std::vector<std::string> brief{"--subset",    "64", "--epochs",  "1",
                                 "--max-steps", "1",  "--threads", "1"};
  auto train = [&](const std::string& pipeline, const std::string& out,
                   std::vector<std::string> sets) {
    std::vector<std::string> a{"run", source_path(pipeline), "--out", out};
    a.insert(a.end(), brief.begin(), brief.end());
    for (auto& s : sets) a.insert(a.end(), {"--set", s});
    CliResult r = run_loom(a);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  train("pipelines/dcgan.yaml", dir + "/gan", {"stages.generated.n=16"});
  train("pipelines/ddpm.yaml", dir + "/ddpm",
        {"stages.train.sample_every=0", "stages.sample.sampler=ddim",
         "stages.sample.sampling_steps=2", "stages.sample.n=8"});
  struct Case {
    std::string run;
    std::vector<std::string> options;
  };
  for (const Case& c :
       {Case{dir + "/gan", {"--n", "100", "--batch-size", "16"}},
        Case{dir + "/ddpm",
             {"--sampler", "ddim", "--steps", "3", "--n", "40", "--batch-size", "8"}}}) {
    SCOPED_TRACE(c.run);
    std::string want;
    for (int ranks : {1, 2, 3}) {
      std::string out = c.run + "/sampled_" + std::to_string(ranks) + ".npy";
      std::vector<std::string> a{"sample", c.run, "--out", out, "--threads", "1"};
      a.insert(a.end(), c.options.begin(), c.options.end());
      CliResult r = ranks == 1 ? run_loom(a) : run_mpi(ranks, a);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      std::string got = read_text(out);
      ASSERT_GT(got.size(), 1000u);
      if (ranks == 1)
        want = got;
      else
        EXPECT_TRUE(got == want) << ranks << " ranks wrote other bytes than one process";
    }
  }
  fs::remove_all(dir);
}

// `mpirun -np N loom augment`: chunk k is augmented by rank k mod N and rank 0 writes every
// chunk in order: the same images and labels as one process, at 2 and 3 ranks.
TEST(Mpi, ShardedAugmentationWritesTheBytesOfOneProcess) {
  std::string dir = temp_dir("mpi-augment");
  std::string input = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  std::string chain =
      "[{type: horizontal_flip}, {type: rotate, degrees: 15}, {type: gaussian_noise, std: 0.05}]";
  std::string want, want_labels;
  for (int ranks : {1, 2, 3}) {
    std::string out = dir + "/aug_" + std::to_string(ranks) + ".npy";
    std::vector<std::string> a{"augment", input, "--out",     out, "--copies",    "2",
                               "--seed",  "3",   "--threads", "1", "--transform", chain};
    CliResult r = ranks == 1 ? run_loom(a) : run_mpi(ranks, a);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("wrote 20,000 images"), std::string::npos) << r.out;
    std::string got = read_text(out),
                labels = read_text(dir + "/aug_" + std::to_string(ranks) + ".labels.npy");
    ASSERT_GT(got.size(), 20000u * 784u);
    if (ranks == 1) {
      want = got;
      want_labels = labels;
    } else {
      EXPECT_TRUE(got == want) << ranks << " ranks wrote other images than one process";
      EXPECT_TRUE(labels == want_labels) << ranks << " ranks wrote other labels";
    }
  }
  fs::remove_all(dir);
}

// `mpirun -np 2 loom bench`: rank 0's clock closes each window on both ranks (so they take the
// same steps and finish), and the figure is the job's: the images of both ranks.
TEST(Mpi, BenchReportsTheWholeJobsRate) {
  CliResult r =
      run_mpi(2, {"bench", source_path("pipelines/stacked_ae.yaml"), "--threads", "1", "--warmup",
                  "5", "--windows", "3", "--steps", "30", "--set", "stages.train.batch_size=16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("median of 3 windows of 30 steps, batch 32"), std::string::npos) << r.out;
}
