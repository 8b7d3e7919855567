// Samplers: where generated samples start. A sampler fills a batch of model inputs — the codings
// of a trained decoder or generator — and the framework decodes them (generate()).
//
// Each row is drawn from its own random stream, Rng(seed, "sample", index), with `index` the
// sample's position in the whole run (first_index + row): sample i is the same whatever the
// number of samples asked for, the batch size or the threads.
//
//   class Gaussian : public loom::Sampler {
//     void sample(Tensor& codings, uint64_t seed, int64_t first_index) const override {
//       for_each_sample(codings, seed, first_index, [&](float* row, int64_t n, Rng& rng) {
//         for (int64_t k = 0; k < n; ++k) row[k] = rng.normal();
//       });
//     }
//   };
//
// The interface is deliberately small: samplers that drive a trained model themselves (reverse
// diffusion, conditional generators fed a class) will extend it, with a bump of kAbiVersion.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "loom/export.hpp"
#include "loom/model.hpp"
#include "loom/registry.hpp"
#include "loom/rng.hpp"
#include "loom/tensor.hpp"

namespace loom {

class StageContext;

class LOOM_API Sampler {
 public:
  static constexpr Kind kind = Kind::Sampler;
  virtual ~Sampler();
  // Fills `codings`, already shaped (N, ...): row i is sample first_index + i.
  virtual void sample(Tensor& codings, uint64_t seed, int64_t first_index) const = 0;
};

// Calls fill(row, values per row, rng) for every row of `codings`, each with the row's own stream
// Rng(seed, "sample", first_index + row).
LOOM_API void for_each_sample(Tensor& codings, uint64_t seed, int64_t first_index,
                              const std::function<void(float*, int64_t, Rng&)>& fill);

// Runs `model` over `codings` (N, ...) in inference mode, `batch_size` rows at a time, and
// returns its outputs (N, output shape...). A conditional model (second input: a class label of
// shape (1)) takes `labels` (N values). Throws an Error naming both shapes when the codings do
// not fit the model's input. only >= 0: only the batch holding sample `only` runs (predict()).
LOOM_API Tensor decode(Model& model, const Tensor& codings, int64_t batch_size, uint64_t seed,
                       const std::vector<int32_t>* labels = nullptr, int64_t only = -1);

// Draws `n` codings shaped like the model's (first) input from `sampler` (samples first_index ..
// first_index + n - 1) and decodes them (with `labels` for a conditional model). only >= 0:
// only the batch holding sample `only` is decoded (`loom regenerate`).
LOOM_API Tensor generate(Model& model, const Sampler& sampler, int64_t n, uint64_t seed,
                         int64_t batch_size, int64_t first_index = 0,
                         const std::vector<int32_t>* labels = nullptr, int64_t only = -1);

// Writes generated samples (N, ...) with values in [lo, hi] (clipped to it): a PNG grid of
// `cols` columns when `path` ends in .png (samples of shape (H, W) or (C, H, W), C 1 or 3),
// otherwise a dataset chosen by the path (DatasetWriter: .npy, IDX, a folder), with `labels`
// when given (the classes a conditional generator was asked for). In a PNG grid, a row whose
// samples share a class is labelled at its left with the class's name (`class_names`, else its
// number), and `columns` (e.g. time steps) head the columns.
LOOM_API void write_samples(const std::string& path, const Tensor& samples, float lo, float hi,
                            int64_t cols, const std::vector<int32_t>* labels = nullptr,
                            const std::vector<std::string>& class_names = {},
                            const std::vector<std::string>& columns = {});

// Interpolation strips through a decoder (one input: the codings), (rows * steps, output...):
// - decode_along_axis: `rows` codings drawn from `sampler`, each decoded `steps` times with coding
//   `axis` going evenly from -3 to 3 (the other codings kept); Error when `axis` is out of range.
// - decode_between: `steps` codings evenly spaced from `from` to `to` (each as wide as the
//   decoder's input), rows = 1.
LOOM_API Tensor decode_along_axis(Model& decoder, const Sampler& sampler, int64_t rows,
                                  int64_t steps, int64_t axis, uint64_t seed, int64_t batch_size);
LOOM_API Tensor decode_between(Model& decoder, const float* from, const float* to, int64_t steps,
                               uint64_t seed, int64_t batch_size);

// The class of each of n samples of a conditional generator: all `fixed` when it is >= 0, else
// in contiguous blocks over 0..classes-1 (a grid of `classes` rows shows one class per row).
LOOM_API std::vector<int32_t> class_labels(int64_t n, int64_t classes, int64_t fixed = -1);

// For recipes that generate samples, the parameters they share (`write`, `publish`, `cols`,
// `range`, `data`, `label`), read from the stage entry:
// - sample_range: fails, located, when the stage neither writes nor publishes; returns the value
//   range of the samples: `range`, else that of the `data` split (after its scale), else
//   [lo, hi].
// - requested_classes: the class of each of n samples of a conditional model (`label`, checked
//   against `classes`, or every class in turn).
// - deliver_samples: clips `samples` (N, ...) to [lo, hi], writes them to `write` (a PNG grid of
//   `cols` columns, else the stage's `cols`, else about sqrt(N), rows labelled by class and
//   columns headed by `columns` as write_samples does, class names from the stage's
//   `class_names`, else from its `data` when that is a known dataset; or a dataset, with `labels`
//   when not empty) and publishes them as dataset `publish`, logging "<stage>: wrote <what> to
//   <path>".
LOOM_API std::pair<float, float> sample_range(StageContext& ctx, float lo, float hi);
LOOM_API std::vector<int32_t> requested_classes(StageContext& ctx, int64_t n, int64_t classes);
LOOM_API void deliver_samples(StageContext& ctx, Tensor samples, float lo, float hi,
                              const std::vector<int32_t>& labels, const std::string& what,
                              int64_t cols = 0, const std::vector<std::string>& columns = {});

// `only_index: I` of the generating recipes (sample, diffusion_sample, augment): compute only what
// sample I of the whole run depends on and write sample I alone (`loom regenerate`).
LOOM_API void add_only_index(Spec& s);
// The rule of generate() for a provenance manifest: where sample i's randomness and batch come
// from, for batches of `batch_size`.
LOOM_API std::string generated_sample_streams(int64_t batch_size);
// The value of only_index (-1 when not given); a located error when it is not below `n`.
LOOM_API int64_t only_index(const Params& p, int64_t n);

}  // namespace loom
