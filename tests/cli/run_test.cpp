// Runs of the loom tool: determinism, resume, the NaN guard, atomic checkpoints, predict.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "loom/io.hpp"
#include "output/safetensors.hpp"
#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

std::string stacked() { return source_path("pipelines/stacked_ae.yaml"); }

std::vector<std::pair<std::string, double>> losses(const std::string& dir) {
  std::vector<std::pair<std::string, double>> out;
  for (auto& m : read_metrics(dir + "/metrics.jsonl"))
    out.push_back({m.split + std::to_string(m.epoch), m.loss});
  return out;
}

TEST(Runs, SameSeedSameMetricsAcrossThreadCounts) {
  std::string a = temp_dir("det") + "/a", b = temp_dir("det") + "/b", c = temp_dir("det") + "/c";
  for (auto& [dir, threads] :
       std::vector<std::pair<std::string, std::string>>{{a, "2"}, {b, "2"}, {c, "1"}}) {
    CliResult r = run_loom({"run", stacked(), "--out", dir, "--subset", "1500", "--epochs", "2",
                            "--threads", threads, "--set", "models.encoder.layers[1].type=dense"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(losses(a), losses(b));
  // Across thread counts dense's data gradient may round differently (README, "Threads and
  // reproducibility"): the metrics agree to 6 digits, not to the bit.
  auto la = losses(a), lc = losses(c);
  ASSERT_EQ(la.size(), lc.size());
  for (size_t i = 0; i < la.size(); ++i)
    EXPECT_NEAR(la[i].second, lc[i].second, 1e-6 * la[i].second);
  // A different seed gives different numbers.
  std::string d = temp_dir("det") + "/d";
  ASSERT_EQ(run_loom({"run", stacked(), "--out", d, "--subset", "1500", "--epochs", "2", "--set",
                      "seed=7"})
                .exit_code,
            0);
  EXPECT_NE(losses(a), losses(d));
}

TEST(Runs, ResumeEqualsUninterruptedRun) {
  std::string full = temp_dir("res") + "/full", part = temp_dir("res") + "/part";
  std::vector<std::string> common{"--subset", "1000", "--set", "models.encoder.layers[1].units=64"};
  auto run = [&](const std::string& dir, const std::string& epochs, bool resume) {
    std::vector<std::string> args{"run", stacked(), "--out", dir, "--epochs", epochs};
    args.insert(args.end(), common.begin(), common.end());
    if (resume) args.push_back("--resume");
    CliResult r = run_loom(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  run(full, "3", false);
  run(part, "2", false);
  run(part, "3", true);
  auto f = read_metrics(full + "/metrics.jsonl"), p = read_metrics(part + "/metrics.jsonl");
  ASSERT_EQ(f.size(), p.size());
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_EQ(f[i].epoch, p[i].epoch);
    EXPECT_EQ(f[i].loss, p[i].loss) << "line " << i;
  }
  auto wf = loom::load_safetensors(full + "/weights.safetensors"),
       wp = loom::load_safetensors(part + "/weights.safetensors");
  for (auto& [name, t] : wf.tensors)
    for (int64_t i = 0; i < t.size(); ++i) ASSERT_EQ(t[i], wp.tensors[name][i]) << name;
}

TEST(Runs, NanLossStopsAndKeepsLastGoodCheckpoint) {
  std::string dir = temp_dir("nan") + "/run";
  ASSERT_EQ(
      run_loom({"run", stacked(), "--out", dir, "--subset", "500", "--epochs", "1"}).exit_code, 0);
  std::string ckpt = dir + "/checkpoints/train/last.safetensors";
  std::string before = read_text(ckpt);
  CliResult r = run_loom({"run", stacked(), "--out", dir, "--subset", "500", "--epochs", "3",
                          "--resume", "--set", "stages.train.optimizer={type: sgd, lr: 1.0e+30}"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("stage 'train': the loss became"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("at epoch 2, step"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the last good checkpoint is kept: " + ckpt), std::string::npos) << r.err;
  EXPECT_EQ(read_text(ckpt), before);
}

TEST(Files, AtomicWriteKeepsPreviousFileOnFailure) {
  std::string dir = temp_dir("atomic"), path = dir + "/x.bin";
  loom::write_atomically(path, [](const std::string& tmp) { std::ofstream(tmp) << "good"; });
  EXPECT_THROW(loom::write_atomically(path,
                                      [](const std::string& tmp) {
                                        std::ofstream(tmp) << "half";
                                        throw loom::Error("interrupted");
                                      }),
               loom::Error);
  EXPECT_EQ(read_text(path), "good");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(Files, SafetensorsAndNpyRoundTrip) {
  std::string dir = temp_dir("rt");
  loom::Tensor a({2, 3});
  for (int i = 0; i < 6; ++i) a[i] = float(i) * 0.5f - 1;
  loom::save_safetensors(dir + "/w.safetensors", {{"m.l.kernel", &a}}, {{"epoch", "3"}});
  auto f = loom::load_safetensors(dir + "/w.safetensors");
  ASSERT_EQ(f.tensors.count("m.l.kernel"), 1u);
  EXPECT_EQ(f.tensors["m.l.kernel"].shape(), a.shape());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f.tensors["m.l.kernel"][i], a[i]);
  EXPECT_EQ(f.metadata["epoch"], "3");
  loom::write_npy(dir + "/a.npy", a);
  loom::Tensor b = loom::read_npy(dir + "/a.npy");
  EXPECT_EQ(b.shape(), a.shape());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(b[i], a[i]);
  // A truncated safetensors file is reported, not read past its end.
  std::string text = read_text(dir + "/w.safetensors");
  std::ofstream(dir + "/t.safetensors", std::ios::binary) << text.substr(0, text.size() - 4);
  EXPECT_THROW(loom::load_safetensors(dir + "/t.safetensors"), loom::Error);
}

TEST(Runs, PredictWritesCodings) {
  std::string dir = temp_dir("pred") + "/run";
  ASSERT_EQ(
      run_loom({"run", stacked(), "--out", dir, "--subset", "500", "--epochs", "1"}).exit_code, 0);
  std::string out = dir + "/../codings.npy";
  CliResult r =
      run_loom({"predict", dir, "--model", "encoder", "--input",
                "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  loom::Tensor c = loom::read_npy(out);
  EXPECT_EQ(c.shape(), loom::Shape({10000, 30}));
  r = run_loom({"predict", dir, "--input",
                "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(loom::read_npy(out).shape(), loom::Shape({10000, 28, 28}));
}

}  // namespace

namespace {

TEST(Runs, KilledRunNeverCorruptsTheCheckpoint) {
  // Kill -9 a run at several moments; whatever is under last.safetensors must load and match
  // the model. Checkpoints are written every epoch (a few dozen ms each here).
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::string dir = temp_dir("kill") + "/run";
    std::string cmd = std::string(LOOM_BINARY_DIR) + "/bin/loom run " +
                      source_path("pipelines/stacked_ae.yaml") + " --out " + dir +
                      " --subset 256 --epochs 1000 --quiet > /dev/null 2>&1 & pid=$!; sleep " +
                      std::to_string(0.6 + 0.25 * attempt) + "; kill -9 $pid; wait $pid";
    (void)std::system(cmd.c_str());
    std::string ckpt = dir + "/checkpoints/train/last.safetensors";
    if (!fs::exists(ckpt)) continue;  // killed before the first checkpoint
    loom::TensorFile f = loom::load_safetensors(ckpt);
    EXPECT_EQ(f.tensors.count("encoder.coding.kernel"), 1u);
    EXPECT_EQ(f.tensors["encoder.coding.kernel"].shape(), loom::Shape({100, 30}));
    // And the run resumes from it.
    CliResult r =
        run_loom({"run", stacked(), "--out", dir, "--subset", "256", "--epochs",
                  std::to_string(std::stoi(f.metadata["epoch"]) + 1), "--resume", "--quiet"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
}

TEST(Runs, BatchNormStatisticsAreCheckpointed) {
  std::string dir = temp_dir("bn");
  std::string p = dir + "/bn.yaml";
  std::ofstream(p) << "name: bn\ndatasets:\n  d: {source: idx, scale: [0, 1], splits: {train: "
                      "{take: 512}, valid: {skip: 59488}}}\n"
                      "models:\n  m:\n    input: [1, 28, 28]\n    layers:\n"
                      "      - {type: conv2d, filters: 4, kernel_size: [3], padding: same}\n"
                      "      - {type: batch_norm, name: bn}\n      - {type: relu}\n"
                      "      - {type: conv2d, filters: 1, kernel_size: [3], padding: same}\n"
                      "stages:\n  train: {recipe: autoencoder, model: m, data: d, epochs: 2}\n";
  CliResult r = run_loom({"run", p, "--out", dir + "/run", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto w = loom::load_safetensors(dir + "/run/weights.safetensors");
  ASSERT_EQ(w.tensors.count("m.bn.moving_mean"), 1u);
  ASSERT_EQ(w.tensors.count("m.bn.moving_variance"), 1u);
  double moved = 0;
  for (int64_t i = 0; i < 4; ++i) moved += std::fabs(w.tensors["m.bn.moving_mean"][i]);
  EXPECT_GT(moved, 0.0) << "the running mean never moved";
  // Resuming restores them: a resumed run's statistics continue from the saved ones.
  auto ck = loom::load_safetensors(dir + "/run/checkpoints/train/last.safetensors");
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(ck.tensors["m.bn.moving_mean"][i], w.tensors["m.bn.moving_mean"][i]);
}

TEST(Runs, StagesHandTrainedModelsAndDatasetsOn) {
  std::string dir = temp_dir("greedy") + "/run";
  CliResult r = run_loom({"run", source_path("pipelines/greedy_ae.yaml"), "--out", dir, "--subset",
                          "1000", "--epochs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = read_metrics(dir + "/metrics.jsonl");
  std::vector<std::string> order;
  std::map<std::string, double> first_valid;
  for (auto& m : lines) {
    if (order.empty() || order.back() != m.task) order.push_back(m.task);
    if (m.split == "valid" && !first_valid.count(m.task)) first_valid[m.task] = m.loss;
  }
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "fine_tune"}));
  EXPECT_NE(r.out.find("encode: published 60000 x (100,) as dataset 'hidden'"), std::string::npos)
      << r.out;
  // The stacked model starts from the trained layers: its first validation loss is already far
  // below that of an untrained autoencoder.
  EXPECT_LT(first_valid["fine_tune"], 0.06);
}

}  // namespace
