// loom — run, validate, inspect and benchmark YAML pipelines.
#include <pmmintrin.h>
#include <unistd.h>
#include <xmmintrin.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli.hpp"
#include "loom/error.hpp"

namespace {

const char* kUsage =
    "usage: loom COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run PIPELINE [--out DIR] [--set KEY=VALUE ...] [--epochs N] [--max-steps N]\n"
    "               [--threads N] [--subset N] [--resume] [--quiet]\n"
    "                                                       train / run every stage\n"
    "  validate PIPELINE [--set KEY=VALUE ...]              check everything, print model "
    "summaries\n"
    "  plugins [NAME]                                       list registered types / show one\n"
    "  bench PIPELINE [--json] [--stage S] [--windows N] [--steps N] [--warmup N] [--threads N]\n"
    "                                                       steady-state training images/second\n"
    "  bench --augment [--threads N] [--json]               images/second of a typical "
    "augmentation chain\n"
    "  augment PIPELINE_OR_INPUT --out PATH [--transform FILE_OR_YAML] [--copies K] "
    "[--keep-originals]\n"
    "          [--seed S] [--threads N] [--subset N] [--preview] [--quiet]\n"
    "                                                       write augmented copies of a dataset\n"
    "  predict RUN_DIR_OR_CHECKPOINT --input PATH --out PATH [--model NAME] [--output LAYER]\n"
    "                                                       apply a trained model to a dataset\n"
    "  predict ... [--scatter FILE.png]                     also plot the outputs in 2-D (PCA), by "
    "class\n"
    "  sample RUN_DIR_OR_CHECKPOINT --n N --out PATH [--model NAME] [--sampler S] [--seed S] "
    "[--cols C]\n"
    "         [--interpolate (--axis K | --between I,J --data PATH) [--steps S]]\n"
    "                                                       decode sampled codings: PNG grid or "
    "dataset\n"
    "  graph PIPELINE                                       DOT of the stages and models\n"
    "  eval SAMPLES [--real PATH] [--n N] [--labels PATH] [--range LOW,HIGH] [--json]\n"
    "       [--classifier PATH] [--classes FILE]           sample quality: FD, KID, "
    "precision/recall, classes\n";

}  // namespace

int main(int argc, char** argv) {
  // oneDNN runs an OpenMP team inside each primitive, and a training step is a few dozen short
  // primitives: threads that go to sleep between them (PASSIVE) must be woken every time, which
  // measured 2-10x slower here than threads that wait actively (stacked_ae 20k vs 72k img/s,
  // recurrent_ae 0.5k vs 4.9k). The data stage is light, so loom waits actively unless the user
  // chose a policy. On a machine shared with other busy processes, `--threads 1` or
  // OMP_WAIT_POLICY=PASSIVE is the better choice. The OpenMP runtime reads the policy at
  // start-up, hence the re-exec.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("LOOM_NO_REEXEC")) {
    setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
    setenv("LOOM_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);  // falls through if it fails
  }
  // Flush denormal floats to zero (threads created later inherit the mode): tiny gradients and
  // optimizer moments would otherwise hit the CPU's slow denormal path and cut the step rate.
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "run") return loom::cli::cmd_run(argc, argv);
    if (cmd == "validate") return loom::cli::cmd_validate(argc, argv);
    if (cmd == "plugins") return loom::cli::cmd_plugins(argc, argv);
    if (cmd == "bench") return loom::cli::cmd_bench(argc, argv);
    if (cmd == "predict") return loom::cli::cmd_predict(argc, argv);
    if (cmd == "graph") return loom::cli::cmd_graph(argc, argv);
    if (cmd == "sample") return loom::cli::cmd_sample(argc, argv);
    if (cmd == "augment") return loom::cli::cmd_augment(argc, argv);
    if (cmd == "eval") return loom::cli::cmd_eval(argc, argv);
    std::cerr << "loom: unknown command '" << cmd << "'"
              << loom::suggestion(cmd, {"run", "validate", "plugins", "bench", "predict", "graph",
                                        "sample", "augment", "eval"})
              << "\n\n"
              << kUsage;
    return 2;
  } catch (const loom::Error& e) {
    std::cerr << "\nerror: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "\nerror: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "\nerror: " << e.what() << "\n";
    return 1;
  }
}
