// The diffusion recipes (DDPM, Ho et al. 2020, as the chapter trains it).
//
// diffusion: trains a denoiser model(x_t, t[, class]) -> prediction of the target. Per training
// batch, every image draws a time step t uniform in 1..T and noise eps ~ N(0, I) from its own
// stream Rng(seed, "diffusion", step, row); x_t = a_t x_0 + s_t eps (diffusion_schedule.hpp) and
// the loss compares the model's output with the target (eps, v or x0), optionally weighted per
// image by Min-SNR-γ. Validation draws t and eps from Rng(seed, "diffusion_valid", 0, row): the
// same noisy images every epoch, so the validation loss is comparable across epochs. Every
// `sample_every` epochs a grid of the same `samples` images (fixed seed) is generated with the
// chosen sampler (samples/epoch_NNN.png, samples.png), from the EMA weights when kept. The loop,
// checkpoints, --resume and metrics are fit()'s.
// Conditional training (`conditional: true`) also feeds the class label as a third input and
// replaces it, with probability `label_dropout`, by the extra class `num_classes` ("no class"),
// so the same network also learns the unconditional model that classifier-free guidance needs.
//
// diffusion_sample: generates images from a trained denoiser with ddpm, ddim or dpm_solver_pp.
#include <chrono>
#include <cstdio>

#include "diffusion_sampling.hpp"
#include "loom/io.hpp"
#include "loom/loss.hpp"
#include "loom/recipe.hpp"
#include "loom/sampler.hpp"

