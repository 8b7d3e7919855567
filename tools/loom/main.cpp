// loom — run, validate, inspect and benchmark YAML pipelines.
#include <unistd.h>

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
    "  bench --augment [--threads N] [--json]               images/second of a typical augmentation chain\n"
    "  augment PIPELINE_OR_INPUT --out PATH [--transform FILE_OR_YAML] [--copies K] [--keep-originals]\n"
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
    "  graph PIPELINE                                       DOT of the stages and models\n";

}  // namespace

int main(int argc, char** argv) {
  // oneDNN runs OpenMP teams inside each primitive while oneTBB threads feed data: spinning
  // OpenMP threads would starve them, so idle threads sleep unless the user decided otherwise.
  // The OpenMP runtime reads this at start-up, hence the re-exec.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("LOOM_NO_REEXEC")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    setenv("LOOM_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);  // falls through if it fails
  }
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
    std::cerr << "loom: unknown command '" << cmd << "'"
              << loom::suggestion(cmd, {"run", "validate", "plugins", "bench", "predict", "graph", "sample", "augment"})
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
