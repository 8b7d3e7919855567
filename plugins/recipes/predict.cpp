// The predict recipe: runs a trained model (or any of its layers) over a dataset in inference
// mode and writes the outputs (.npy, or .csv with labels), optionally rounded to bits and packed
// into integer hashes (semantic hashing); `scatter` plots them in 2-D (PCA) coloured by class.
#include <cmath>
#include <fstream>

#include "loom/io.hpp"
#include "loom/recipe.hpp"
#include "loom/sampler.hpp"

namespace loom::recipes {

class PredictRecipe : public Recipe {
 public:
  explicit PredictRecipe(const Params&) {}
  void check(StageCheck& c) const override { check_model_takes_data(c, "model", "data"); }

  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    auto model = ctx.model(p.s("model"));
    DataSplit split = ctx.data(p.s("data"), "");
    int node = -1;
    if (p.given("output")) {
      node = model->find(p.s("output"));
      if (node < 0)
        p.fail("output", "model '" + model->name() + "' has no layer '" + p.s("output") + "'");
    }
    int64_t only = only_index(p, split.count), bs = p.i("batch_size");
    Tensor out = predict(*model, split.sample(0), split.count, numel(split.data->sample_shape),
                         node, bs, ctx.seed(), nullptr, only);
    if (p.b("round"))
      for (int64_t i = 0; i < out.size(); ++i) out[i] = std::round(out[i]);
    if (only >= 0) {
      // Row `only` alone (`loom regenerate`), with its label.
      if (!p.given("write") || !p.s("write").ends_with(".npy"))
        p.fail("only_index", "needs `write: NAME.npy`: where to put the row");
      std::string path = ctx.out_path(p.s("write"));
      write_npy(path, out.slice(only, only + 1).clone());
      if (split.data->has_labels())
        write_npy_labels(path.substr(0, path.size() - 4) + ".labels.npy", {split.label(only)});
      ctx.log(ctx.name() + ": wrote row " + std::to_string(only) + " to " + path);
      return;
    }
    if (p.given("publish")) {
      auto d = std::make_shared<Dataset>();
      d->count = out.dim(0);
      d->sample_shape.assign(out.shape().begin() + 1, out.shape().end());
      d->x.assign(out.data(), out.data() + out.size());
      if (split.data->has_labels())
        for (int64_t i = 0; i < split.count; ++i) d->labels.push_back(split.label(i));
      d->num_classes = split.data->num_classes;
      d->class_names = split.data->class_names;
      auto [lo, hi] = std::minmax_element(d->x.begin(), d->x.end());
      d->lo = d->x.empty() ? 0.f : *lo;
      d->hi = d->x.empty() ? 1.f : *hi;
      d->origin = "stage " + ctx.name();
      ctx.publish(p.s("publish"), d, p.s("data"));
      ctx.log(ctx.name() + ": published " + std::to_string(d->count) + " x " +
              to_string(d->sample_shape) + " as dataset '" + p.s("publish") + "'");
    }
    if (p.given("scatter")) {
      std::vector<int32_t> labels;
      if (split.data->has_labels())
        for (int64_t i = 0; i < split.count; ++i) labels.push_back(split.label(i));
      std::string sp = ctx.out_path(p.s("scatter"));
      std::string subject = model->name();
      if (p.given("output")) subject += '.' + p.s("output");
      subject += " of " + split.name;
      write_scatter_png(sp, out, labels, split.data->class_names, subject);
      ctx.log(ctx.name() + ": wrote a scatter plot of " + std::to_string(out.dim(0)) + " x " +
              to_string(Shape(out.shape().begin() + 1, out.shape().end())) + " values to " + sp);
    }
    if (!p.given("write")) return;
    std::string path = ctx.out_path(p.s("write"));
    int64_t n = out.dim(0), per = out.size() / std::max<int64_t>(n, 1);
    if (path.ends_with(".csv")) {
      write_atomically(path, [&](const std::string& tmp) {
        std::ofstream o(tmp);
        o << "index" << (split.data->has_labels() ? ",label" : "");
        if (p.b("pack_bits")) o << ",hash";
        for (int64_t k = 0; k < per; ++k) o << ",v" << k;
        o << "\n";
        for (int64_t i = 0; i < n; ++i) {
          o << i;
          if (split.data->has_labels()) o << "," << split.label(i);
          if (p.b("pack_bits")) {
            uint64_t h = 0;
            for (int64_t k = 0; k < per && k < 64; ++k)
              h = (h << 1) | (out[i * per + k] > 0.5f ? 1u : 0u);
            o << "," << h;
          }
          for (int64_t k = 0; k < per; ++k) o << "," << out[i * per + k];
          o << "\n";
        }
      });
    } else {
      write_npy(path, out);
      if (split.data->has_labels()) {
        std::vector<int32_t> labels;
        for (int64_t i = 0; i < n; ++i) labels.push_back(split.label(i));
        std::string lp =
            path.substr(0, path.size() - (path.ends_with(".npy") ? 4 : 0)) + ".labels.npy";
        write_npy_labels(lp, labels);
      }
    }
    ctx.log(ctx.name() + ": wrote " + std::to_string(n) + " x " +
            to_string(Shape(out.shape().begin() + 1, out.shape().end())) + " to " + path);
    if (path.ends_with(".npy"))
      record_provenance(ctx, path, n, {model.get()},
                        "row i: the model applied in inference to sample i of the data, in row i "
                        "mod " +
                            std::to_string(bs) + " of batch floor(i / " + std::to_string(bs) +
                            ") (the last batch padded with zeros); a stochastic layer draws from "
                            "the stream of (seed, layer, i)");
  }
};

void register_predict(Registry& r) {
  Spec s(
      "Applies a trained model (or one of its layers, via `output`) to a dataset in inference "
      "mode and writes the values: .npy (plus .labels.npy) or .csv (index, label, values).");
  s.add("model", Type::String).required().doc("the model to run");
  s.add("data", Type::String).required().doc("dataset or dataset.split");
  s.add("output", Type::String).doc("layer whose values are written (default: the model output)");
  s.add("write", Type::String).doc("output file (.npy or .csv), inside the run folder if relative");
  s.add("publish", Type::String)
      .doc("name under which later stages can use the outputs as a dataset");
  s.add("scatter", Type::String)
      .doc(
          "also plot the values as a PNG scatter coloured by class (the first two principal "
          "components unless 2-D)");
  s.add("round", Type::Bool).def("false").doc("round values to integers (e.g. hash bits)");
  s.add("pack_bits", Type::Bool)
      .def("false")
      .doc("csv: also write the values as bits of one integer hash");
  s.add("batch_size", Type::Int).def(256).min(1).doc("samples per forward pass");
  add_only_index(s);
  r.add<Recipe>("predict", s, [](const Params& p) { return std::make_unique<PredictRecipe>(p); });
}

}  // namespace loom::recipes