namespace loom::recipes {

namespace {

// What both recipes read: the model's inputs, the schedule, the target and the sampler.
struct DiffusionSetup {
  std::shared_ptr<Model> model;
  bool conditional = false;
  int64_t classes = 0;
  NoiseSchedule schedule;
  DiffusionTarget target = DiffusionTarget::Epsilon;
  SamplerSettings sampling;
  double guidance = 1.0;
};

void declare_diffusion(Spec& s, const std::string& default_sampler, const std::string& steps_doc) {
  s.add("model", Type::String)
      .required()
      .doc("the denoiser: inputs (noisy image, time step (1)[, class (1)]) -> image-shaped output");
  s.add("timesteps", Type::Int).def(1000).min(2).doc("T: the number of noising steps");
  s.add("schedule", Type::String)
      .def("cosine")
      .choices({"linear", "cosine"})
      .doc("variance schedule: linear (beta 1e-4 .. 0.02) or cosine (s = 0.008, beta <= 0.999)");
  s.add("target", Type::String)
      .def("epsilon")
      .choices({"epsilon", "v", "x0"})
      .doc("what the model predicts: the noise, v = a_t eps - s_t x0, or the clean image");
  s.add("sampler", Type::String)
      .def(default_sampler)
      .choices({"ddpm", "ddim", "dpm_solver_pp"})
      .doc(
          "ddpm (the chapter's ancestral loop over t = T-1 .. 1), ddim, or dpm_solver_pp "
          "(DPM-Solver++ 2M)");
  s.add("sampling_steps", Type::Int).def(20).min(1).doc(steps_doc);
  s.add("eta", Type::Float)
      .def(0.0)
      .range(0, 1)
      .doc("ddim: 0 deterministic, > 0 adds noise (1: as much as DDPM)");
  s.add("spacing", Type::String)
      .def("auto")
      .choices({"auto", "leading", "trailing", "linspace", "karras", "logsnr"})
      .doc(
          "ddim / dpm_solver_pp time steps: auto (karras for dpm_solver_pp, trailing for ddim: "
          "the best of each measured on the chapter's UNet), trailing (T, T-T/S, ...: from pure "
          "noise), leading (1, 1+T/S, ...: starts from noise at T-T/S+1, where the image is not "
          "yet noise alone), linspace (T to 1 evenly: from pure noise, the last step at t = 1), "
          "karras (noise levels sigma = noise/signal from min(sigma(T), 80) to sigma(1), evenly "
          "in sigma^(1/7): every step where the image forms) or logsnr (from leading's first "
          "step to 1, evenly in log(signal/noise))");
  s.add("clip", Type::Bool)
      .def("true")
      .doc("ddim / dpm_solver_pp: clip each predicted clean image to the data's range");
  s.add("conditional", Type::Bool)
      .def("false")
      .doc("the model's third input is the class label (classifier-free guidance)");
  s.add("num_classes", Type::Int)
      .def(10)
      .min(1)
      .doc(
          "conditional: the classes; label num_classes means 'no class' (embedding input_dim "
          "num_classes + 1)");
  s.add("guidance", Type::Float)
      .def(1.0)
      .min(0)
      .doc(
          "conditional sampling: classifier-free guidance scale w, prediction = uncond + w (cond "
          "- uncond) (1: the conditional model alone, 0: unconditional)");
}

DiffusionSetup read_setup(StageContext& ctx, float lo, float hi) {
  const Params& p = ctx.params();
  DiffusionSetup d;
  d.model = ctx.model(p.s("model"));
  Model& m = *d.model;
  d.conditional = p.b("conditional");
  d.classes = p.i("num_classes");
  size_t want = d.conditional ? 3 : 2;
  std::string inputs =
      d.conditional ? "(noisy image, time step, class label)" : "(noisy image, time step)";
  if (m.num_inputs() != want)
    p.fail("model", "model '" + m.name() + "' takes " + std::to_string(m.num_inputs()) +
                        " input(s); a " + (d.conditional ? "conditional " : "") +
                        "diffusion model takes " + std::to_string(want) + ": " + inputs);
  if (m.input_shape(1) != Shape{1})
    p.fail("model", "the second input of model '" + m.name() +
                        "' is the time step, shape (1), not " + to_string(m.input_shape(1)));
  if (d.conditional && m.input_shape(2) != Shape{1})
    p.fail("model", "the third input of model '" + m.name() +
                        "' is the class label, shape (1), not " + to_string(m.input_shape(2)));
  if (numel(m.output_shape()) != numel(m.input_shape(0)))
    p.fail("model", "model '" + m.name() + "' outputs " + to_string(m.output_shape()) +
                        " but denoises images " + to_string(m.input_shape(0)) +
                        ": the output must have the image's size");
  try {
    d.schedule = make_schedule(p.s("schedule"), p.i("timesteps"));
  } catch (const Error& e) {
    p.fail("timesteps", e.what());
  }
  d.target = diffusion_target(p.s("target"));
  d.sampling.kind = p.s("sampler");
  d.sampling.steps = p.i("sampling_steps");
  d.sampling.eta = p.f("eta");
  d.sampling.spacing = p.s("spacing");
  if (d.sampling.spacing == "auto")
    d.sampling.spacing = d.sampling.kind == "dpm_solver_pp" ? "karras" : "trailing";
  d.sampling.clip = p.b("clip");
  d.sampling.lo = lo;
  d.sampling.hi = hi;
  if (d.sampling.kind == "ddpm" && p.given("sampling_steps"))
    p.fail("sampling_steps",
           "ddpm visits every time step T-1 .. 1, as the chapter's loop does; choose ddim or "
           "dpm_solver_pp for fewer steps");
  if (d.sampling.kind != "ddpm" && d.sampling.steps > d.schedule.T)
    p.fail("sampling_steps", "at most timesteps (" + std::to_string(d.schedule.T) +
                                 ") sampling steps, got " + std::to_string(d.sampling.steps));
  if (d.sampling.eta > 0 && d.sampling.kind != "ddim")
    p.fail("eta", "eta is the noise of ddim sampling; the sampler is " + d.sampling.kind);
  d.guidance = p.f("guidance");
  return d;
}

// The model as a denoiser: x (N, image...) at step t -> its output, in inference mode. A
// conditional model is run on `labels` (N values); with guidance w other than 0 and 1 it is also
// run on "no class" (label num_classes) in the same batched call (2N rows), and the prediction is
// uncond + w (cond - uncond).
Denoiser model_denoiser(Model& m, uint64_t seed, const DiffusionSetup& d, const Tensor* labels) {
  return [&m, seed, &d, labels](const Tensor& x, int64_t t, Tensor& pred) {
    int64_t n = x.dim(0);
    RunContext rc;
    rc.seed = seed;
    rc.step = t;
    bool both = d.conditional && d.guidance != 0 && d.guidance != 1;
    int64_t rows = both ? 2 * n : n;
    Tensor tt({rows, 1});
    tt.fill(float(t));
    if (!d.conditional) {
      m.forward(rc, {&x, &tt});
    } else if (!both) {
      Tensor none({n, 1});
      none.fill(float(d.classes));
      m.forward(rc, {&x, &tt, d.guidance == 0 ? &none : labels});
    } else {
      Shape twice = x.shape();
      twice[0] = rows;
      Tensor xx(twice), lab({rows, 1});
      std::copy(x.data(), x.data() + x.size(), xx.data());
      std::copy(x.data(), x.data() + x.size(), xx.data() + x.size());
      for (int64_t i = 0; i < n; ++i) {
        lab[i] = (*labels)[i];
        lab[n + i] = float(d.classes);
      }
      m.forward(rc, {&xx, &tt, &lab});
    }
    const float* out = m.output().data();
    int64_t size = pred.size();
    if (!both) {
      std::copy(out, out + size, pred.data());
      return;
    }
    float w = float(d.guidance);
    for (int64_t i = 0; i < size; ++i) pred[i] = out[size + i] + w * (out[i] - out[size + i]);
  };
}

// Logs "<stage>: k/n images, r img/s, about M left" at most every 10 seconds (and at the end).
class SampleProgress {
 public:
  SampleProgress(StageContext& ctx, int64_t n) : ctx_(ctx), n_(n) {}
  void done(int64_t k) {
    auto now = std::chrono::steady_clock::now();
    double secs = std::chrono::duration<double>(now - start_).count();
    if (ctx_.quiet() || (k < n_ && std::chrono::duration<double>(now - last_).count() < 10)) return;
    last_ = now;
    double rate = secs > 0 ? double(k) / secs : 0;
    char line[160];
    if (k < n_)
      std::snprintf(line, sizeof line, "%s: %lld/%lld images  %.1f img/s  about %s left",
                    ctx_.name().c_str(), (long long)k, (long long)n_, rate,
                    duration_text(rate > 0 ? double(n_ - k) / rate : 0).c_str());
    else
      std::snprintf(line, sizeof line, "%s: %lld/%lld images  %.1f img/s  %s", ctx_.name().c_str(),
                    (long long)k, (long long)n_, rate, duration_text(secs).c_str());
    ctx_.log(line);
  }

