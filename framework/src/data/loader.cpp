#include "data/loader.hpp"

#include <tbb/concurrent_queue.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "loom/error.hpp"
#include "loom/rng.hpp"

namespace loom {

namespace {
// By address, with the dataset itself watched: an entry whose dataset is gone is dropped, so a
// new dataset that happens to be allocated at a freed one's address never inherits its
// augmentation, and a process that builds many pipelines (tests, the fuzzers) keeps no
// transforms of datasets long gone.
struct Attached {
  std::weak_ptr<const Dataset> data;
  std::shared_ptr<const Transform> transform;
};
std::mutex transforms_mutex;
std::map<const Dataset*, Attached>& transforms() {
  static std::map<const Dataset*, Attached> m;
  return m;
}
}  // namespace

std::shared_ptr<const Transform> transform_of(const DataSplit& split) {
  std::lock_guard<std::mutex> lock(transforms_mutex);
  auto it = transforms().find(split.data.get());
  if (it == transforms().end()) return nullptr;
  if (it->second.data.lock() != split.data) {
    transforms().erase(it);
    return nullptr;
  }
  return it->second.transform;
}

void set_transform(const std::shared_ptr<const Dataset>& data, std::shared_ptr<const Transform> t) {
  std::lock_guard<std::mutex> lock(transforms_mutex);
  for (auto it = transforms().begin(); it != transforms().end();)
    it = it->second.data.expired() ? transforms().erase(it) : std::next(it);
  transforms()[data.get()] = Attached{data, std::move(t)};
}

struct BatchLoader::Shared {
  tbb::concurrent_bounded_queue<std::shared_ptr<Batch>> queue;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};  // the producer has returned
  std::exception_ptr error;
  // Batches handed back by the consumer, reused so a step allocates (and page-faults) nothing.
  tbb::concurrent_queue<Batch*> free;
  ~Shared() {
    Batch* b = nullptr;
    while (free.try_pop(b)) delete b;
  }
};

void assemble_batch(Batch& b, const DataSplit& split, const DataSplit& paired,
                    const std::vector<int64_t>& order, int64_t first, int64_t n, bool with_labels,
                    const Transform* transform, uint64_t seed, int64_t epoch) {
  const Shape& ss = split.data->sample_shape;
  int64_t per = numel(ss);
  Shape bs = ss;
  bs.insert(bs.begin(), n);
  b.x.resize(bs);
  b.size = n;
  b.first = first;
  auto gather = [&](int64_t i) {
    int64_t idx = order.empty() ? first + i : order[size_t(first + i)];
    std::memcpy(b.x.data() + i * per, split.sample(idx), size_t(per) * sizeof(float));
    if (paired.data)
      std::memcpy(b.paired.data() + i * per, paired.sample(idx), size_t(per) * sizeof(float));
  };
  if (paired.data) b.paired.resize(bs);
  bool augment = transform && !transform->empty();
  bool labels = with_labels && split.data->has_labels();
  if (augment) {
    b.x_clean.resize(bs);
  } else {
    b.x_clean = Tensor();
  }
  if (labels) {
    b.labels.resize({n});
    for (int64_t i = 0; i < n; ++i) {
      int64_t idx = order.empty() ? first + i : order[size_t(first + i)];
      b.labels[i] = float(split.label(idx));
    }
  } else {
    b.labels = Tensor();
  }
  if (!augment) {
    for (int64_t i = 0; i < n; ++i) gather(i);
    b.x_clean = b.x;  // shares the buffer: targets are the inputs
    return;
  }
  // Per-sample augmentation in parallel; each sample has its own random stream.
  int64_t c = ss.size() == 3 ? ss[0] : 1;
  int64_t h = ss.size() >= 2 ? ss[ss.size() - 2] : 1, w = ss.back();
  tbb::parallel_for(int64_t(0), n, [&](int64_t i) {
    gather(i);
    std::memcpy(b.x_clean.data() + i * per, b.x.data() + i * per, size_t(per) * sizeof(float));
    int64_t idx = order.empty() ? first + i : order[size_t(first + i)];
    Rng rng(seed, "augment", uint64_t(epoch), uint64_t(split.begin + idx));
    Image img{b.x.data() + i * per, c, h, w, split.data->lo, split.data->hi};
    for (auto& a : transform->chain)
      if (!a->batch_level()) a->apply(img, rng);
  });
  bool batch_level = false;
  for (auto& a : transform->chain) batch_level |= a->batch_level();
  if (batch_level) {
    int k = std::max(transform->num_classes, split.data->num_classes);
    Tensor onehot({n, int64_t(k)});
    if (labels)
      for (int64_t i = 0; i < n; ++i) onehot[i * k + int64_t(b.labels[i])] = 1.f;
    Rng rng(seed, "augment-batch", uint64_t(epoch), uint64_t(first));
    for (auto& a : transform->chain)
      if (a->batch_level()) a->apply_batch(b.x, onehot, rng);
    b.labels = onehot;
  }
}

