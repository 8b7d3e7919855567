// Stage caching: `loom run --resume` reuses a stage whose inputs did not change since it finished
// (nothing of it runs, nothing of it is rewritten), runs again a stage whose inputs changed and
// the stages after it, nothing else; `--rerun STAGE` forces one; after a failure it continues at
// the failed stage.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "loom/io.hpp"
#include "loom/tensor.hpp"
#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

// pretrain -> classify (shares the encoder) -> codings (publishes 'codes') -> recon (reads them);
// probe shares nothing with the others.
const char* kPipeline = R"(name: cached
seed: 3
datasets:
  d:
    source: npy
    x: x.npy
    labels: y.npy
    splits: {train: {take: 200}, valid: {skip: 200}}
models:
  encoder:
    input: [8, 8]
    layers:
      - {type: flatten}
      - {type: dense, units: 4, activation: relu, name: code}
  decoder:
    input: [4]
    layers:
      - {type: dense, units: 64}
      - {type: reshape, shape: [8, 8]}
  autoencoder: {sequence: [encoder, decoder]}
  classifier:
    input: [8, 8]
    layers:
      - {model: encoder}
      - {type: dense, units: 10}
  other:
    input: [8, 8]
    layers:
      - {type: flatten}
      - {type: dense, units: 10}
stages:
  pretrain:
    recipe: autoencoder
    model: autoencoder
    data: d
    loss: mse
    batch_size: 50
    epochs: 1
  classify:
    after: pretrain
    recipe: supervised
    model: classifier
    data: d
    batch_size: 50
    epochs: 1
  codings:
    after: classify
    recipe: predict
    model: encoder
    data: d.valid
    write: codings.npy
    publish: codes
  recon:
    recipe: predict
    model: decoder
    data: codes
    write: recon.npy
  probe:
    recipe: supervised
    model: other
    data: d
    batch_size: 50
    epochs: 1
)";

const std::vector<std::string> kStages{"pretrain", "classify", "codings", "recon", "probe"};

// 300 samples of 8 x 8 values with labels 0-9; `salt` changes the values.
void write_data(const std::string& dir, int salt) {
  loom::Tensor x({300, 8, 8});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = float((i * 7919 + salt) % 97) / 97.f;
  std::vector<int32_t> y(300);
  for (size_t i = 0; i < y.size(); ++i) y[i] = int32_t(i % 10);
  loom::write_npy(dir + "/x.npy", x);
  loom::write_npy_labels(dir + "/y.npy", y);
}

struct Fixture {
  std::string dir, pipeline, out;
};

Fixture make(const std::string& tag) {
  Fixture f;
  f.dir = temp_dir(tag);
  f.pipeline = f.dir + "/cached.yaml";
  f.out = f.dir + "/run";
  std::ofstream(f.pipeline) << kPipeline;
  write_data(f.dir, 0);
  return f;
}

CliResult run(const Fixture& f, std::vector<std::string> extra) {
  std::vector<std::string> args{"run", f.pipeline, "--out", f.out, "--threads", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_loom(args);
}

// Every file of the run folder with its bytes, but those rewritten by every run.
std::map<std::string, std::string> files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    std::string rel = fs::relative(e.path(), dir).string();
    if (e.is_regular_file() && rel != "report.html" && rel != ".loom.lock")
      out[rel] = read_text(e.path());
  }
  return out;
}

// What a run computed, without the timings: every metrics line's stage, split, epoch and loss
// (in stage order), and every other file's bytes.
std::map<std::string, std::string> results(const std::string& dir) {
  auto out = files(dir);
  out.erase("stages.json");  // the finishing times
  out.erase("metrics.jsonl");
  for (auto& m : read_metrics(dir + "/metrics.jsonl"))
    out["metrics of " + m.task] +=
        m.split + " " + std::to_string(m.epoch) + " " + std::to_string(m.loss) + "\n";
  return out;
}

// The files of a stage: its checkpoints.
std::map<std::string, std::string> of_stage(const std::map<std::string, std::string>& all,
                                            const std::string& stage) {
  std::map<std::string, std::string> out;
  for (auto& [k, v] : all)
    if (k.rfind("checkpoints/" + stage + "/", 0) == 0) out[k] = v;
  return out;
}

// The metrics lines of a stage, as written.
std::vector<std::string> lines_of(const std::string& dir, const std::string& stage) {
  std::vector<std::string> out;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    if (line.find("{\"task\":\"" + stage + "\"") == 0) out.push_back(line);
  return out;
}

bool trained(const CliResult& r, const std::string& stage) {
  return r.out.find(stage + " epoch ") != std::string::npos;
}

std::string fate(const CliResult& r, const std::string& stage) {
  size_t at = r.out.find("stage " + stage + ": ");
  if (at == std::string::npos) return "(not said)";
  size_t from = at + 8 + stage.size();
  return r.out.substr(from, r.out.find('\n', from) - from);
}

bool reused(const CliResult& r, const std::string& stage) {
  return fate(r, stage).rfind("reused (finished ", 0) == 0 &&
         fate(r, stage).ends_with("; inputs unchanged)");
}

}  // namespace

