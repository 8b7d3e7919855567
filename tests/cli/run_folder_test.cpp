// Run folders: a second run into a folder that holds one is refused before anything is written;
// --overwrite replaces it; pipeline.yaml (written atomically) records how the run was called, so
// `loom run RUN/pipeline.yaml --out OTHER` repeats it; a --resume whose architecture changed
// names the tensor and leaves the folder as it was.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "loom/io.hpp"
#include "output/safetensors.hpp"
#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

std::string stacked() { return source_path("pipelines/stacked_ae.yaml"); }

// Every file under `dir` with its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_text(e.path());
  return files;
}

// (split, epoch, step, loss) of every metrics line: what a repeated run must reproduce.
std::vector<std::string> losses(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& m : read_metrics(dir + "/metrics.jsonl"))
    out.push_back(m.task + " " + m.split + " " + std::to_string(m.epoch) + " " +
                  std::to_string(int64_t(m.values["step"])) + " " + std::to_string(m.loss));
  return out;
}

CliResult tiny_run(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"run", stacked(),  "--out", out,      "--subset",
                                "200", "--epochs", "1",     "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_loom(args);
}

// `--resume` of the run in `dir` with `args` finishes with the losses of the run in `full`.
void expect_resume_matches(const std::string& dir, std::vector<std::string> args,
                           const std::string& full) {
  args.push_back("--resume");
  CliResult r = tiny_run(dir, args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(dir), losses(full));
}

