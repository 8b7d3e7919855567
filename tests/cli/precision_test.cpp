// precision: bf16 from the command line and the pipeline: refused where oneDNN cannot run it
// natively, recorded with the run (so --resume keeps it), and training to the loss fp32 reaches.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cpu.hpp"
#include "support/cli.hpp"

using namespace loom::test;

namespace {

std::string conv_ae() { return source_path("pipelines/conv_ae.yaml"); }

TEST(Precision, Bf16IsRefusedWhereOneDnnCannotRunIt) {
  // ONEDNN_MAX_CPU_ISA holds oneDNN to AVX2, as on a CPU without AVX-512.
  CliResult r = run_loom({"validate", conv_ae(), "--precision", "bf16"}, "ONEDNN_MAX_CPU_ISA=AVX2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("precision: bf16 needs"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ONEDNN_MAX_CPU_ISA=AVX2"), std::string::npos) << r.err;
  // A stage's own precision is located at its key.
  r = run_loom({"validate", conv_ae(), "--set", "stages.train.precision=bf16"},
               "ONEDNN_MAX_CPU_ISA=AVX2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("stages.train.precision: bf16 needs"), std::string::npos) << r.err;
  // fp32 is always there; a wrong word is a usage error.
  EXPECT_EQ(
      run_loom({"validate", conv_ae(), "--precision", "fp32"}, "ONEDNN_MAX_CPU_ISA=AVX2").exit_code,
      0);
  r = run_loom({"validate", conv_ae(), "--precision", "fp16"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--precision: expected fp32 or bf16, got 'fp16'"), std::string::npos)
      << r.err;
}

TEST(Precision, Bf16TrainsLikeFp32AndIsRecordedWithTheRun) {
  std::string why;
  if (!loom::bf16_available(why)) GTEST_SKIP() << why;
  std::string dir = temp_dir("precision");
  std::vector<std::string> common{"--subset", "1024", "--epochs", "2", "--threads", "2"};
  auto run = [&](const std::string& out, const std::string& precision) {
    // --precision beside --set (a --set once dropped it).
    std::vector<std::string> args{"run",         conv_ae(), "--out",
                                  out,           "--set",   "stages.train.shuffle=true",
                                  "--precision", precision};
    args.insert(args.end(), common.begin(), common.end());
    CliResult r = run_loom(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<double> valid;
    for (auto& m : read_metrics(out + "/metrics.jsonl"))
      if (m.split == "valid") valid.push_back(m.loss);
    return valid;
  };
  std::vector<double> f = run(dir + "/fp32", "fp32"), b = run(dir + "/bf16", "bf16");
  ASSERT_EQ(f.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_NEAR(b[e], f[e], 0.02 * f[e]) << "epoch " << e + 1;
    EXPECT_NE(b[e], f[e]) << "epoch " << e + 1 << ": identical, so bf16 did not run";
  }
  // The run folder's pipeline records it: `loom run` of that file, or --resume, trains in bf16.
  EXPECT_NE(read_text(dir + "/bf16/pipeline.yaml").find("precision: bf16"), std::string::npos);
}

}  // namespace
