// The offline augmentation engine: a three-stage oneTBB pipeline. A serial stage hands out
// chunk numbers in order, a parallel stage augments a chunk (each output with its own random
// stream), and a serial in-order stage writes the chunk. Chunk buffers are recycled, and at most
// `tokens` chunks are alive at any time.
#include <tbb/concurrent_queue.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cstring>

#include "core/distributed.hpp"
#include "loom/augment.hpp"
#include "loom/error.hpp"
#include "loom/io.hpp"
#include "loom/rng.hpp"

namespace loom {
namespace {

struct ImageGeometry {
  int64_t c = 1, h = 1, w = 1;
};

ImageGeometry geometry(const Shape& ss) {
  ImageGeometry g;
  if (ss.empty()) return g;
  g.c = ss.size() == 3 ? ss[0] : 1;
  g.h = ss.size() >= 2 ? ss[ss.size() - 2] : 1;
  g.w = ss.back();
  return g;
}

struct Chunk {
  int64_t first = 0, n = 0;
  int owner = 0;  // the rank that augments it
  std::vector<float> x;
  std::vector<int32_t> labels;
};

}  // namespace

void require_per_sample(const AugmentChain& chain, const std::vector<std::string>& names,
                        const std::string& where) {
  for (size_t i = 0; i < chain.size(); ++i)
    if (chain[i]->batch_level())
      throw Error(where + "[" + std::to_string(i) +
                  "]: " + (i < names.size() ? "'" + names[i] + "'" : "this augmenter") +
                  " is batch-level (it mixes images and labels across a batch); offline "
                  "augmentation writes "
                  "each image with its own integer label, so use it in a training pipeline's "
                  "`transform:` instead");
}

AugmentStats augment_dataset(const Dataset& data, int64_t begin, int64_t count,
                             const AugmentChain& chain, const AugmentOptions& o,
                             const std::vector<DatasetWriter*>& writers) {
  if (o.copies < 0)
    throw Error("augment: copies must be at least 0, got " + std::to_string(o.copies));
  if (begin < 0 || count < 0 || begin + count > data.count)
    throw Error("augment: samples [" + std::to_string(begin) + ", " +
                std::to_string(begin + count) + ") outside " + data.origin + " (" +
                std::to_string(data.count) + " samples)");
  require_per_sample(chain, {}, "transform");
  auto t0 = std::chrono::steady_clock::now();
  const int64_t per = numel(data.sample_shape);
  const int64_t outs = o.copies + (o.keep_originals ? 1 : 0);
  const int64_t chunk = std::max<int64_t>(1, o.chunk);
  const int64_t nchunks = (count + chunk - 1) / chunk;
  const bool labelled = data.has_labels();
  const ImageGeometry g = geometry(data.sample_shape);
  const int threads = tbb::this_task_arena::max_concurrency();
  const size_t tokens = size_t(o.tokens > 0 ? o.tokens : 2 * threads + 2);
  const int64_t total = count * outs;

  // Several MPI ranks: chunk k is augmented by rank k mod N; rank 0 receives the others' in
  // order and writes every chunk, the bytes one process writes.
  const int rank = distributed::rank(), world = distributed::world();
  const int64_t step = rank == 0 ? 1 : world;
  tbb::concurrent_queue<std::shared_ptr<Chunk>> pool;  // recycled buffers
  int64_t next = rank, written = 0;
  tbb::parallel_pipeline(
      tokens,
      tbb::make_filter<void, int64_t>(tbb::filter_mode::serial_in_order,
                                      [&](tbb::flow_control& fc) -> int64_t {
                                        if (next >= nchunks || (o.cancel && o.cancel->load())) {
                                          fc.stop();
                                          return 0;
                                        }
                                        int64_t k = next;
                                        next += step;
                                        return k;
                                      }) &
          tbb::make_filter<int64_t, std::shared_ptr<Chunk>>(
              tbb::filter_mode::parallel,
              [&](int64_t k) {
                std::shared_ptr<Chunk> c;
                if (!pool.try_pop(c)) c = std::make_shared<Chunk>();
                c->first = k * chunk;
                c->n = std::min(chunk, count - c->first);
                c->x.resize(size_t(c->n * outs * per));
                c->labels.resize(size_t(c->n));
                c->owner = int(k % world);
                if (c->owner != rank) return c;  // rank 0 receives it when writing
                for (int64_t i = 0; i < c->n; ++i) {
                  int64_t idx = begin + c->first + i;  // index in the dataset: the random key
                  const float* src = data.sample(idx);
                  float* dst = c->x.data() + i * outs * per;
                  if (labelled) c->labels[size_t(i)] = data.labels[size_t(idx)];
                  for (int64_t j = 0; j < outs; ++j, dst += per) {
                    std::memcpy(dst, src, size_t(per) * sizeof(float));
                    int64_t copy = o.keep_originals ? j - 1 : j;
                    if (copy < 0) continue;
                    Rng rng(o.seed, "augment", uint64_t(copy), uint64_t(idx));
                    Image img{dst, g.c, g.h, g.w, data.lo, data.hi};
                    for (auto& a : chain) a->apply(img, rng);
                  }
                }
                return c;
              }) &
          tbb::make_filter<std::shared_ptr<Chunk>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Chunk> c) {
                if (world > 1) {
                  int tag = int(c->first / chunk % (int64_t(1) << 30));
                  int64_t xb = int64_t(c->x.size() * sizeof(float)),
                          lb = int64_t(c->labels.size() * sizeof(int32_t));
                  if (rank != 0) {  // a chunk of this rank's: to rank 0, which writes it
                    distributed::send(c->x.data(), xb, 0, tag);
                    distributed::send(c->labels.data(), lb, 0, tag);
                    written += c->n * outs;
                    pool.push(std::move(c));
                    return;
                  }
                  if (c->owner != 0) {
                    distributed::receive(c->x.data(), xb, c->owner, tag);
                    distributed::receive(c->labels.data(), lb, c->owner, tag);
                  }
                }
                for (int64_t i = 0; i < c->n; ++i)
                  for (int64_t j = 0; j < outs; ++j) {
                    const float* s = c->x.data() + (i * outs + j) * per;
                    for (DatasetWriter* w : writers)
                      w->write(s, labelled ? c->labels[size_t(i)] : 0);
                  }
                written += c->n * outs;
                pool.push(std::move(c));
                if (o.progress) o.progress(written, total);
              }));
  if (o.cancel && o.cancel->load() && written < total)
    throw Error("interrupted after " + std::to_string(written) + " of " + std::to_string(total) +
                " images; nothing was written");
  AugmentStats st;
  st.inputs = count;
  st.written = written;
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

