// The subcommands run, validate, plugins, bench, graph, predict and sample.
#include <omp.h>

#include <CLI/CLI.hpp>
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
#include "loom/interrupt.hpp"
#include "loom/io.hpp"
#include "loom/sampler.hpp"
#include "output/provenance.hpp"
#include "output/safetensors.hpp"
#include "plugin/plugins.hpp"
#include "stage/runtime.hpp"
#include "stage/trained_run.hpp"

namespace fs = std::filesystem;

namespace loom::cli {
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void add_run_command(CLI::App& app) {
  struct Options {
    std::string pipeline, out;
    std::vector<std::string> sets, rerun;
    int64_t epochs = 0, max_steps = 0, subset = 0, threads = 0;
    bool resume = false, overwrite = false, quiet = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "run every stage of a pipeline (train, sample, ...)");
  add_pipeline(*cmd, o->pipeline);
  cmd->add_option("--out", o->out, "the run folder: metrics, checkpoints, weights, images")
      ->type_name("DIR")
      ->default_str("runs/<pipeline name>");
  add_sets(*cmd, o->sets);
  add_positive(*cmd, "--epochs", o->epochs, "train every training stage for N epochs",
               "the pipeline's");
  add_positive(*cmd, "--max-steps", o->max_steps, "stop every training stage after N steps",
               "no limit");
  add_positive(*cmd, "--subset", o->subset, "use at most N samples of every data split",
               "every sample");
  add_threads(*cmd, o->threads);
  auto* resume = cmd->add_flag("--resume", o->resume,
                               "continue the run in the folder: finished stages whose inputs are "
                               "unchanged are reused, unfinished ones continue from their last "
                               "checkpoints, the others run again");
  auto* rerun = cmd->add_option("--rerun", o->rerun,
                                "run STAGE again from the start, and the stages after it "
                                "(implies --resume; repeatable)")
                    ->type_name("STAGE")
                    ->default_str("none")
                    ->allow_extra_args(false)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* overwrite = cmd->add_flag("--overwrite", o->overwrite,
                                  "replace the run in the folder (removes its metrics.jsonl, "
                                  "checkpoints/, weights and stages.json)");
  resume->excludes(overwrite);
  rerun->excludes(overwrite);
  cmd->add_flag("--quiet", o->quiet, "print only errors and warnings, no progress");
  cmd->callback([o, cmd] {
    RunOptions ro;
    ro.out_dir = o->out;
    ro.overrides = o->sets;
    ro.epochs = o->epochs;
    ro.max_steps = o->max_steps;
    ro.subset = o->subset;
    ro.resume = o->resume || !o->rerun.empty();
    ro.rerun = o->rerun;
    ro.overwrite = o->overwrite;
    ro.quiet = o->quiet;
    std::string budget = set_threads(o->threads, given(*cmd, "--threads"));
    ro.thread_budget = budget.substr(0, budget.find('\n'));
    install_stop_handlers();  // Ctrl-C: finish the step, write a checkpoint, stop
    Runtime rt(o->pipeline, ro);
    if (!ro.quiet)
      std::cout << "loom: " << rt.pipeline().name << " -> " << rt.out_dir() << "\n"
                << budget << std::endl;
    rt.run();
    if (!ro.quiet) std::cout << "done: outputs in " << rt.out_dir() << std::endl;
  });
}

void add_validate_command(CLI::App& app) {
  struct Options {
    std::string pipeline;
    std::vector<std::string> sets;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "validate", "check a pipeline (types, parameters, every shape) and print its models");
  add_pipeline(*cmd, o->pipeline);
  add_sets(*cmd, o->sets);
  cmd->callback([o] {
    RunOptions ro;
    ro.overrides = o->sets;
    Runtime rt(o->pipeline, ro);
    std::cout << rt.summary() << rt.pipeline().path << ": OK\n";
  });
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

static void plugins(const std::string& name) {
  Registry& r = global_registry();
  load_default_plugins(r);
  if (name.empty()) {
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
    return;
  }
  bool found = false;
  std::vector<std::string> all;
  for (const TypeInfo* t : r.all()) {
    all.push_back(t->name);
    if (t->name == name) {
      if (found) std::cout << "\n";
      print_type(*t);
      found = true;
    }
  }
  if (!found) throw Error("no registered type '" + name + "'" + suggestion(name, all));
}

void add_plugins_command(CLI::App& app) {
  auto name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "plugins", "list every registered type by kind, or show one type's parameters");
  cmd->add_option("NAME", *name, "a type to show: its parameters, defaults, ranges and docs")
      ->type_name("")
      ->default_str("list every type");
  cmd->callback([name] { plugins(*name); });
}

void add_bench_command(CLI::App& app) {
  struct Options {
    std::string pipeline, stage;
    std::vector<std::string> sets;
    int64_t warmup = 50, windows = 7, steps = 200, threads = 0, images = 20000;
    bool json = false, augment = false, sample = false;
    std::string layouts = "blocked";
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "measure steady-state training images/second (or, with --augment, augmentation)");
  cmd->add_option("PIPELINE", o->pipeline, "the pipeline file (YAML); not with --augment")
      ->type_name("");
  add_sets(*cmd, o->sets);
  cmd->add_option("--stage", o->stage, "the training stage to measure")
      ->type_name("NAME")
      ->default_str("the first training stage");
  add_non_negative(*cmd, "--warmup", o->warmup, "training steps before the timed windows", "50");
  add_positive(*cmd, "--windows", o->windows, "timed windows; the median is reported", "7");
  add_positive(*cmd, "--steps", o->steps, "training steps per window", "200");
  add_threads(*cmd, o->threads);
  cmd->add_flag("--json", o->json, "print one JSON object (images_per_s, windows, ...)");
  cmd->add_flag("--augment", o->augment,
                "measure a typical augmentation chain on Fashion-MNIST instead (no pipeline)");
  add_positive(*cmd, "--images", o->images, "with --augment: images per timed window", "20000");
  cmd->add_flag("--sample", o->sample,
                "measure a diffusion stage's denoising steps (its model in inference on one batch) "
                "instead of its training");
  cmd->add_option("--layouts", o->layouts,
                  "blocked: feature maps stay in oneDNN's channel-blocked layout between the "
                  "layers that take it; plain: every tensor plain NCHW (for comparison)")
      ->type_name("blocked|plain")
      ->default_str("blocked")
      ->check(either("blocked", "plain", "layouts"));
  cmd->callback([o, cmd] {
    if (o->augment) {
      for (const char* only_training :
           {"--stage", "--warmup", "--steps", "--set", "--sample", "--layouts"})
        if (given(*cmd, only_training))
          throw UsageError(std::string(only_training) +
                           " measures a pipeline's training; it does not go with --augment");
      if (!o->pipeline.empty())
        throw UsageError("loom bench --augment takes no pipeline (got '" + o->pipeline + "')");
      AugmentBench b;
      b.threads = given(*cmd, "--threads") ? o->threads : 0;
      b.windows = o->windows;
      b.images = o->images;
      b.json = o->json;
      bench_augment(b);
      return;
    }
    if (o->pipeline.empty())
      throw UsageError("loom bench needs a PIPELINE (or --augment for the augmentation benchmark)");
    if (given(*cmd, "--images"))
      throw UsageError("--images goes with --augment; a pipeline's batches set its window");
    RunOptions ro;
    ro.overrides = o->sets;
    ro.benchmark = true;
    ro.quiet = true;
    ro.bench_stage = o->stage;
    ro.bench.warmup = o->warmup;
    ro.bench.windows = o->windows;
    ro.bench.steps = o->steps;
    ro.bench.sampling = o->sample;
    Model::set_blocked_layouts_default(o->layouts == "blocked");
    std::string budget = set_threads(o->threads, given(*cmd, "--threads"));
    Runtime rt(o->pipeline, ro);
    rt.run();
    for (auto& r : rt.bench_reports()) {
      double med = median(r.rates);
      if (o->json) {
        nlohmann::ordered_json j;
        j["pipeline"] = rt.pipeline().name;
        j["stage"] = r.stage;
        j["batch_size"] = r.batch;
        j["images_per_s"] = med;
        if (o->sample) j["denoising_steps_per_s"] = med / double(r.batch);
        j["windows"] = r.rates;
        j["steps_per_window"] = ro.bench.steps;
        j["threads"] = omp_get_max_threads();
        std::cout << j.dump() << std::endl;
      } else if (o->sample) {
        std::printf(
            "%s / %s: %.2f denoising steps/s on a batch of %lld (%.0f images/s per step; median "
            "of %zu windows of %lld steps)\n%s\n",
            rt.pipeline().name.c_str(), r.stage.c_str(), med / double(r.batch), (long long)r.batch,
            med, r.rates.size(), (long long)ro.bench.steps, budget.c_str());
      } else {
        std::printf(
            "%s / %s: %.0f images/s (median of %zu windows of %lld steps, batch %lld; min %.0f, "
            "max %.0f)\n%s\n",
            rt.pipeline().name.c_str(), r.stage.c_str(), med, r.rates.size(),
            (long long)ro.bench.steps, (long long)r.batch,
            *std::min_element(r.rates.begin(), r.rates.end()),
            *std::max_element(r.rates.begin(), r.rates.end()), budget.c_str());
      }
    }
  });
}

void add_graph_command(CLI::App& app) {
  struct Options {
    std::string pipeline;
    std::vector<std::string> sets;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "graph", "print the stages and model graphs as Graphviz DOT (loom graph P | dot -Tsvg)");
  add_pipeline(*cmd, o->pipeline);
  add_sets(*cmd, o->sets);
  cmd->callback([o] {
    RunOptions ro;
    ro.overrides = o->sets;
    Runtime rt(o->pipeline, ro);
    std::cout << rt.dot();
  });
}

void add_run_options(CLI::App& cmd, std::string& run, std::string& out,
                     const std::string& out_doc) {
  cmd.add_option("RUN", run, "a run folder, or a checkpoint file inside one")
      ->required()
      ->type_name("");
  cmd.add_option("--out", out, out_doc)->required()->type_name("PATH");
}

CLI::Validator pair_of(bool indices) {
  return CLI::Validator(
      [indices](std::string& text) -> std::string {
        auto c = text.find(',');
        try {
          if (c != std::string::npos) {
            size_t p1 = 0, p2 = 0;
            std::string a = text.substr(0, c), b = text.substr(c + 1);
            if (indices) {
              long long i = std::stoll(a, &p1), j = std::stoll(b, &p2);
              if (p1 == a.size() && p2 == b.size() && i >= 0 && j >= 0) return "";
            } else {
              float lo = std::stof(a, &p1), hi = std::stof(b, &p2);
              if (p1 == a.size() && p2 == b.size() && std::isfinite(lo) && std::isfinite(hi) &&
                  lo < hi)
                return "";
            }
          }
        } catch (const std::exception&) {
        }
        return indices
                   ? "expected two sample indices I,J (e.g. 3,17), got '" + text + "'"
                   : "expected LOW,HIGH, two finite numbers with LOW < HIGH (e.g. -1,1), got '" +
                         text + "'";
      },
      "", "pair");
}

namespace {

std::pair<std::string, std::string> split_pair(const std::string& text) {
  auto c = text.find(',');
  return {text.substr(0, c), text.substr(c + 1)};
}

struct PredictOptions {
  std::string run, input, out, model, output, range, scatter;
  int64_t batch_size = 256, threads = 0;
  bool round = false;
};

void predict_command(const PredictOptions& o, const CLI::App& cmd) {
  set_threads(o.threads, given(cmd, "--threads"));
  TrainedRun run = load_trained_run(o.run);
  Runtime& rt = *run.runtime;
  std::string model_name = o.model;
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
  if (!o.range.empty()) {
    auto [a, b] = split_pair(o.range);
    lo = std::stof(a);
    hi = std::stof(b);
  }
  Dataset d;
  if (o.input.ends_with(".npy")) {
    d = read_dataset(o.input);  // kept as it is: arrays are taken to be in the model's range
  } else {
    d = read_dataset_scaled(o.input, lo, hi);
  }
  int target = model->output_node();
  if (!o.output.empty()) {
    target = model->find(o.output);
    if (target < 0) throw Error("model '" + model_name + "' has no layer '" + o.output + "'");
  }
  Tensor out =
      predict(*model, d.x.data(), d.count, numel(d.sample_shape), target, o.batch_size, run.seed());
  if (o.round)
    for (int64_t i = 0; i < out.size(); ++i) out[i] = std::round(out[i]);
  write_npy(o.out, out);
  std::cout << "wrote " << to_string(out.shape()) << " (" << model->nodes()[size_t(target)].name
            << ") to " << o.out << "\n";
  if (d.has_labels() && o.out.ends_with(".npy")) {
    std::string lp = o.out.substr(0, o.out.size() - 4) + ".labels.npy";
    write_npy_labels(lp, d.labels);
    std::cout << "wrote the " << d.labels.size() << " labels to " << lp << "\n";
  }
  if (!o.scatter.empty()) {
    write_scatter_png(o.scatter, out, d.labels, known_class_names(o.input),
                      model->nodes()[size_t(target)].name + " of " +
                          std::filesystem::path(o.input).filename().string());
    std::cout << "wrote a scatter plot" << (d.has_labels() ? " coloured by class" : "") << " to "
              << o.scatter << "\n";
  }
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "apply a trained model (or one of its layers) to a dataset; writes .npy");
  add_run_options(*cmd, o->run, o->out, "the .npy file to write (labels go beside it)");
  cmd->add_option("--input", o->input, "the dataset: IDX (plain or .gz) or .npy")
      ->required()
      ->type_name("PATH");
  cmd->add_option("--model", o->model, "the model to apply (e.g. encoder)")
      ->type_name("NAME")
      ->default_str("the model of the first stage");
  cmd->add_option("--output", o->output, "write this layer's output instead (e.g. mean)")
      ->type_name("LAYER")
      ->default_str("the model's output");
  cmd->add_option("--range", o->range, "scale IDX/PNG inputs to this value range")
      ->type_name("LOW,HIGH")
      ->default_str("the pipeline's first dataset scale, else 0,1")
      ->check(pair_of(false));
  cmd->add_option("--scatter", o->scatter, "also plot the outputs in 2-D (PCA), coloured by class")
      ->type_name("FILE.png");
  cmd->add_flag("--round", o->round, "round the outputs to integers (hashes)");
  add_positive(*cmd, "--batch-size", o->batch_size, "samples per forward pass", "256");
  add_threads(*cmd, o->threads);
  cmd->callback([o, cmd] { predict_command(*o, *cmd); });
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
  check_yaml_bounds(node, "--sampler");
  if (!node.IsScalar() && !node.IsMap())
    throw Error("--sampler: expected a name or '{type: NAME, ...}', got '" + text + "'");
  Spec open;
  open.open = true;
  return create_from<Sampler>(global_registry(), make_params(node, open, "--sampler", "sampler"));
}

struct SampleOptions {
  std::string run, out, model, encoder = "encoder", sampler = "gaussian", between, data, spacing;
  int64_t n = 8, seed = 0, cols = 0, axis = 0, steps = 10, batch_size = 256, threads = 0;
  int64_t label = 0, num_classes = 10;
  double guidance = 1, eta = 0;
  bool interpolate = false, no_ema = false, trajectory = false, no_clip = false;
};

// `loom sample` of a diffusion run: the diffusion_sample recipe, run with the schedule and
// target the model was trained with and the sampler, steps and guidance asked for.
void sample_diffusion(const SampleOptions& o, const CLI::App& cmd, TrainedRun& run,
                      const YAML::Node& train) {
  for (const char* option : {"--interpolate", "--axis", "--between", "--data", "--encoder"})
    if (given(cmd, option))
      throw UsageError(std::string(option) +
                       ": interpolation works with decoders and generators; " + run.run_dir +
                       " holds a diffusion model");
  if (given(cmd, "--num-classes"))
    throw UsageError(
        "--num-classes: a diffusion run knows its classes (num_classes of its training stage)");
  bool has_n = given(cmd, "--n");
  if (!has_n && !o.trajectory) throw Error("--n N: how many images to generate");
  YAML::Node e(YAML::NodeType::Map);
  for (const char* key : {"model", "timesteps", "schedule", "target", "conditional", "num_classes",
                          "spacing", "clip", "guidance"})
    if (train[key]) e[key] = train[key];
  e["sampler"] = given(cmd, "--sampler") ? o.sampler : "dpm_solver_pp";
  if (given(cmd, "--steps")) e["sampling_steps"] = o.steps;
  if (given(cmd, "--eta")) e["eta"] = o.eta;
  if (given(cmd, "--spacing")) e["spacing"] = o.spacing;
  if (o.no_clip) e["clip"] = false;
  bool conditional = false;
  if (e["conditional"]) parse_bool(e["conditional"], conditional);
  if (given(cmd, "--guidance")) {
    if (!conditional)
      throw UsageError("--guidance: the model of " + run.run_dir +
                       " is not conditional (it was trained without class labels)");
    e["guidance"] = o.guidance;
  }
  if (given(cmd, "--class")) {
    if (!conditional)
      throw UsageError("--class: the model of " + run.run_dir +
                       " is not conditional (it was trained without class labels)");
    e["label"] = o.label;
  }
  if (conditional)
    for (const std::string& name : run.class_names()) e["class_names"].push_back(name);
  e["n"] = has_n ? o.n : 1;
  e["seed"] = given(cmd, "--seed") ? uint64_t(o.seed) : run.seed();
  if (given(cmd, "--batch-size")) e["batch_size"] = o.batch_size;
  e["ema"] = !o.no_ema;
  auto [lo, hi] = run.data_range();
  e["range"].push_back(lo);
  e["range"].push_back(hi);
  e["write"] = fs::absolute(o.out).string();
  if (o.trajectory)
    e["trajectory"] = given(cmd, "--cols") ? o.cols : 10;
  else if (given(cmd, "--cols"))
    e["cols"] = o.cols;
  run.runtime->run_recipe("sample", "diffusion_sample", e, "loom sample");
}

void sample_codings(const SampleOptions& o, const CLI::App& cmd, TrainedRun& run) {
  bool has_n = given(cmd, "--n"), has_axis = given(cmd, "--axis");
  bool has_between = given(cmd, "--between"), has_data = given(cmd, "--data");
  bool interpolate = o.interpolate || has_axis || has_between;
  if (has_between && !has_data)
    throw Error("--between I,J needs --data PATH: the dataset holding samples I and J");
  if (has_axis && has_between)
    throw Error("--axis and --between are two kinds of interpolation: give one");
  if (interpolate && !has_axis && !has_between)
    throw Error(
        "--interpolate needs --axis K (vary one coding) or --between I,J --data PATH (from sample "
        "I to J)");
  if (!interpolate && !has_n) throw Error("--n N: how many samples to draw");
  if (has_data && !has_between) throw Error("--data is used with --between I,J");
  int64_t n = o.n, steps = o.steps, bs = o.batch_size;
  if (steps < 2) throw Error("--steps: expected at least 2, got " + std::to_string(steps));
  ModelSet& models = run.runtime->models();
  std::string name = o.model;
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
  bool conditional = model->num_inputs() == 2 && model->input_shape(1) == Shape{1};
  if (model->num_inputs() != 1 && !conditional)
    throw Error("model '" + name + "' takes " + std::to_string(model->num_inputs()) +
                " inputs; sampling needs a decoder or generator with one input (the codings), or "
                "a conditional generator (the codings and a class label)");
  bool has_class = given(cmd, "--class");
  if (has_class && !conditional)
    throw UsageError("--class: model '" + name + "' is not conditional (it takes no class label)");
  if (has_class && o.label >= o.num_classes)
    throw UsageError("--class: expected a class in 0.." + std::to_string(o.num_classes - 1) +
                     ", got " + std::to_string(o.label));
  if (conditional && interpolate)
    throw UsageError("--interpolate works with decoders and unconditional generators; model '" +
                     name + "' is conditional");
  // The weights' moving average when the run kept one (ema:), unless --no-ema.
  AveragedWeights averaged(*model, !o.no_ema);
  auto [lo, hi] = run.data_range();
  uint64_t seed = given(cmd, "--seed") ? uint64_t(o.seed) : run.seed();
  auto sampler = make_sampler(o.sampler);
  Shape coding = model->input_shape();
  int64_t width = numel(coding);
  Tensor out;
  int64_t cols = 0;
  std::string what;
  std::vector<int32_t> labels;
  if (!interpolate) {
    if (conditional) labels = class_labels(n, o.num_classes, has_class ? o.label : -1);
    // On several MPI ranks, each decodes its share of the batches and rank 0 writes them all.
    out = generate(*model, *sampler, n, seed, bs, 0, conditional ? &labels : nullptr,
                   kShardAcrossRanks);
    // One row per class when a conditional generator draws every class.
    cols = given(cmd, "--cols")        ? o.cols
           : conditional && !has_class ? (n + o.num_classes - 1) / o.num_classes
                                       : int64_t(std::ceil(std::sqrt(double(n))));
    what = std::to_string(n) + " samples";
    if (conditional)
      what += has_class ? " of class " + std::to_string(o.label)
                        : ", classes 0.." + std::to_string(o.num_classes - 1) + " in blocks";
  } else if (has_axis) {
    int64_t axis = o.axis;
    if (axis >= width)
      throw Error("--axis: model '" + name + "' takes codings of shape " + to_string(coding) +
                  ", so K is 0.." + std::to_string(width - 1) + " (got " + std::to_string(axis) +
                  ")");
    out = decode_along_axis(*model, *sampler, n, steps, axis, seed, bs);
    cols = steps;
    what = std::to_string(n) + " rows of " + std::to_string(steps) + " steps along coding axis " +
           std::to_string(axis);
  } else {
    auto [a, b] = split_pair(o.between);
    int64_t i = std::stoll(a), j = std::stoll(b);
    if (!models.has(o.encoder))
      throw Error("--between: the pipeline has no model '" + o.encoder +
                  "' to encode the samples with (choose one with --encoder NAME)");
    auto enc = run.model(o.encoder);
    Dataset d = read_dataset_scaled(o.data, lo, hi);
    for (int64_t k : {i, j})
      if (k >= d.count)
        throw Error("--between: " + o.data + " holds " + std::to_string(d.count) +
                    " samples, so no sample " + std::to_string(k));
    // A variational encoder's `mean` rather than a random draw around it.
    int target = enc->find("mean");
    if (target < 0) target = enc->output_node();
    Shape es = enc->nodes()[size_t(target)].shape;
    if (numel(es) != width)
      throw Error("--between: encoder '" + o.encoder + "' gives codings of shape " + to_string(es) +
                  " but model '" + name + "' takes " + to_string(coding));
    int64_t per = numel(d.sample_shape);
    std::vector<float> pair(size_t(2 * per));
    std::copy(d.sample(i), d.sample(i) + per, pair.begin());
    std::copy(d.sample(j), d.sample(j) + per, pair.begin() + per);
    Tensor ends = predict(*enc, pair.data(), 2, per, target, 2, seed);
    out = decode_between(*model, ends.data(), ends.data() + width, steps, seed, bs);
    cols = steps;
    what = std::to_string(steps) + " steps from sample " + std::to_string(i) + " to sample " +
           std::to_string(j) + " of " + o.data + " (" + enc->nodes()[size_t(target)].name + ")";
  }
  write_samples(o.out, out, lo, hi, cols, conditional ? &labels : nullptr,
                conditional ? run.class_names() : std::vector<std::string>{});
  if (!interpolate && !o.out.ends_with(".png")) {
    // The same samples as a pipeline's `sample` stage with these settings makes: the manifest
    // names that recipe, which `loom regenerate` runs with only_index.
    YAML::Node e(YAML::NodeType::Map);
    e["model"] = name;
    e["sampler"] = YAML::Load(o.sampler);
    e["n"] = n;
    e["seed"] = seed;
    e["batch_size"] = bs;
    e["ema"] = !o.no_ema;
    e["range"].push_back(lo);
    e["range"].push_back(hi);
    e["num_classes"] = o.num_classes;
    if (has_class) e["label"] = o.label;
    Manifest m;
    m.dataset = o.out;
    m.count = n;
    m.written_by = "loom sample";
    m.run_dir = run.run_dir;
    m.pipeline = (fs::path(run.run_dir) / "pipeline.yaml").string();
    m.checkpoint = fs::absolute(run.weights).lexically_normal().string();
    m.recipe = "sample";
    const Registry& r = global_registry();
    m.entry = e;
    m.parameters =
        resolved_entry(make_params(e, r.get(Kind::Recipe, "sample").spec, "loom sample", ""), r);
    m.weights.push_back({name, weights_sha256(*model)});
    m.seed = seed;
    m.random_streams = generated_sample_streams(bs);
    write_manifest(m);
  }
  if (averaged.count()) what += ", from the weights' moving average";
  std::cout << "wrote " << what << " (" << name << ", " << to_string(model->output_shape())
            << ", values in [" << lo << ", " << hi << "]) to " << o.out << "\n";
}

void sample_command(const SampleOptions& o, const CLI::App& cmd) {
  set_threads(o.threads, given(cmd, "--threads"));
  TrainedRun run = load_trained_run(o.run);
  // A diffusion model when asked for by name, or when the run has no decoder or generator.
  YAML::Node train = run.stage_with_recipe("diffusion", o.model);
  ModelSet& models = run.runtime->models();
  if (train.IsMap() && (!o.model.empty() || (!models.has("decoder") && !models.has("generator"))))
    return sample_diffusion(o, cmd, run, train);
  if (o.trajectory) throw UsageError("--trajectory: a denoising strip needs a diffusion model");
  for (const char* option : {"--guidance", "--eta", "--spacing", "--no-clip"})
    if (given(cmd, option))
      throw UsageError(std::string(option) + " is a setting of diffusion sampling; " + run.run_dir +
                       " holds no diffusion model");
  sample_codings(o, cmd, run);
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sample", "decode sampled codings through a trained decoder: a PNG grid or a dataset");
  add_run_options(*cmd, o->run, o->out, "a PNG grid (.png) or a dataset (.npy, IDX name, DIR/)");
  add_positive(*cmd, "--n", o->n, "how many samples (with --axis: how many rows)",
               "8 with --interpolate, 1 with --trajectory; required otherwise");
  cmd->add_option("--model", o->model, "the decoder, generator or diffusion model")
      ->type_name("NAME")
      ->default_str("decoder, else generator, else the diffusion stage's model");
  add_non_negative(*cmd, "--class", o->label,
                   "conditional generators: draw this class only (else every class, one row "
                   "each)",
                   "every class");
  add_positive(*cmd, "--num-classes", o->num_classes, "conditional generators: the classes", "10");
  cmd->add_flag("--no-ema", o->no_ema,
                "use the trained weights even when the run kept their moving average (ema:)");
  cmd->add_option("--sampler", o->sampler,
                  "where codings come from: a name or {type: ..., ...}; diffusion: ddpm, ddim or "
                  "dpm_solver_pp")
      ->type_name("SPEC")
      ->default_str("gaussian; diffusion: dpm_solver_pp");
  cmd->add_option("--guidance", o->guidance,
                  "conditional diffusion: classifier-free guidance scale w (0: unconditional)")
      ->type_name("W")
      ->check(CLI::NonNegativeNumber)
      ->default_str("the training stage's, else 1");
  cmd->add_option("--eta", o->eta, "diffusion, ddim: 0 deterministic, up to 1 (as noisy as DDPM)")
      ->type_name("ETA")
      ->check(CLI::Range(0.0, 1.0))
      ->default_str("0");
  cmd->add_option("--spacing", o->spacing,
                  "diffusion, ddim and dpm_solver_pp: the time steps visited: leading, trailing, "
                  "linspace (T to 1 evenly), karras (noise levels from 80 down, evenly in "
                  "sigma^(1/7)) or logsnr (evenly in log(signal/noise))")
      ->type_name("leading|trailing|linspace|karras|logsnr")
      ->check(
          CLI::IsMember({"leading", "trailing", "linspace", "karras", "logsnr"}).description(""))
      ->default_str("the training stage's, else karras for dpm_solver_pp, trailing for ddim");
  cmd->add_flag("--no-clip", o->no_clip,
                "diffusion, ddim and dpm_solver_pp: do not clip each predicted clean image to the "
                "data's range");
  cmd->add_flag("--trajectory", o->trajectory,
                "diffusion: a denoising strip per image, from noise to the final image (--cols "
                "frames, default 10)");
  add_non_negative(*cmd, "--seed", o->seed, "the seed of the codings", "the pipeline's seed");
  add_positive(*cmd, "--cols", o->cols, "columns of the PNG grid", "sqrt(n), rounded up");
  cmd->add_flag("--interpolate", o->interpolate,
                "write an interpolation strip (with --axis, or --between and --data)");
  add_non_negative(*cmd, "--axis", o->axis, "interpolate: vary coding K from -3 to 3", "none")
      ->type_name("K");
  cmd->add_option("--between", o->between, "interpolate: from the coding of sample I to J")
      ->type_name("I,J")
      ->check(pair_of(true));
  cmd->add_option("--data", o->data, "with --between: the dataset holding samples I and J")
      ->type_name("PATH");
  cmd->add_option("--encoder", o->encoder, "with --between: the model that encodes the samples")
      ->type_name("NAME")
      ->default_str("encoder");
  add_positive(*cmd, "--steps", o->steps,
               "interpolate: images per strip (at least 2); diffusion: model evaluations (ddim, "
               "dpm_solver_pp)",
               "10; diffusion: 20");
  add_positive(*cmd, "--batch-size", o->batch_size, "samples generated per forward pass",
               "256; diffusion: 64");
  add_threads(*cmd, o->threads);
  cmd->callback([o, cmd] { sample_command(*o, *cmd); });
}

}  // namespace loom::cli
