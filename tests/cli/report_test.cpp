// report.html of a run whose stage failed shows the stage as failed, its message and its last
// checkpoint; failures.json keeps them for `loom report`, which writes the same page again.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/cli.hpp"

using namespace loom::test;

TEST(Report, AFailedStageIsShownWithItsMessage) {
  std::string out = temp_dir("report-fail") + "/run";
  CliResult r = run_loom({"run", source_path("pipelines/stacked_ae.yaml"), "--out", out, "--subset",
                          "2000", "--epochs", "2", "--threads", "1", "--quiet", "--set",
                          "stages.train.optimizer.lr=1e12"});
  ASSERT_EQ(r.exit_code, 1) << r.err;
  std::string html = read_text(out + "/report.html");
  EXPECT_NE(html.find("<span class=\"bad\">failed</span>"), std::string::npos);
  EXPECT_NE(html.find("the loss became NaN at epoch 1"), std::string::npos);
  EXPECT_NE(html.find("last good checkpoint: none"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(out + "/failures.json"));
  std::filesystem::remove(out + "/report.html");
  r = run_loom({"report", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(read_text(out + "/report.html").find("the loss became NaN at epoch 1"),
            std::string::npos);
  r = run_loom({"report", out + "/nowhere"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(out + "/nowhere: no such folder"), std::string::npos) << r.err;
}
