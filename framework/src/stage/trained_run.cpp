// A finished run rebuilt for inference, and datasets read at a run's value range.
#include "stage/trained_run.hpp"

#include <algorithm>
#include <filesystem>

#include "config/yaml_util.hpp"
#include "loom/io.hpp"
#include "output/safetensors.hpp"

namespace loom {

namespace fs = std::filesystem;

TrainedRun::TrainedRun() = default;
TrainedRun::TrainedRun(TrainedRun&&) noexcept = default;
TrainedRun::~TrainedRun() = default;

TrainedRun load_trained_run(const std::string& given_path) {
  fs::path given = given_path, run_dir = given, weights;
  if (!fs::exists(given)) throw Error(given.string() + ": no such run folder or checkpoint");
  if (fs::is_regular_file(given)) {
    weights = given;
    run_dir = given.parent_path();
    while (!run_dir.empty() && !fs::exists(run_dir / "pipeline.yaml") &&
           run_dir != run_dir.root_path())
      run_dir = run_dir.parent_path();
  } else {
    weights = run_dir / "weights.safetensors";
  }
  if (!fs::exists(run_dir / "pipeline.yaml"))
    throw Error(given.string() + ": not a run folder (no pipeline.yaml beside the weights)");
  if (!fs::exists(weights))
    throw Error(weights.string() + ": no trained weights (did the run finish a stage?)");
  TrainedRun run;
  run.run_dir = run_dir.string();
  run.weights = weights.string();
  RunOptions received;
  received.received = true;
  received.out_dir = run.run_dir;
  received.weights = fs::absolute(weights).lexically_normal().string();
  run.runtime = std::make_unique<Runtime>((run_dir / "pipeline.yaml").string(), received);
  TensorFile f = load_safetensors(weights.string());
  for (auto& [name, p] : run.runtime->models().params()) {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end()) {
      run.missing.push_back(name);
      continue;
    }
    // Shapes, not element counts: a kernel stored transposed has the same count and would load
    // as nonsense.
    const Shape& want = p->value.shape();
    auto check = [&](const std::string& key, const Tensor& t) {
      if (t.shape() != want)
        throw Error(weights.string() + ": tensor '" + key + "' has shape " + to_string(t.shape()) +
                    " but the pipeline's parameter has " + to_string(want));
    };
    check(name, it->second);
    // The moving average a training stage kept (ema:), used for sampling (AveragedWeights).
    auto avg = f.tensors.find("ema." + name);
    if (avg != f.tensors.end()) {
      check("ema." + name, avg->second);
      p->average = avg->second.clone();
    }
    p->value.copy_from(it->second);
  }
  return run;
}

std::shared_ptr<Model> TrainedRun::model(const std::string& name) const {
  ModelSet& models = runtime->models();
  if (!models.has(name))
    throw Error(run_dir + ": the pipeline has no model '" + name + "'" +
                suggestion(name, models.names()));
  auto m = models.get(name);
  for (auto& [pname, p] : models.params())
    if (std::find(missing.begin(), missing.end(), pname) != missing.end() &&
        std::find(m->params().begin(), m->params().end(), p) != m->params().end())
      throw Error(weights + ": no trained values for parameter '" + pname + "' of model '" + name +
                  "'");
  return m;
}

std::pair<float, float> TrainedRun::data_range() const {
  if (auto ds = runtime->pipeline().root["datasets"])
    for (auto d : ds)
      if (d.second["scale"]) {
        double lo = 0, hi = 1;  // checked by validation
        parse_float(d.second["scale"][0], lo);
        parse_float(d.second["scale"][1], hi);
        return {float(lo), float(hi)};
      }
  return {0.f, 1.f};
}

std::vector<std::string> TrainedRun::class_names() const {
  if (auto ds = runtime->pipeline().root["datasets"])
    for (auto d : ds) {
      if (d.second.IsMap() && d.second["class_names"] && d.second["class_names"].IsSequence()) {
        std::vector<std::string> given;
        for (auto v : d.second["class_names"]) given.push_back(v.Scalar());
        return given;
      }
      if (!d.second.IsMap() || !d.second["source"] || d.second["source"].Scalar() != "idx")
        continue;
      // The idx source reads Fashion-MNIST when no images are named.
      std::string images = d.second["images"] && d.second["images"].IsScalar()
                               ? d.second["images"].Scalar()
                               : "fashion-mnist";
      auto names = known_class_names(images);
      if (!names.empty()) return names;
    }
  return {};
}

uint64_t TrainedRun::seed() const { return runtime->pipeline().seed; }

YAML::Node TrainedRun::stage_with_recipe(const std::string& recipe,
                                         const std::string& model) const {
  if (auto stages = runtime->pipeline().root["stages"])
    for (auto st : stages)
      if (st.second.IsMap() && st.second["recipe"] && st.second["recipe"].Scalar() == recipe &&
          (model.empty() || (st.second["model"] && st.second["model"].Scalar() == model)))
        return st.second;
  return YAML::Node();
}

Dataset read_dataset_scaled(const std::string& path, float lo, float hi) {
  Dataset d = read_dataset(path);
  if (d.count == 0) throw Error(path + ": the dataset holds no samples");
  if (d.hi > d.lo && (d.lo != lo || d.hi != hi)) {
    float k = (hi - lo) / (d.hi - d.lo);
    for (auto& v : d.x) v = lo + (v - d.lo) * k;
    d.lo = lo;
    d.hi = hi;
  }
  return d;
}

}  // namespace loom