BatchLoader::BatchLoader(DataSplit split, DataSplit paired, LoaderOptions options,
                         std::shared_ptr<const Transform> transform)
    : split_(std::move(split)),
      paired_(std::move(paired)),
      opt_(options),
      transform_(std::move(transform)),
      shared_(std::make_shared<Shared>()) {
  if (paired_.data && paired_.count != split_.count)
    throw Error("paired data '" + paired_.name + "' has " + std::to_string(paired_.count) +
                " samples, '" + split_.name + "' has " + std::to_string(split_.count));
  order_.resize(size_t(split_.count));
  std::iota(order_.begin(), order_.end(), 0);
  if (opt_.shuffle) {
    Rng rng(opt_.seed, "shuffle", uint64_t(opt_.epoch), 0);
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
  }
  if (opt_.world > 1) {
    // Rank r takes every world-th block of batch_size samples of the epoch's permutation, so
    // step k of N ranks with batch b sees exactly the samples of step k of one rank with N·b.
    // Every rank takes the same number of steps: the epoch's last N·b samples that do not fill
    // a whole step are left out (a different few each epoch, as the permutation changes).
    std::vector<int64_t> shard;
    int64_t whole = opt_.batch_size * opt_.world;
    int64_t used = int64_t(order_.size()) / whole * whole;
    for (int64_t i = 0; i < used; ++i)
      if (i / opt_.batch_size % opt_.world == opt_.rank) shard.push_back(order_[size_t(i)]);
    order_ = std::move(shard);
  }
  count_ = int64_t(order_.size());
  if (opt_.limit >= 0) count_ = std::min(count_, opt_.limit);
  shared_->queue.set_capacity(std::max<int64_t>(1, opt_.prefetch));
  thread_ = std::thread([this] { produce(); });
}

BatchLoader::~BatchLoader() {
  // The producer may be about to push into a full queue: keep draining it until it returns
  // (abort() alone only wakes pushes that are already waiting).
  shared_->stop = true;
  std::shared_ptr<Batch> b;
  while (!shared_->done.load()) {
    while (shared_->queue.try_pop(b)) b.reset();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (thread_.joinable()) thread_.join();
}

void BatchLoader::produce() {
  auto shared = shared_;
  int64_t nb = batches(), next = 0;
  try {
    tbb::parallel_pipeline(
        size_t(std::max<int64_t>(1, opt_.prefetch)),
        tbb::make_filter<void, int64_t>(tbb::filter_mode::serial_in_order,
                                        [&](tbb::flow_control& fc) -> int64_t {
                                          if (next >= nb || shared->stop) {
                                            fc.stop();
                                            return 0;
                                          }
                                          return next++;
                                        }) &
            tbb::make_filter<int64_t, std::shared_ptr<Batch>>(
                tbb::filter_mode::parallel,
                [&](int64_t k) {
                  Batch* raw = nullptr;
                  if (!shared->free.try_pop(raw)) raw = new Batch;
                  std::weak_ptr<Shared> home = shared;
                  std::shared_ptr<Batch> b(raw, [home](Batch* p) {
                    if (auto h = home.lock())
                      h->free.push(p);
                    else
                      delete p;
                  });
                  int64_t first = k * opt_.batch_size;
                  int64_t n = std::min(opt_.batch_size, count_ - first);
                  assemble_batch(*b, split_, paired_, order_, first, n, opt_.with_labels,
                                 transform_.get(), opt_.seed, opt_.epoch);
                  return b;
                }) &
            tbb::make_filter<std::shared_ptr<Batch>, void>(tbb::filter_mode::serial_in_order,
                                                           [&](std::shared_ptr<Batch> b) {
                                                             if (!shared->stop)
                                                               shared->queue.push(std::move(b));
                                                           }));
    if (!shared->stop) shared->queue.push(nullptr);  // end of epoch
  } catch (...) {
    shared->error = std::current_exception();
    if (!shared->stop) shared->queue.push(nullptr);
  }
  shared->done = true;
}

std::shared_ptr<Batch> BatchLoader::next() {
  std::shared_ptr<Batch> b;
  shared_->queue.pop(b);
  if (!b && shared_->error) std::rethrow_exception(shared_->error);
  return b;
}

}  // namespace loom
