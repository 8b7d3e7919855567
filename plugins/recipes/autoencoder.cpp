// The autoencoder recipe: trains a model to reproduce its input (or the clean input from a
// corrupted one), with optional penalty terms on named layers, and writes a grid of validation
// originals over their reconstructions after every epoch (with the noisy inputs between them
// for a denoising autoencoder).
#include <cstdio>

#include "loom/io.hpp"
#include "loom/loss.hpp"
#include "loom/recipe.hpp"

namespace loom::recipes {

namespace {

// What a denoising model sees while training when its input goes (through flatten or reshape
// only) into a noise layer (gaussian_noise, dropout): that layer applied to `x` in training
// mode, shaped like `x`. Empty when the model has no such layer.
Tensor noisy_view(const Model& m, const Tensor& x, uint64_t seed) {
  const auto& nodes = m.nodes();
  int at = m.input_node();
  for (size_t k = size_t(at) + 1; k < nodes.size(); ++k) {
    if (nodes[k].inputs != std::vector<int>{at}) continue;
    const std::string& type = nodes[k].type;
    if (type == "flatten" || type == "reshape") {
      at = int(k);
      continue;
    }
    if (type != "gaussian_noise" && type != "dropout") break;
    Shape in = nodes[size_t(at)].shape;
    in.insert(in.begin(), x.dim(0));
    Tensor src = x.reshaped(in), out(in);
    nodes[k].layer->forward(RunContext{true, seed, 0}, {&src}, out);
    return out.reshaped(x.shape());
  }
  return {};
}

}  // namespace

class AutoencoderRecipe : public Recipe {
 public:
  explicit AutoencoderRecipe(const Params&) {}
  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    auto model = ctx.model(p.s("model"));
    auto loss = make_loss(ctx, p.child("loss"));
    ExtraTerms extra(ctx, *model);
    std::string loss_name = p.entry_type("loss");
    TrainHooks hooks;
    hooks.train = ctx.data(p.s("data"), "train");
    hooks.valid = p.given("valid_data")
                      ? ctx.data(p.s("valid_data"), "valid")
                      : (p.s("data").find('.') == std::string::npos ? ctx.data(p.s("data"), "valid")
                                                                    : DataSplit{});
    if (p.given("input_data")) {
      hooks.paired_train = ctx.data(p.s("input_data"), "train");
      hooks.paired_valid = hooks.valid.count ? ctx.data(p.s("input_data"), "valid") : DataSplit{};
    }
    bool denoise = p.b("denoise");
    int out = model->output_node();
    Tensor check = as_model_input(Tensor({1, numel(hooks.train.data->sample_shape)}), *model);
    (void)check;
    hooks.step = [&, out](const Batch& b, const RunContext& rc) {
      const Tensor& source = b.paired.empty() ? b.x : b.paired;
      const Tensor& target = (denoise || !b.paired.empty()) ? b.x_clean : b.x;
      Tensor in = as_model_input(source, *model);
      model->forward(rc, {&in});
      LossTerms terms{{"loss", 0.0}};
      double rec = loss->compute(model->output(), &target,
                                 rc.training ? &model->seed_grad(out) : nullptr, 1.f);
      terms.push_back({loss_name, rec});
      double total = rec + extra.add_terms(*model, rc.training, terms);
      double pen = model->penalty();
      if (pen != 0) terms.push_back({"penalty", pen});
      terms[0].second = total + pen;
      if (terms.size() == 2) terms.pop_back();  // only the loss itself: no separate term
      if (rc.training) model->backward(rc);
      return terms;
    };
    int64_t shown = p.i("reconstructions");
    DataSplit grid_split = hooks.valid.count ? hooks.valid : hooks.train;
    if (shown > 0 && grid_split.data->sample_shape.size() == 3)
      hooks.on_epoch_end = [&, shown, grid_split](int64_t epoch) {
        int64_t n = std::min(shown, grid_split.count);
        const Shape& ss = grid_split.data->sample_shape;
        Tensor x({n, numel(ss)});
        for (int64_t i = 0; i < n; ++i)
          std::copy(grid_split.sample(i), grid_split.sample(i) + numel(ss),
                    x.data() + i * numel(ss));
        Tensor source = x;
        if (hooks.paired_valid.count)
          for (int64_t i = 0; i < n; ++i)
            std::copy(hooks.paired_valid.sample(i), hooks.paired_valid.sample(i) + numel(ss),
                      source.data() + i * numel(ss));
        Tensor in = as_model_input(source, *model);
        model->forward(RunContext{false, ctx.seed(), 0}, {&in});
        // Originals, the noisy inputs of a denoising pair (when there are any), reconstructions.
        std::vector<const float*> images;
        GridLabels labels{{"original"}, {}};
        for (int64_t i = 0; i < n; ++i) images.push_back(x.data() + i * numel(ss));
        Tensor noisy = hooks.paired_valid.count ? source : noisy_view(*model, x, ctx.seed());
        if (noisy.size() == x.size()) {
          labels.rows.push_back("noisy input");
          for (int64_t i = 0; i < n; ++i) images.push_back(noisy.data() + i * numel(ss));
        }
        labels.rows.push_back("reconstruction");
        for (int64_t i = 0; i < n; ++i) images.push_back(model->output().data() + i * numel(ss));
        char name[64];
        std::snprintf(name, sizeof name, "reconstructions/epoch_%03lld.png", (long long)epoch);
        float lo = grid_split.data->lo, hi = grid_split.data->hi;
        write_png_grid(ctx.out_path(name), images, ss, n, lo, hi, labels);
        write_png_grid(ctx.out_path("reconstructions.png"), images, ss, n, lo, hi, labels);
      };
    FitResult r = fit(ctx, *model, hooks);
    (void)r;
  }

