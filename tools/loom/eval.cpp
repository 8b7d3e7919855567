// loom eval: the command line of the sample-quality measures (framework/src/eval).
#include "eval/eval.hpp"

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli.hpp"
#include "loom/error.hpp"

namespace loom::cli {

namespace {

struct EvalCommand {
  eval::EvalOptions o;
  bool json = false;
  int64_t n = 0, seed = 0, threads = 0;
};

}  // namespace

void add_eval_command(CLI::App& app) {
  auto c = std::make_shared<EvalCommand>();
  c->n = c->o.n;
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "sample quality of generated images: Fréchet distance, KID, precision/recall and the "
      "predicted-class histogram, in the features of a Loom-trained Fashion-MNIST classifier");
  cmd->add_option("SAMPLES", c->o.samples,
                  "the generated images: .npy (N, 28, 28) or (N, 1, 28, 28), IDX or a PNG folder")
      ->required()
      ->type_name("");
  cmd->add_option("--real", c->o.real, "the real images to compare with")
      ->type_name("PATH")
      ->default_str("the 10,000 Fashion-MNIST test images");
  add_positive(*cmd, "--n", c->n, "images taken from each set (figures compare only at equal N)",
               std::to_string(c->o.n));
  cmd->add_option("--labels", c->o.labels,
                  "the classes the samples were asked to be (conditional generators)")
      ->type_name("PATH")
      ->default_str("SAMPLES.labels.npy when present");
  cmd->add_option("--range", c->o.range, "the samples' value range")
      ->type_name("LOW,HIGH")
      ->default_str("detected: [0, 1], [-1, 1] or uint8")
      ->check(pair_of(false));
  cmd->add_option("--classifier", c->o.classifier, "the feature network: a trained run folder")
      ->type_name("DIR")
      ->default_str("share/loom/models/fid_classifier beside the binary");
  cmd->add_option("--classes", c->o.classes, "names of the classifier's classes, one per line")
      ->type_name("FILE")
      ->default_str("Fashion-MNIST's");
  add_non_negative(*cmd, "--seed", c->seed, "seed of KID's random subsets", "0");
  cmd->add_flag("--json", c->json, "print one JSON object instead of the table");
  add_threads(*cmd, c->threads);
  cmd->callback([c, cmd] {
    c->o.n = c->n;
    c->o.seed = uint64_t(c->seed);
    set_threads(c->threads, given(*cmd, "--threads"));
    eval::EvalReport r = eval::run(c->o);
    std::cout << (c->json ? eval::format_json(r) + "\n" : eval::format_text(r));
  });
}

}  // namespace loom::cli
