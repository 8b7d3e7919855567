// Test support: run the built `loom` tool and capture what it prints.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace loom::test {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs build/bin/loom with `args` (shell-quoted here) and optional environment assignments.
CliResult run_loom(const std::vector<std::string>& args, const std::string& env = "");

// Runs build/bin/loom on `ranks` MPI processes (mpirun, one core each; as root too), with
// optional environment assignments.
CliResult run_mpi(int ranks, const std::vector<std::string>& args, const std::string& env = "");

// A fresh, empty temporary folder (removed by the caller or left under /tmp).
std::string temp_dir(const std::string& tag);

// metrics.jsonl lines as (task, epoch, split, loss).
struct MetricLine {
  std::string task, split;
  int epoch = 0;
  double loss = 0;
  std::map<std::string, double> values;
};
std::vector<MetricLine> read_metrics(const std::string& path);

std::string read_text(const std::string& path);
std::string source_path(const std::string& rel);  // LOOM_SOURCE_DIR/rel

}  // namespace loom::test
