// What a recipe sees of the runtime: its stage's parameters, the models, the data, the run
// folder and the metrics stream.
#include <filesystem>

#include "loom/recipe.hpp"
#include "output/provenance.hpp"
#include "stage/run_folder.hpp"
#include "stage/runtime.hpp"

namespace loom {

namespace {

class Context : public StageContext {
 public:
  Context(Runtime& rt, const std::string& name, const std::string& recipe, const Params& p,
          bool keeps_metrics)
      : rt_(rt), name_(name), recipe_(recipe), params_(p), keeps_metrics_(keeps_metrics) {}
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
  bool bf16() const override { return rt_.precision(params_) == "bf16"; }
  const BenchSettings* bench() const override {
    return rt_.options().benchmark ? &rt_.options().bench : nullptr;
  }
  void publish(const std::string& n, std::shared_ptr<const Dataset> d,
               const std::string& like) override {
    rt_.publish(n, std::move(d), like);
  }
  void bench_validation(double images_per_s) override {
    rt_.add_bench_validation(name_, images_per_s);
  }
  void bench_result(const std::vector<double>& rates, int64_t batch) override {
    rt_.add_bench_report({name_, batch, rates});
  }

  void provenance(const std::string& path, int64_t count, const std::vector<const Model*>& models,
                  const std::string& streams, const std::pair<float, float>* range) {
    if (params_.given("only_index") || path.ends_with(".png")) return;
    Manifest m;
    m.dataset = path;
    m.count = count;
    m.written_by =
        "stage '" + name_ + "' (recipe " + recipe_ + ") of pipeline '" + rt_.pipeline().name + "'";
    m.run_dir = rt_.out_dir();
    // The run folder's copy (overrides applied) is what `loom regenerate` loads.
    std::string copy = (std::filesystem::path(rt_.out_dir()) / "pipeline.yaml").string();
    m.pipeline = std::filesystem::exists(copy) ? copy : rt_.pipeline().path;
    m.checkpoint = !rt_.options().weights.empty()
                       ? rt_.options().weights
                       : std::filesystem::absolute(std::filesystem::path(rt_.out_dir()) /
                                                   "weights.safetensors")
                             .lexically_normal()
                             .string();
    m.recipe = recipe_;
    // As given (a recipe may treat a default and the same value given differently), and with
    // every parameter for the record; the seed and value range made explicit in both.
    m.entry = params_.impl().node.IsMap() ? YAML::Clone(params_.impl().node)
                                          : YAML::Node(YAML::NodeType::Map);
    m.parameters = resolved_entry(params_, rt_.registry());
    m.seed = params_.given("seed") ? uint64_t(params_.i("seed")) : seed();
    for (YAML::Node e : {m.entry, m.parameters}) {
      for (const char* k : {"write", "publish", "preview", "cols", "after", "recipe"}) e.remove(k);
      e["seed"] = m.seed;
      if (range) {
        e.remove("data");
        e["range"] = YAML::Node(YAML::NodeType::Sequence);
        e["range"].push_back(range->first);
        e["range"].push_back(range->second);
      }
    }
    for (const Model* model : models) m.weights.push_back({model->name(), weights_sha256(*model)});
    m.random_streams = streams;
    write_manifest(m);
    log(name_ + ": provenance in " + manifest_path(path));
  }

 private:
  Runtime& rt_;
  std::string name_, recipe_;
  Params params_;
  bool keeps_metrics_;
};

}  // namespace

std::unique_ptr<StageContext> Runtime::make_context(StageDecl& s) {
  return std::make_unique<Context>(*this, s.name, s.recipe, s.params, s.keeps_metrics);
}

void record_provenance(StageContext& ctx, const std::string& path, int64_t count,
                       const std::vector<const Model*>& models, const std::string& random_streams,
                       const std::pair<float, float>* range) {
  // A context of the runtime's own (a test's stand-in context keeps no provenance).
  if (auto* c = dynamic_cast<Context*>(&ctx))
    c->provenance(path, count, models, random_streams, range);
}

}  // namespace loom
