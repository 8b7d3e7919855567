#include "loom/interrupt.hpp"

#include <atomic>
#include <csignal>

namespace loom {
namespace {

std::atomic<int> g_stop{0};

extern "C" void on_stop_signal(int sig) {
  if (g_stop.load() != 0) {  // the second one: stop now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop.store(sig);
}

}  // namespace

Interrupted::~Interrupted() = default;

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int stop_requested() { return g_stop.load(); }

void request_stop(int signal) { g_stop.store(signal); }

}  // namespace loom
