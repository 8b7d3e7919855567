// Offline augmentation: writes K augmented copies of every sample of a dataset (optionally
// preceded by the original) through a oneTBB pipeline with a bounded number of chunks in
// flight, so memory stays bounded whatever the output size. Copy j of sample i draws from
// Rng(seed, "augment", j, i): the bytes written depend on the seed only, never on threads.
// Used by `loom augment`, `loom bench --augment` and the `augment` recipe.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/augmenter.hpp"
#include "loom/dataset_io.hpp"
#include "loom/export.hpp"
#include "loom/source.hpp"

namespace loom {

using AugmentChain = std::vector<std::shared_ptr<const Augmenter>>;

struct AugmentOptions {
  int64_t copies = 1;           // augmented copies per sample
  bool keep_originals = false;  // write each original before its copies
  uint64_t seed = 0;
  int64_t chunk = 64;  // input samples per pipeline token
  int64_t tokens = 0;  // chunks in flight (0: twice the threads, plus two)
  // Called from the (serial) writing stage after each chunk: outputs written so far, total.
  std::function<void(int64_t written, int64_t total)> progress;
  // When set and it becomes true (e.g. on Ctrl-C), no further chunk starts and
  // augment_dataset throws an Error: the caller's writers are then destroyed unclosed.
  const std::atomic<bool>* cancel = nullptr;
};

struct AugmentStats {
  int64_t inputs = 0, written = 0;
  double seconds = 0;
};

// Throws an Error (prefixed by `where`) when the chain holds a batch-level augmenter (mixup,
// cutmix): offline augmentation writes one image per sample with its integer label.
LOOM_API void require_per_sample(const AugmentChain& chain, const std::vector<std::string>& names,
                                 const std::string& where);

// Augments samples [begin, begin + count) of `data` and hands every output sample, in order,
// to each writer (none: the outputs are computed and dropped, for benchmarks). Writers are
// not closed here. Outputs of sample i: [original], copy 0, ..., copy K-1.
LOOM_API AugmentStats augment_dataset(const Dataset& data, int64_t begin, int64_t count,
                                      const AugmentChain& chain, const AugmentOptions& options,
                                      const std::vector<DatasetWriter*>& writers);

// A PNG grid showing what a chain does: one row per sample (the first `rows` of the range);
// columns: the original, each augmenter applied alone, then the whole chain (copy 0), each
// headed by its name ("original", names[i] — the augmenter's type —, "whole chain").
LOOM_API void write_augment_preview(const std::string& png_path, const Dataset& data, int64_t begin,
                                    int64_t count, const AugmentChain& chain,
                                    const std::vector<std::string>& names, uint64_t seed,
                                    int64_t rows = 8);

}  // namespace loom
