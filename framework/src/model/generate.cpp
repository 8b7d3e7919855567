// Generating samples: codings from a sampler, decoded by a trained model, written as a PNG grid
// or a dataset.
#include <algorithm>
#include <cmath>

#include "core/distributed.hpp"
#include "loom/dataset_io.hpp"
#include "loom/io.hpp"
#include "loom/recipe.hpp"
#include "loom/sampler.hpp"

namespace loom {

void for_each_sample(Tensor& codings, uint64_t seed, int64_t first_index,
                     const std::function<void(float*, int64_t, Rng&)>& fill) {
  if (codings.rank() == 0 || codings.dim(0) == 0) return;
  int64_t n = codings.dim(0), per = codings.size() / n;
  for (int64_t i = 0; i < n; ++i) {
    Rng rng(seed, "sample", uint64_t(first_index + i));
    fill(codings.data() + i * per, per, rng);
  }
}

Tensor predict(Model& model, const float* samples, int64_t n, int64_t per_in, int node,
               int64_t batch_size, uint64_t seed, const float* labels, int64_t only) {
  bool conditional = model.num_inputs() == 2 && model.input_shape(1) == Shape{1};
  if (model.num_inputs() > 1 && !conditional)
    throw Error("model '" + model.name() + "' takes " + std::to_string(model.num_inputs()) +
                " inputs; only a model whose second input is a class label (shape (1)) can run "
                "here");
  if (conditional && !labels)
    throw Error("model '" + model.name() +
                "' is conditional (its second input is a class label): give the classes to "
                "generate");
  int target = node < 0 ? model.output_node() : node;
  Shape os = model.nodes()[size_t(target)].shape, all = os;
  all.insert(all.begin(), n);
  Tensor out(all);
  int64_t per_out = numel(os);
  batch_size = std::max<int64_t>(1, batch_size);
  bool shard = only == kShardAcrossRanks;
  for (int64_t first = 0; first < n; first += batch_size) {
    if (only >= 0 && (only < first || only >= first + batch_size)) continue;
    if (shard && !distributed::reducer().owns(first / batch_size)) continue;
    // Every call runs a full batch (the last one padded with zeros): a sample's result must not
    // depend on how many are predicted with it, and oneDNN's kernels may round differently for
    // different batch sizes (measured on AVX2: sample 0 of 3 and of 20 differed in the last bit).
    int64_t m = std::min(batch_size, n - first), rows = batch_size;
    Tensor chunk({rows, per_in});
    std::copy(samples + first * per_in, samples + (first + m) * per_in, chunk.data());
    Tensor in = as_model_input(chunk, model);
    std::vector<const Tensor*> inputs{&in};
    Tensor label;
    if (conditional) {
      label = Tensor({rows, 1});
      std::copy(labels + first, labels + first + m, label.data());
      inputs.push_back(&label);
    }
    RunContext rc;
    rc.seed = seed;
    rc.first = first;  // stochastic layers (sampling with deterministic: false) draw per sample
    model.forward(rc, inputs);
    const Tensor& v = model.value(target);
    std::copy(v.data(), v.data() + m * per_out, out.data() + first * per_out);
  }
  if (shard) distributed::reducer().gather_rows(out.data(), n, batch_size, per_out);
  return out;
}

Tensor decode(Model& model, const Tensor& codings, int64_t batch_size, uint64_t seed,
              const std::vector<int32_t>* labels, int64_t only) {
  int64_t n = codings.rank() ? codings.dim(0) : 0;
  std::vector<float> l;
  if (labels) {
    if (int64_t(labels->size()) != n)
      throw Error(std::to_string(labels->size()) + " class labels for " + std::to_string(n) +
                  " samples");
    l.assign(labels->begin(), labels->end());
  }
  return predict(model, codings.data(), n, n ? codings.size() / n : 0, -1, batch_size, seed,
                 labels ? l.data() : nullptr, only);
}

Tensor generate(Model& model, const Sampler& sampler, int64_t n, uint64_t seed, int64_t batch_size,
                int64_t first_index, const std::vector<int32_t>* labels, int64_t only) {
  Shape cs = model.input_shape();
  cs.insert(cs.begin(), n);
  Tensor codings(cs);
  sampler.sample(codings, seed, first_index);
  return decode(model, codings, batch_size, seed, labels, only);
}

std::vector<int32_t> class_labels(int64_t n, int64_t classes, int64_t fixed) {
  std::vector<int32_t> l(size_t(std::max<int64_t>(n, 0)));
  int64_t block = std::max<int64_t>(1, (n + classes - 1) / std::max<int64_t>(classes, 1));
  for (int64_t i = 0; i < n; ++i) l[size_t(i)] = int32_t(fixed >= 0 ? fixed : i / block);
  return l;
}

AveragedWeights::AveragedWeights(Model& model, bool enable) {
  if (!enable) return;
  for (auto& p : model.params())
    if (p->average.size() == p->value.size() && p->average.size() > 0) {
      std::swap(p->value, p->average);
      swapped_.push_back(p);
    }
}

AveragedWeights::~AveragedWeights() {
  for (auto& p : swapped_) std::swap(p->value, p->average);
}

void write_samples(const std::string& path, const Tensor& samples, float lo, float hi, int64_t cols,
                   const std::vector<int32_t>* labels, const std::vector<std::string>& class_names,
                   const std::vector<std::string>& columns) {
  if (samples.rank() < 2) throw Error(path + ": no samples to write");
  if (!(hi > lo))
    throw Error(path + ": the value range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "] is empty");
  int64_t n = samples.dim(0),
          per = numel(Shape(samples.shape().begin() + 1, samples.shape().end()));
  Shape shape(samples.shape().begin() + 1, samples.shape().end());
  Tensor clipped = samples.clone();
  for (int64_t i = 0; i < clipped.size(); ++i) clipped[i] = std::clamp(clipped[i], lo, hi);
  if (path.ends_with(".png")) {
    if (!is_image_shape(shape))
      throw Error(
          path +
          ": a PNG grid needs samples of shape (H, W), (1, H, W) or (3, H, W); the model makes " +
          to_string(shape) + " (write a dataset instead: .npy or an IDX name)");
    std::vector<const float*> images;
    for (int64_t i = 0; i < n; ++i) images.push_back(clipped.data() + i * per);
    GridLabels text;
    if (labels)
      text.rows = class_row_labels(*labels, std::max<int64_t>(1, std::min(cols, n)), class_names);
    text.columns = columns;
    write_png_grid(path, images, shape, cols, lo, hi, text);
    return;
  }
  auto w = DatasetWriter::open(path, shape, lo, hi, labels != nullptr);
  for (int64_t i = 0; i < n; ++i)
    w->write(clipped.data() + i * per, labels ? (*labels)[size_t(i)] : 0);
  w->close();
}

Tensor decode_along_axis(Model& decoder, const Sampler& sampler, int64_t rows, int64_t steps,
                         int64_t axis, uint64_t seed, int64_t batch_size) {
  Shape coding = decoder.input_shape();
  int64_t width = numel(coding);
  if (axis < 0 || axis >= width)
    throw Error("model '" + decoder.name() + "' takes codings of shape " + to_string(coding) +
                ", so the axis is 0.." + std::to_string(width - 1) + " (got " +
                std::to_string(axis) + ")");
  Shape base_shape = coding, all = coding;
  base_shape.insert(base_shape.begin(), rows);
  all.insert(all.begin(), rows * steps);
  Tensor base(base_shape), codings(all);
  sampler.sample(base, seed, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t s = 0; s < steps; ++s) {
      float* c = codings.data() + (r * steps + s) * width;
      std::copy(base.data() + r * width, base.data() + (r + 1) * width, c);
      c[axis] = -3.f + 6.f * float(s) / float(std::max<int64_t>(steps - 1, 1));
    }
  return decode(decoder, codings, batch_size, seed);
}

Tensor decode_between(Model& decoder, const float* from, const float* to, int64_t steps,
                      uint64_t seed, int64_t batch_size) {
  Shape all = decoder.input_shape();
  int64_t width = numel(all);
  all.insert(all.begin(), steps);
  Tensor codings(all);
  for (int64_t s = 0; s < steps; ++s) {
    float t = float(s) / float(std::max<int64_t>(steps - 1, 1));
    for (int64_t k = 0; k < width; ++k) codings[s * width + k] = (1 - t) * from[k] + t * to[k];
  }
  return decode(decoder, codings, batch_size, seed);
}

std::pair<float, float> sample_range(StageContext& ctx, float lo, float hi) {
  const Params& p = ctx.params();
  if (!p.given("write") && !p.given("publish"))
    p.fail(
        "the stage neither writes (write: samples.png) nor publishes (publish: NAME) its samples");
  if (p.given("range")) {
    auto r = p.floats("range");
    if (r.size() != 2 || !(r[1] > r[0])) p.fail("range", "expected [low, high] with low < high");
    return {float(r[0]), float(r[1])};
  }
  if (p.given("data")) {
    DataSplit d = ctx.data(p.s("data"), "");
    return {d.data->lo, d.data->hi};
  }
  return {lo, hi};
}

std::vector<int32_t> requested_classes(StageContext& ctx, int64_t n, int64_t classes) {
  const Params& p = ctx.params();
  int64_t fixed = p.given("label") ? p.i("label") : -1;
  if (fixed >= classes)
    p.fail("label",
           "class " + std::to_string(fixed) + " is not in [0, " + std::to_string(classes) + ")");
  return class_labels(n, classes, fixed);
}

void deliver_samples(StageContext& ctx, Tensor samples, float lo, float hi,
                     const std::vector<int32_t>& labels, const std::string& what, int64_t cols,
                     const std::vector<std::string>& columns) {
  const Params& p = ctx.params();
  if (samples.rank() < 2) throw Error("stage '" + ctx.name() + "' made no samples");
  for (int64_t i = 0; i < samples.size(); ++i) samples[i] = std::clamp(samples[i], lo, hi);
  int64_t n = samples.dim(0);
  std::vector<std::string> names;  // of the classes asked for
  if (!labels.empty() && p.given("class_names"))
    names = p.strings("class_names");
  else if (!labels.empty() && p.given("data"))
    names = ctx.data(p.s("data")).data->class_names;
  if (p.given("write")) {
    std::string path = ctx.out_path(p.s("write"));
    if (cols <= 0) cols = p.given("cols") ? p.i("cols") : int64_t(std::ceil(std::sqrt(double(n))));
    write_samples(path, samples, lo, hi, cols, labels.empty() ? nullptr : &labels, names, columns);
    ctx.log(ctx.name() + ": wrote " + what + " to " + path);
  }
  if (p.given("publish")) {
    auto d = std::make_shared<Dataset>();
    d->count = n;
    d->sample_shape = Shape(samples.shape().begin() + 1, samples.shape().end());
    d->x.assign(samples.data(), samples.data() + samples.size());
    d->labels = labels;
    d->class_names = names;
    d->lo = lo;
    d->hi = hi;
    d->origin = "stage " + ctx.name();
    ctx.publish(p.s("publish"), d, "");
    ctx.log(ctx.name() + ": published " + what + " as dataset '" + p.s("publish") + "'");
  }
}

void add_only_index(Spec& s) {
  s.add("only_index", Type::Int)
      .min(0)
      .doc(
          "make sample I of the run again, alone, byte for byte (computing only what it depends "
          "on), as `loom regenerate` does");
}

std::string generated_sample_streams(int64_t batch_size) {
  std::string b = std::to_string(batch_size);
  return "sample i: its codings are drawn by the sampler from the stream (seed, \"sample\", i); "
         "they are decoded in row i mod " +
         b + " of batch floor(i / " + b +
         ") (the last batch padded with zeros); no batch depends on another";
}

int64_t only_index(const Params& p, int64_t n) {
  if (!p.given("only_index")) return -1;
  int64_t i = p.i("only_index");
  if (i >= n)
    p.fail("only_index", "sample " + std::to_string(i) + " is not among the " + std::to_string(n) +
                             " generated (0.." + std::to_string(n - 1) + ")");
  return i;
}

}  // namespace loom
