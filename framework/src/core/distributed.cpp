// Data-parallel processes on MPI: joining the ranks, and the MPI GradientReducer.
#include "core/distributed.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <set>
#include <vector>

#include "loom/error.hpp"
#include "loom/rng.hpp"

namespace loom::distributed {
namespace {

int g_rank = 0, g_world = 1;
bool g_started = false;
double g_reduce_seconds = 0;

// Gradients travel in buckets of about this many floats (1 MiB): a bucket's all-reduce starts
// as soon as the backward pass has completed that much, while the layers below run.
constexpr int64_t kBucket = int64_t(1) << 18;

class MpiReducer : public GradientReducer {
 public:
  int rank() const override { return g_rank; }
  int world() const override { return g_world; }

  // Gradients handed over during backward (gradient_ready) are packed into buckets whose
  // all-reduces start as soon as they fill; reduce_gradients() sends what is left, waits for
  // every bucket and writes the means back.
  void gradient_ready(Param& p) override {
    if (!sent_.insert(&p).second)
      throw Error("parameter '" + p.name +
                  "' received gradients from two backward passes in one step; on several "
                  "ranks a recipe clears RunContext::ranks for all but the last of them");
    Timed timed;
    waiting_.push_back(&p);
    waiting_floats_ += p.grad.size();
    if (waiting_floats_ >= kBucket) start_bucket();
    progress();
  }

