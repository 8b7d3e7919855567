// The loom command line: argument parsing shared by the subcommands.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace loom {
class Runtime;
class Model;
}  // namespace loom

namespace loom::cli {

// Parsed arguments: positionals, options with a value (--out DIR / --out=DIR), repeated options
// (--set), and flags (--json). Unknown options are errors.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::vector<std::string> sets;
  std::map<std::string, bool> flags;
  bool has(const std::string& k) const { return values.count(k) > 0; }
  std::string get(const std::string& k, const std::string& d = "") const {
    auto it = values.find(k);
    return it == values.end() ? d : it->second;
  }
  long long integer(const std::string& k, long long d) const;
  bool flag(const std::string& k) const { return flags.count(k) > 0; }
};

// value_options take a value; flag_options do not. Throws loom::Error on a bad argument.
Args parse(int argc, char** argv, int first, const std::vector<std::string>& value_options,
           const std::vector<std::string>& flag_options);

// A finished run, rebuilt for inference: RUN_DIR (or a checkpoint file inside it) gives the
// pipeline RUN_DIR/pipeline.yaml with the trained weights (RUN_DIR/weights.safetensors or the
// checkpoint) loaded. Throws an Error naming the path when it is not a run folder or has no
// weights.
struct TrainedRun {
  std::unique_ptr<Runtime> runtime;
  std::string run_dir, weights;
  std::vector<std::string> missing;  // parameters the weights file does not hold
  TrainedRun();
  TrainedRun(TrainedRun&&) noexcept;
  ~TrainedRun();
  // The model `name`, every parameter of it trained; an Error names the known models otherwise.
  std::shared_ptr<Model> model(const std::string& name) const;
  // The value range the models were trained on: the first dataset's `scale`, default [0, 1].
  std::pair<float, float> data_range() const;
  uint64_t seed() const;
};
TrainedRun load_trained_run(const std::string& run_dir_or_checkpoint);

int cmd_run(int argc, char** argv);
int cmd_validate(int argc, char** argv);
int cmd_plugins(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_graph(int argc, char** argv);
int cmd_sample(int argc, char** argv);
int cmd_augment(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int bench_augment(const Args& a);

// Sets the thread budget (oneDNN's OpenMP team and oneTBB's workers; 0: every core) and
// describes it.
std::string set_threads(long long n);

}  // namespace loom::cli
