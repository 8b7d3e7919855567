// The augment recipe: writes K augmented copies of every sample of a dataset (optionally with
// the originals) to a dataset file or PNG folder in the run folder, streaming, and/or publishes
// them as a dataset for later stages. The engine is the framework's (shared with `loom augment`).
#include "loom/augment.hpp"

#include <memory>

#include "loom/create.hpp"
#include "loom/recipe.hpp"
#include "loom/sampler.hpp"

namespace loom::recipes {
namespace {

// Collects the outputs in memory for `publish`.
class MemoryWriter : public DatasetWriter {
 public:
  MemoryWriter(const Dataset& like, bool labelled)
      : d_(std::make_shared<Dataset>()), labelled_(labelled) {
    d_->sample_shape = like.sample_shape;
    d_->lo = like.lo;
    d_->hi = like.hi;
    d_->num_classes = like.num_classes;
  }
  void write(const float* s, int32_t label) override {
    d_->x.insert(d_->x.end(), s, s + numel(d_->sample_shape));
    if (labelled_) d_->labels.push_back(label);
    ++d_->count;
  }
  void close() override {}
  std::string describe() const override { return "memory"; }
  std::shared_ptr<Dataset> dataset() { return d_; }

 private:
  std::shared_ptr<Dataset> d_;
  bool labelled_;
};

class AugmentRecipe : public Recipe {
 public:
  explicit AugmentRecipe(const Params&) {}
  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    AugmentChain chain;
    std::vector<std::string> names;
    for (const Params& e : p.items("transform")) {
      chain.push_back(create_from<Augmenter>(ctx.registry(), e));
      Params unused;
      names.push_back(resolve_entry(ctx.registry(), Kind::Augmenter, e, {}, &unused).name);
    }
    for (size_t i = 0; i < chain.size(); ++i)
      if (chain[i]->batch_level())
        p.fail("transform",
               "entry " + std::to_string(i) +
                   " is batch-level (mixup, cutmix): the augment stage writes each image with its "
                   "own integer label; use it in a training dataset's `transform:` instead");
    if (!p.given("write") && !p.given("publish") && !p.given("preview"))
      p.fail("the augment stage needs `write`, `publish` or `preview` (it would produce nothing)");
    DataSplit split = ctx.data(p.s("data"), "");
    const Dataset& d = *split.data;
    uint64_t seed = p.given("seed") ? uint64_t(p.i("seed")) : ctx.seed();
    if (p.given("preview")) {
      std::string png = ctx.out_path(p.s("preview"));
      write_augment_preview(png, d, split.begin, split.count, chain, names, seed);
      ctx.log(ctx.name() + ": preview grid in " + png);
    }
    if (!p.given("write") && !p.given("publish")) return;

    AugmentOptions o;
    o.copies = p.i("copies");
    o.keep_originals = p.b("keep_originals");
    o.seed = seed;
    const int64_t outs = o.copies + (o.keep_originals ? 1 : 0);
    if (int64_t only = only_index(p, split.count * outs); only >= 0) {
      // Output `only` alone: the outputs of its input sample, of which it is one.
      if (!p.given("write")) p.fail("only_index", "needs `write`: where to put the sample");
      MemoryWriter one(d, d.has_labels());
      augment_dataset(d, split.begin + only / outs, 1, chain, o, {&one});
      auto w = DatasetWriter::open(ctx.out_path(p.s("write")), d.sample_shape, d.lo, d.hi,
                                   d.has_labels());
      auto made = one.dataset();
      w->write(made->sample(only % outs), d.has_labels() ? made->labels[size_t(only % outs)] : 0);
      w->close();
      ctx.log(ctx.name() + ": output " + std::to_string(only) + " to " + w->describe());
      return;
    }
    std::vector<DatasetWriter*> writers;
    std::unique_ptr<DatasetWriter> file;
    std::unique_ptr<MemoryWriter> memory;
    std::string path;
    if (p.given("write")) {
      // A PNG folder (DIR/) is created by the writer at close, not beforehand.
      std::string w = p.s("write");
      bool folder = w.size() > 1 && w.ends_with('/');
      path = ctx.out_path(folder ? w.substr(0, w.size() - 1) : w) + (folder ? "/" : "");
      file = DatasetWriter::open(path, d.sample_shape, d.lo, d.hi, d.has_labels());
      writers.push_back(file.get());
    }
    if (p.given("publish")) {
      memory = std::make_unique<MemoryWriter>(d, d.has_labels());
      int64_t outs = split.count * (o.copies + (o.keep_originals ? 1 : 0));
      memory->dataset()->x.reserve(size_t(outs * numel(d.sample_shape)));
      writers.push_back(memory.get());
    }
    AugmentStats st = augment_dataset(d, split.begin, split.count, chain, o, writers);
    if (file) {
      file->close();
      record_provenance(ctx, path, st.written, {},
                        "output i is copy (i mod " + std::to_string(outs) + ")" +
                            (o.keep_originals ? " - 1 (-1: the original)" : "") +
                            " of input sample " + std::to_string(split.begin) + " + floor(i / " +
                            std::to_string(outs) +
                            ") of the data; copy c of input sample k draws from the stream "
                            "(seed, \"augment\", c, k)");
    }
    std::string rate =
        st.seconds > 0 ? std::to_string(int64_t(double(st.written) / st.seconds)) : "-";
    ctx.log(ctx.name() + ": " + std::to_string(st.written) + " images (" +
            std::to_string(st.inputs) + " x " + std::to_string(o.copies) +
            (o.keep_originals ? " copies + originals" : " copies") + ", " + rate + " images/s)" +
            (file ? " to " + file->describe() : std::string()));
    ctx.metric("{\"images\":" + std::to_string(st.written) +
               ",\"seconds\":" + std::to_string(st.seconds) + "}");
    if (memory) {
      auto out = memory->dataset();
      out->origin = "stage " + ctx.name();
      out->class_names = d.class_names;
      ctx.publish(p.s("publish"), out, "");
      ctx.log(ctx.name() + ": published " + std::to_string(out->count) + " x " +
              to_string(out->sample_shape) + " as dataset '" + p.s("publish") + "'");
    }
  }
};

}  // namespace

void register_augment(Registry& r) {
  Spec s(
      "Writes an augmented copy of a dataset: `copies` augmented versions of every sample "
      "(optionally preceded by the original), in order, with bytes depending only on the seed. "
      "Output format by `write`'s name: .npy, IDX (train-images-idx3-ubyte, *.idx) or a PNG "
      "folder (DIR/); `publish` makes the result a dataset for later stages.");
  s.add("data", Type::String).required().doc("dataset or dataset.split");
  s.add("transform", Type::Any)
      .required()
      .entry_list(Kind::Augmenter)
      .doc("augmenters applied in order: [{type: rotate, degrees: 15}, ...]");
  s.add("copies", Type::Int).def(1).min(0).doc("augmented copies per sample");
  s.add("keep_originals", Type::Bool).def("false").doc("write each original before its copies");
  s.add("write", Type::String)
      .doc("output dataset (.npy, IDX name, or DIR/ of PNGs), inside the run folder if relative");
  s.add("publish", Type::String)
      .doc("name under which later stages can use the augmented set as a dataset");
  s.add("preview", Type::String)
      .doc("PNG grid: rows of samples; original, each augmenter alone, the whole chain");
  s.add("seed", Type::Int).min(0).doc("random seed (default: the pipeline's)");
  add_only_index(s);
  r.add<Recipe>("augment", s, [](const Params& p) { return std::make_unique<AugmentRecipe>(p); });
}

}  // namespace loom::recipes