  void check(StageCheck& c) const override {
    const Params& p = c.params();
    check_model_takes_data(c, "model", p.given("input_data") ? "input_data" : "data");
    auto m = c.model("model");
    DataInfo d = c.data("data");
    if (m && d.known() && m->num_outputs() > 0 &&
        numel(m->output_shape(0)) != numel(d.sample_shape))
      c.fail("model", "model '" + m->name() + "' outputs shape " + to_string(m->output_shape(0)) +
                          " but its targets, the samples of dataset '" + d.name + "', have shape " +
                          to_string(d.sample_shape));
    check_output_range(c, "model", "data", "its targets", false);
    if (auto loss = c.loss("loss")) {
      std::string name = p.entry_type("loss");
      if (!loss->needs_target())
        c.fail("loss", "'" + name +
                           "' is a penalty on a layer's values, not a reconstruction loss; give "
                           "it under terms: [{type: " +
                           name + ", on: LAYER}] beside a loss such as mse");
      else if (loss->takes_class_labels())
        c.fail("loss", "'" + name +
                           "' compares class scores with class labels, but an autoencoder's "
                           "targets are its inputs; use mse, mae, huber or binary_crossentropy");
    }
  }
};

void register_autoencoder(Registry& r) {
  Spec s(
      "Trains `model` to reconstruct its input: loss(model(x), x). With `input_data` the inputs "
      "come from a paired dataset (e.g. corrupted images) and the targets stay the clean data; "
      "with `denoise` the targets are the samples before the dataset's transform.");
  s.add("model", Type::String).required().doc("the autoencoder model");
  s.add("data", Type::String).required().doc("dataset (its train/valid splits) or dataset.split");
  s.add("valid_data", Type::String).doc("validation data (default: the dataset's 'valid' split)");
  s.add("input_data", Type::String)
      .doc("paired dataset whose samples are the inputs (same order and count)");
  s.add("denoise", Type::Bool).def("false").doc("targets are the samples before augmentation");
  s.add("loss", Type::Any)
      .def("mse")
      .entry(Kind::Loss)
      .doc("reconstruction loss: a name or {type: NAME, ...}");
  s.add("terms", Type::Any)
      .entry_list(Kind::Loss, {"on", "weight"})
      .doc("extra penalty terms: [{type: kl_sparsity, on: LAYER, weight: W, ...}]");
  s.add("reconstructions", Type::Int)
      .def(8)
      .min(0)
      .doc("validation images in the per-epoch grid (0: none)");
  add_training_params(s);
  r.add<Recipe>("autoencoder", s,
                [](const Params& p) { return std::make_unique<AutoencoderRecipe>(p); });
}

}  // namespace loom::recipes
