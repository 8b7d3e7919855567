// The thread budget, and the warning when the cores are already busy.
#include <omp.h>
#include <strings.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "cli.hpp"

namespace loom::cli {
namespace {

std::unique_ptr<tbb::global_control> g_tbb_limit;

// How many cores other processes keep busy. LOOM_LOAD_AVERAGE, when set, is taken as the reading
// (for tests and for scripts that know better). Otherwise the 1-minute load average of
// /proc/loadavg, capped by the number of other runnable tasks sampled over the next 50 ms: the
// average alone still counts, for a minute, a program that has just finished.
double busy_cores() {
  if (const char* injected = std::getenv("LOOM_LOAD_AVERAGE")) {
    char* end = nullptr;
    double v = std::strtod(injected, &end);
    return end != injected && std::isfinite(v) ? std::max(0.0, v) : 0.0;
  }
  auto read = [](double& load1, long& runnable) {
    std::ifstream f("/proc/loadavg");
    double l5, l15;
    char slash;
    long total;
    return bool(f >> load1 >> l5 >> l15 >> runnable >> slash >> total);
  };
  double load1 = 0;
  long runnable = 0;
  if (!read(load1, runnable) || load1 < 1.0) return load1;
  double others = 0;
  const int samples = 5;
  for (int i = 0; i < samples; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    double l;
    long r = 1;
    if (!read(l, r)) return 0;
    others += double(std::max(0L, r - 1)) / samples;  // less this process
  }
  return std::min(load1, others);
}

bool waits_actively() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  return policy && !strcasecmp(policy, "active");
}

}  // namespace

std::string busy_cores_warning(int threads, int cores, double busy) {
  if (threads < 2 || busy < std::max(1.0, cores / 4.0)) return "";
  char text[512];
  std::snprintf(text, sizeof text,
                "warning: other programs keep about %.1f of the %d cores busy, and loom's %d "
                "compute threads wait actively for each other, which is slow on shared cores (a "
                "busy 2-core machine measured 196 images/s, against 2144 with one thread); "
                "consider --threads 1, or OMP_WAIT_POLICY=PASSIVE",
                busy, cores, threads);
  return text;
}

// One thread budget: oneDNN's OpenMP team and oneTBB's data workers share the cores.
std::string set_threads(int64_t n, bool chosen) {
  int cores = omp_get_num_procs();
  // More threads than cores only waits (they spin for each other); a few times the cores is
  // allowed for experiments, beyond that it is a typo (100000 threads exhaust the process).
  int64_t most = std::max(64, 4 * cores);
  if (n > most)
    throw UsageError("--threads: " + std::to_string(n) + " threads on " + std::to_string(cores) +
                     " cores; give at most " + std::to_string(most) + " (0: every core)");
  int t = n > 0 ? int(n) : cores;
  omp_set_num_threads(t);
  g_tbb_limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      size_t(t));
  static bool warned = false;
  if (!chosen && !warned && t > 1 && waits_actively()) {
    std::string w = busy_cores_warning(t, cores, busy_cores());
    if (!w.empty()) std::cerr << w << std::endl;
    warned = true;
  }
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  return "threads: " + std::to_string(t) + " for oneDNN (OpenMP, wait policy " +
         (wait ? wait : "default") + "), up to " + std::to_string(t) + " for data (oneTBB); " +
         std::to_string(cores) + " cores";
}

}  // namespace loom::cli
