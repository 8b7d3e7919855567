// Internal: the data stage. A oneTBB pipeline assembles batches (gather, augment in parallel per
// sample, batch-level augmenters) ahead of the compute into a bounded queue, so loading overlaps
// training. Sample order comes from a per-epoch shuffle keyed by (seed, epoch); augmentation
// streams are keyed by (seed, epoch, sample index): the batches do not depend on threads.
#pragma once
#include <atomic>
#include <memory>
#include <thread>

#include "loom/augmenter.hpp"
#include "loom/training.hpp"

namespace loom {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t prefetch = 4;     // batches in flight
  bool with_labels = true;  // copy labels when the dataset has them
  int64_t limit = -1;       // stop after this many samples (benchmarks, --max-steps)
  int rank = 0, world = 1;  // data-parallel shard: this process's part of every epoch
};

// A chain of augmenters, applied to the training inputs only.
struct Transform {
  std::vector<std::shared_ptr<Augmenter>> chain;
  int num_classes = 0;  // for batch-level augmenters (one-hot labels)
  bool empty() const { return chain.empty(); }
};

class LOOM_API BatchLoader {
 public:
  BatchLoader(DataSplit split, DataSplit paired, LoaderOptions options,
              std::shared_ptr<const Transform> transform = nullptr);
  ~BatchLoader();  // stops the producer
  // The next batch, or nullptr at the end of the epoch. Rethrows a producer error.
  std::shared_ptr<Batch> next();
  int64_t batches() const { return (count_ + opt_.batch_size - 1) / opt_.batch_size; }

 private:
  struct Shared;
  void produce();
  DataSplit split_, paired_;
  LoaderOptions opt_;
  std::shared_ptr<const Transform> transform_;
  int64_t count_ = 0;
  std::vector<int64_t> order_;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

// The transform chain attached to a split's dataset by the runtime (null when none). Held for
// as long as the dataset lives: a later dataset at the same address has none.
LOOM_API std::shared_ptr<const Transform> transform_of(const DataSplit& split);
LOOM_API void set_transform(const std::shared_ptr<const Dataset>& data,
                            std::shared_ptr<const Transform> t);

// Fills `b` with the samples order[first, first + n) (no threads; used by the loader and
// by inference code).
LOOM_API void assemble_batch(Batch& b, const DataSplit& split, const DataSplit& paired,
                             const std::vector<int64_t>& order, int64_t first, int64_t n,
                             bool with_labels, const Transform* transform, uint64_t seed,
                             int64_t epoch);

}  // namespace loom
