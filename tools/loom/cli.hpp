// The loom command line: argument parsing shared by the subcommands.
#pragma once
#include <map>
#include <string>
#include <vector>

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

int cmd_run(int argc, char** argv);
int cmd_validate(int argc, char** argv);
int cmd_plugins(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_graph(int argc, char** argv);
int cmd_augment(int argc, char** argv);
int bench_augment(const Args& a);

// Sets the thread budget (oneDNN's OpenMP team and oneTBB's workers; 0: every core) and
// describes it.
std::string set_threads(long long n);

}  // namespace loom::cli