void write_augment_preview(const std::string& png_path, const Dataset& data, int64_t begin,
                           int64_t count, const AugmentChain& chain,
                           const std::vector<std::string>& names, uint64_t seed, int64_t rows) {
  if (count <= 0) throw Error(png_path + ": no samples to preview");
  require_per_sample(chain, {}, "transform");
  Shape s = data.sample_shape;
  if (s.size() == 2) s.insert(s.begin(), 1);
  if (s.size() != 3 || (s[0] != 1 && s[0] != 3))
    throw Error(png_path + ": a preview needs images of shape (1, H, W) or (3, H, W), got " +
                to_string(data.sample_shape));
  const int64_t per = numel(s), n = std::min(rows, count), cols = int64_t(chain.size()) + 2;
  const ImageGeometry g{s[0], s[1], s[2]};
  std::vector<float> cells(size_t(n * cols * per));
  std::vector<const float*> ptrs;
  for (int64_t r = 0; r < n; ++r) {
    int64_t idx = begin + r;
    for (int64_t col = 0; col < cols; ++col) {
      float* dst = cells.data() + (r * cols + col) * per;
      std::memcpy(dst, data.sample(idx), size_t(per) * sizeof(float));
      Image img{dst, g.c, g.h, g.w, data.lo, data.hi};
      Rng rng(seed, "augment", 0, uint64_t(idx));
      if (col > 0 && col <= int64_t(chain.size())) chain[size_t(col - 1)]->apply(img, rng);
      if (col == cols - 1)
        for (auto& a : chain) a->apply(img, rng);
      ptrs.push_back(dst);
    }
  }
  GridLabels labels;
  labels.columns.push_back("original");
  for (size_t i = 0; i < chain.size(); ++i)
    labels.columns.push_back(i < names.size() ? names[i] : "");
  labels.columns.push_back("whole chain");
  write_png_grid(png_path, ptrs, s, cols, data.lo, data.hi, labels);
}

}  // namespace loom
