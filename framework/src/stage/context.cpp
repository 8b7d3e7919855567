// What a recipe sees of the runtime: its stage's parameters, the models, the data, the run
// folder and the metrics stream.
#include "loom/recipe.hpp"
#include "stage/runtime.hpp"

namespace loom {

namespace {

class Context : public StageContext {
 public:
  Context(Runtime& rt, const std::string& name, const Params& p, bool keeps_metrics)
      : rt_(rt), name_(name), params_(p), keeps_metrics_(keeps_metrics) {}
  const std::string& name() const override { return name_; }
  const Params& params() const override { return params_; }
  const Registry& registry() const override { return rt_.registry(); }
  std::shared_ptr<Model> model(const std::string& n) override { return rt_.models().get(n); }
  DataSplit data(const std::string& ref, const std::string& fallback) override {
    return rt_.data(ref, fallback);
  }
  std::string out_path(const std::string& rel) override { return rt_.out_path(rel); }
  uint64_t seed() const override { return rt_.pipeline().seed; }
  void log(const std::string& line) override { rt_.log(line); }
  void metric(const std::string& json) override {
    if (keeps_metrics_) rt_.metric(name_, json);
  }
  int64_t max_steps() const override { return rt_.options().max_steps; }
  int64_t epochs_override() const override { return rt_.options().epochs; }
  bool resume() const override { return rt_.options().resume; }
  bool quiet() const override { return rt_.options().quiet; }
  const BenchSettings* bench() const override {
    return rt_.options().benchmark ? &rt_.options().bench : nullptr;
  }
  void publish(const std::string& n, std::shared_ptr<const Dataset> d,
               const std::string& like) override {
    rt_.publish(n, std::move(d), like);
  }
  void bench_result(const std::vector<double>& rates, int64_t batch) override {
    rt_.add_bench_report({name_, batch, rates});
  }

 private:
  Runtime& rt_;
  std::string name_;
  Params params_;
  bool keeps_metrics_;
};

}  // namespace

std::unique_ptr<StageContext> Runtime::make_context(StageDecl& s) {
  return std::make_unique<Context>(*this, s.name, s.params, s.keeps_metrics);
}

}  // namespace loom
