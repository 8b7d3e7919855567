// The training loop every recipe shares, evaluation, and extra loss terms.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "config/yaml_util.hpp"
#include "core/distributed.hpp"
#include "data/loader.hpp"
#include "loom/create.hpp"
#include "loom/interrupt.hpp"
#include "loom/loss.hpp"
#include "loom/optimizer.hpp"
#include "loom/training.hpp"
#include "output/safetensors.hpp"
#include "train/schedule.hpp"

namespace loom {

StageContext::~StageContext() = default;

void add_training_params(Spec& s) {
  s.add("batch_size", Type::Int).def(32).min(1).doc("samples per step");
  s.add("epochs", Type::Int).def(10).min(1).doc("passes over the training data");
  s.add("shuffle", Type::Bool).def("true").doc("reshuffle the training data every epoch (seeded)");
  s.add("optimizer", Type::Any)
      .def("nadam")
      .entry(Kind::Optimizer)
      .doc("optimizer: a name or {type: NAME, lr: ...}");
  s.add("lr_schedule", Type::Map)
      .doc(
          "learning-rate schedule: {type: constant|step|exponential|cosine, "
          "warmup_steps, step_size, gamma, decay_steps, decay_rate, min_lr}");
  s.add("clip_norm", Type::Float)
      .def(0.0)
      .min(0)
      .doc("clip gradients to this global L2 norm (0: off)");
  s.add("clip_value", Type::Float)
      .def(0.0)
      .min(0)
      .doc("clip each gradient value to ±this (0: off)");
  s.add("early_stopping", Type::Map)
      .doc("{monitor: valid_loss, patience: 3, min_delta: 0, restore_best: false}");
  s.add("checkpoint", Type::Map)
      .doc(
          "{every: 1 (epochs), keep_best: true (false for GANs), keep_epochs: false (also keep "
          "epoch_NNN.safetensors of every epoch)}");
  s.add("freeze", Type::Strings)
      .doc("models or layers this stage does not train, e.g. [encoder, discriminator.dense_1]");
  s.add("precision", Type::String)
      .choices({"fp32", "bf16"})
      .doc(
          "bf16: convolutions and matrix products compute on bfloat16 inputs (fp32 weights, "
          "optimizer, sums and outputs; AVX512-BF16 or AMX); default: the pipeline's precision");
  s.add("log_every", Type::Float)
      .def(10.0)
      .min(0)
      .doc("seconds between progress lines when not on a terminal");
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string fmt_terms(const LossTerms& t) {
  std::string s;
  for (size_t i = 0; i < t.size(); ++i)
    s += (i ? "  " : "") + t[i].first + " " + fmt("%.5f", t[i].second);
  return s;
}

struct Averager {
  std::vector<std::pair<std::string, double>> sums;
  double weight = 0;
  void add(const LossTerms& t, double w) {
    if (sums.empty())
      for (auto& [k, v] : t) sums.push_back({k, 0.0});
    for (size_t i = 0; i < t.size() && i < sums.size(); ++i) sums[i].second += t[i].second * w;
    weight += w;
  }
  LossTerms mean() const {
    LossTerms m = sums;
    for (auto& [k, v] : m) v = weight > 0 ? v / weight : 0;
    return m;
  }
};

}  // namespace

LossTerms evaluate(StageContext& ctx, const DataSplit& split, int64_t batch_size,
                   const std::function<LossTerms(const Batch&, const RunContext&)>& step,
                   const DataSplit& paired) {
  Averager avg;
  if (split.count == 0) return {};
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = false;
  o.seed = ctx.seed();
  BatchLoader loader(split, paired, o);
  RunContext rc;
  rc.seed = ctx.seed();
  rc.bf16 = ctx.bf16();
  while (auto b = loader.next()) {
    rc.first = b->first;  // noise differs from batch to batch, not only within one
    avg.add(step(*b, rc), double(b->size));
  }
  return avg.mean();
}

std::unique_ptr<Loss> make_loss(StageContext& ctx, const Params& entry) {
  return create_from<Loss>(ctx.registry(), entry);
}

struct ExtraTerms::Term {
  std::string name;
  int node;
  float weight;
  std::unique_ptr<Loss> loss;
};

ExtraTerms::ExtraTerms(StageContext& ctx, Model& model, const std::string& key) {
  const Params& p = ctx.params();
  if (!p.given(key)) return;
  Params list = p.child(key);
  const auto& node = list.impl().node;
  if (!node.IsSequence())
    list.fail("expected a list of terms such as [{type: kl_sparsity, on: coding, weight: 0.005}]");
  for (size_t i = 0; i < node.size(); ++i) {
    Spec open;
    open.open = true;
    Params e = make_params(node[i], open, list.impl().file, index_path(list.path(), i));
    if (!e.given("on")) e.fail("a loss term needs 'on': the layer whose output it penalises");
    auto t = std::make_unique<Term>();
    std::string on = e.s("on");
    t->node = model.find(on);
    if (t->node < 0) {
      std::vector<std::string> names;
      for (auto& n : model.nodes()) names.push_back(n.name);
      e.fail("on",
             "model '" + model.name() + "' has no layer '" + on + "'" + suggestion(on, names));
    }
    t->weight = e.given("weight") ? float(e.f("weight")) : 1.f;
    t->loss = create_from<Loss>(ctx.registry(), e, {"on", "weight"});
    if (t->loss->needs_target())
      e.fail("type", "a loss term on a layer must be a penalty (no target), e.g. kl_sparsity");
    Params ty = e;
    t->name = node[i]["type"] ? node[i]["type"].Scalar() : "term";
    terms_.push_back(std::move(t));
  }
}

ExtraTerms::~ExtraTerms() = default;
bool ExtraTerms::empty() const { return terms_.empty(); }

double ExtraTerms::add_terms(Model& model, bool training, LossTerms& out) {
  double total = 0;
  for (auto& t : terms_) {
    const Tensor& v = model.value(t->node);
    Tensor* g = nullptr;
    Tensor grad;
    if (training) {
      grad.resize(v.shape());
      g = &grad;
    }
    double value = t->loss->compute(v, nullptr, g, t->weight);
    if (training) {
      Tensor& seed = model.seed_grad(t->node);
      for (int64_t i = 0; i < seed.size(); ++i) seed[i] += grad[i];
    }
    total += t->weight * value;
    out.push_back({t->name, t->weight * value});
  }
  return total;
}

FitResult fit(StageContext& ctx, Trainer& trainer, const TrainHooks& hooks) {
  const Params& p = ctx.params();
  FitResult result;
  int64_t batch_size = p.i("batch_size");
  int64_t epochs = ctx.epochs_override() > 0 ? ctx.epochs_override() : p.i("epochs");
  int64_t max_steps = ctx.max_steps();
  bool shuffle = p.b("shuffle");
  GradientReducer& reducer = ctx.reducer();
  std::vector<std::string> groups = trainer.groups();
  if (groups.empty()) throw Error("stage '" + ctx.name() + "': nothing to train");

  // Early stopping and best-checkpoint settings.
  bool early = p.given("early_stopping");
  int64_t patience = 3;
  double min_delta = 0;
  bool restore_best = false;
  if (early) {
    Params e = p.child("early_stopping");
    if (e.given("patience")) patience = e.i("patience");
    if (e.given("min_delta")) min_delta = e.f("min_delta");
    if (e.given("restore_best")) restore_best = e.b("restore_best");
    if (e.given("monitor") && e.s("monitor") != "valid_loss" && e.s("monitor") != "train_loss")
      e.fail("monitor", "monitor must be valid_loss or train_loss");
  }
  const char* unranked =
      " the losses of adversarial training weigh the two networks against each other and do not "
      "say which epoch made the best samples; keep every epoch (checkpoint: {keep_epochs: true}) "
      "and compare them with loom eval";
  if (early && !hooks.losses_rank_epochs) p.fail("early_stopping", unranked);
  int64_t ckpt_every = 1;
  bool keep_best = hooks.losses_rank_epochs, keep_epochs = false;
  if (p.given("checkpoint")) {
    Params c = p.child("checkpoint");
    if (c.given("every")) ckpt_every = c.i("every");
    if (c.given("keep_best")) keep_best = c.b("keep_best");
    if (c.given("keep_epochs")) keep_epochs = c.b("keep_epochs");
    if (keep_best && !hooks.losses_rank_epochs) c.fail("keep_best", unranked);
  }
  bool has_valid = hooks.valid.count > 0;
  bool writer = reducer.rank() == 0;

  std::string last_path = ctx.out_path("checkpoints/" + ctx.name() + "/last.safetensors");
  std::string best_path = ctx.out_path("checkpoints/" + ctx.name() + "/best.safetensors");
  int64_t start_epoch = 0;
  double best = INFINITY;
  int64_t since_best = 0;

  // `extra`: a checkpoint written within an epoch (on a stop request) also holds how far the
  // epoch got and its running loss sums, so that --resume finishes the epoch as if never stopped.
  auto save = [&](const std::string& path, int64_t epoch,
                  const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    if (!writer) return;
    std::vector<std::pair<std::string, std::string>> meta{
        {"stage", ctx.name()},
        {"epoch", std::to_string(epoch)},
        {"best", fmt("%.17g", best)},
        {"since_best", std::to_string(since_best)}};
    meta.insert(meta.end(), extra.begin(), extra.end());
    trainer.save(path, meta);
  };

  int64_t resume_batches = 0, resume_images = 0;  // of a checkpoint written within an epoch
  int64_t resume_world = 1;                       // by this many ranks
  Averager resume_avg;
  if (ctx.resume() && std::filesystem::exists(last_path)) {
    auto meta = trainer.load(last_path, true);
    try {
      start_epoch = std::stoll(meta["epoch"]);
      best = std::stod(meta["best"]);
      since_best = std::stoll(meta["since_best"]);
      if (meta.count("partial.batches")) {
        resume_batches = std::stoll(meta["partial.batches"]);
        resume_images = std::stoll(meta["partial.images"]);
        if (meta.count("partial.world")) resume_world = std::stoll(meta["partial.world"]);
        resume_avg.weight = std::stod(meta["partial.weight"]);
        int64_t terms = std::stoll(meta["partial.terms"]);
        for (int64_t i = 0; i < terms; ++i) {
          std::string k = "partial.term" + std::to_string(i);
          resume_avg.sums.push_back({meta.at(k + ".name"), std::stod(meta.at(k + ".sum"))});
        }
      }
    } catch (...) {
      throw Error(last_path + ": the checkpoint's epoch/best entries are damaged");
    }
    // Written by another number of ranks: the steps done were as many whole batches of
    // theirs, which this many ranks continue from when they are a whole number of its own.
    if (resume_world != reducer.world() && resume_batches) {
      if (resume_batches * resume_world % reducer.world())
        throw Error(last_path + ": stopped within an epoch after " +
                    std::to_string(resume_batches) + " steps of " + std::to_string(resume_world) +
                    " rank(s), which is not a whole number of steps of " +
                    std::to_string(reducer.world()) + "; resume it with " +
                    std::to_string(resume_world) + " rank(s) (or with a number that divides " +
                    std::to_string(resume_batches * resume_world) + ")");
      resume_batches = resume_batches * resume_world / reducer.world();
      resume_images = resume_images * resume_world / reducer.world();
    }
    ctx.log("resuming '" + ctx.name() + "' after epoch " + std::to_string(start_epoch) +
            (resume_batches ? " and " + std::to_string(resume_batches) + " batches of the next"
                            : std::string()) +
            " (step " + std::to_string(trainer.step_count()) + ") from " + last_path);
  }
  // Every rank starts from rank 0's weights.
  {
    std::vector<Tensor*> all;
    for (auto& g : groups)
      for (auto& q : trainer.params(g)) all.push_back(&q->value);
    reducer.broadcast(all);
  }

  // One training step on a batch: the recipe's step (forward, backward, group updates), then
  // the NaN guard over the loss terms averaged across ranks.
  auto train_step = [&](const Batch& b, int64_t epoch) -> LossTerms {
    trainer.set_step_count(trainer.step_count() + 1);
    RunContext rc;
    rc.training = true;
    rc.bf16 = ctx.bf16();
    rc.seed = ctx.seed();
    rc.step = trainer.step_count();
    // On N ranks, this rank's rows are rows rank·b .. rank·b + b - 1 of the step's whole batch:
    // per-row random streams (noise, dropout, latent codes) are those of one process with N·b.
    rc.first = int64_t(reducer.rank()) * batch_size;
    if (reducer.world() > 1) rc.ranks = &reducer;
    LossTerms terms;
    try {
      terms = hooks.step(b, rc);
    } catch (const Error& e) {
      throw Error("stage '" + ctx.name() + "', epoch " + std::to_string(epoch + 1) + ", step " +
                  std::to_string(trainer.step_count()) + ": " + e.what());
    }
    reducer.reduce_terms(terms);
    for (auto& [name, v] : terms)
      if (!std::isfinite(v))
        throw Error(
            "stage '" + ctx.name() + "': the loss became " + (std::isnan(v) ? "NaN" : "infinite") +
            " at epoch " + std::to_string(epoch + 1) + ", step " +
            std::to_string(trainer.step_count()) + " (term '" + name + "'); training stopped" +
            (std::filesystem::exists(last_path) ? "; the last good checkpoint is kept: " + last_path
                                                : ""));
    return terms;
  };

  // The training batches of one epoch (shuffled by epoch, augmented, this rank's shard), at
  // most `limit` samples.
  auto train_loader = [&](int64_t epoch, int64_t limit) {
    LoaderOptions o;
    o.batch_size = batch_size;
    o.shuffle = shuffle;
    o.seed = ctx.seed();
    o.epoch = epoch;
    o.limit = limit;
    o.rank = reducer.rank();
    o.world = reducer.world();
    return BatchLoader(hooks.train, hooks.paired_train, o, transform_of(hooks.train));
  };

  if (const StageContext::BenchSettings* bs = ctx.bench()) {
    if (bs->sampling)
      throw Error("stage '" + ctx.name() +
                  "' is not a diffusion stage; --sample measures the denoising steps of one");
    // Steady-state throughput: warm-up, then timed windows, with the data stage running.
    std::vector<double> rates;
    int64_t done = 0, epoch = 0, in_window = 0;
    auto window_start = Clock::now();
    auto finished = [&] { return int64_t(rates.size()) >= bs->windows; };
    double paused = 0;  // starting each epoch's loader, which an epoch's time_s leaves out too
    while (!finished()) {
      auto t_loader = Clock::now();
      BatchLoader loader = train_loader(epoch++, -1);
      paused += seconds_since(t_loader);
      int64_t before = done;
      while (!finished()) {
        auto b = loader.next();
        if (!b) break;
        if (b->size != batch_size) continue;  // only full batches are timed
        train_step(*b, epoch);
        ++done;
        if (done <= bs->warmup) {
          window_start = Clock::now();
          paused = 0;
          continue;
        }
        double secs = seconds_since(window_start) - paused;
        bool close = ++in_window >= bs->steps && secs >= bs->min_window_s;
        if (reducer.world() > 1) {  // rank 0's clock decides, so every rank takes as many steps
          double v = reducer.rank() == 0 && close ? 1 : 0;
          reducer.sum(&v, 1);
          close = v > 0;
        }
        if (close) {
          // The images of every rank: the whole job's rate.
          rates.push_back(double(in_window * batch_size * reducer.world()) / secs);
          in_window = 0;
          paused = 0;
          window_start = Clock::now();
        }
      }
      if (done == before)
        throw Error("stage '" + ctx.name() + "': the training data holds fewer than one batch of " +
                    std::to_string(batch_size) + " samples; nothing to benchmark");
    }
    ctx.bench_result(rates, batch_size * reducer.world());
    // The validation pass, at its own batch size: a forward pass in inference mode over a batch
    // of 256 runs 3 to 10 times a training step's images/s. Evaluated on a growing part of the
    // split (after one batch to warm up) until it takes 0.2 s or the split is done.
    if (has_valid) {
      int64_t eb = std::max<int64_t>(batch_size, 256);
      DataSplit part = hooks.valid, paired = hooks.paired_valid;
      auto eval_part = [&](int64_t n) {
        part.count = std::min(hooks.valid.count, n);
        if (paired.count > 0) paired.count = part.count;
        auto t0 = Clock::now();
        evaluate(ctx, part, eb, hooks.step, paired);
        return seconds_since(t0);
      };
      eval_part(eb);
      for (int64_t n = eb;; n *= 2) {
        double secs = eval_part(n);
        if (secs >= bs->min_window_s || part.count == hooks.valid.count) {
          ctx.bench_validation(double(part.count) / secs);
          break;
        }
      }
    }
    return result;
  }

  // A stop request (SIGINT, SIGTERM) is acted on by every rank at the same step: they may receive
  // it steps apart.
  auto stopping = [&]() -> int {
    int sig = stop_requested();
    if (reducer.world() == 1) return sig;
    double v = sig;
    reducer.sum(&v, 1);
    return v > 0 ? (sig ? sig : SIGTERM) : 0;
  };
  bool tty = isatty(2) && !ctx.quiet() && writer;
  double log_every = p.f("log_every");
  double train_time = 0;
  int64_t train_images = 0;
  for (int64_t epoch = start_epoch; epoch < epochs; ++epoch) {
    if (max_steps > 0 && trainer.step_count() >= max_steps) break;
    // Resuming within this epoch: the batches already trained are drawn again and skipped.
    int64_t skip = epoch == start_epoch ? resume_batches : 0;
    BatchLoader loader = train_loader(
        epoch, max_steps > 0 ? (max_steps - trainer.step_count() + skip) * batch_size : -1);
    Averager avg;
    auto t0 = Clock::now();
    auto last_log = t0;
    double reduce_s0 = distributed::reduce_seconds();  // all-reduces of gradients (several ranks)
    int64_t nb = loader.batches(), k = 0, images = 0;
    if (skip) {
      for (; k < skip && loader.next(); ++k) {
      }
      avg = resume_avg;
      images = resume_images;
    }
    while (auto b = loader.next()) {
      ++k;
      LossTerms terms = train_step(*b, epoch);
      // Weighed by the step's whole batch (all ranks'), so that a resume with another number of
      // ranks keeps the epoch's mean right.
      avg.add(terms, double(b->size) * reducer.world());
      images += b->size;
      if (int sig = stopping()) {
        std::vector<std::pair<std::string, std::string>> partial{
            {"partial.batches", std::to_string(k)},
            {"partial.world", std::to_string(reducer.world())},
            {"partial.images", std::to_string(images)},
            {"partial.weight", fmt("%.17g", avg.weight)},
            {"partial.terms", std::to_string(avg.sums.size())}};
        for (size_t i = 0; i < avg.sums.size(); ++i) {
          std::string key = "partial.term" + std::to_string(i);
          partial.push_back({key + ".name", avg.sums[i].first});
          partial.push_back({key + ".sum", fmt("%.17g", avg.sums[i].second)});
        }
        save(last_path, epoch, partial);
        if (tty) std::fprintf(stderr, "\n");
        throw Interrupted(
            sig, "stopped by " + std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + " in stage '" +
                     ctx.name() + "' at epoch " + std::to_string(epoch + 1) + ", batch " +
                     std::to_string(k) + " of " + std::to_string(nb) + " (step " +
                     std::to_string(trainer.step_count()) + "); checkpoint written: " + last_path +
                     "; run again with --resume to continue from there");
      }
      if (!ctx.quiet() && writer) {
        double el = seconds_since(t0);
        if (tty && (k == nb || seconds_since(last_log) > 0.1)) {
          last_log = Clock::now();
          int width = 24, done = int(width * k / std::max<int64_t>(nb, 1));
          double rate = images / std::max(el, 1e-9), eta = (nb - k) * (el / k);
          std::fprintf(stderr,
                       "\r%s epoch %lld/%lld [%s%s] %lld/%lld  %.0f img/s  ETA %.0fs  %s   ",
                       ctx.name().c_str(), (long long)epoch + 1, (long long)epochs,
                       std::string(size_t(done), '=').c_str(),
                       std::string(size_t(width - done), ' ').c_str(), (long long)k, (long long)nb,
                       rate, eta, fmt_terms(avg.mean()).c_str());
          std::fflush(stderr);
        } else if (!tty && log_every > 0 && seconds_since(last_log) > log_every) {
          last_log = Clock::now();
          ctx.log(ctx.name() + " epoch " + std::to_string(epoch + 1) + " step " +
                  std::to_string(k) + "/" + std::to_string(nb) + "  " +
                  fmt("%.0f img/s", images / std::max(el, 1e-9)) + "  " + fmt_terms(avg.mean()));
        }
      }
      if (max_steps > 0 && trainer.step_count() >= max_steps) break;
    }
    double el = seconds_since(t0);
    if (tty) std::fprintf(stderr, "\n");
    train_time += el;
    train_images += images;
    LossTerms tr = avg.mean();
    double rate = images * reducer.world() / std::max(el, 1e-9);
    auto line = [&](const std::string& split, const LossTerms& terms, double secs, bool with_rate) {
      if (!writer) return;
      nlohmann::ordered_json j;
      j["epoch"] = epoch + 1;
      j["step"] = trainer.step_count();
      j["split"] = split;
      for (size_t i = 0; i < terms.size(); ++i) {
        if (i == 0) j["loss"] = terms[i].second;  // the first term, whatever its name
        if (i > 0 || terms[i].first != "loss") j[terms[i].first] = terms[i].second;
      }
      if (with_rate) j["images_per_s"] = rate;
      // Several ranks: the time per step spent all-reducing gradients (waiting for the slowest
      // rank included).
      if (with_rate && reducer.world() > 1 && k > 0)
        j["allreduce_ms"] = (distributed::reduce_seconds() - reduce_s0) * 1e3 / double(k);
      // The rate the last update used: "lr", and with several groups also "lr_<group>" each
      // ("lr" is then the first group's).
      for (size_t g = 0; g < groups.size(); ++g) {
        if (g == 0) j["lr"] = trainer.lr(groups[g]);
        if (groups.size() > 1) j["lr_" + groups[g]] = trainer.lr(groups[g]);
      }
      j["time_s"] = secs;
      ctx.metric(j.dump());
    };
    line("train", tr, el, true);
    LossTerms va;
    if (has_valid) {
      auto tv = Clock::now();
      bool ema = trainer.has_ema();
      if (ema) trainer.swap_ema();  // validate the weights that are sampled from
      try {
        va = evaluate(ctx, hooks.valid, std::max<int64_t>(batch_size, 256), hooks.step,
                      hooks.paired_valid);
      } catch (...) {
        if (ema) trainer.swap_ema();
        throw;
      }
      if (ema) trainer.swap_ema();
      reducer.reduce_terms(va);
      line("valid", va, seconds_since(tv), false);
    }
    result.epochs = epoch + 1;
    result.steps = trainer.step_count();
    result.last_train_loss = tr.empty() ? 0 : tr[0].second;
    result.last_valid_loss = va.empty() ? 0 : va[0].second;
    if (!ctx.quiet() && writer)
      ctx.log(ctx.name() + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs) +
              "  train " + fmt_terms(tr) + (va.empty() ? "" : "  |  valid " + fmt_terms(va)) +
              "  " + fmt("%.0f img/s", rate) + "  " + fmt("%.1fs", el));
    double monitored = has_valid ? result.last_valid_loss : result.last_train_loss;
    bool improved = monitored < best - min_delta;
    if (improved) {
      best = monitored;
      since_best = 0;
      if (keep_best) save(best_path, epoch + 1);
    } else {
      ++since_best;
    }
    if ((epoch + 1) % ckpt_every == 0 || epoch + 1 == epochs) save(last_path, epoch + 1);
    if (keep_epochs) {
      char file[48];
      std::snprintf(file, sizeof file, "/epoch_%03lld.safetensors", (long long)(epoch + 1));
      save(ctx.out_path("checkpoints/" + ctx.name() + file), epoch + 1);
    }
    if (hooks.on_epoch_end && writer) hooks.on_epoch_end(epoch + 1);  // pictures: rank 0's
    if (early && since_best >= patience) {
      ctx.log(ctx.name() + ": early stopping after epoch " + std::to_string(epoch + 1) +
              " (no improvement for " + std::to_string(patience) + " epochs; best " +
              fmt("%.5f", best) + ")");
      result.stopped_early = true;
      break;
    }
  }
  if (restore_best && std::filesystem::exists(best_path)) trainer.load(best_path, false);
  trainer.keep_averages();
  result.best_valid_loss = best;
  result.images_per_s = train_images * reducer.world() / std::max(train_time, 1e-9);
  return result;
}

FitResult fit(StageContext& ctx, Model& model, const TrainHooks& hooks) {
  FreezeGuard freeze(ctx, model);
  if (model.trainable_params().empty()) {
    std::string why = "every parameter of model '" + model.name() + "' is frozen; nothing to train";
    if (ctx.params().given("freeze")) ctx.params().fail("freeze", why);
    throw Error("stage '" + ctx.name() + "': " + why);
  }
  Trainer trainer(ctx);
  trainer.add_weights(model.params());
  trainer.add_group("model", model.trainable_params(), trainer.stage_settings());
  TrainHooks h = hooks;
  h.step = [&](const Batch& b, const RunContext& rc) {
    if (!rc.training) return hooks.step(b, rc);
    trainer.zero_grad("model");
    LossTerms terms = hooks.step(b, rc);
    trainer.step("model");
    return terms;
  };
  return fit(ctx, trainer, h);
}

}  // namespace loom
