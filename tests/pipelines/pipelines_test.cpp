// Every pipeline in pipelines/ runs in a shortened form (a subset of the data, a few epochs of
// a few dozen steps) and its training loss falls; the run's outputs are where they belong.
// Adversarial stages have no loss that must fall: their losses stay finite, the discriminator
// learns to tell fakes (its accuracy on fakes beats chance in some epoch), the generator has not
// collapsed to one image (diversity above a tenth of the real images'), and the grids exist.
// Diffusion stages run on a smaller subset, write one sample grid per epoch and a finite
// validation loss; their sampling stages use a 20-step sampler instead of the chapter's 3,999.
// Pipelines without a training stage (only augment / predict stages) must exit 0 and write
// every file their stages name in `write:` / `preview:`.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "support/cli.hpp"

namespace fs = std::filesystem;
using namespace loom::test;

namespace {

std::vector<std::string> pipeline_names() {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(source_path("pipelines")))
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Recipes that do not train (no loss to watch).
bool trains(const YAML::Node& root) {
  for (auto s : root["stages"]) {
    std::string recipe = s.second["recipe"].as<std::string>("");
    if (recipe != "augment" && recipe != "predict") return true;
  }
  return false;
}

// report.html: self-contained (nothing fetched: no URL, every image a data: URI, no external
// script, style or font) and, for every stage that trains, a curve of at least two points.
void expect_report(const std::string& out, const std::set<std::string>& training) {
  std::string html = read_text(out + "/report.html");
  ASSERT_FALSE(html.empty()) << out << ": no report.html";
  for (const char* bad : {"http://", "https://", "<link", "url(", "<script src", "@import"})
    EXPECT_EQ(html.find(bad), std::string::npos) << "report.html fetches something: " << bad;
  for (size_t at = html.find(" src=\""); at != std::string::npos; at = html.find(" src=\"", at + 1))
    EXPECT_EQ(html.compare(at + 6, 5, "data:"), 0) << html.substr(at, 60);
  for (auto& stage : training) {
    size_t from = html.find("id=\"stage-" + stage + "\"");
    ASSERT_NE(from, std::string::npos) << "no section for stage " << stage;
    size_t to = html.find("<h2", from);
    std::string section = html.substr(from, to - from);
    size_t poly = section.find("<polyline");
    ASSERT_NE(poly, std::string::npos) << "no curve for stage " << stage;
    size_t pts = section.find("points=\"", poly) + 8;
    std::string points = section.substr(pts, section.find('"', pts) - pts);
    EXPECT_GE(std::count(points.begin(), points.end(), ','), 2) << stage << ": " << points;
  }
}

// The report as a browser shows it: headless Chromium loads it with every host name unresolvable,
// runs its script, and takes a screenshot; no console error, no failed load.
void expect_report_renders(const std::string& out) {
  std::string shot = out + "/report_screenshot.png", log = out + "/chromium.log";
  std::string cmd =
      "chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr "
      "--v=0 --host-resolver-rules='MAP * ~NOTFOUND' --window-size=1200,1600 "
      "--screenshot=" +
      shot + " file://" + out + "/report.html > " + log + " 2>&1";
  ASSERT_EQ(std::system(("timeout 120 " + cmd).c_str()), 0) << read_text(log);
  ASSERT_TRUE(fs::exists(shot)) << read_text(log);
  EXPECT_GT(fs::file_size(shot), 20000u) << "a blank page?";
  std::string l = read_text(log);
  for (const char* bad : {"Uncaught", "Failed to load resource", "ERR_NAME_NOT_RESOLVED"})
    EXPECT_EQ(l.find(bad), std::string::npos) << l;
}

class PipelineShortRun : public ::testing::TestWithParam<std::string> {};

TEST_P(PipelineShortRun, LossFalls) {
  std::string name = GetParam();
  std::string out = temp_dir("pipe-" + name);
  YAML::Node root = YAML::LoadFile(source_path("pipelines/" + name + ".yaml"));
  std::set<std::string> adversarial, diffusion;
  std::vector<std::string> args;
  for (auto st : root["stages"]) {
    std::string recipe = st.second["recipe"].as<std::string>(""),
                stage = st.first.as<std::string>();
    if (recipe == "adversarial") adversarial.insert(stage);
    if (recipe == "diffusion") {
      diffusion.insert(stage);
      args.insert(args.end(), {"--set", "stages." + stage + ".samples=16", "--set",
                               "stages." + stage + ".grid_cols=2"});
    }
    // The chapter's ancestral sampler runs thousands of UNet passes: a 20-step sampler here.
    if (recipe == "diffusion_sample")
      args.insert(args.end(),
                  {"--set", "stages." + stage + ".sampler=dpm_solver_pp", "--set",
                   "stages." + stage + ".n=8", "--set", "stages." + stage + ".batch_size=8"});
  }
  // A GAN step costs three passes through two networks, a diffusion UNet step about as much, and
  // diffusion stages also sample every epoch: a smaller subset keeps CI short.
  std::string subset = !diffusion.empty() ? "640" : adversarial.empty() ? "2000" : "960";
  std::vector<std::string> cmd{"run",       source_path("pipelines/" + name + ".yaml"),
                               "--out",     out,
                               "--subset",  subset,
                               "--epochs",  "3",
                               "--threads", "2"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  CliResult r = run_loom(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  if (!trains(root)) {
    for (auto s : root["stages"])
      for (const char* key : {"write", "preview"})
        if (s.second[key]) {
          std::string path = out + "/" + s.second[key].as<std::string>();
          EXPECT_TRUE(fs::exists(path))
              << name << ": stage " << s.first.as<std::string>() << " did not write " << path;
        }
    EXPECT_TRUE(fs::exists(out + "/pipeline.yaml"));
    expect_report(out, {});
    fs::remove_all(out);
    return;
  }
  auto lines = read_metrics(out + "/metrics.jsonl");
  ASSERT_FALSE(lines.empty()) << "no metrics written";
  for (auto& task : adversarial) {
    double best_fake_acc = 0;
    int samples = 0;
    for (auto& m : lines) {
      if (m.task != task) continue;
      if (m.split == "train") {
        EXPECT_TRUE(std::isfinite(m.values["g_loss"]) && std::isfinite(m.values["d_loss"]));
        best_fake_acc = std::max(best_fake_acc, m.values["d_fake_acc"]);
      } else if (m.split == "samples") {
        ++samples;
        EXPECT_GT(m.values["diversity"], 0.1 * m.values["diversity_real"])
            << "stage " << task << " of " << name << ": the generator collapsed";
      }
    }
    EXPECT_GT(best_fake_acc, 0.5) << "stage " << task << " of " << name;
    EXPECT_EQ(samples, 3) << "stage " << task << " of " << name << ": one diversity line per epoch";
    EXPECT_TRUE(fs::exists(out + "/samples.png"));
    EXPECT_TRUE(fs::exists(out + "/samples/epoch_003.png"));
  }
  for (auto& task : diffusion) {
    int samples = 0, valid = 0;
    for (auto& m : lines) {
      if (m.task != task) continue;
      samples += m.split == "samples";
      if (m.split == "valid") {
        ++valid;
        EXPECT_TRUE(std::isfinite(m.loss));
      }
    }
    EXPECT_EQ(samples, 3) << "stage " << task << " of " << name << ": one sample grid per epoch";
    EXPECT_EQ(valid, 3) << "stage " << task << " of " << name;
    EXPECT_TRUE(fs::exists(out + "/samples.png"));
    EXPECT_TRUE(fs::exists(out + "/samples/epoch_003.png"));
  }
  std::map<std::string, std::vector<double>> train;
  for (auto& m : lines)
    if (m.split == "train" && !adversarial.count(m.task)) train[m.task].push_back(m.loss);
  ASSERT_FALSE(train.empty() && adversarial.empty());
  for (auto& [task, losses] : train) {
    ASSERT_GE(losses.size(), 2u) << task;
    EXPECT_LT(losses.back(), losses.front())
        << "stage " << task << " of " << name << ": loss did not fall";
    for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  }
  EXPECT_TRUE(fs::exists(out + "/pipeline.yaml"));
  EXPECT_TRUE(fs::exists(out + "/weights.safetensors"));
  std::set<std::string> training(adversarial.begin(), adversarial.end());
  for (auto& [task, losses] : train) training.insert(task);
  training.insert(diffusion.begin(), diffusion.end());
  expect_report(out, training);
  if (name == "vae" || name == "dcgan") expect_report_renders(out);
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(All, PipelineShortRun, ::testing::ValuesIn(pipeline_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