  void reduce_gradients(const std::vector<ParamPtr>& params) override {
    Timed timed;
    for (auto& p : params)
      if (!sent_.count(p.get())) {
        waiting_.push_back(p.get());
        waiting_floats_ += p->grad.size();
      }
    start_bucket();
    std::vector<MPI_Request> requests;
    for (auto& b : buckets_) requests.push_back(b.request);
    MPI_Waitall(int(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
    check_same_packing();
    float scale = 1.f / float(g_world);
    for (auto& b : buckets_) {
      size_t at = 0;
      for (Param* p : b.params) {
        float* g = p->grad.data();
        for (int64_t i = 0; i < p->grad.size(); ++i) g[i] = b.data[at + size_t(i)] * scale;
        at += size_t(p->grad.size());
      }
      spare_.push_back(std::move(b.data));
    }
    buckets_.clear();
    sent_.clear();
  }

  void reduce_terms(LossTerms& terms) override {
    std::vector<double> v;
    for (auto& t : terms) v.push_back(t.second);
    // Every rank must have the same terms; the count goes first so that a mismatch is an error
    // here rather than a hang.
    int n = int(v.size()), lo = 0, hi = 0;
    MPI_Allreduce(&n, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&n, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi)
      throw Error("the ranks disagree on the number of loss terms (" + std::to_string(lo) +
                  " and " + std::to_string(hi) + ")");
    MPI_Allreduce(MPI_IN_PLACE, v.data(), n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (size_t i = 0; i < v.size(); ++i) terms[i].second = v[i] / g_world;
  }

  void broadcast(const std::vector<Tensor*>& tensors) override {
    for (Tensor* t : tensors)
      for (int64_t at = 0; at < t->size(); at += kBucket)
        MPI_Bcast(t->data() + at, int(std::min(kBucket, t->size() - at)), MPI_FLOAT, 0,
                  MPI_COMM_WORLD);
  }

  void sum(double* values, int64_t n) override {
    MPI_Allreduce(MPI_IN_PLACE, values, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }

  // Rank 0 receives the rows of every batch another rank owns, in batch order.
  void gather_rows(float* out, int64_t rows, int64_t rows_per_batch, int64_t row_floats) override {
    for (int64_t first = 0, k = 0; first < rows; first += rows_per_batch, ++k) {
      int owner = int(k % g_world);
      if (owner == 0 || (g_rank != 0 && g_rank != owner)) continue;
      int64_t bytes = std::min(rows_per_batch, rows - first) * row_floats * int64_t(sizeof(float));
      if (g_rank == 0)
        receive(out + first * row_floats, bytes, owner, 7);
      else
        send(out + first * row_floats, bytes, 0, 7);
    }
  }

 private:
  // Adds its lifetime to the time spent reducing gradients (reduce_seconds()).
  struct Timed {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    ~Timed() {
      g_reduce_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  };

  struct Bucket {
    std::vector<float> data;
    std::vector<Param*> params;
    MPI_Request request = MPI_REQUEST_NULL;
  };

  // Packs the waiting gradients into a bucket and starts its all-reduce.
  void start_bucket() {
    if (waiting_.empty()) return;
    Bucket b;
    if (!spare_.empty()) {
      b.data = std::move(spare_.back());
      spare_.pop_back();
    }
    b.data.resize(size_t(waiting_floats_));
    size_t at = 0;
    for (Param* p : waiting_) {
      std::copy(p->grad.data(), p->grad.data() + p->grad.size(), b.data.data() + at);
      at += size_t(p->grad.size());
      packing_ = mix(mix(packing_, hash_string(p->name)), uint64_t(p->grad.size()));
    }
    packing_ = mix(packing_, buckets_.size());
    b.params = std::move(waiting_);
    waiting_.clear();
    waiting_floats_ = 0;
    buckets_.push_back(std::move(b));
    Bucket& s = buckets_.back();
    MPI_Iallreduce(MPI_IN_PLACE, s.data.data(), int(s.data.size()), MPI_FLOAT, MPI_SUM,
                   MPI_COMM_WORLD, &s.request);
  }

  static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
  }

  // Every rank must have packed the same parameters in the same order, or the all-reduce added
  // one parameter's gradient to another's: a digest of this step's packing, compared over the
  // ranks, turns such a fault (a defect in Loom or a plugin, never the user's) into an error
  // instead of a silently wrong run.
  void check_same_packing() {
    uint64_t v[2] = {packing_, ~packing_};
    packing_ = 0;
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (v[0] != ~v[1])
      throw Error(
          "the ranks sent their gradients in different orders in one step; this is a "
          "defect of Loom or of a layer plugin, please report it with the pipeline");
  }

  // MPI moves non-blocking collectives along only inside MPI calls: one test of the started
  // buckets per layer keeps them going during the backward pass.
  void progress() {
    for (auto& b : buckets_) {
      int done = 0;
      MPI_Test(&b.request, &done, MPI_STATUS_IGNORE);
      if (!done) break;
    }
  }

  std::vector<Param*> waiting_;
  int64_t waiting_floats_ = 0;
  uint64_t packing_ = 0;  // digest of this step's buckets: parameter names, sizes, boundaries
  std::set<Param*> sent_;
  std::deque<Bucket> buckets_;
  std::vector<std::vector<float>> spare_;
};

bool started_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

int init(int* argc, char*** argv) {
  if (g_started || !started_by_mpirun()) return g_world;
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    throw Error("started by mpirun, but MPI did not start");
  g_started = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world);
  // Stages call MPI from oneTBB's worker threads, one at a time.
  if (provided < MPI_THREAD_SERIALIZED && g_world > 1)
    throw Error("this MPI library cannot be called from the threads Loom runs its stages on");
  return g_world;
}

void finalize() {
  if (g_started) MPI_Finalize();
  g_started = false;
}

int rank() { return g_rank; }
int world() { return g_world; }

std::string where() {
  return g_world > 1 ? "rank " + std::to_string(g_rank) + " of " + std::to_string(g_world) : "";
}

GradientReducer& reducer() {
  static GradientReducer single_process;
  static MpiReducer mpi;
  if (g_world > 1) return mpi;
  return single_process;
}

void barrier() {
  if (g_world > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void abort(int code) {
  if (g_started) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void send(const void* data, int64_t bytes, int peer, int tag) {
  const char* p = static_cast<const char*>(data);
  for (int64_t done = 0; done < bytes; done += int64_t(1) << 30)
    MPI_Send(p + done, int(std::min<int64_t>(int64_t(1) << 30, bytes - done)), MPI_BYTE, peer, tag,
             MPI_COMM_WORLD);
}

void receive(void* data, int64_t bytes, int peer, int tag) {
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < bytes; done += int64_t(1) << 30)
    MPI_Recv(p + done, int(std::min<int64_t>(int64_t(1) << 30, bytes - done)), MPI_BYTE, peer, tag,
             MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

double reduce_seconds() { return g_reduce_seconds; }

}  // namespace loom::distributed
