// The adversarial recipe: a generator and a discriminator trained against each other, the loop of
// the chapter. Per step (one batch of real images):
//   phase 1, d_steps times: fakes = G(z) (G not trained); D on [fakes; reals] (optionally some
//            fakes replaced by past ones from a replay buffer), D's loss on its logits, D steps;
//   phase 2: D(G(z')) with D frozen (its weights, slots and running statistics stay put),
//            the generator's loss back-propagated through D into G, G steps.
// Conditional mode feeds the batch's class labels to both networks as a second input.
// Every epoch: a grid of the same fixed codings (samples/epoch_NNN.png, samples.png; one row per
// class when conditional), from the EMA weights when kept, and a diversity figure (mean pairwise
// distance of those samples, beside the same figure for real images) in metrics.jsonl.
#include <cmath>
#include <cstdio>

#include "adversarial_step.hpp"
#include "loom/create.hpp"
#include "loom/io.hpp"
#include "loom/recipe.hpp"
#include "loom/sampler.hpp"

namespace loom::recipes {

namespace {

// Mean Euclidean distance between every pair of rows, divided by sqrt(values per row): the RMS
// pixel difference of two samples, averaged over pairs.
double mean_pairwise_distance(const float* x, int64_t n, int64_t per) {
  if (n < 2) return 0;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double d = 0;
      const float* a = x + i * per;
      const float* b = x + j * per;
      for (int64_t k = 0; k < per; ++k) d += double(a[k] - b[k]) * (a[k] - b[k]);
      sum += std::sqrt(d / double(per));
    }
  return sum / (double(n) * double(n - 1) / 2);
}

}  // namespace

class AdversarialRecipe : public Recipe {
 public:
  explicit AdversarialRecipe(const Params&) {}

  void check(StageCheck& c) const override {
    check_model_takes_data(c, "discriminator", "data");
    auto g = c.model("generator");
    DataInfo d = c.data("data");
    if (g && d.known() && g->num_outputs() > 0 &&
        numel(g->output_shape(0)) != numel(d.sample_shape))
      c.fail("generator", "generator '" + g->name() + "' makes images of shape " +
                              to_string(g->output_shape(0)) + " but the real images of dataset '" +
                              d.name + "' have shape " + to_string(d.sample_shape));
    check_output_range(c, "generator", "data", "the real images", true);
    check_conditional_classes(c);
  }

  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    auto G = ctx.model(p.s("generator"));
    auto D = ctx.model(p.s("discriminator"));
    bool conditional = p.b("conditional");
    size_t want_inputs = conditional ? 2 : 1;
    if (G->num_inputs() != want_inputs)
      p.fail("generator", "model '" + G->name() + "' takes " + std::to_string(G->num_inputs()) +
                              " input(s); " + (conditional ? "a conditional" : "a") +
                              " generator takes " + std::to_string(want_inputs) +
                              (conditional ? " (codings, class label)" : " (codings)"));
    if (D->num_inputs() != want_inputs)
      p.fail("discriminator", "model '" + D->name() + "' takes " + std::to_string(D->num_inputs()) +
                                  " input(s); " + (conditional ? "a conditional" : "a") +
                                  " discriminator takes " + std::to_string(want_inputs) +
                                  (conditional ? " (image, class label)" : " (image)"));
    if (G->output_shape() != D->input_shape())
      p.fail("discriminator", "model '" + D->name() + "' takes " + to_string(D->input_shape()) +
                                  " but the generator makes " + to_string(G->output_shape()));
    if (numel(D->output_shape()) != 1)
      p.fail("discriminator", "model '" + D->name() + "' must output one logit per image, not " +
                                  to_string(D->output_shape()) +
                                  " (end with {type: dense, units: 1} and no sigmoid)");
    DataSplit train = ctx.data(p.s("data"), "train");
    if (numel(train.data->sample_shape) != numel(D->input_shape()))
      p.fail("data", "the images have shape " + to_string(train.data->sample_shape) +
                         " but the discriminator takes " + to_string(D->input_shape()));
    if (conditional && !train.data->has_labels())
      p.fail("conditional",
             "conditional training needs class labels, and '" + train.name + "' has none");
    auto latent = create_from<Sampler>(ctx.registry(), p.child("latent"));
    GanLoss kind = gan_loss_kind(p.s("loss"));
    double smoothing = p.f("label_smoothing");
    int64_t d_steps = p.i("d_steps");
    int64_t replay_size = p.i("replay_size");
    double replay_ratio = p.f("replay_ratio");
    int64_t classes = conditional ? p.i("num_classes") : 0;
    float lo = train.data->lo, hi = train.data->hi;

