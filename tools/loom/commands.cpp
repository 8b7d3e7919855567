// The subcommands.
#include <omp.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.hpp"
#include "config/yaml_util.hpp"
#include "loom/create.hpp"
#include "loom/dataset_io.hpp"
#include "loom/io.hpp"
#include "loom/plugins.hpp"
#include "loom/sampler.hpp"
#include "output/safetensors.hpp"
#include "stage/runtime.hpp"

namespace fs = std::filesystem;

namespace loom::cli {
namespace {

std::unique_ptr<tbb::global_control> g_tbb_limit;

}  // namespace

// One thread budget: oneDNN's OpenMP team and oneTBB's data workers share the cores.
std::string set_threads(long long n) {
  int cores = omp_get_num_procs();
  int t = n > 0 ? int(n) : cores;
  omp_set_num_threads(t);
  g_tbb_limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      size_t(t));
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  return "threads: " + std::to_string(t) + " for oneDNN (OpenMP, wait policy " +
         (wait ? wait : "default") + "), up to " + std::to_string(t) + " for data (oneTBB); " +
         std::to_string(cores) + " cores";
}

namespace {

std::string one_pipeline(const Args& a, const char* cmd) {
  if (a.positional.size() != 1)
    throw Error(std::string("usage: loom ") + cmd + " PIPELINE ... (got " +
                std::to_string(a.positional.size()) + " positional arguments)");
  return a.positional[0];
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int cmd_run(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"out", "set", "epochs", "max-steps", "threads", "subset"},
                 {"resume", "quiet"});
  RunOptions o;
  o.out_dir = a.get("out");
  o.overrides = a.sets;
  o.epochs = a.integer("epochs", 0);
  o.max_steps = a.integer("max-steps", 0);
  o.subset = a.integer("subset", 0);
  o.resume = a.flag("resume");
  o.quiet = a.flag("quiet");
  std::string budget = set_threads(a.integer("threads", 0));
  Runtime rt(one_pipeline(a, "run"), o);
  if (!o.quiet)
    std::cout << "loom: " << rt.pipeline().name << " -> " << rt.out_dir() << "\n"
              << budget << std::endl;
  rt.run();
  if (!o.quiet) std::cout << "done: outputs in " << rt.out_dir() << std::endl;
  return 0;
}

int cmd_validate(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"set"}, {});
  RunOptions o;
  o.overrides = a.sets;
  Runtime rt(one_pipeline(a, "validate"), o);
  std::cout << rt.summary() << rt.pipeline().path << ": OK\n";
  return 0;
}

static void print_type(const TypeInfo& t) {
  std::cout << t.name << " (" << kind_name(t.kind) << ")\n  " << t.spec.description << "\n  from "
            << t.library << "\n\n";
  if (t.spec.params.empty()) {
    std::cout << "  no parameters\n";
    return;
  }
  std::cout << "  parameters:\n";
  for (auto& p : t.spec.params) {
    std::string range;
    if (std::isfinite(p.lo) || std::isfinite(p.hi)) {
      std::ostringstream r;
      r << " [" << (std::isfinite(p.lo) ? std::to_string(p.lo).substr(0, 8) : "-inf") << ", "
        << (std::isfinite(p.hi) ? std::to_string(p.hi).substr(0, 8) : "inf") << "]";
      range = r.str();
    }
    std::string choices;
    for (auto& c : p.allowed) choices += (choices.empty() ? " one of: " : ", ") + c;
    std::printf("    %-22s %-14s %-22s %s%s%s\n", p.name.c_str(), type_name(p.type),
                p.is_required ? "(required)" : ("= " + p.default_yaml).c_str(), p.help.c_str(),
                range.c_str(), choices.c_str());
  }
}

int cmd_plugins(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {}, {});
  Registry& r = global_registry();
  load_default_plugins(r);
  if (a.positional.empty()) {
    for (Kind k : all_kinds()) {
      auto names = r.names(k);
      if (names.empty()) continue;
      std::cout << kind_name(k) << (k == Kind::Loss ? "es (" : "s (") << names.size() << "):\n";
      std::string line = "  ";
      for (auto& n : names) {
        if (line.size() + n.size() > 96) {
          std::cout << line << "\n";
          line = "  ";
        }
        line += n + "  ";
      }
      std::cout << line << "\n";
    }
    std::cout << "\nlibraries:\n";
    for (auto& p : loaded_plugins())
      std::cout << "  " << p.name << " " << p.version << "  " << p.path << "\n";
    std::cout << "\n`loom plugins NAME` shows a type's parameters.\n";
    return 0;
  }
  bool found = false;
  std::vector<std::string> all;
  for (const TypeInfo* t : r.all()) {
    all.push_back(t->name);
    if (t->name == a.positional[0]) {
      if (found) std::cout << "\n";
      print_type(*t);
      found = true;
    }
  }
  if (!found)
    throw Error("no registered type '" + a.positional[0] + "'" + suggestion(a.positional[0], all));
  return 0;
}

