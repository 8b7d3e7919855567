// A stage context with no runtime behind it, for in-process tests of recipes and the training
// loop.
#pragma once
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/yaml_util.hpp"
#include "loom/recipe.hpp"
#include "loom/training.hpp"
#include "support/harness.hpp"

namespace loom::test {

// A stage context with no runtime behind it: parameters from inline YAML, outputs in a temp
// folder, metrics collected in memory.
class FakeStage : public StageContext {
 public:
  explicit FakeStage(const std::string& yaml) {
    spec_.open = true;
    add_training_params(spec_);
    params_ = make_params(YAML::Load(yaml), spec_, "<stage>", "stages.s");
    dir_ = std::filesystem::temp_directory_path() /
           ("loom_trainer_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(dir_);
  }
  ~FakeStage() override { std::filesystem::remove_all(dir_); }
  const std::string& name() const override { return name_; }
  const Params& params() const override { return params_; }
  const Registry& registry() const override { return test::registry(); }
  std::shared_ptr<Model> model(const std::string&) override { return nullptr; }
  DataSplit data(const std::string&, const std::string&) override { return {}; }
  std::string out_path(const std::string& rel) override {
    std::filesystem::path p = dir_ / rel;
    std::filesystem::create_directories(p.parent_path());
    return p.string();
  }
  uint64_t seed() const override { return 7; }
  void log(const std::string&) override {}
  void metric(const std::string& json) override { metrics.push_back(json); }
  int64_t max_steps() const override { return 0; }
  int64_t epochs_override() const override { return 0; }
  bool resume() const override { return resume_; }
  bool quiet() const override { return true; }
  void publish(const std::string&, std::shared_ptr<const Dataset>, const std::string&) override {}

  std::vector<std::string> metrics;
  bool resume_ = false;

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string name_ = "s";
  Spec spec_;
  Params params_;
  std::filesystem::path dir_;
};

}  // namespace loom::test