TEST(StageCaching, ResumeReusesWhatDidNotChange) {
  Fixture f = make("cache");
  CliResult r = run(f, {});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (auto& s : kStages) EXPECT_EQ(fate(r, s), "(not said)") << "a first run says nothing";
  auto first = files(f.out);
  auto first_results = results(f.out);
  ASSERT_TRUE(first.count("stages.json"));
  ASSERT_TRUE(first.count("checkpoints/classify/final.safetensors"));
  ASSERT_TRUE(first.count("recon.npy"));
  nlohmann::json rec = nlohmann::json::parse(first["stages.json"]);
  for (auto& s : kStages) EXPECT_TRUE(rec.contains(s)) << first["stages.json"];
  // A stage that writes no metrics is done too (it is recorded as finished).
  EXPECT_NE(read_text(f.out + "/report.html")
                .find("codings</a></td><td>predict</td><td><span class=\"ok\">done</span>"),
            std::string::npos);

  // Nothing changed: every stage reused, no step runs, every file as it was, byte for byte.
  r = run(f, {"--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (auto& s : kStages) {
    EXPECT_TRUE(reused(r, s)) << s << ": " << fate(r, s) << "\n" << r.out;
    EXPECT_FALSE(trained(r, s)) << r.out;
  }
  EXPECT_EQ(r.out.find("published"), std::string::npos) << "codings ran:\n" << r.out;
  EXPECT_EQ(files(f.out), first);
  EXPECT_NE(read_text(f.out + "/report.html").find("done</span> (reused)"), std::string::npos);

  // --rerun classify: it and the stages after it run from the start (and make the same bytes
  // again); pretrain and probe are reused.
  r = run(f, {"--rerun", "classify"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "classify"), "runs again from the start (--rerun)");
  EXPECT_EQ(fate(r, "codings"),
            "runs again from the start (stage 'classify' before it runs again)");
  EXPECT_EQ(fate(r, "recon"), "runs again from the start (stage 'codings' before it runs again)");
  EXPECT_TRUE(reused(r, "pretrain")) << r.out;
  EXPECT_TRUE(reused(r, "probe")) << r.out;
  EXPECT_TRUE(trained(r, "classify")) << r.out;
  EXPECT_FALSE(trained(r, "pretrain") || trained(r, "probe")) << r.out;
  EXPECT_EQ(results(f.out), first_results) << "a stage run again from the start made other bytes";
  // An unknown stage is refused, with the stages named, before anything is written.
  r = run(f, {"--rerun", "clasify"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--rerun clasify: " + f.pipeline +
                       " has no stage 'clasify' (did you mean 'classify'?); its stages: pretrain, "
                       "classify, codings, recon, probe"),
            std::string::npos)
      << r.err;

  // Another entry for classify (another learning rate, one more epoch): it continues from its
  // checkpoint, the stages after it run again from the start, nothing else runs.
  std::vector<std::string> changed{"--resume", "--set", "stages.classify.epochs=2", "--set",
                                   "stages.classify.optimizer={type: adam, lr: 0.01}"};
  r = run(f, changed);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "classify"),
            "runs (its pipeline entry changed: optimizer: (none) -> {type: adam, lr: 0.01}; "
            "continuing from its checkpoint, --rerun classify starts it over)");
  EXPECT_NE(r.out.find("resuming 'classify' after epoch 1"), std::string::npos) << r.out;
  EXPECT_EQ(fate(r, "codings"),
            "runs again from the start (stage 'classify' before it runs again)");
  EXPECT_TRUE(reused(r, "pretrain") && reused(r, "probe")) << r.out;
  EXPECT_FALSE(trained(r, "pretrain") || trained(r, "probe")) << r.out;
  auto now = files(f.out);
  for (auto& s : {"pretrain", "probe"}) EXPECT_EQ(of_stage(now, s), of_stage(first, s)) << s;
  EXPECT_NE(now["codings.npy"], first["codings.npy"]);
  EXPECT_EQ(lines_of(f.out, "classify").size(), 4u) << "train and valid lines of two epochs";
  EXPECT_EQ(lines_of(f.out, "pretrain").size(), 2u);

  // The seed: every stage runs again.
  changed.insert(changed.end(), {"--set", "seed=4"});
  r = run(f, changed);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "pretrain"), "runs again from the start (the seed changed (3 -> 4))");
  EXPECT_EQ(fate(r, "probe"), "runs again from the start (the seed changed (3 -> 4))");
  for (auto& s : {"pretrain", "classify", "probe"}) EXPECT_TRUE(trained(r, s)) << s;
  EXPECT_EQ(lines_of(f.out, "pretrain").size(), 2u) << "the earlier seed's lines are dropped";
  EXPECT_EQ(lines_of(f.out, "classify").size(), 4u);
}

