// loom plan: the figures it derives from the pipeline (parameters, FLOPs) against hand counts,
// and its time per epoch, estimated from a few timed steps, against the epochs of a real run
// with the same subset and threads: within 2x either way (the bound; a benchmark, not a
// speed claim).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/cli.hpp"

using namespace loom::test;

namespace {

nlohmann::json plan_of(const std::string& pipeline, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"plan", source_path("pipelines/" + pipeline + ".yaml"), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  CliResult r = run_loom(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  return nlohmann::json::parse(line);
}

}  // namespace

TEST(Plan, CountsMatchTheArchitecture) {
  // stacked_ae: 784-100-30-100-784 dense layers.
  nlohmann::json j = plan_of("stacked_ae", {"--subset", "640", "--steps", "2"});
  double params = 784 * 100 + 100 + 100 * 30 + 30 + 30 * 100 + 100 + 100 * 784 + 784;
  EXPECT_EQ(j["parameters"].get<double>(), params);
  // Forward: 2 per multiply-add of each dense layer, one per value of the others (the relu
  // activations are fused into the dense layers and counted with them).
  double dense = 2.0 * (784 * 100 + 100 * 30 + 30 * 100 + 100 * 784);
  double f = j["forward_flops_per_image"].get<double>();
  EXPECT_GE(f, dense);
  EXPECT_LT(f, dense + 4 * 784);
  EXPECT_EQ(j["train_images"].get<int64_t>(), 640);
  EXPECT_EQ(j["valid_images"].get<int64_t>(), 640);
  EXPECT_GT(j["images_per_s"].get<double>(), 0);
  // Planning (like `loom bench`) writes nothing: not even an empty run folder.
  std::string dir = temp_dir("plan-cwd");
  CliResult r = run_loom(
      {"plan", source_path("pipelines/stacked_ae.yaml"), "--subset", "640", "--steps", "2"},
      "cd " + dir + " &&");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs")) << "loom plan made " << dir << "/runs";
}

// Every line `loom plan --json` prints is one stage's JSON object, also when a stage says
// something as it runs for the timing.
std::vector<nlohmann::json> plan_lines(const std::string& pipeline,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> args{"plan", source_path("pipelines/" + pipeline + ".yaml"), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  CliResult r = run_loom(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << "not JSON: " << line;
    if (nlohmann::json::accept(line)) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// greedy_ae's second stage trains on the codings its predict stage publishes: to time it, plan
// makes those codings first (with the untrained encoder) and counts them.
TEST(Plan, TimesAStageThatReadsAPublishedDataset) {
  auto stages = plan_lines("greedy_ae", {"--subset", "640", "--steps", "2"});
  ASSERT_EQ(stages.size(), 4u);
  const nlohmann::json& second = stages[2];
  EXPECT_EQ(second["stage"], "second");
  EXPECT_EQ(second["train_images"].get<int64_t>(), 640);
  EXPECT_EQ(second["valid_images"].get<int64_t>(), 640);
  EXPECT_GT(second["images_per_s"].get<double>(), 0);
  EXPECT_GT(second["valid_images_per_s"].get<double>(), 0);
  EXPECT_GT(second["epoch_s"].get<double>(), 0);
}

// A classifier's stage evaluates its test split after training; planning it writes nothing.
TEST(Plan, ASupervisedStageIsTimedAndWritesNothing) {
  std::string dir = temp_dir("plan-supervised");
  CliResult r = run_loom({"plan", source_path("pipelines/fid_classifier.yaml"), "--json",
                          "--subset", "320", "--steps", "2"},
                         "cd " + dir + " &&");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_GT(j["epoch_s"].get<double>(), 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs")) << "loom plan made " << dir << "/runs";
}

class PlanEstimate : public ::testing::TestWithParam<std::string> {};

TEST_P(PlanEstimate, WithinTwiceTheMeasuredEpoch) {
  std::string name = GetParam();
  std::vector<std::string> common{"--subset", "8000", "--epochs", "3", "--threads", "1"};
  nlohmann::json j = plan_of(name, common);
  double estimate = j["epoch_s"].get<double>();
  ASSERT_GT(estimate, 0);
  std::string out = temp_dir("plan-" + name) + "/run";
  std::vector<std::string> args{"run", source_path("pipelines/" + name + ".yaml"), "--out", out,
                                "--quiet"};
  args.insert(args.end(), common.begin(), common.end());
  CliResult r = run_loom(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Each epoch: its training pass and its validation pass; the first epoch also warms up.
  std::map<int, double> epoch;
  for (auto& m : read_metrics(out + "/metrics.jsonl"))
    if (m.split == "train" || m.split == "valid") epoch[m.epoch] += m.values["time_s"];
  std::vector<double> later;
  for (auto& [e, t] : epoch)
    if (e > 1) later.push_back(t);
  ASSERT_FALSE(later.empty());
  std::sort(later.begin(), later.end());
  double measured = later[later.size() / 2];
  EXPECT_LT(estimate, 2 * measured)
      << name << ": estimated " << estimate << " s, measured " << measured << " s per epoch";
  EXPECT_GT(estimate, measured / 2)
      << name << ": estimated " << estimate << " s, measured " << measured << " s per epoch";
}

INSTANTIATE_TEST_SUITE_P(Pipelines, PlanEstimate,
                         ::testing::Values("stacked_ae", "conv_ae", "vae", "recurrent_ae"),
                         [](const auto& info) { return info.param; });
