// Stopping a long run cleanly: SIGINT (Ctrl-C) or SIGTERM asks the run to stop at the end of
// the current training step; the trainer then writes a checkpoint that `--resume` continues from
// and throws Interrupted. A second signal stops at once (the default action).
#pragma once
#include "loom/error.hpp"
#include "loom/export.hpp"

namespace loom {

// Installs the handlers (idempotent). Commands that train call it; others keep the defaults.
LOOM_API void install_stop_handlers();
// The signal that asked to stop (SIGINT, SIGTERM), or 0.
LOOM_API int stop_requested();
// For tests: as if `signal` had arrived (0 clears).
LOOM_API void request_stop(int signal);

// Thrown when a run stopped on request; exit code 128 + signal, as a shell reports a signal.
class LOOM_API Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& message) : Error(message), signal_(signal) {}
  ~Interrupted() override;
  int exit_code() const { return 128 + signal_; }

 private:
  int signal_;
};

}  // namespace loom