TEST(StageCaching, ResumeAfterAFailureContinuesAtTheFailedStage) {
  Fixture f = make("cache-fail");
  ASSERT_EQ(run(f, {}).exit_code, 0);
  auto first = results(f.out);
  // codings cannot write its file: it fails, and recon after it does not run.
  fs::create_directories(f.out + "/blocked.npy");
  CliResult r = run(f, {"--resume", "--set", "stages.codings.write=blocked.npy"});
  ASSERT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("blocked.npy: cannot write"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(f.out + "/failures.json"));
  fs::remove(f.out + "/blocked.npy");
  // As it was: the failed stage runs, and the stage after it; the others are reused.
  r = run(f, {"--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "codings"), "runs (it has not finished in this folder)");
  EXPECT_EQ(fate(r, "recon"), "runs again from the start (stage 'codings' before it runs again)");
  for (auto& s : {"pretrain", "classify", "probe"}) {
    EXPECT_TRUE(reused(r, s)) << s << ": " << fate(r, s);
    EXPECT_FALSE(trained(r, s)) << r.out;
  }
  EXPECT_FALSE(fs::exists(f.out + "/failures.json"));
  EXPECT_EQ(results(f.out), first)
      << "the run that failed and resumed ended elsewhere than one that did not";
}

// As if killed after classify's epoch 1 checkpoint (the run kept every epoch's): its last
// checkpoint is epoch 1's, and there is no record of it or of the stages after it.
void stop_classify_after_epoch_1(const Fixture& f) {
  fs::copy_file(f.out + "/checkpoints/classify/epoch_001.safetensors",
                f.out + "/checkpoints/classify/last.safetensors",
                fs::copy_options::overwrite_existing);
  nlohmann::json rec = nlohmann::json::parse(read_text(f.out + "/stages.json"));
  for (auto& s : {"classify", "codings", "recon"}) rec.erase(s);
  std::ofstream(f.out + "/stages.json") << rec.dump();
}

// A training stage stopped after its first epoch's checkpoint (as if killed) continues from it;
// the stages before it are reused, and the run ends as one never stopped.
TEST(StageCaching, ResumeContinuesAStoppedTrainingStageFromItsCheckpoint) {
  Fixture f = make("cache-stop");
  std::vector<std::string> two{"--set", "stages.classify.epochs=2", "--set",
                               "stages.classify.checkpoint.keep_epochs=true"};
  ASSERT_EQ(run(f, two).exit_code, 0);
  auto first = results(f.out);
  stop_classify_after_epoch_1(f);
  two.push_back("--resume");
  CliResult r = run(f, two);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "classify"), "runs (it did not finish; continuing from its checkpoint)");
  EXPECT_NE(r.out.find("resuming 'classify' after epoch 1"), std::string::npos) << r.out;
  EXPECT_TRUE(reused(r, "pretrain") && reused(r, "probe")) << r.out;
  EXPECT_EQ(results(f.out), first);
}

// A stopped stage resumed from a pipeline that lost one of the overrides it began with (the
// `--set` not given again) still continues, and says which keys changed: a moving average, a
// clipping or a schedule dropped silently would change what the run trains.
TEST(StageCaching, AStoppedStageResumedWithAChangedEntrySaysWhatChanged) {
  Fixture f = make("cache-changed");
  std::vector<std::string> began{"--set", "stages.classify.epochs=2",
                                 "--set", "stages.classify.checkpoint.keep_epochs=true",
                                 "--set", "stages.classify.clip_norm=1"};
  ASSERT_EQ(run(f, began).exit_code, 0);
  stop_classify_after_epoch_1(f);
  CliResult r = run(f, {"--resume", "--set", "stages.classify.epochs=2", "--set",
                        "stages.classify.clip_value=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "classify"),
            "runs (it did not finish; continuing from its checkpoint); its entry changed since "
            "the run began (checkpoint: {keep_epochs: true} -> (none), clip_norm: 1 -> (none), "
            "clip_value: (none) -> 2): the run folder's pipeline.yaml has the overrides it began "
            "with, --rerun classify starts it over");
}

// A stage that runs and reads a dataset a reused stage publishes (kept in memory only) runs that
// stage again; the stages after the producer stay reused.
TEST(StageCaching, APublishedDatasetIsMadeAgainWhenAStageReadsIt) {
  Fixture f = make("cache-publish");
  ASSERT_EQ(run(f, {}).exit_code, 0);
  auto first = results(f.out);
  CliResult r = run(f, {"--rerun", "recon", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "recon"), "(not said)") << "--quiet";
  r = run(f, {"--rerun", "recon", "--rerun", "probe"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "codings"),
            "runs again (stage 'recon' reads the dataset 'codes' it publishes, which is kept in "
            "memory only)");
  EXPECT_EQ(fate(r, "probe"), "runs again from the start (--rerun)");
  EXPECT_TRUE(reused(r, "pretrain") && reused(r, "classify")) << r.out;
  EXPECT_EQ(results(f.out), first);
  // New data: every stage that reads it runs again, and those after them.
  write_data(f.dir, 1);
  r = run(f, {"--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fate(r, "pretrain"), "runs again from the start (dataset 'd' changed)");
  EXPECT_EQ(fate(r, "probe"), "runs again from the start (dataset 'd' changed)");
  EXPECT_EQ(fate(r, "recon"), "runs again from the start (stage 'codings' before it runs again)");
}