int cmd_bench(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"set", "stage", "windows", "steps", "warmup", "threads", "images"},
                 {"json", "augment"});
  if (a.flag("augment")) {
    if (!a.positional.empty())
      throw Error("usage: loom bench --augment [--threads N] [--json] (no pipeline)");
    return bench_augment(a);
  }
  RunOptions o;
  o.overrides = a.sets;
  o.benchmark = true;
  o.quiet = true;
  o.bench_stage = a.get("stage");
  o.bench.warmup = a.integer("warmup", 50);
  o.bench.windows = a.integer("windows", 7);
  o.bench.steps = a.integer("steps", 200);
  std::string budget = set_threads(a.integer("threads", 0));
  Runtime rt(one_pipeline(a, "bench"), o);
  rt.run();
  for (auto& r : rt.bench_reports()) {
    double med = median(r.rates);
    if (a.flag("json")) {
      nlohmann::ordered_json j;
      j["pipeline"] = rt.pipeline().name;
      j["stage"] = r.stage;
      j["batch_size"] = r.batch;
      j["images_per_s"] = med;
      j["windows"] = r.rates;
      j["steps_per_window"] = o.bench.steps;
      j["threads"] = omp_get_max_threads();
      std::cout << j.dump() << std::endl;
    } else {
      std::printf(
          "%s / %s: %.0f images/s (median of %zu windows of %lld steps, batch %lld; min %.0f, max "
          "%.0f)\n%s\n",
          rt.pipeline().name.c_str(), r.stage.c_str(), med, r.rates.size(),
          (long long)o.bench.steps, (long long)r.batch,
          *std::min_element(r.rates.begin(), r.rates.end()),
          *std::max_element(r.rates.begin(), r.rates.end()), budget.c_str());
    }
  }
  return 0;
}

int cmd_graph(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"set"}, {});
  RunOptions o;
  o.overrides = a.sets;
  Runtime rt(one_pipeline(a, "graph"), o);
  std::cout << rt.dot();
  return 0;
}

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
  run.runtime = std::make_unique<Runtime>((run_dir / "pipeline.yaml").string(), RunOptions{});
  TensorFile f = load_safetensors(weights.string());
  for (auto& [name, p] : run.runtime->models().params()) {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end()) {
      run.missing.push_back(name);
      continue;
    }
    if (it->second.size() != p->value.size())
      throw Error(weights.string() + ": tensor '" + name + "' has shape " +
                  to_string(it->second.shape()) + " but the pipeline's parameter has " +
                  to_string(p->value.shape()));
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
      if (d.second["scale"])
        return {d.second["scale"][0].as<float>(), d.second["scale"][1].as<float>()};
  return {0.f, 1.f};
}

uint64_t TrainedRun::seed() const { return runtime->pipeline().seed; }

