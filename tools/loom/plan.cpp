// loom plan PIPELINE: what every stage will cost before it runs — parameters, FLOPs per image,
// memory, and the time per epoch estimated from a few timed training steps on this machine.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "stage/runtime.hpp"

namespace loom::cli {
namespace {

std::string si(double v, const char* unit) {
  const char* prefix[] = {"", "k", "M", "G", "T"};
  int k = 0;
  while (std::abs(v) >= 1000 && k < 4) {
    v /= 1000;
    ++k;
  }
  char b[48];
  std::snprintf(b, sizeof b, "%.3g %s%s", v, prefix[k], unit);
  return b;
}

// 163814 -> "163,814"
std::string count(double v) {
  std::string d = std::to_string(int64_t(v + 0.5)), o;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) o += ',';
    o += d[i];
  }
  return o;
}

std::string mib(double bytes) {
  char b[48];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / double(1 << 20));
  return b;
}

std::string duration(double s) {
  char b[48];
  if (s < 120)
    std::snprintf(b, sizeof b, "%.1f s", s);
  else if (s < 7200)
    std::snprintf(b, sizeof b, "%.1f min", s / 60);
  else
    std::snprintf(b, sizeof b, "%.1f h", s / 3600);
  return b;
}

}  // namespace

void add_plan_command(CLI::App& app) {
  struct Options {
    std::string pipeline;
    std::vector<std::string> sets;
    int64_t steps = 10, threads = 0, subset = 0, epochs = 0;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "before a run: per stage, parameters, FLOPs per image, memory and the time per epoch "
      "estimated from a few timed training steps");
  add_pipeline(*cmd, o->pipeline);
  add_sets(*cmd, o->sets);
  add_positive(*cmd, "--steps", o->steps,
               "timed training steps per window, at least (3 windows of 0.2 s or more, median)",
               "10");
  add_positive(*cmd, "--subset", o->subset, "plan the run with this --subset", "all the data");
  add_positive(*cmd, "--epochs", o->epochs, "plan the run with this --epochs", "the pipeline's");
  add_threads(*cmd, o->threads);
  cmd->add_flag("--json", o->json, "print one JSON object per stage");
  cmd->callback([o, cmd] {
    std::string budget = set_threads(o->threads, given(*cmd, "--threads"));
    RunOptions ro;
    ro.overrides = o->sets;
    ro.subset = o->subset;
    ro.epochs = o->epochs;
    ro.quiet = true;
    Runtime rt(o->pipeline, ro);
    std::vector<StagePlan> plans = rt.plan();
    if (!o->json)
      std::cout << rt.pipeline().name << ": " << plans.size() << " stage"
                << (plans.size() == 1 ? "" : "s") << "; " << budget << "\n";
    for (auto& p : plans) {
      double flops = 0, params = 0, trainable = 0, values = 0;
      for (auto& m : p.models) {
        flops += m.forward_flops;
        params += double(m.params);
        trainable += double(m.trainable);
        values += double(m.values);
      }
      // Memory: weights, their gradients and the optimizer's slots; every node's values and
      // gradients for one batch; the data split held in memory.
      double weights = 4 * params, grads = 4 * trainable, slots = 4 * trainable * p.optimizer_slots;
      double acts = p.trains ? 2 * 4 * values * double(p.batch) : 0;
      double rate = 0, valid_rate = 0;
      if (p.trains) {
        RunOptions bo = ro;
        bo.benchmark = true;
        bo.bench_stage = p.name;
        bo.bench.warmup = 3;
        bo.bench.windows = 3;
        bo.bench.steps = o->steps;
        bo.bench.min_window_s = 0.2;  // tiny models: enough steps to time
        Runtime bench(o->pipeline, bo);
        bench.run();
        for (auto& r : bench.bench_reports()) {
          rate = median(r.rates);
          valid_rate = r.valid_rate;
        }
        // Data another stage publishes is counted once that stage has run for the timing.
        if (p.train_images < 0)
          for (auto& q : bench.plan())
            if (q.name == p.name) {
              p.train_images = q.train_images;
              p.valid_images = q.valid_images;
            }
      }
      // An epoch: its training images at the measured training rate and its validation images
      // at the measured validation rate (else at three times the training rate: a forward pass
      // costs about a third of a training step).
      if (valid_rate <= 0) valid_rate = 3 * rate;
      double epoch = rate > 0 && p.train_images > 0
                         ? double(p.train_images) / rate +
                               double(std::max<int64_t>(p.valid_images, 0)) / valid_rate
                         : 0;
      if (o->json) {
        nlohmann::ordered_json j;
        j["stage"] = p.name;
        j["recipe"] = p.recipe;
        j["parameters"] = params;
        j["trainable"] = trainable;
        j["forward_flops_per_image"] = flops;
        j["training_flops_per_image"] = 3 * flops;
        j["activation_bytes_per_batch"] = acts;
        j["peak_bytes"] = weights + grads + slots + acts;
        if (p.trains) {
          j["batch_size"] = p.batch;
          j["epochs"] = p.epochs;
          j["train_images"] = p.train_images;
          j["valid_images"] = p.valid_images;
          j["images_per_s"] = rate;
          j["valid_images_per_s"] = valid_rate;
          j["epoch_s"] = epoch;
          j["estimate"] = "timed steps";
        }
        std::cout << j.dump() << std::endl;
        continue;
      }
      std::cout << "\n" << p.name << " (" << p.recipe << ")";
      if (p.trains)
        std::cout << ": batch " << p.batch << ", " << p.epochs << " epoch"
                  << (p.epochs == 1 ? "" : "s") << " of "
                  << (p.train_images >= 0 ? count(double(p.train_images)) : "?") << " images"
                  << (p.valid_images > 0 ? " (+ " + count(double(p.valid_images)) + " validation)"
                                         : "");
      std::cout << "\n";
      for (auto& m : p.models)
        std::cout << "  model " << m.name << ": " << count(double(m.params)) << " parameters ("
                  << count(double(m.trainable)) << " trained), " << si(m.forward_flops, "FLOP")
                  << " forward per image"
                  << (p.trains ? ", about " + si(3 * m.forward_flops, "FLOP") + " to train on it"
                               : "")
                  << "\n";
      if (!p.trains) {
        std::cout << "  runs once (no training): time not estimated\n";
        continue;
      }
      std::cout << "  memory: weights " << mib(weights) << ", gradients " << mib(grads)
                << ", optimizer " << mib(slots) << " (" << p.optimizer_slots
                << " per parameter), activations " << mib(acts) << " per batch (values and "
                << "gradients); peak about " << mib(weights + grads + slots + acts)
                << " beyond the data\n";
      if (rate > 0)
        std::cout << "  time: " << si(rate, "images/s") << " measured over 3 windows of "
                  << o->steps << "+ timed steps"
                  << (p.valid_images > 0 ? ", validation " + si(valid_rate, "images/s") : "")
                  << " -> " << duration(epoch) << " per epoch, "
                  << duration(epoch * double(p.epochs)) << " for " << p.epochs << " epoch"
                  << (p.epochs == 1 ? "" : "s") << " (sampling and grids not included)\n";
    }
  });
}

}  // namespace loom::cli
