// Parameters are counted against a memory budget before they are allocated: a model whose
// weights no machine could hold is refused where it is declared, with the sizes in the message.
#include "model/model_set.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "support/harness.hpp"

namespace loom {
namespace {

std::string build_error(const std::string& models_yaml, int64_t budget) {
  ModelSet set(test::registry(), 1, "<test>");
  set.set_memory_budget(budget);
  set.declare(YAML::Load(models_yaml));
  Problems problems;
  set.build_all(problems);
  return problems.empty() ? "" : problems.list().front();
}

TEST(ModelSet, RefusesParametersPastTheMemoryBudget) {
  // 1000 x 1000 weights and gradients: 8,000,000 bytes, with the bias 8,008,000.
  const std::string models = "m: {input: [1000], layers: [{type: dense, units: 1000}]}";
  EXPECT_EQ(build_error(models, 8008000), "");
  std::string e = build_error(models, 8000000);
  EXPECT_NE(e.find("(dense 'dense_1'): its bias of shape (1000,) needs 7.8 KiB (weights and "
                   "gradients), and the parameters of the models would need 7.6 MiB in all: "
                   "more than the budget of 7.6 MiB"),
            std::string::npos)
      << e;
  // Two models share one budget.
  const std::string two = models + "\nn: {input: [1000], layers: [{type: dense, units: 1000}]}";
  EXPECT_NE(build_error(two, 12000000).find("models.n.layers[0]"), std::string::npos);
}

TEST(ModelSet, ByDefaultTheBudgetIsTheMachinesMemory) {
  // 2^20 x 2^19 weights: 4 TiB with the gradients, past any machine this runs on; below the
  // 2^40-element bound, so it is the memory figure that refuses it.
  std::string e = build_error("m: {input: [1048576], layers: [{type: dense, units: 524288}]}", 0);
  EXPECT_NE(e.find("needs 4.0 TiB"), std::string::npos) << e;
  EXPECT_NE(e.find("more than this machine's memory of"), std::string::npos) << e;
}

}  // namespace
}  // namespace loom