namespace {

// Reads a dataset file (IDX with labels beside, .npy with .labels.npy) scaled to [lo, hi].
Dataset read_scaled(const std::string& path, float lo, float hi) {
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

}  // namespace

int cmd_predict(int argc, char** argv) {
  Args a = parse(argc, argv, 2,
                 {"model", "input", "out", "output", "batch-size", "threads", "range", "scatter"},
                 {"round"});
  if (a.positional.size() != 1 || !a.has("input") || !a.has("out"))
    throw Error(
        "usage: loom predict RUN_DIR_OR_CHECKPOINT --input PATH --out PATH [--model NAME] "
        "[--output LAYER] "
        "[--scatter FILE.png]");
  set_threads(a.integer("threads", 0));
  TrainedRun run = load_trained_run(a.positional[0]);
  Runtime& rt = *run.runtime;
  std::string model_name = a.get("model");
  if (model_name.empty()) {
    // The model trained by the first stage that names one.
    for (auto& n : rt.models().names()) {
      model_name = n;
      if (rt.pipeline().root["stages"])
        for (auto s : rt.pipeline().root["stages"])
          if (s.second["model"] && s.second["model"].Scalar() == n) {
            model_name = n;
            goto found;
          }
    }
  found:;
  }
  auto model = run.model(model_name);
  // Scale to the range the model was trained on (the first dataset's `scale`, default [0, 1]).
  auto [lo, hi] = run.data_range();
  if (a.has("range")) {
    auto r = a.get("range");
    auto c = r.find(',');
    try {
      if (c == std::string::npos) throw 0;
      lo = std::stof(r.substr(0, c));
      hi = std::stof(r.substr(c + 1));
    } catch (...) {
      throw Error("--range: expected LOW,HIGH, got '" + r + "'");
    }
  }
  std::string input = a.get("input");
  Dataset d;
  if (input.ends_with(".npy")) {
    d = read_dataset(input);  // kept as it is: arrays are taken to be in the model's range already
  } else {
    d = read_scaled(input, lo, hi);
  }
  int target = model->output_node();
  if (a.has("output")) {
    target = model->find(a.get("output"));
    if (target < 0)
      throw Error("model '" + model_name + "' has no layer '" + a.get("output") + "'");
  }
  Tensor out = predict(*model, d.x.data(), d.count, numel(d.sample_shape), target,
                       a.integer("batch-size", 256), run.seed());
  if (a.flag("round"))
    for (int64_t i = 0; i < out.size(); ++i) out[i] = std::round(out[i]);
  std::string out_path = a.get("out");
  write_npy(out_path, out);
  std::cout << "wrote " << to_string(out.shape()) << " (" << model->nodes()[size_t(target)].name
            << ") to " << out_path << "\n";
  if (d.has_labels() && out_path.ends_with(".npy")) {
    std::string lp = out_path.substr(0, out_path.size() - 4) + ".labels.npy";
    write_npy_labels(lp, d.labels);
    std::cout << "wrote the " << d.labels.size() << " labels to " << lp << "\n";
  }
  if (a.has("scatter")) {
    write_scatter_png(a.get("scatter"), out, d.labels);
    std::cout << "wrote a scatter plot" << (d.has_labels() ? " coloured by class" : "") << " to "
              << a.get("scatter") << "\n";
  }
  return 0;
}

namespace {

// --sampler NAME or --sampler '{type: NAME, key: value}'.
std::unique_ptr<Sampler> make_sampler(const std::string& text) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error("--sampler: cannot read '" + text + "' (" + e.msg +
                "); use a name or '{type: gaussian, stddev: 0.5}'");
  }
  if (!node.IsScalar() && !node.IsMap())
    throw Error("--sampler: expected a name or '{type: NAME, ...}', got '" + text + "'");
  Spec open;
  open.open = true;
  return create_from<Sampler>(global_registry(), make_params(node, open, "--sampler", "sampler"));
}

std::pair<int64_t, int64_t> index_pair(const std::string& text) {
  auto c = text.find(',');
  try {
    if (c == std::string::npos) throw 0;
    size_t p1 = 0, p2 = 0;
    long long i = std::stoll(text.substr(0, c), &p1), j = std::stoll(text.substr(c + 1), &p2);
    if (p1 != c || p2 != text.size() - c - 1 || i < 0 || j < 0) throw 0;
    return {i, j};
  } catch (...) {
    throw Error("--between: expected two sample indices I,J (e.g. 3,17), got '" + text + "'");
  }
}

}  // namespace

