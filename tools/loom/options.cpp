// Options shared by the subcommands, with checked values.
#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace loom::cli {
namespace {

// Checks an integer option as it is parsed; `min` is its smallest accepted value.
CLI::Validator integer_at_least(int64_t min) {
  std::string expected = min == 1   ? "a positive integer"
                         : min == 0 ? "an integer, 0 or more"
                                    : "an integer";
  return CLI::Validator(
      [min, expected](std::string& text) -> std::string {
        try {
          size_t pos = 0;
          long long v = std::stoll(text, &pos);
          if (pos == text.size() && v >= min) return "";
        } catch (const std::exception&) {
        }
        return "expected " + expected + ", got '" + text + "'";
      },
      "", "integer");
}

}  // namespace

CLI::Validator either(const std::string& a, const std::string& b, const std::string& name) {
  return CLI::Validator(
      [a, b](std::string& v) -> std::string {
        return v == a || v == b ? "" : "expected " + a + " or " + b + ", got '" + v + "'";
      },
      "", name);
}

CLI::Option* add_positive(CLI::App& cmd, const std::string& name, int64_t& value,
                          const std::string& doc, const std::string& default_text) {
  return cmd.add_option(name, value, doc)
      ->type_name("N")
      ->default_str(default_text)
      ->check(integer_at_least(1));
}

CLI::Option* add_non_negative(CLI::App& cmd, const std::string& name, int64_t& value,
                              const std::string& doc, const std::string& default_text) {
  return cmd.add_option(name, value, doc)
      ->type_name("N")
      ->default_str(default_text)
      ->check(integer_at_least(0));
}

CLI::Option* add_sets(CLI::App& cmd, std::vector<std::string>& sets) {
  // --precision P is --set precision=P: recorded with the pipeline, so --resume keeps it.
  cmd.add_option_function<std::string>(
         "--precision", [&sets](const std::string& p) { sets.push_back("precision=" + p); },
         "fp32 or bf16: the arithmetic of the training stages' convolutions and matrix products "
         "(bf16 keeps fp32 weights; needs AVX512-BF16 or AMX)")
      ->type_name("PRECISION")
      ->default_str("the pipeline's, else fp32")
      ->check(either("fp32", "bf16", "precision"));
  // Both options append to `sets` (an option bound to the vector would assign it after
  // --precision's callback ran, dropping the precision).
  return cmd
      .add_option_function<std::vector<std::string>>(
          "--set",
          [&sets](const std::vector<std::string>& v) {
            sets.insert(sets.end(), v.begin(), v.end());
          },
          "override a pipeline value, e.g. stages.train.epochs=3 or "
          "\"stages.train.optimizer={type: adam}\" (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            auto eq = text.find('=');
            if (eq == std::string::npos || eq == 0)
              return "expected key.path=value (e.g. stages.train.epochs=3), got '" + text + "'";
            return "";
          },
          "", "override"));
}

CLI::Option* add_threads(CLI::App& cmd, int64_t& threads) {
  return add_non_negative(cmd, "--threads", threads,
                          "threads for oneDNN and the data stage; 0: every core", "0");
}

CLI::Option* add_pipeline(CLI::App& cmd, std::string& path) {
  return cmd.add_option("PIPELINE", path, "the pipeline file (YAML)")->required()->type_name("");
}

bool given(const CLI::App& cmd, const std::string& name) { return cmd.count(name) > 0; }

}  // namespace loom::cli