 private:
  static std::string duration_text(double secs) {
    char b[32];
    long long s = (long long)(secs + 0.5);
    if (s >= 3600)
      std::snprintf(b, sizeof b, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
      std::snprintf(b, sizeof b, "%lldm%02llds", s / 60, s % 60);
    else
      std::snprintf(b, sizeof b, "%llds", s);
    return b;
  }
  StageContext& ctx_;
  int64_t n_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
};

// Generates n images (N, image...) batch_size at a time: every call runs a full batch (the last
// padded with further samples), so that sample i does not depend on n (oneDNN's kernels may round
// differently for different batch sizes). `labels` (n classes) for a conditional model. With
// `frames` > 1 it returns (n * frames, image...) instead: for each image, its state at frames - 1
// evenly spaced visited steps (the first: the starting noise) and then the final image.
Tensor generate_images(Model& m, const DiffusionSetup& d, int64_t n, uint64_t seed,
                       int64_t batch_size, const std::vector<int32_t>* labels,
                       SampleProgress* progress = nullptr, int64_t frames = 0,
                       std::vector<std::string>* frame_names = nullptr, int64_t only = -1,
                       GradientReducer* ranks = nullptr) {
  DiffusionSampler sampler(d.schedule, d.target, d.sampling);
  Shape image = m.input_shape(0), all = image, chunk_shape = image;
  int64_t per = numel(image), keep = std::max<int64_t>(frames, 1);
  all.insert(all.begin(), n * keep);
  chunk_shape.insert(chunk_shape.begin(), batch_size);
  Tensor out(all), x(chunk_shape), lab({batch_size, 1});
  Denoiser denoise = model_denoiser(m, seed, d, &lab);
  // The visited steps whose states the trajectory shows.
  const std::vector<int64_t>& times = sampler.timesteps();
  std::vector<int64_t> shown;
  for (int64_t f = 0; f + 1 < frames; ++f)
    shown.push_back(times[size_t(f * int64_t(times.size()) / (frames - 1))]);
  if (frame_names) {
    frame_names->clear();
    for (int64_t t : shown) frame_names->push_back("t=" + std::to_string(t));
    frame_names->push_back("t=0");
  }
  int64_t first = 0, rows = 0, made = 0;
  Denoiser recording = [&](const Tensor& xt, int64_t t, Tensor& pred) {
    auto it = std::find(shown.begin(), shown.end(), t);
    if (it != shown.end())
      for (int64_t i = 0; i < rows; ++i)
        std::copy(xt.data() + i * per, xt.data() + (i + 1) * per,
                  out.data() + ((first + i) * keep + (it - shown.begin())) * per);
    denoise(xt, t, pred);
  };
  for (first = 0; first < n; first += batch_size) {
    if (only >= 0 && (only < first || only >= first + batch_size)) continue;
    if (ranks && !ranks->owns(first / batch_size)) continue;
    rows = std::min(batch_size, n - first);
    if (labels)
      for (int64_t i = 0; i < batch_size; ++i)
        lab[i] = float((*labels)[size_t(std::min(first + i, n - 1))]);
    sampler.sample(frames > 1 ? recording : denoise, x, seed, first);
    for (int64_t i = 0; i < rows; ++i)
      std::copy(x.data() + i * per, x.data() + (i + 1) * per,
                out.data() + ((first + i) * keep + keep - 1) * per);
    // On several ranks this rank's share, scaled to the whole job: every rank makes about as many.
    made += rows;
    if (progress) progress->done(std::min(n, made * (ranks ? ranks->world() : 1)));
  }
  if (ranks) ranks->gather_rows(out.data(), n, batch_size, keep * per);
  return out;
}

// `loom bench --sample`: denoising steps per second on one batch of `batch` images — per step
// a model call (two for classifier-free guidance, in one batched call) and a DDIM update —
// walking down from T - 1 and starting again at the bottom; warm-up, then timed windows.
void bench_denoising(StageContext& ctx, Model& m, const DiffusionSetup& d, int64_t batch,
                     const StageContext::BenchSettings& bs) {
  Shape shape = m.input_shape(0);
  shape.insert(shape.begin(), batch);
  Tensor x(shape), pred(shape), lab({batch, 1});
  for_each_sample(x, ctx.seed(), 0, [](float* row, int64_t n, Rng& rng) {
    for (int64_t k = 0; k < n; ++k) row[k] = rng.normal();
  });
  for (int64_t i = 0; i < batch; ++i) lab[i] = float(i % std::max<int64_t>(d.classes, 1));
  Denoiser denoise = model_denoiser(m, ctx.seed(), d, &lab);
  const NoiseSchedule& sc = d.schedule;
  int64_t t = sc.T - 1;
  auto step = [&] {
    denoise(x, t, pred);
    double a = sc.signal(t), s = sc.noise(t), a1 = sc.signal(t - 1), s1 = sc.noise(t - 1);
    for (int64_t i = 0; i < x.size(); ++i)
      x[i] = float(a1 * (x[i] - s * pred[i]) / a + s1 * pred[i]);
    t = t > 1 ? t - 1 : sc.T - 1;
  };
  for (int64_t k = 0; k < bs.warmup; ++k) step();
  std::vector<double> rates;
  for (int64_t w = 0; w < bs.windows; ++w) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t k = 0; k < bs.steps; ++k) step();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(double(bs.steps * batch) / secs);
  }
  ctx.bench_result(rates, batch);
}

}  // namespace

