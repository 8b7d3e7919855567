#include "support/cli.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fs = std::filesystem;

namespace loom::test {

static std::string quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() / ("loom-test-" + tag + "-" + std::to_string(::getpid()) +
                                            "-" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string source_path(const std::string& rel) { return std::string(LOOM_SOURCE_DIR) + "/" + rel; }

namespace {

CliResult run_command(const std::string& program, const std::vector<std::string>& args,
                      const std::string& env) {
  std::string dir = temp_dir("cli");
  std::string cmd = env + " " + program;
  for (auto& a : args) {
    cmd += ' ';
    cmd += quote(a);
  }
  cmd += " > " + dir + "/out 2> " + dir + "/err < /dev/null";
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(dir + "/out");
  r.err = read_text(dir + "/err");
  fs::remove_all(dir);
  return r;
}

}  // namespace

CliResult run_loom(const std::vector<std::string>& args, const std::string& env) {
  return run_command(std::string(LOOM_BINARY_DIR) + "/bin/loom", args, env);
}

CliResult run_mpi(int ranks, const std::vector<std::string>& args, const std::string& env) {
  // --oversubscribe: CI machines may report fewer slots than ranks; a time limit so that a hang
  // fails the test instead of the whole suite.
  return run_command("timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np " +
                         std::to_string(ranks) + " " + std::string(LOOM_BINARY_DIR) + "/bin/loom",
                     args, env);
}

std::vector<MetricLine> read_metrics(const std::string& path) {
  std::vector<MetricLine> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    MetricLine m;
    m.task = j.value("task", "");
    m.split = j.value("split", "");
    m.epoch = j.value("epoch", 0);
    m.loss = j.value("loss", 0.0);
    for (auto& [k, v] : j.items())
      if (v.is_number()) m.values[k] = v.get<double>();
    out.push_back(m);
  }
  return out;
}

}  // namespace loom::test
