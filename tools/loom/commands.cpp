// The subcommands.
#include <omp.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.hpp"
#include "loom/create.hpp"
#include "loom/io.hpp"
#include "loom/plugins.hpp"
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
  g_tbb_limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, size_t(t));
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  return "threads: " + std::to_string(t) + " for oneDNN (OpenMP, wait policy " + (wait ? wait : "default") +
         "), up to " + std::to_string(t) + " for data (oneTBB); " + std::to_string(cores) + " cores";
}

namespace {

std::string one_pipeline(const Args& a, const char* cmd) {
  if (a.positional.size() != 1)
    throw Error(std::string("usage: loom ") + cmd + " PIPELINE ... (got " + std::to_string(a.positional.size()) +
                " positional arguments)");
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
  Args a = parse(argc, argv, 2, {"out", "set", "epochs", "max-steps", "threads", "subset"}, {"resume", "quiet"});
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
  if (!o.quiet) std::cout << "loom: " << rt.pipeline().name << " -> " << rt.out_dir() << "\n" << budget << std::endl;
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
                p.is_required ? "(required)" : ("= " + p.default_yaml).c_str(), p.help.c_str(), range.c_str(),
                choices.c_str());
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
    for (auto& p : loaded_plugins()) std::cout << "  " << p.name << " " << p.version << "  " << p.path << "\n";
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
  if (!found) throw Error("no registered type '" + a.positional[0] + "'" + suggestion(a.positional[0], all));
  return 0;
}

int cmd_bench(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"set", "stage", "windows", "steps", "warmup", "threads", "images"}, {"json", "augment"});
  if (a.flag("augment")) {
    if (!a.positional.empty()) throw Error("usage: loom bench --augment [--threads N] [--json] (no pipeline)");
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
      std::printf("%s / %s: %.0f images/s (median of %zu windows of %lld steps, batch %lld; min %.0f, max %.0f)\n%s\n",
                  rt.pipeline().name.c_str(), r.stage.c_str(), med, r.rates.size(), (long long)o.bench.steps,
                  (long long)r.batch, *std::min_element(r.rates.begin(), r.rates.end()),
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

int cmd_predict(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"model", "input", "out", "output", "batch-size", "threads", "range"}, {"round"});
  if (a.positional.size() != 1 || !a.has("input") || !a.has("out"))
    throw Error("usage: loom predict RUN_DIR_OR_CHECKPOINT --input PATH --out PATH [--model NAME] [--output LAYER]");
  set_threads(a.integer("threads", 0));
  fs::path given = a.positional[0], run_dir = given, weights;
  if (fs::is_regular_file(given)) {
    weights = given;
    run_dir = given.parent_path();
    while (!run_dir.empty() && !fs::exists(run_dir / "pipeline.yaml") && run_dir != run_dir.root_path())
      run_dir = run_dir.parent_path();
  } else {
    weights = run_dir / "weights.safetensors";
  }
  if (!fs::exists(run_dir / "pipeline.yaml"))
    throw Error(given.string() + ": not a run folder (no pipeline.yaml beside the weights)");
  if (!fs::exists(weights)) throw Error(weights.string() + ": no trained weights (did the run finish a stage?)");
  RunOptions o;
  Runtime rt((run_dir / "pipeline.yaml").string(), o);
  TensorFile f = load_safetensors(weights.string());
  for (auto& [name, p] : rt.models().params()) {
    auto it = f.tensors.find(name);
    if (it != f.tensors.end()) p->value.copy_from(it->second);
  }
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
  auto model = rt.models().get(model_name);
  std::string input = a.get("input");
  Tensor x;
  std::vector<int32_t> labels;
  float lo = 0, hi = 1;
  if (input.ends_with(".npy")) {
    x = read_npy(input);
  } else {
    Dataset d = read_idx(input);
    x = Tensor({d.count, numel(d.sample_shape)});
    std::copy(d.x.begin(), d.x.end(), x.data());
    lo = 0;
    hi = 255;
  }
  // Scale to the range the model was trained on (the first dataset's `scale`, default [0, 1]).
  std::vector<double> range{0, 1};
  if (auto ds = rt.pipeline().root["datasets"])
    for (auto d : ds)
      if (d.second["scale"]) {
        range = {d.second["scale"][0].as<double>(), d.second["scale"][1].as<double>()};
        break;
      }
  if (a.has("range")) {
    auto r = a.get("range");
    auto c = r.find(',');
    range = {std::stod(r.substr(0, c)), std::stod(r.substr(c + 1))};
  }
  if (hi == 255)
    for (int64_t i = 0; i < x.size(); ++i) x[i] = float(range[0] + (x[i] - lo) / (hi - lo) * (range[1] - range[0]));
  int target = model->output_node();
  if (a.has("output")) {
    target = model->find(a.get("output"));
    if (target < 0) throw Error("model '" + model_name + "' has no layer '" + a.get("output") + "'");
  }
  int64_t n = x.dim(0), per = x.size() / n, bs = a.integer("batch-size", 256);
  Shape os = model->nodes()[size_t(target)].shape;
  Shape all = os;
  all.insert(all.begin(), n);
  Tensor out(all);
  int64_t per_out = numel(os);
  for (int64_t first = 0; first < n; first += bs) {
    int64_t m = std::min(bs, n - first);
    Tensor chunk({m, per});
    std::copy(x.data() + first * per, x.data() + (first + m) * per, chunk.data());
    Tensor in = as_model_input(chunk, *model);
    model->forward(RunContext{false, rt.pipeline().seed, 0}, {&in});
    const Tensor& v = model->value(target);
    std::copy(v.data(), v.data() + m * per_out, out.data() + first * per_out);
  }
  if (a.flag("round"))
    for (int64_t i = 0; i < out.size(); ++i) out[i] = std::round(out[i]);
  write_npy(a.get("out"), out);
  std::cout << "wrote " << to_string(out.shape()) << " (" << model_name << "." << model->nodes()[size_t(target)].name
            << ") to " << a.get("out") << "\n";
  return 0;
}

}  // namespace loom::cli
