// The loom command line. Each subcommand registers itself on the CLI11 application with an
// add_<name>_command function (its options, their defaults and docs, and what it runs); main.cpp
// calls each once, so a new command is one function and one line there.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loom/error.hpp"

namespace CLI {
class App;
class Option;
class Validator;
}  // namespace CLI

namespace loom {
class Runtime;
class Model;
}  // namespace loom

namespace loom::cli {

void add_run_command(CLI::App& app);
void add_validate_command(CLI::App& app);
void add_plugins_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_graph_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_augment_command(CLI::App& app);
void add_completion_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_regenerate_command(CLI::App& app);

// A mistake in how loom was called (a missing or conflicting option) found by a command after
// parsing; main() reports it like a parse error, with exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Options shared by several commands. Each checks its value as it is parsed, so a bad one is
// reported as "--epochs: expected a positive integer, got 'x'" (exit code 2).
CLI::Option* add_positive(CLI::App& cmd, const std::string& name, int64_t& value,
                          const std::string& doc, const std::string& default_text);
CLI::Option* add_non_negative(CLI::App& cmd, const std::string& name, int64_t& value,
                              const std::string& doc, const std::string& default_text);
CLI::Option* add_sets(CLI::App& cmd, std::vector<std::string>& sets);
CLI::Option* add_threads(CLI::App& cmd, int64_t& threads);
CLI::Option* add_pipeline(CLI::App& cmd, std::string& path);
// RUN (a run folder or a checkpoint in one) and --out PATH, both required: what the commands
// that use a trained run (predict, sample) start with.
void add_run_options(CLI::App& cmd, std::string& run, std::string& out, const std::string& out_doc);
// "LOW,HIGH" (two numbers) or "I,J" (two sample indices), checked as the option is parsed.
CLI::Validator pair_of(bool indices);
// Accepts a or b: "expected a or b, got 'x'" otherwise.
CLI::Validator either(const std::string& a, const std::string& b, const std::string& name);
// Whether the option `name` ("--axis") was given to `cmd`.
bool given(const CLI::App& cmd, const std::string& name);
// The median of a benchmark's windows (0 for none).
double median(std::vector<double> v);

// The augmentation benchmark (`loom bench --augment`).
struct AugmentBench {
  int64_t threads = 0, windows = 7, images = 20000;
  bool json = false;
};
int bench_augment(const AugmentBench& b);

// Sets the thread budget (oneDNN's OpenMP team and oneTBB's workers; 0: every core) and
// describes it. When the user left the budget to loom (`chosen` false) and other processes keep
// the cores busy, warns once on stderr (see busy_cores_warning).
std::string set_threads(int64_t n, bool chosen);

// The warning for a budget of `threads` OpenMP threads that wait actively, on `cores` cores of
// which `busy` are kept busy by other processes; "" when there is nothing to warn about.
std::string busy_cores_warning(int threads, int cores, double busy);

// "loom 0.1.0", oneDNN version and runtime, the ISA in use, bf16 availability, build type.
std::string version_text();

}  // namespace loom::cli