class DiffusionRecipe : public Recipe {
 public:
  explicit DiffusionRecipe(const Params&) {}

  void check(StageCheck& c) const override {
    check_model_takes_data(c, "model", "data");
    check_model_takes_data(c, "model", "valid_data");
    check_conditional_classes(c);
  }

  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    DataSplit train = ctx.data(p.s("data"), "train");
    DataSplit valid = p.given("valid_data") ? ctx.data(p.s("valid_data"), "valid")
                      : p.s("data").find('.') == std::string::npos ? ctx.data(p.s("data"), "valid")
                                                                   : DataSplit{};
    float lo = train.data->lo, hi = train.data->hi;
    DiffusionSetup d = read_setup(ctx, lo, hi);
    Model& m = *d.model;
    if (numel(train.data->sample_shape) != numel(m.input_shape(0)))
      p.fail("data", "the images have shape " + to_string(train.data->sample_shape) +
                         " but model '" + m.name() + "' denoises " + to_string(m.input_shape(0)));
    if (d.conditional && !train.data->has_labels())
      p.fail("conditional",
             "conditional training needs class labels, and '" + train.name + "' has none");
    auto loss = make_loss(ctx, p.child("loss"));
    std::string loss_name = p.entry_type("loss");
    double gamma = p.f("min_snr_gamma");
    double label_dropout = p.f("label_dropout");
    const NoiseSchedule& sc = d.schedule;
    int64_t T = sc.T;
    uint64_t seed = ctx.seed();