TEST(RunFolder, RefusesAFolderThatHoldsARun) {
  std::string dir = temp_dir("folder") + "/run";
  ASSERT_EQ(tiny_run(dir).exit_code, 0);
  auto before = snapshot(dir);
  ASSERT_TRUE(before.count("metrics.jsonl"));
  CliResult r = tiny_run(dir, {"--epochs", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: " + dir + " already holds a run (metrics.jsonl, checkpoints/)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(dir), before) << "the refused run wrote into the folder";
  // Checkpoints alone (a run killed before its first metrics line) also count.
  fs::remove(dir + "/metrics.jsonl");
  r = tiny_run(dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already holds a run (checkpoints/)"), std::string::npos) << r.err;
  // An empty folder, or one with unrelated files, is fine.
  std::string other = temp_dir("folder-empty");
  std::ofstream(other + "/notes.txt") << "mine";
  EXPECT_EQ(tiny_run(other).exit_code, 0);
  EXPECT_EQ(read_text(other + "/notes.txt"), "mine");
}

// Symbolic links planted in a run folder are not followed out of it: the run stops with the
// link named, and the file the link points to is untouched.
TEST(RunFolder, SymbolicLinksInTheFolderAreNotFollowed) {
  std::string base = temp_dir("links");
  std::string victim = base + "/victim";
  fs::create_directories(victim);
  std::ofstream(base + "/victim.txt") << "keep me";
  for (const char* planted : {"checkpoints", "metrics.jsonl"}) {
    std::string dir = base + "/run_" + std::string(planted);
    fs::create_directories(dir);
    if (std::string(planted) == "checkpoints")
      fs::create_directory_symlink(victim, dir + "/checkpoints");
    else
      fs::create_symlink(base + "/victim.txt", dir + "/metrics.jsonl");
    CliResult r = tiny_run(dir, {"--resume"});
    EXPECT_EQ(r.exit_code, 1) << planted << ": " << r.err;
    EXPECT_NE(r.err.find(dir + "/" + planted + ": is a symbolic link"), std::string::npos) << r.err;
    EXPECT_TRUE(fs::is_empty(victim));
    EXPECT_EQ(read_text(base + "/victim.txt"), "keep me");
  }
}

// Ctrl-C or a TERM during training: the current step finishes, a checkpoint is written within
// the epoch, the exit code is 128 + the signal, and --resume then ends with exactly the losses of
// a run never stopped.
TEST(RunFolder, StopSignalWritesACheckpointAndResumeMatches) {
  std::vector<std::string> args{"--subset", "30000", "--epochs", "2", "--threads", "1"};
  std::string full = temp_dir("stop-full") + "/run";
  ASSERT_EQ(tiny_run(full, args).exit_code, 0);
  for (const char* sig : {"INT", "TERM"}) {
    std::string dir = temp_dir(std::string("stop-") + sig) + "/run";
    // Signal once the first epoch's metrics are out, so the stop falls inside epoch 2.
    std::string script = std::string(LOOM_BINARY_DIR) + "/bin/loom run " + stacked() + " --out " +
                         dir + " --subset 30000 --epochs 2 --threads 1 --quiet 2> " + dir +
                         ".err & p=$!; while ! grep -q valid " + dir +
                         "/metrics.jsonl 2>/dev/null; do sleep 0.01; done; kill -" + sig +
                         " $p; wait $p; echo $? > " + dir + ".rc";
    ASSERT_EQ(std::system(("bash -c '" + script + "'").c_str()), 0);
    int rc = std::stoi(read_text(dir + ".rc"));
    std::string err = read_text(dir + ".err");
    if (rc == 0) {
      // The run ended before the signal arrived (a very fast machine): nothing to check.
      EXPECT_EQ(losses(dir), losses(full));
      continue;
    }
    EXPECT_EQ(rc, std::string(sig) == "INT" ? 130 : 143) << err;
    EXPECT_NE(
        err.find(std::string("stopped by SIG") + sig + " in stage 'train' at epoch 2, batch "),
        std::string::npos)
        << err;
    EXPECT_NE(err.find("checkpoint written: " + dir + "/checkpoints/train/last.safetensors"),
              std::string::npos)
        << err;
    expect_resume_matches(dir, args, full);
  }
}

// kill -9 at moments spread over a run (start-up, mid-epoch, checkpoint writes, the end): after
// each kill the folder resumes — no checkpoint left unreadable, no lock left held — and the run
// finally ends with exactly the losses of a run never killed (the same thread count).
TEST(RunFolder, KillNineAnywhereLosesNothing) {
  std::vector<std::string> args{"--subset", "2000", "--epochs", "6", "--threads", "1"};
  std::string full = temp_dir("kill-full") + "/run";
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(tiny_run(full, args).exit_code, 0);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string dir = temp_dir("kill") + "/run";
  int killed = 0;
  // Kills at fractions of an uninterrupted run's time; each restart resumes from the last
  // checkpoint, so the later ones fall in the epochs still left.
  for (double f : {0.03, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}) {
    std::vector<std::string> a{"run", stacked(), "--out", dir, "--quiet"};
    a.insert(a.end(), args.begin(), args.end());
    if (fs::exists(dir + "/pipeline.yaml")) a.push_back("--resume");
    CliResult r = run_loom(a, "timeout -s KILL " + std::to_string(f * seconds));
    if (r.exit_code == 137) {
      ++killed;
      continue;
    }
    ASSERT_EQ(r.exit_code, 0) << "after a kill -9: " << r.err;
  }
  EXPECT_GE(killed, 4) << "the kills fell after the run had finished: nothing was tested";
  std::vector<std::string> a{"--resume"};
  a.insert(a.begin(), args.begin(), args.end());
  CliResult r = tiny_run(dir, a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(dir), losses(full));
}

// Killed after an epoch's metrics lines but before its checkpoint: --resume repeats that epoch
// and reports it once.
TEST(RunFolder, ResumeDropsTheMetricsOfEpochsNotCheckpointed) {
  std::string full = temp_dir("dedupe-full") + "/run";
  std::vector<std::string> args{"--epochs", "2", "--set",
                                "stages.train.checkpoint.keep_epochs=true"};
  ASSERT_EQ(tiny_run(full, args).exit_code, 0);
  std::string dir = temp_dir("dedupe") + "/run";
  ASSERT_EQ(tiny_run(dir, args).exit_code, 0);
  // As if killed after epoch 2's lines, before its checkpoint replaced epoch 1's.
  fs::copy_file(dir + "/checkpoints/train/epoch_001.safetensors",
                dir + "/checkpoints/train/last.safetensors", fs::copy_options::overwrite_existing);
  expect_resume_matches(dir, args, full);
}

// Two runs never write one folder: the second is refused while the first holds the lock.
TEST(RunFolder, AFolderBeingWrittenIsLocked) {
  std::string dir = temp_dir("locked") + "/run";
  fs::create_directories(dir);
  int fd = ::open((dir + "/.loom.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running loom holds it
  CliResult r = tiny_run(dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir + ": another loom run is writing this folder"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir + "/metrics.jsonl"));
  ::close(fd);  // released: the run goes ahead
  EXPECT_EQ(tiny_run(dir).exit_code, 0);
}

// A weights file whose kernel has the right element count but another shape (stored transposed)
// is refused with the tensor named, not loaded as nonsense.
TEST(RunFolder, TransposedKernelIsRefused) {
  std::string dir = temp_dir("transposed") + "/run";
  ASSERT_EQ(tiny_run(dir).exit_code, 0);
  std::string w = dir + "/weights.safetensors";
  loom::TensorFile f = loom::load_safetensors(w);
  auto& k = f.tensors.at("encoder.dense_1.kernel");
  ASSERT_EQ(k.shape(), (loom::Shape{784, 100}));
  k = k.reshaped({100, 784});
  std::vector<std::pair<std::string, const loom::Tensor*>> all;
  for (auto& [name, t] : f.tensors) all.push_back({name, &t});
  loom::save_safetensors(w, all, f.metadata);
  CliResult r = run_loom({"predict", dir, "--input",
                          "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "--out",
                          dir + "/p.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(w + ": tensor 'encoder.dense_1.kernel' has shape (100, 784) but the "
                           "pipeline's parameter has (784, 100)"),
            std::string::npos)
      << r.err;
}

TEST(RunFolder, OverwriteReplacesThePreviousRun) {
  std::string dir = temp_dir("overwrite") + "/run";
  ASSERT_EQ(tiny_run(dir, {"--epochs", "2"}).exit_code, 0);
  ASSERT_EQ(read_metrics(dir + "/metrics.jsonl").size(), 4u);
  std::string stale = dir + "/checkpoints/gone/last.safetensors";
  fs::create_directories(fs::path(stale).parent_path());
  std::ofstream(stale) << "an old stage's checkpoint";
  CliResult r = tiny_run(dir, {"--overwrite"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = read_metrics(dir + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 2u) << "only the new run's epoch";
  EXPECT_EQ(m.back().epoch, 1);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(dir + "/checkpoints/train/last.safetensors"));
  // The same as a run into a fresh folder.
  std::string fresh = temp_dir("overwrite-fresh") + "/run";
  ASSERT_EQ(tiny_run(fresh).exit_code, 0);
  EXPECT_EQ(losses(dir), losses(fresh));
}

TEST(RunFolder, PipelineYamlRepeatsTheRun) {
  std::string dir = temp_dir("roundtrip"), first = dir + "/first", again = dir + "/again";
  CliResult r = run_loom({"run", stacked(), "--out", first, "--subset", "300", "--epochs", "2",
                          "--max-steps", "7", "--set", "stages.train.batch_size=64", "--set",
                          "models.encoder.layers[1].units=48", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  YAML::Node written = YAML::LoadFile(first + "/pipeline.yaml");
  YAML::Node run = written["loom_run"];
  ASSERT_TRUE(run) << read_text(first + "/pipeline.yaml");
  CliResult version = run_loom({"--version"});
  EXPECT_EQ("loom " + run["version"].Scalar() + "\n",
            version.out.substr(0, version.out.find('\n') + 1));
  EXPECT_EQ(run["pipeline"].Scalar(), fs::canonical(stacked()).string());
  EXPECT_EQ(run["epochs"].as<int>(), 2);
  EXPECT_EQ(run["subset"].as<int>(), 300);
  EXPECT_EQ(run["max_steps"].as<int>(), 7);
  ASSERT_EQ(run["set"].size(), 2u);
  EXPECT_EQ(run["set"][1].Scalar(), "models.encoder.layers[1].units=48");
  EXPECT_EQ(written["stages"]["train"]["batch_size"].as<int>(), 64) << "overrides applied";
  EXPECT_EQ(written["name"].Scalar(), "stacked_ae");
  for (auto& e : fs::directory_iterator(first))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos)
        << "temporary file left: " << e.path();

  // From the folder alone, run from another working folder: the same metrics.
  r = run_loom({"run", first + "/pipeline.yaml", "--out", again, "--quiet"}, "cd / &&");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(again), losses(first));
  ASSERT_EQ(losses(first).size(), 4u);
  EXPECT_EQ(read_metrics(again + "/metrics.jsonl").back().values["step"], 7)
      << "--max-steps 7 recorded and applied";
  // Its own pipeline.yaml says the same, and the command line still wins over the record.
  EXPECT_EQ(YAML::Dump(YAML::LoadFile(again + "/pipeline.yaml")), YAML::Dump(written));
  std::string shorter = dir + "/shorter";
  r = run_loom({"run", first + "/pipeline.yaml", "--out", shorter, "--epochs", "1", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_metrics(shorter + "/metrics.jsonl").back().epoch, 1);
}

TEST(RunFolder, DataFilesBesideThePipelineAreFoundFromTheRunFolder) {
  // A pipeline reading x.npy from its own folder; its run folder is elsewhere.
  std::string src = temp_dir("beside"), out = temp_dir("beside-out");
  loom::Tensor x({64, 4, 4});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = float((i * 7919) % 97) / 97.f;
  loom::write_npy(src + "/x.npy", x);
  std::ofstream(src + "/p.yaml")
      << "name: beside\ndatasets:\n  d: {source: npy, x: x.npy}\nmodels:\n  m:\n    input: [4, 4]\n"
         "    layers: [{type: flatten}, {type: dense, units: 3}, {type: dense, units: 16},"
         " {type: reshape, shape: [4, 4]}]\nstages:\n  train: {recipe: autoencoder, model: m, "
         "data: d, batch_size: 16, epochs: 2}\n";
  CliResult r = run_loom({"run", src + "/p.yaml", "--out", out + "/a", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(YAML::LoadFile(out + "/a/pipeline.yaml")["datasets"]["d"]["x"].Scalar(),
            fs::canonical(src + "/x.npy").string());
  r = run_loom({"run", out + "/a/pipeline.yaml", "--out", out + "/b", "--quiet"}, "cd / &&");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(out + "/b"), losses(out + "/a"));
}

TEST(RunFolder, MalformedLoomRunBlockIsLocated) {
  std::string dir = temp_dir("loom-run-block");
  std::string text = read_text(stacked()) + "loom_run: {epochs: 0, sbuset: 5}\n";
  std::ofstream(dir + "/p.yaml") << text;
  CliResult r = run_loom({"validate", dir + "/p.yaml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("p.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("loom_run.sbuset: unknown key 'sbuset' (did you mean 'subset'?)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("loom_run.epochs"), std::string::npos) << r.err;
}

TEST(RunFolder, ResumeAfterTheArchitectureChangedNamesTheTensorAndTouchesNothing) {
  std::string dir = temp_dir("resume-arch") + "/run";
  ASSERT_EQ(tiny_run(dir).exit_code, 0);
  auto before = snapshot(dir);
  CliResult r =
      tiny_run(dir, {"--epochs", "2", "--resume", "--set", "models.encoder.layers[1].units=64"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir + "/checkpoints/train/last.safetensors: tensor 'encoder.coding.kernel' "
                             "has shape (100, 30) but the pipeline's model needs (64, 30)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the architecture changed since this checkpoint was written; run the stage "
                       "again from the start with --rerun train"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(snapshot(dir), before) << "the failed resume changed the run folder";
  // The same resume without the change continues the run.
  r = tiny_run(dir, {"--epochs", "2", "--resume"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_metrics(dir + "/metrics.jsonl").back().epoch, 2);
  // --rerun starts the stage over, with the new architecture.
  r = tiny_run(dir, {"--rerun", "train", "--set", "models.encoder.layers[1].units=64"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = read_metrics(dir + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 2u) << "the old run's lines are gone";
  EXPECT_EQ(m.back().epoch, 1);
}

}  // namespace
