// Stages that share layers never race, and `freeze:` is a stage's own decision.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "output/safetensors.hpp"
#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

// `codings` predicts with the encoder while `classify` fine-tunes that same encoder; both only
// say `after: train`. `probe` uses a model that shares nothing and may run beside either.
const char* kSiblings = R"(name: siblings
seed: 3
datasets:
  fashion:
    source: idx
    scale: [0, 1]
    splits: {train: {take: 1000}, valid: {skip: 59000}}
models:
  encoder:
    input: [28, 28]
    layers:
      - {type: flatten}
      - {type: dropout, rate: 0.2}
      - {type: dense, units: 16, activation: relu, name: code}
  decoder:
    input: [16]
    layers:
      - {type: dense, units: 784}
      - {type: reshape, shape: [28, 28]}
  autoencoder: {sequence: [encoder, decoder]}
  classifier:
    input: [28, 28]
    layers:
      - {model: encoder}
      - {type: dense, units: 10}
  other:
    input: [28, 28]
    layers:
      - {type: flatten}
      - {type: dense, units: 10}
stages:
  train:
    recipe: autoencoder
    model: autoencoder
    data: fashion
    loss: mse
    epochs: 1
  codings:
    after: train
    recipe: predict
    model: encoder
    data: fashion.valid
    write: codings.npy
  classify:
    after: train
    recipe: supervised
    model: classifier
    data: fashion
    epochs: 1
    FREEZE
  probe:
    recipe: supervised
    model: other
    data: fashion
    epochs: 1
)";

std::string write_pipeline(const std::string& dir, const std::string& freeze) {
  std::string text = kSiblings;
  text.replace(text.find("FREEZE"), 6, freeze);
  std::string path = dir + "/siblings.yaml";
  std::ofstream(path) << text;
  return path;
}

std::string bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST(Stages, SiblingsSharingAnEncoderGiveTheSameBytesEveryRun) {
  std::string dir = temp_dir("siblings");
  std::string pipeline = write_pipeline(dir, "");
  CliResult v = run_loom({"validate", pipeline});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  // classify shares the encoder with codings, so it waits for it; probe shares nothing.
  EXPECT_NE(v.out.find("classify (supervised) after train codings (shares layers with codings"),
            std::string::npos)
      << v.out;
  EXPECT_NE(v.out.find("probe (supervised)\n"), std::string::npos) << v.out;
  std::string first_codings, first_weights;
  for (int run = 0; run < 3; ++run) {
    std::string out = dir + "/run" + std::to_string(run);
    CliResult r = run_loom({"run", pipeline, "--out", out, "--threads", "2", "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string c = bytes(out + "/codings.npy"), w = bytes(out + "/weights.safetensors");
    ASSERT_FALSE(c.empty());
    if (run == 0) {
      first_codings = c;
      first_weights = w;
    } else {
      EXPECT_EQ(c, first_codings) << "run " << run;
      EXPECT_EQ(w, first_weights) << "run " << run;
    }
  }
  // No temp file is left behind by concurrent writes.
  for (auto& e : fs::recursive_directory_iterator(dir))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(Stages, FreezeIsPerStage) {
  std::string dir = temp_dir("freeze");
  std::string pipeline = write_pipeline(dir, "freeze: [encoder]");
  std::string out = dir + "/run";
  CliResult r = run_loom({"run", pipeline, "--out", out, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The autoencoder stage trained the encoder; the classifier stage left it as it was.
  loom::TensorFile after_train =
      loom::load_safetensors(out + "/checkpoints/train/last.safetensors");
  loom::TensorFile final_weights = loom::load_safetensors(out + "/weights.safetensors");
  loom::TensorFile after_classify =
      loom::load_safetensors(out + "/checkpoints/classify/last.safetensors");
  const std::string k = "encoder.code.kernel", head = "classifier.dense_1.kernel";
  ASSERT_TRUE(after_train.tensors.count(k));
  const loom::Tensor& a = after_train.tensors.at(k);
  const loom::Tensor& b = final_weights.tensors.at(k);
  ASSERT_EQ(a.size(), b.size());
  for (int64_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "element " << i;
  // The classifier's head was trained, and its checkpoint holds no slots for the encoder.
  ASSERT_TRUE(after_classify.tensors.count(head));
  EXPECT_FALSE(after_classify.tensors.count("optimizer.m." + k) ||
               after_classify.tensors.count("optimizer.v." + k));
  EXPECT_TRUE(after_classify.tensors.count("optimizer.m." + head) ||
              after_classify.tensors.count("optimizer.v." + head));
  // A name that matches nothing is a located error before anything runs.
  std::string bad = write_pipeline(dir, "freeze: [encodr]");
  CliResult e = run_loom({"run", bad, "--out", dir + "/bad", "--quiet"});
  EXPECT_NE(e.exit_code, 0);
  EXPECT_NE(e.err.find("freeze"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("did you mean"), std::string::npos) << e.err;
}

TEST(Stages, ValidatePrintsWhatEachStageTrains) {
  std::string dir = temp_dir("validate-trainable");
  CliResult r = run_loom({"validate", write_pipeline(dir, "freeze: [encoder]")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // encoder 784*16+16 = 12560, decoder 16*784+784 = 13328, head 16*10+10 = 170.
  EXPECT_NE(r.out.find("train (autoencoder)\n    trains 25888 of 25888 trainable parameters\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("trains 170 of 12730 trainable parameters (12560 frozen)"),
            std::string::npos)
      << r.out;
  // Stages that do not train print no such line.
  EXPECT_EQ(r.out.find("codings (predict) after train\n    trains"), std::string::npos) << r.out;
}