    // Freezing: the stage's list, and in phase 2 the whole discriminator on top of it.
    std::vector<std::string> stage_freeze = ctx.freeze();
    G->set_frozen(stage_freeze);
    D->set_frozen(stage_freeze);
    struct Reset {
      Model &g, &d;
      ~Reset() {
        g.set_frozen({});
        d.set_frozen({});
      }
    } reset{*G, *D};

    Trainer trainer(ctx);
    trainer.add_weights(G->params());
    trainer.add_weights(D->params());
    auto settings = [&](const std::string& group) {
      Trainer::GroupSettings s = trainer.stage_settings();
      if (p.given("optimizers") && p.child("optimizers").given(group))
        s.optimizer = p.child("optimizers").child(group);
      if (p.given("lr_schedules") && p.child("lr_schedules").given(group)) {
        s.lr_schedule = p.child("lr_schedules").child(group);
        s.has_schedule = true;
      }
      return s;
    };
    trainer.add_group("generator", G->trainable_params(), settings("generator"));
    trainer.add_group("discriminator", D->trainable_params(), settings("discriminator"));
    if (p.f("ema") > 0) trainer.add_ema("generator", p.f("ema"), G->params());

    int64_t per = numel(D->input_shape());
    std::unique_ptr<ReplayBuffer> replay;
    if (replay_size > 0) {
      replay = std::make_unique<ReplayBuffer>(replay_size, per, replay_ratio);
      trainer.track("replay", {&replay->rows()});
      trainer.track("replay_filled", replay->filled_counter());
    }
    AdversarialSettings settings_of_step;
    settings_of_step.loss = kind;
    settings_of_step.label_smoothing = smoothing;
    settings_of_step.d_steps = d_steps;
    settings_of_step.conditional = conditional;
    settings_of_step.stage_freeze = stage_freeze;
    AdversarialStep step(*G, *D, trainer, *latent, settings_of_step, replay.get(), ctx.seed());

    TrainHooks hooks;
    hooks.train = train;
    hooks.losses_rank_epochs = false;
    hooks.step = [&](const Batch& b, const RunContext& rc) -> LossTerms {
      Tensor real = AdversarialStep::rows_of(b.x, D->input_shape());
      Tensor labels;
      if (conditional) labels = b.labels.reshaped({b.size, 1});
      DiscriminatorStats d = step.discriminator_phase(real, conditional ? &labels : nullptr, rc);
      double g_loss = step.generator_phase(b.size, conditional ? &labels : nullptr, rc);
      return {{"g_loss", g_loss},
              {"d_loss", d.loss},
              {"d_real_acc", d.real_acc},
              {"d_fake_acc", d.fake_acc}};
    };

