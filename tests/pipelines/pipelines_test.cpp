// Every pipeline in pipelines/ runs in a shortened form (a subset of the data, a few epochs of
// a few dozen steps) and its training loss falls; the run's outputs are where they belong.
// Pipelines without a training stage (only augment / predict stages) must exit 0 and write
// every file their stages name in `write:` / `preview:`.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>

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

class PipelineShortRun : public ::testing::TestWithParam<std::string> {};

TEST_P(PipelineShortRun, LossFalls) {
  std::string name = GetParam();
  std::string out = temp_dir("pipe-" + name);
  CliResult r = run_loom({"run", source_path("pipelines/" + name + ".yaml"), "--out", out,
                          "--subset", "2000", "--epochs", "3", "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  YAML::Node root = YAML::LoadFile(source_path("pipelines/" + name + ".yaml"));
  if (!trains(root)) {
    for (auto s : root["stages"])
      for (const char* key : {"write", "preview"})
        if (s.second[key]) {
          std::string path = out + "/" + s.second[key].as<std::string>();
          EXPECT_TRUE(fs::exists(path))
              << name << ": stage " << s.first.as<std::string>() << " did not write " << path;
        }
    EXPECT_TRUE(fs::exists(out + "/pipeline.yaml"));
    fs::remove_all(out);
    return;
  }
  auto lines = read_metrics(out + "/metrics.jsonl");
  ASSERT_FALSE(lines.empty()) << "no metrics written";
  std::map<std::string, std::vector<double>> train;
  for (auto& m : lines)
    if (m.split == "train") train[m.task].push_back(m.loss);
  ASSERT_FALSE(train.empty());
  for (auto& [task, losses] : train) {
    ASSERT_GE(losses.size(), 2u) << task;
    EXPECT_LT(losses.back(), losses.front())
        << "stage " << task << " of " << name << ": loss did not fall";
    for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  }
  EXPECT_TRUE(fs::exists(out + "/pipeline.yaml"));
  EXPECT_TRUE(fs::exists(out + "/weights.safetensors"));
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(All, PipelineShortRun, ::testing::ValuesIn(pipeline_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
