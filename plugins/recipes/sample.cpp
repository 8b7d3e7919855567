// The sample recipe: draws codings from a sampler, decodes them with a trained decoder or
// generator, and writes them (a PNG grid or a dataset) and/or publishes them as a dataset for
// later stages (e.g. augment, then write).
#include "loom/create.hpp"
#include "loom/recipe.hpp"
#include "loom/sampler.hpp"

namespace loom::recipes {

class SampleRecipe : public Recipe {
 public:
  explicit SampleRecipe(const Params&) {}
  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    auto model = ctx.model(p.s("model"));
    bool conditional = model->num_inputs() == 2 && model->input_shape(1) == Shape{1};
    if (model->num_inputs() != 1 && !conditional)
      p.fail("model", "model '" + model->name() + "' takes " + std::to_string(model->num_inputs()) +
                          " inputs; sampling needs a decoder or generator with one input (the "
                          "codings), or two (the codings and a class label)");
    auto sampler = create_from<Sampler>(ctx.registry(), p.child("sampler"));
    // The value range of the samples: `range`, else that of `data` (after its scale), else [0, 1].
    auto [lo, hi] = sample_range(ctx, 0.f, 1.f);
    int64_t n = p.i("n");
    uint64_t seed = p.given("seed") ? uint64_t(p.i("seed")) : ctx.seed();
    std::vector<int32_t> labels;
    if (conditional) labels = requested_classes(ctx, n, p.i("num_classes"));
    int64_t only = only_index(p, n);
    AveragedWeights averaged(*model, p.b("ema"));
    int64_t bs = p.i("batch_size");
    // On several MPI ranks, each decodes its share of the batches and rank 0 writes them all.
    Tensor out = generate(*model, *sampler, n, seed, bs, 0, conditional ? &labels : nullptr,
                          only >= 0 ? only : kShardAcrossRanks);
    std::string what = std::to_string(n) + " x " + to_string(model->output_shape()) + " from " +
                       p.entry_type("sampler") + " codings " + to_string(model->input_shape()) +
                       (averaged.count() ? " (averaged weights)" : "");
    if (only >= 0) {
      out = out.slice(only, only + 1).clone();
      if (conditional) labels = {labels[size_t(only)]};
      what = "sample " + std::to_string(only) + " of " + what;
    }
    deliver_samples(ctx, std::move(out), lo, hi, labels, what);
    if (p.given("write")) {
      std::pair<float, float> range{lo, hi};
      record_provenance(ctx, ctx.out_path(p.s("write")), n, {model.get()},
                        generated_sample_streams(bs), &range);
    }
  }
};

void register_sample(Registry& r) {
  Spec s(
      "Generates samples: draws `n` codings from `sampler`, decodes them with `model` (a trained "
      "decoder or generator), and writes them (.png grid, or a dataset: .npy, IDX) and/or "
      "publishes "
      "them as a dataset for later stages.");
  s.add("model", Type::String).required().doc("the decoder or generator (one input: the codings)");
  s.add("sampler", Type::Any)
      .def("gaussian")
      .entry(Kind::Sampler)
      .doc("where codings come from: a name or {type: NAME, ...}");
  s.add("n", Type::Int).def(64).min(1).doc("number of samples");
  s.add("write", Type::String)
      .doc("output: .png grid, or a dataset (.npy, IDX name); inside the run folder if relative");
  s.add("publish", Type::String)
      .doc("name under which later stages can use the samples as a dataset");
  s.add("data", Type::String)
      .doc("dataset whose value range (after its scale) the samples take; default [0, 1]");
  s.add("range", Type::Floats)
      .doc(
          "value range [low, high] of the model's outputs (overrides `data`); values are clipped "
          "to it");
  s.add("cols", Type::Int).min(1).doc("columns of a PNG grid (default: about sqrt(n))");
  s.add("class_names", Type::Strings)
      .doc(
          "names of the classes, shown left of the rows of a PNG grid (default: those of the "
          "`data` dataset, else numbers)");
  s.add("seed", Type::Int).min(0).doc("random seed of the codings (default: the pipeline's seed)");
  s.add("batch_size", Type::Int).def(256).min(1).doc("samples per forward pass");
  s.add("ema", Type::Bool)
      .def("true")
      .doc("use the moving average of the weights when the training stage kept one (ema:)");
  s.add("label", Type::Int)
      .min(0)
      .doc(
          "conditional generators: the class of every sample (default: all classes in turn, "
          "one block each)");
  s.add("num_classes", Type::Int).def(10).min(1).doc("conditional generators: the classes");
  add_only_index(s);
  r.add<Recipe>("sample", s, [](const Params& p) { return std::make_unique<SampleRecipe>(p); });
}

}  // namespace loom::recipes