    // The fixed codings of the per-epoch grid (and labels: one row per class).
    int64_t cols = p.i("grid_cols");
    int64_t grid_n = conditional ? classes * cols : p.i("samples");
    Tensor zfix = step.codings(grid_n, hash_string("grid") ^ ctx.seed(), 0);
    Tensor yfix({grid_n, 1});
    for (int64_t i = 0; i < grid_n; ++i) yfix[i] = conditional ? float(i / cols) : 0.f;
    GridLabels grid_labels;  // the class at the left of each row
    if (conditional) {
      const std::vector<std::string>& names = train.data->class_names;
      for (int64_t k = 0; k < classes; ++k)
        grid_labels.rows.push_back(class_name(int32_t(k), names));
    }
    // The real images' own diversity, for comparison (the first grid_n training images).
    double real_diversity =
        mean_pairwise_distance(train.sample(0), std::min(grid_n, train.count), per);
    hooks.on_epoch_end = [&](int64_t epoch) {
      bool ema = trainer.has_ema();
      if (ema) trainer.swap_ema();
      Tensor samples;
      try {
        std::vector<const Tensor*> in{&zfix};
        if (conditional) in.push_back(&yfix);
        RunContext rc;
        rc.seed = ctx.seed();
        G->forward(rc, in);
        samples = G->output().clone();
      } catch (...) {
        if (ema) trainer.swap_ema();
        throw;
      }
      if (ema) trainer.swap_ema();
      std::vector<const float*> images;
      for (int64_t i = 0; i < grid_n; ++i) images.push_back(samples.data() + i * per);
      char name[64];
      std::snprintf(name, sizeof name, "samples/epoch_%03lld.png", (long long)epoch);
      if (ctx.reducer().rank() == 0) {
        if (is_image_shape(G->output_shape())) {
          write_png_grid(ctx.out_path(name), images, G->output_shape(), cols, lo, hi, grid_labels);
          write_png_grid(ctx.out_path("samples.png"), images, G->output_shape(), cols, lo, hi,
                         grid_labels);
        }
        char line[256];
        std::snprintf(line, sizeof line,
                      "{\"epoch\":%lld,\"step\":%lld,\"split\":\"samples\",\"diversity\":%.6g,"
                      "\"diversity_real\":%.6g,\"samples\":%lld}",
                      (long long)epoch, (long long)trainer.step_count(),
                      mean_pairwise_distance(samples.data(), grid_n, per), real_diversity,
                      (long long)grid_n);
        ctx.metric(line);
      }
    };
    fit(ctx, trainer, hooks);
  }
};

void register_adversarial(Registry& r) {
  Spec s(
      "Trains a generator against a discriminator (GAN): per step, the discriminator on a batch "
      "of generated and a batch of real images, then the generator through the frozen "
      "discriminator. The discriminator outputs one logit per image (no sigmoid); the losses are "
      "computed from logits.");
  s.add("generator", Type::String).required().doc("the generator model: codings -> images");
  s.add("discriminator", Type::String)
      .required()
      .doc("the discriminator model: images -> one logit");
  s.add("data", Type::String).required().doc("the real images (dataset or dataset.split)");
  s.add("latent", Type::Any)
      .def("gaussian")
      .entry(Kind::Sampler)
      .doc("sampler of the generator's codings: gaussian or uniform, or {type: ..., ...}");
  s.add("loss", Type::String)
      .def("bce")
      .choices({"bce", "hinge", "least_squares"})
      .doc("bce (non-saturating, from logits), hinge, least_squares");
  s.add("label_smoothing", Type::Float)
      .def(0.0)
      .range(0, 0.5)
      .doc("one-sided: the discriminator's target for real images is 1 - this");
  s.add("d_steps", Type::Int).def(1).min(1).doc("discriminator updates per generator update");
  s.add("optimizers", Type::Map)
      .entry_map(Kind::Optimizer, {"generator", "discriminator"})
      .doc(
          "per-network optimizers, e.g. {generator: {type: adam, lr: 2e-4, beta_1: 0.5}, "
          "discriminator: ...}; a network not named uses `optimizer`");
  s.add("lr_schedules", Type::Map)
      .doc("per-network learning-rate schedules {generator: {...}, discriminator: {...}}");
  s.add("replay_size", Type::Int)
      .def(0)
      .min(0)
      .doc("experience replay: past generated images kept (0: off)");
  s.add("replay_ratio", Type::Float)
      .def(0.5)
      .range(0, 1)
      .doc("share of the discriminator's fake batch drawn from the replay buffer");
  s.add("ema", Type::Float)
      .def(0.0)
      .range(0, 0.99999)
      .doc(
          "keep an exponential moving average of the generator (e.g. 0.999) for sampling (0: off)");
  s.add("conditional", Type::Bool)
      .def("false")
      .doc("feed the class label to both networks as a second input");
  s.add("num_classes", Type::Int).def(10).min(1).doc("classes (conditional: rows of the grid)");
  s.add("samples", Type::Int).def(64).min(2).doc("images in the per-epoch grid (unconditional)");
  s.add("grid_cols", Type::Int).def(8).min(1).doc("columns of the per-epoch grid");
  add_training_params(s);
  r.add<Recipe>("adversarial", s,
                [](const Params& p) { return std::make_unique<AdversarialRecipe>(p); });
}

}  // namespace loom::recipes