    FreezeGuard freeze(ctx, m);
    if (m.trainable_params().empty())
      throw Error("stage '" + ctx.name() + "': every parameter of model '" + m.name() +
                  "' is frozen; nothing to train");
    if (const StageContext::BenchSettings* bs = ctx.bench(); bs && bs->sampling)
      return bench_denoising(ctx, m, d, p.i("batch_size"), *bs);
    Trainer trainer(ctx);
    trainer.add_weights(m.params());
    trainer.add_group("model", m.trainable_params(), trainer.stage_settings());
    if (p.f("ema") > 0) trainer.add_ema("model", p.f("ema"), m.params());

    int out_node = m.output_node();
    TrainHooks hooks;
    hooks.train = train;
    hooks.valid = valid;
    hooks.step = [&](const Batch& b, const RunContext& rc) -> LossTerms {
      int64_t n = b.size;
      Tensor x0 = as_model_input(b.x, m, 0);
      int64_t per = x0.size() / n;
      Tensor xt(x0.shape()), target(x0.shape()), tt({n, 1}), label({n, 1});
      std::vector<double> weight(size_t(n), 1.0);
      for (int64_t i = 0; i < n; ++i) {
        Rng rng = rc.training ? Rng(seed, "diffusion", uint64_t(rc.step), rc.row(i))
                              : Rng(seed, "diffusion_valid", 0, rc.row(i));
        int64_t t = 1 + int64_t(rng.below(uint64_t(T)));
        tt[i] = float(t);
        double a = sc.signal(t), s = sc.noise(t);
        for (int64_t k = 0; k < per; ++k) {
          int64_t j = i * per + k;
          double eps = rng.normal();
          xt[j] = float(a * x0[j] + s * eps);
          target[j] = float(target_value(d.target, x0[j], eps, a, s));
        }
        if (gamma > 0) weight[size_t(i)] = min_snr_weight(d.target, sc.snr(t), gamma);
        if (d.conditional) {
          // The class, or "no class" with probability label_dropout (training only).
          bool drop = rc.training && rng.uniform() < label_dropout;
          label[i] = drop ? float(d.classes) : b.labels[i];
        }
      }
      std::vector<const Tensor*> inputs{&xt, &tt};
      if (d.conditional) inputs.push_back(&label);
      if (rc.training) trainer.zero_grad("model");
      m.forward(rc, inputs);
      const Tensor& out = m.output();
      Tensor tgt = target.reshaped(out.shape());
      Tensor* grad = rc.training ? &m.seed_grad(out_node) : nullptr;
      LossTerms terms{{"loss", 0.0}};
      double total = 0;
      if (gamma > 0) {
        // Per image: loss_i weighted by w_i, mean over the batch.
        double plain = 0;
        for (int64_t i = 0; i < n; ++i) {
          Tensor oi = out.slice(i, i + 1), ti = tgt.slice(i, i + 1), gi;
          if (grad) gi = grad->slice(i, i + 1);
          double w = weight[size_t(i)];
          double li = loss->compute(oi, &ti, grad ? &gi : nullptr, float(w / double(n)));
          total += w * li / double(n);
          plain += li / double(n);
        }
        terms.push_back({loss_name, plain});
      } else {
        total = loss->compute(out, &tgt, grad, 1.f);
      }
      double pen = m.penalty();
      if (pen != 0) terms.push_back({"penalty", pen});
      terms[0].second = total + pen;
      if (rc.training) {
        m.backward(rc);
        trainer.step("model");
      }
      return terms;
    };