int cmd_sample(int argc, char** argv) {
  Args a = parse(argc, argv, 2,
                 {"n", "out", "model", "encoder", "sampler", "seed", "cols", "axis", "between",
                  "data", "steps", "batch-size", "threads"},
                 {"interpolate"});
  if (a.positional.size() != 1 || !a.has("out"))
    throw Error(
        "usage: loom sample RUN_DIR_OR_CHECKPOINT --n N --out PATH [--model NAME] [--sampler S] "
        "[--seed S] "
        "[--cols C] [--interpolate (--axis K | --between I,J --data PATH) [--steps S]]");
  bool interpolate = a.flag("interpolate") || a.has("axis") || a.has("between");
  if (a.has("between") && !a.has("data"))
    throw Error("--between I,J needs --data PATH: the dataset holding samples I and J");
  if (a.has("axis") && a.has("between"))
    throw Error("--axis and --between are two kinds of interpolation: give one");
  if (interpolate && !a.has("axis") && !a.has("between"))
    throw Error(
        "--interpolate needs --axis K (vary one coding) or --between I,J --data PATH (from sample "
        "I to J)");
  if (!interpolate && !a.has("n")) throw Error("--n N: how many samples to draw");
  if (a.has("data") && !a.has("between")) throw Error("--data is used with --between I,J");
  int64_t n = a.integer("n", 8), steps = a.integer("steps", 10), bs = a.integer("batch-size", 256);
  if (n < 1) throw Error("--n: expected at least 1, got " + std::to_string(n));
  if (steps < 2) throw Error("--steps: expected at least 2, got " + std::to_string(steps));
  set_threads(a.integer("threads", 0));
  TrainedRun run = load_trained_run(a.positional[0]);
  ModelSet& models = run.runtime->models();
  std::string name = a.get("model");
  if (name.empty()) {
    for (const char* candidate : {"decoder", "generator"})
      if (models.has(candidate)) {
        name = candidate;
        break;
      }
    if (name.empty()) {
      std::string known;
      for (auto& m : models.names()) known += (known.empty() ? "" : ", ") + m;
      throw Error(
          run.run_dir +
          ": no model named 'decoder' or 'generator'; choose one with --model NAME (models: " +
          known + ")");
    }
  }
  auto model = run.model(name);
  if (model->num_inputs() != 1)
    throw Error("model '" + name + "' takes " + std::to_string(model->num_inputs()) +
                " inputs; sampling needs a decoder or generator with one input (the codings)");
  auto [lo, hi] = run.data_range();
  uint64_t seed = uint64_t(a.integer("seed", int64_t(run.seed())));
  auto sampler = make_sampler(a.get("sampler", "gaussian"));
  Shape coding = model->input_shape();
  int64_t width = numel(coding);
  Tensor out;
  int64_t cols = 0;
  std::string what;
  if (!interpolate) {
    out = generate(*model, *sampler, n, seed, bs);
    cols = a.integer("cols", int64_t(std::ceil(std::sqrt(double(n)))));
    what = std::to_string(n) + " samples";
  } else if (a.has("axis")) {
    int64_t axis = a.integer("axis", 0);
    if (axis < 0 || axis >= width)
      throw Error("--axis: model '" + name + "' takes codings of shape " + to_string(coding) +
                  ", so K is 0.." + std::to_string(width - 1) + " (got " + std::to_string(axis) +
                  ")");
    Shape bs_shape = coding;
    bs_shape.insert(bs_shape.begin(), n);
    Tensor base(bs_shape);
    sampler->sample(base, seed, 0);
    Shape all = coding;
    all.insert(all.begin(), n * steps);
    Tensor codings(all);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t s = 0; s < steps; ++s) {
        float* c = codings.data() + (r * steps + s) * width;
        std::copy(base.data() + r * width, base.data() + (r + 1) * width, c);
        c[axis] = -3.f + 6.f * float(s) / float(steps - 1);
      }
    out = decode(*model, codings, bs, seed);
    cols = steps;
    what = std::to_string(n) + " rows of " + std::to_string(steps) + " steps along coding axis " +
           std::to_string(axis);
  } else {
    auto [i, j] = index_pair(a.get("between"));
    std::string enc_name = a.get("encoder", "encoder");
    if (!models.has(enc_name))
      throw Error("--between: the pipeline has no model '" + enc_name +
                  "' to encode the samples with (choose one with --encoder NAME)");
    auto enc = run.model(enc_name);
    Dataset d = read_scaled(a.get("data"), lo, hi);
    for (int64_t k : {i, j})
      if (k >= d.count)
        throw Error("--between: " + a.get("data") + " holds " + std::to_string(d.count) +
                    " samples, so no sample " + std::to_string(k));
    // A variational encoder's `mean` rather than a random draw around it.
    int target = enc->find("mean");
    if (target < 0) target = enc->output_node();
    Shape es = enc->nodes()[size_t(target)].shape;
    if (numel(es) != width)
      throw Error("--between: encoder '" + enc_name + "' gives codings of shape " + to_string(es) +
                  " but model '" + name + "' takes " + to_string(coding));
    int64_t per = numel(d.sample_shape);
    std::vector<float> pair(size_t(2 * per));
    std::copy(d.sample(i), d.sample(i) + per, pair.begin());
    std::copy(d.sample(j), d.sample(j) + per, pair.begin() + per);
    Tensor ends = predict(*enc, pair.data(), 2, per, target, 2, seed);
    Shape all = coding;
    all.insert(all.begin(), steps);
    Tensor codings(all);
    for (int64_t s = 0; s < steps; ++s) {
      float t = float(s) / float(steps - 1);
      for (int64_t k = 0; k < width; ++k)
        codings[s * width + k] = (1 - t) * ends[k] + t * ends[width + k];
    }
    out = decode(*model, codings, bs, seed);
    cols = steps;
    what = std::to_string(steps) + " steps from sample " + std::to_string(i) + " to sample " +
           std::to_string(j) + " of " + a.get("data") + " (" + enc->nodes()[size_t(target)].name +
           ")";
  }
  if (cols < 1) throw Error("--cols: expected at least 1, got " + std::to_string(cols));
  write_samples(a.get("out"), out, lo, hi, cols);
  std::cout << "wrote " << what << " (" << name << ", " << to_string(model->output_shape())
            << ", values in [" << lo << ", " << hi << "]) to " << a.get("out") << "\n";
  return 0;
}

}  // namespace loom::cli
