// Data-parallel processes (MPI). `mpirun -np N loom run ...` starts N processes; init() joins
// them when the process was started by mpirun (Open MPI's or another launcher's environment) and
// does nothing otherwise, so a plain `loom` never touches MPI. The process's GradientReducer
// (StageContext::reducer()) is then the MPI one: gradients and loss terms averaged over the
// ranks, parameters broadcast from rank 0.
#pragma once
#include <string>

#include "loom/export.hpp"
#include "loom/training.hpp"

namespace loom::distributed {

// Joins the ranks when started by mpirun (MPI_Init_thread); returns the number of ranks (1 when
// not started by mpirun). Throws Error when MPI cannot start.
LOOM_API int init(int* argc, char*** argv);
// Leaves MPI (every rank, at the end of a command that ended well).
LOOM_API void finalize();
LOOM_API int rank();
LOOM_API int world();
// "" on one process, else "rank R of N" (for messages).
LOOM_API std::string where();
LOOM_API GradientReducer& reducer();
// Every rank waits for every other.
LOOM_API void barrier();
// An error on this rank: every rank stops (MPI_Abort), after this rank has printed its message.
[[noreturn]] LOOM_API void abort(int code);
// True when the pipeline runs on several ranks and this one is rank 0, or on one process: the
// process that writes the run folder.
inline bool writer() { return rank() == 0; }

// Point to point, for sharded writers: `bytes` bytes to or from rank `peer` (blocking; messages
// between two ranks arrive in the order they were sent).
LOOM_API void send(const void* data, int64_t bytes, int peer, int tag);
LOOM_API void receive(void* data, int64_t bytes, int peer, int tag);

// The time spent reducing gradients so far (metrics.jsonl's allreduce_ms).
LOOM_API double reduce_seconds();

}  // namespace loom::distributed