    int64_t every = p.i("sample_every"), grid_n = p.i("samples"), cols = p.i("grid_cols");
    std::vector<int32_t> grid_labels;
    std::vector<std::string> class_names = train.data->class_names;
    if (d.conditional) {
      grid_n = d.classes * cols;  // one row per class
      grid_labels = class_labels(grid_n, d.classes);
    }
    if (every > 0 && is_image_shape(m.input_shape(0)))
      hooks.on_epoch_end = [&](int64_t epoch) {
        if (epoch % every) return;
        auto t0 = std::chrono::steady_clock::now();
        bool ema = trainer.has_ema();
        if (ema) trainer.swap_ema();
        Tensor images;
        try {
          images = generate_images(m, d, grid_n, hash_string("grid") ^ seed,
                                   std::min<int64_t>(grid_n, 256),
                                   d.conditional ? &grid_labels : nullptr);
        } catch (...) {
          if (ema) trainer.swap_ema();
          throw;
        }
        if (ema) trainer.swap_ema();
        if (ctx.reducer().rank() != 0) return;
        char name[64];
        std::snprintf(name, sizeof name, "samples/epoch_%03lld.png", (long long)epoch);
        const std::vector<int32_t>* rows = d.conditional ? &grid_labels : nullptr;
        write_samples(ctx.out_path(name), images, lo, hi, cols, rows, class_names);
        write_samples(ctx.out_path("samples.png"), images, lo, hi, cols, rows, class_names);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        char line[256];
        std::snprintf(line, sizeof line,
                      "{\"epoch\":%lld,\"step\":%lld,\"split\":\"samples\",\"samples\":%lld,"
                      "\"sampler\":\"%s\",\"time_s\":%.3f}",
                      (long long)epoch, (long long)trainer.step_count(), (long long)grid_n,
                      d.sampling.kind.c_str(), secs);
        ctx.metric(line);
      };
    fit(ctx, trainer, hooks);
  }
};

class DiffusionSampleRecipe : public Recipe {
 public:
  explicit DiffusionSampleRecipe(const Params&) {}
  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    auto [lo, hi] = sample_range(ctx, -1.f, 1.f);
    DiffusionSetup d = read_setup(ctx, lo, hi);
    Model& m = *d.model;
    int64_t n = p.i("n");
    uint64_t seed = p.given("seed") ? uint64_t(p.i("seed")) : ctx.seed();
    std::vector<int32_t> labels;
    if (d.conditional) labels = requested_classes(ctx, n, d.classes);
    AveragedWeights averaged(m, p.b("ema"));
    auto t0 = std::chrono::steady_clock::now();
    int64_t frames = p.given("trajectory") ? p.i("trajectory") : 0;
    if (frames > 1 && p.given("publish"))
      p.fail("trajectory", "a trajectory is written as a picture, not published as a dataset");
    int64_t only = only_index(p, n), bs = p.i("batch_size");
    if (only >= 0 && frames > 1) p.fail("only_index", "regenerates a sample, not a trajectory");
    SampleProgress progress(ctx, n);
    std::vector<std::string> frame_names;
    // On several MPI ranks, each denoises its share of the batches and rank 0 writes them all.
    Tensor out = generate_images(m, d, n, seed, bs, d.conditional ? &labels : nullptr,
                                 only >= 0 ? nullptr : &progress, frames, &frame_names, only,
                                 only >= 0 ? nullptr : &ctx.reducer());
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    DiffusionSampler info(d.schedule, d.target, d.sampling);
    char timing[64];
    std::snprintf(timing, sizeof timing, " in %.1f s", secs);
    std::string what = std::to_string(n) + " x " + to_string(m.input_shape(0)) + " by " +
                       d.sampling.kind + " (" + std::to_string(info.timesteps().size()) +
                       " model steps" + (averaged.count() ? ", averaged weights" : "") + ")" +
                       timing;
    if (frames > 1) {
      // One row per image, from the starting noise to the final image.
      what = "a trajectory of " + std::to_string(frames) + " frames for each of " + what;
      std::vector<int32_t> every;
      for (int32_t l : labels) every.insert(every.end(), size_t(frames), l);
      labels.swap(every);
    }
    if (only >= 0) {
      out = out.slice(only, only + 1).clone();
      if (d.conditional) labels = {labels[size_t(only)]};
      what = "image " + std::to_string(only) + " of " + what;
    }
    deliver_samples(ctx, std::move(out), lo, hi, labels, what, frames > 1 ? frames : 0,
                    frames > 1 ? frame_names : std::vector<std::string>{});
    if (p.given("write") && frames <= 1) {
      std::pair<float, float> range{lo, hi};
      record_provenance(
          ctx, ctx.out_path(p.s("write")), n, {&m},
          "image i: its starting noise and every step's noise come from the stream (seed, "
          "\"diffusion_sample\", i); it is denoised in row i mod " +
              std::to_string(bs) + " of batch floor(i / " + std::to_string(bs) +
              ") (the last batch filled with the streams of the following indices); no batch "
              "depends on another",
          &range);
    }
  }
};

