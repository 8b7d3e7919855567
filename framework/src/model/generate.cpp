// Generating samples: codings from a sampler, decoded by a trained model, written as a PNG grid
// or a dataset.
#include <algorithm>

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
               int64_t batch_size, uint64_t seed) {
  int target = node < 0 ? model.output_node() : node;
  Shape os = model.nodes()[size_t(target)].shape, all = os;
  all.insert(all.begin(), n);
  Tensor out(all);
  int64_t per_out = numel(os);
  batch_size = std::max<int64_t>(1, batch_size);
  for (int64_t first = 0; first < n; first += batch_size) {
    int64_t m = std::min(batch_size, n - first);
    Tensor chunk({m, per_in});
    std::copy(samples + first * per_in, samples + (first + m) * per_in, chunk.data());
    Tensor in = as_model_input(chunk, model);
    RunContext rc;
    rc.seed = seed;
    rc.first = first;  // stochastic layers (sampling with deterministic: false) draw per sample
    model.forward(rc, {&in});
    const Tensor& v = model.value(target);
    std::copy(v.data(), v.data() + m * per_out, out.data() + first * per_out);
  }
  return out;
}

Tensor decode(Model& model, const Tensor& codings, int64_t batch_size, uint64_t seed) {
  if (model.num_inputs() != 1)
    throw Error("model '" + model.name() + "' takes " + std::to_string(model.num_inputs()) +
                " inputs; samples are decoded by a model with one input");
  int64_t n = codings.rank() ? codings.dim(0) : 0;
  return predict(model, codings.data(), n, n ? codings.size() / n : 0, -1, batch_size, seed);
}

Tensor generate(Model& model, const Sampler& sampler, int64_t n, uint64_t seed, int64_t batch_size,
                int64_t first_index) {
  if (model.num_inputs() != 1)
    throw Error("model '" + model.name() + "' takes " + std::to_string(model.num_inputs()) +
                " inputs; samples are decoded by a model with one input");
  Shape cs = model.input_shape();
  cs.insert(cs.begin(), n);
  Tensor codings(cs);
  sampler.sample(codings, seed, first_index);
  return decode(model, codings, batch_size, seed);
}

void write_samples(const std::string& path, const Tensor& samples, float lo, float hi,
                   int64_t cols) {
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
    write_png_grid(path, images, shape, cols, lo, hi);
    return;
  }
  auto w = DatasetWriter::open(path, shape, lo, hi, false);
  for (int64_t i = 0; i < n; ++i) w->write(clipped.data() + i * per, 0);
  w->close();
}

}  // namespace loom