void register_diffusion(Registry& r) {
  Spec s(
      "Trains a denoising diffusion model (DDPM): per image a time step t in 1..T and noise eps, "
      "x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, loss(model(x_t, t), target). "
      "Validation uses the same noise every epoch; a grid of samples is written every "
      "`sample_every` epochs.");
  declare_diffusion(s, "dpm_solver_pp", "model evaluations of the per-epoch grid's sampler");
  s.add("data", Type::String).required().doc("the images (dataset or dataset.split)");
  s.add("valid_data", Type::String).doc("validation images (default: the dataset's valid split)");
  s.add("loss", Type::Any)
      .def("huber")
      .entry(Kind::Loss)
      .doc("loss between prediction and target: huber (delta 1, Keras' default) or mse, ...");
  s.add("min_snr_gamma", Type::Float)
      .def(0.0)
      .min(0)
      .doc("Min-SNR-γ loss weighting per image (e.g. 5); 0: off");
  s.add("ema", Type::Float)
      .def(0.0)
      .range(0, 0.99999)
      .doc(
          "keep an exponential moving average of the weights (e.g. 0.999) for validation and "
          "sampling (0: off)");
  s.add("label_dropout", Type::Float)
      .def(0.1)
      .range(0, 1)
      .doc("conditional: share of training images whose class is replaced by 'no class'");
  s.add("sample_every", Type::Int).def(1).min(0).doc("epochs between sample grids (0: none)");
  s.add("samples", Type::Int).def(64).min(1).doc("images in the grid (unconditional)");
  s.add("grid_cols", Type::Int).def(8).min(1).doc("columns of the grid (conditional: per class)");
  add_training_params(s);
  r.add<Recipe>("diffusion", s,
                [](const Params& p) { return std::make_unique<DiffusionRecipe>(p); });

  Spec g(
      "Generates images with a trained diffusion model (stage `diffusion`; give the same "
      "timesteps, schedule and target) and writes them (.png grid or a dataset) and/or publishes "
      "them as a dataset.");
  declare_diffusion(g, "ddpm", "model evaluations (ddim, dpm_solver_pp)");
  g.add("n", Type::Int).def(64).min(1).doc("number of images");
  g.add("write", Type::String).doc("output: .png grid, or a dataset (.npy, IDX name)");
  g.add("publish", Type::String).doc("name under which later stages can use the images");
  g.add("data", Type::String).doc("dataset whose value range the images take (default [-1, 1])");
  g.add("range", Type::Floats).doc("value range [low, high] of the images (overrides data)");
  g.add("cols", Type::Int).min(1).doc("columns of a PNG grid (default: about sqrt(n))");
  g.add("class_names", Type::Strings)
      .doc(
          "names of the classes, shown left of the rows of a PNG grid (default: those of the "
          "`data` dataset, else numbers)");
  g.add("seed", Type::Int).min(0).doc("random seed (default: the pipeline's seed)");
  g.add("batch_size", Type::Int).def(64).min(1).doc("images denoised together");
  g.add("ema", Type::Bool)
      .def("true")
      .doc("use the moving average of the weights when the training stage kept one (ema:)");
  g.add("label", Type::Int).min(0).doc("conditional: the class of every image (default: all)");
  g.add("trajectory", Type::Int)
      .min(2)
      .doc(
          "write a denoising strip instead: per image a row of this many frames, from the starting "
          "noise through evenly spaced sampling steps to the final image");
  add_only_index(g);
  r.add<Recipe>("diffusion_sample", g,
                [](const Params& p) { return std::make_unique<DiffusionSampleRecipe>(p); });
}

}  // namespace loom::recipes
